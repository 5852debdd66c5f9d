// The load side of `moerun bench-serve`: one streamed /v1/completions request measured as vLLM's client measures
// it (vllm/benchmarks/lib/endpoint_request_func.py), and the run that sends requests on their arrival times,
// each on a thread of its own, at most `concurrency` at once.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization
import Text

/// One request of the workload: the prompt as it goes on the wire and how long an answer to ask for.
struct ServingWorkItem: Sendable {
    /// A string, or an array of token ids.
    var prompt: JSONValue
    /// Known for token-id prompts; 0 for text (the usage chunk then says).
    var promptTokens: Int
    var maxTokens: Int
}

/// Seconds on a monotonic clock.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

struct ServingClient: Sendable {
    let endpoint: HTTPEndpoint
    let model: String
    let headers: [String: String]
    let ignoreEOS: Bool
    let timeoutSeconds: Int
    /// Sent as `temperature` when set (vLLM's `--temperature`); nil leaves the server's default.
    var temperature: Double? = nil

    /// The body vLLM's client sends to an OpenAI completions server, less the fields moerun refuses as unknown
    /// (`repetition_penalty`, a null `logprobs`), which carry the defaults anyway.
    func body(_ item: ServingWorkItem) -> String {
        var o = JSONObject([("model", .string(model)), ("prompt", item.prompt), ("max_tokens", .int(item.maxTokens)),
                            ("stream", .bool(true)),
                            ("stream_options", .object(JSONObject([("include_usage", .bool(true))])))])
        if ignoreEOS { o["ignore_eos"] = .bool(true) }
        if let temperature { o["temperature"] = .double(temperature) }
        return JSONValue.object(o).serialized()
    }

    /// Sends one streaming request and times its events. A chunk counts when its `choices` is non-empty (even with
    /// empty text, as vLLM counts it); its arrival is the time its bytes were read.
    func measure(_ item: ServingWorkItem) -> RequestMeasurement {
        var m = RequestMeasurement()
        m.promptTokens = item.promptTokens
        let json = body(item)
        let start = monotonicSeconds()
        var last = start
        var gotChunk = false
        var status = 0
        var errorBody: [UInt8] = []
        var streamError: String?
        var events = ServerSentEvents()

        func handle(_ payload: String, at t: Double) {
            guard payload != "[DONE]" else { return }
            guard let event = try? JSONValue.parse(payload) else {
                if streamError == nil { streamError = "an event is not JSON: \(payload.prefix(200))" }
                return
            }
            // vLLM's client ignores an error event after the 200; a generation that failed is not counted as served here.
            if let error = event["error"] {
                if streamError == nil { streamError = "error event after the 200: \(error["message"]?.stringValue ?? error.serialized())" }
                return
            }
            if let choices = event["choices"]?.arrayValue, !choices.isEmpty {
                if gotChunk { m.itl.append(t - last) } else { m.ttft = t - start }
                gotChunk = true
                last = t
            } else if let usage = event["usage"], usage != .null {
                if case .int(let n)? = usage["completion_tokens"] { m.outputTokens = n }
                if case .int(let n)? = usage["prompt_tokens"] { m.promptTokens = n }
            }
        }

        do {
            _ = try HTTPClient.send("POST", "/v1/completions", to: endpoint, json: json, headers: headers,
                                    timeoutSeconds: timeoutSeconds, onHead: { status = $0.status }) { bytes in
                guard status == 200 else {
                    errorBody += bytes
                    return errorBody.count < 4096
                }
                let t = monotonicSeconds()
                for payload in events.push(bytes) { handle(payload, at: t) }
                return true
            }
            if status == 200 {
                let t = monotonicSeconds()
                for payload in events.finish() { handle(payload, at: t) }
            }
        } catch {
            m.error = "\(error)"
            return m
        }
        if status != 200 {
            m.error = "HTTP \(status) from POST /v1/completions: \(String(decoding: errorBody.prefix(500), as: UTF8.self))"
        } else if let streamError {
            m.error = streamError
        } else if !gotChunk {
            m.error = "the stream ended without a chunk with choices (no first token to time)"
        } else {
            m.success = true
        }
        m.latency = last - start
        return m
    }

    /// Sends `items[i]` at `start + offsets[i]` (later when `concurrency` requests are already open: the clock of a
    /// request starts when it is sent, so client-side queueing is not in its TTFT, as in vLLM). Returns the
    /// measurements in workload order and the run's duration (first send scheduled -> last response done).
    func run(_ items: [ServingWorkItem], offsets: [Double], concurrency: Int?,
             progress: (@Sendable (Int) -> Void)? = nil) -> ([RequestMeasurement], Double) {
        let results = Results(count: items.count)
        let slots = concurrency.map { DispatchSemaphore(value: $0) }
        let group = DispatchGroup()
        let start = monotonicSeconds()
        for (i, item) in items.enumerated() {
            let wait = start + offsets[i] - monotonicSeconds()
            if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            slots?.wait()
            group.enter()
            Thread.detachNewThread {
                let m = self.measure(item)
                let done = results.store(m, at: i)
                slots?.signal()
                progress?(done)
                group.leave()
            }
        }
        group.wait()
        return (results.all, monotonicSeconds() - start)
    }
}

/// Measurements written from the request threads.
private final class Results: Sendable {
    private let slots: Mutex<(values: [RequestMeasurement], done: Int)>

    init(count: Int) { slots = Mutex(([RequestMeasurement](repeating: RequestMeasurement(), count: count), 0)) }

    /// Stores one result; returns how many are done.
    func store(_ m: RequestMeasurement, at i: Int) -> Int {
        slots.withLock {
            $0.values[i] = m
            $0.done += 1
            return $0.done
        }
    }

    var all: [RequestMeasurement] { slots.withLock { $0.values } }
}
