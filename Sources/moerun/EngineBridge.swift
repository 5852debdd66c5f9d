// The HTTP front end's view of the engine (MoerunServer.CompletionEngine) over rank 0's ServeQueue: token-level
// requests in, coordinator events out. Served requests sample with stream key 0, so a seeded request gets the
// tokens an offline `generate --seed` of the same prompt gets, whatever else the server runs.
import Foundation
import MoerunServer
import Runtime

final class EngineBridge: CompletionEngine, @unchecked Sendable {
    let queue: ServeQueue
    /// Seconds without a tick after which /health reports the loop stuck (well above the idle wait).
    let stuckAfter: Double
    private let lock = NSLock()
    private var loaded = false

    init(queue: ServeQueue, stuckAfter: Double = 30) {
        self.queue = queue
        self.stuckAfter = stuckAfter
    }

    /// Weights are loaded and the loop is about to run.
    func markLoaded() { lock.withLock { loaded = true } }

    func submit(_ r: EngineRequest, onEvent: @escaping @Sendable (EngineEvent) -> Void) throws(EngineRejection) -> UInt64 {
        guard lock.withLock({ loaded }) else { throw .unavailable("the model is still loading") }
        let request = GenerationRequest(prompt: r.promptTokens, maxNewTokens: r.maxTokens,
                                        sampling: SamplingParameters(temperature: r.temperature, topK: r.topK, topP: r.topP, seed: r.seed),
                                        samplingKey: 0, stopTokens: r.stopTokenIDs)
        let submitted = DispatchTime.now().uptimeNanoseconds
        do {
            return try queue.submit(request) { event in
                switch event {
                case .admitted:
                    onEvent(.admitted(queueSeconds: Double(DispatchTime.now().uptimeNanoseconds - submitted) * 1e-9))
                case .token(let t): onEvent(.token(t))
                case .finished(let result): onEvent(.finished(Self.finish(result.finishReason), promptTokens: r.promptTokens.count,
                                                              generatedTokens: result.tokens.count))
                }
            }
        } catch {
            switch error {
            case .queueFull: throw .queueFull(retryAfterSeconds: 1)
            case .draining: throw .draining
            case .failed(let message): throw .unavailable(message)
            case .tooLarge(let need, let limit):
                throw .tooLarge("prompt + max_tokens = \(need) tokens, more than one lane's KV cache holds (\(limit) tokens); lower max_tokens or shorten the prompt")
            }
        }
    }

    func cancel(_ id: UInt64) { queue.cancel(id) }

    var health: EngineHealth {
        if let failure = queue.failureMessage { return .failed(failure) }
        guard lock.withLock({ loaded }) else { return .loading }
        let quiet = queue.secondsSinceTick
        return quiet > stuckAfter ? .stuck(seconds: quiet) : .ready
    }

    var counters: EngineCounters {
        let c = queue.counters
        var out = EngineCounters()
        out.running = c.running
        out.waiting = c.waiting
        out.promptTokens = c.promptTokens
        out.generatedTokens = c.generatedTokens
        out.kvTokensReserved = c.kvReserved
        out.kvTokensCapacity = c.kvCapacity
        out.prefixHitTokens = c.prefixHits
        out.prefixQueryTokens = c.prefixQueries
        out.expertPairsPerRank = c.expertPairsPerRank
        out.expertBalance = c.expertBalance
        out.busyTicks = c.busyTicks
        out.busySeconds = c.busySeconds
        return out
    }

    static func finish(_ reason: String) -> EngineFinish {
        switch reason {
        case "eos": return .stopToken
        case "length": return .length
        case "cancelled", "stop": return .cancelled
        default: return .failed(reason.hasPrefix("failed: ") ? String(reason.dropFirst(8)) : reason)
        }
    }
}
