// One request's life on the engine as the front end sees it: submit, turn token events into output events (whole
// UTF-8 characters; content, reasoning, tool calls; stop strings held back and never sent), cancel exactly once,
// and measure the client-side latencies.
import Synchronization
import Text

/// A submitted request: its events in order and a cancel that reaches the engine at most once.
final class EngineCall: Sendable {
    let id: UInt64
    let events: AsyncStream<EngineEvent>
    let submittedAt: ContinuousClock.Instant
    private let engine: any CompletionEngine
    private let cancelled = Atomic<Bool>(false)

    private init(id: UInt64, events: AsyncStream<EngineEvent>, submittedAt: ContinuousClock.Instant, engine: any CompletionEngine) {
        self.id = id
        self.events = events
        self.submittedAt = submittedAt
        self.engine = engine
    }

    /// Queues the request; a refusal becomes the HTTP status OpenAI clients expect (429 retries, 503 waits).
    static func submit(_ request: EngineRequest, to engine: any CompletionEngine) throws(APIError) -> EngineCall {
        // Unbounded: the engine thread must never block on a slow client; a request's events are at most
        // maxTokens + 1 small values.
        let (events, continuation) = AsyncStream<EngineEvent>.makeStream(bufferingPolicy: .unbounded)
        let start = ContinuousClock.now
        do {
            let id = try engine.submit(request) { event in
                continuation.yield(event)
                if case .finished = event { continuation.finish() }
            }
            return EngineCall(id: id, events: events, submittedAt: start, engine: engine)
        } catch {
            switch error {
            case .queueFull(let seconds):
                var e = APIError(status: .tooManyRequests, type: "rate_limit_error",
                                 message: "the server's request queue is full; retry after \(seconds) s", code: "queue_full")
                e.headers[.retryAfter] = String(max(1, seconds))
                throw e
            case .draining:
                throw APIError.unavailable("the server is shutting down and takes no new requests")
            case .unavailable(let why):
                throw APIError.unavailable("the engine is not available: \(why)")
            case .tooLarge(let why):
                throw APIError.invalid(why, param: "max_tokens", code: "context_length_exceeded")
            }
        }
    }

    /// Client gone, stop string matched or task cancelled: frees the engine slot. Safe from any thread, repeatedly;
    /// a no-op once the engine reported the request finished.
    func cancel() {
        if !cancelled.exchange(true, ordering: .relaxed) { engine.cancel(id) }
    }

    /// The engine is done with the request: a later close of the connection needs no cancel.
    func markFinished() { cancelled.store(true, ordering: .relaxed) }
}

/// How a generation ended, for the finish chunk, the usage block and the metrics.
struct GenerationOutcome: Sendable {
    /// "stop", "length" or "tool_calls" (OpenAI's finish_reason).
    var finishReason: String
    /// The stop string that matched (vLLM's stop_reason), else null.
    var stopReason: JSONValue
    var promptTokens: Int
    var completionTokens: Int
    /// Set when the engine failed or dropped the request: the client gets this instead of a finish.
    var error: APIError?
}

/// Runs `call` to its end. `onOutput` is called once per token with the events it completes (possibly none) and
/// once more for output still held at the end; it throws when the client is gone, which cancels the call. Stop
/// strings are matched on the content only (reasoning and tool-call arguments are not the answer's text).
func runGeneration(_ call: EngineCall, plan: GenerationPlan, tokenizer: Tokenizer, metrics: ServerMetrics,
                   onOutput: ([OutputEvent]) async throws -> Void) async throws -> GenerationOutcome {
    var parser = ChatOutputParser(tokenizer: tokenizer, splitting: plan.splitting, skipSpecialTokens: plan.skipSpecialTokens)
    var matcher = StopMatcher(stops: plan.stops)
    let stopIDs = plan.engineRequest.stopTokenIDs
    let promptCount = plan.engineRequest.promptTokens.count
    var count = 0
    var lastToken: ContinuousClock.Instant?

    /// Content through the stop matcher; before any other kind of output, the content it held goes out (a stop
    /// string cannot span a change of kind). Nothing after a match.
    func screened(_ events: [OutputEvent]) -> [OutputEvent] {
        var out: [OutputEvent] = []
        for event in events {
            if matcher.stopped { break }
            if case .content(let text) = event {
                let shown = matcher.push(text)
                if !shown.isEmpty { out.append(.content(shown)) }
            } else {
                let held = matcher.finish()
                if !held.isEmpty { out.append(.content(held)) }
                out.append(event)
            }
        }
        return coalesced(out)
    }

    func done(_ reason: String, _ stopReason: JSONValue = .null, error: APIError? = nil, metric: String) -> GenerationOutcome {
        metrics.endToEndLatency.record(seconds(ContinuousClock.now - call.submittedAt))
        metrics.requestFinished(metric)
        // A model that stops after calling tools hands the turn to the client: OpenAI (and vLLM) say so.
        let finish = reason == "stop" && parser.toolCallCount > 0 ? "tool_calls" : reason
        return GenerationOutcome(finishReason: finish, stopReason: stopReason, promptTokens: promptCount,
                                 completionTokens: count, error: error)
    }

    do {
        return try await withTaskCancellationHandler {
            for await event in call.events {
                switch event {
                case .admitted(let queueSeconds):
                    metrics.queueTime.record(queueSeconds)
                case .token(let token):
                    let now = ContinuousClock.now
                    if let lastToken {
                        metrics.interTokenLatency.record(seconds(now - lastToken))
                    } else {
                        metrics.timeToFirstToken.record(seconds(now - call.submittedAt))
                    }
                    lastToken = now
                    count += 1
                    // The stop token's own text (the eos marker) is not part of the answer, as in vLLM.
                    let events = stopIDs.contains(token) ? [] : screened(parser.push(token))
                    try await onOutput(events)
                    if let matched = matcher.matched {
                        // The engine would go on to max_tokens: the front end ends it here.
                        call.cancel()
                        return done("stop", .string(matched), metric: "stop")
                    }
                case .finished(let reason, _, _):
                    call.markFinished()
                    var tail = screened(parser.finish())
                    if !matcher.stopped {
                        let held = matcher.finish()
                        if !held.isEmpty { tail = coalesced(tail + [.content(held)]) }
                    }
                    if !tail.isEmpty { try await onOutput(tail) }
                    if let matched = matcher.matched { return done("stop", .string(matched), metric: "stop") }
                    switch reason {
                    case .stopToken: return done("stop", metric: "stop")
                    case .length: return done("length", metric: "length")
                    case .cancelled:
                        return done("abort", error: .unavailable("the request was cancelled by the server"), metric: "abort")
                    case .failed(let why):
                        // A lost rank or a watchdog abort: the service is gone, not this request's fault (503).
                        return done("error", error: .unavailable("the engine failed: \(why)"), metric: "error")
                    }
                }
            }
            // The events end without `finished` only when this task was cancelled (AsyncStream stops iterating).
            throw CancellationError()
        } onCancel: {
            call.cancel()
        }
    } catch {
        call.cancel()
        _ = done("abort", metric: "abort")
        throw error
    }
}

func seconds(_ d: Duration) -> Double {
    let c = d.components
    return Double(c.seconds) + Double(c.attoseconds) * 1e-18
}
