// Serving-benchmark arithmetic with vLLM's definitions (vllm/benchmarks/serve.py `calculate_metrics` and the
// arrival times of its `get_request`): per-request measurements in, the report and its table / JSON out.
import Foundation
import Runtime
import Text

/// What the client measured for one request (vLLM's RequestFuncOutput); times in seconds.
struct RequestMeasurement: Sendable, Equatable {
    /// vLLM's rule: a 200 response that delivered at least one chunk with a non-empty `choices`.
    var success = false
    /// `usage.prompt_tokens` when the server reported it, else the length the client sent (0 when unknown).
    var promptTokens = 0
    /// `usage.completion_tokens` of the usage chunk; nil when the server sent none.
    var outputTokens: Int?
    /// Request sent -> first chunk with choices.
    var ttft = 0.0
    /// Gaps between consecutive chunks with choices (the usage chunk and [DONE] carry no token and do not count).
    var itl: [Double] = []
    /// Request sent -> last chunk with choices.
    var latency = 0.0
    var error = ""
}

/// Mean, median, population standard deviation and percentiles of one metric, in seconds; all zero for no
/// values, as vLLM's `np.mean(xs or 0)` gives.
struct Distribution: Sendable, Equatable {
    var mean = 0.0, median = 0.0, std = 0.0, p90 = 0.0, p99 = 0.0

    init(_ values: [Double]) {
        guard !values.isEmpty else { return }
        let sorted = values.sorted()
        mean = values.reduce(0, +) / Double(values.count)
        std = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot()
        median = ServingStats.percentile(sorted: sorted, 50)
        p90 = ServingStats.percentile(sorted: sorted, 90)
        p99 = ServingStats.percentile(sorted: sorted, 99)
    }
}

enum ServingStats {
    /// numpy's default `percentile` (method "linear"): the value at rank p/100 * (n - 1) of the sorted values,
    /// interpolated between its neighbours.
    static func percentile(sorted: [Double], _ p: Double) -> Double {
        precondition(!sorted.isEmpty && (0...100).contains(p))
        let rank = p / 100 * Double(sorted.count - 1)
        let lo = Int(rank.rounded(.down))
        let hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - Double(lo))
    }

    /// Time per output token after the first: (latency - ttft) / (output tokens - 1); nil for one token or fewer.
    static func tpot(latency: Double, ttft: Double, outputTokens: Int) -> Double? {
        outputTokens > 1 ? (latency - ttft) / Double(outputTokens - 1) : nil
    }

    /// Send times in seconds from the start. Poisson arrivals: exponential gaps of mean 1/rate (the first request
    /// waits one gap too), rescaled so the last arrival is at count / rate exactly, as vLLM does to keep throughput
    /// comparable between seeds. An infinite rate sends everything at once.
    static func arrivalOffsets(count: Int, rate: Double, seed: UInt64) -> [Double] {
        guard count > 0 else { return [] }
        guard rate.isFinite else { return [Double](repeating: 0, count: count) }
        var rng = SeededGenerator(seed: seed)
        var offsets: [Double] = []
        var t = 0.0
        for _ in 0..<count {
            t += -Foundation.log(1 - rng.nextUnit()) / rate
            offsets.append(t)
        }
        let scale = (Double(count) / rate) / t
        return offsets.map { $0 * scale }
    }
}

/// vLLM's BenchmarkMetrics for one run.
struct ServingReport: Sendable {
    var completed = 0
    var failed = 0
    var duration = 0.0
    var totalInput = 0
    var totalOutput = 0
    var requestThroughput = 0.0
    var outputThroughput = 0.0
    var totalTokenThroughput = 0.0
    var ttft = Distribution([])
    var tpot = Distribution([])
    var itl = Distribution([])
    var e2el = Distribution([])
    /// The first failed request's message (vLLM prints up to ten; one names the cause in practice).
    var firstError: String?
    /// Successful requests without a usage chunk: counted as 1 output token, vLLM's rule without a tokenizer.
    var withoutUsage = 0
    /// Every request as measured, in send order (the JSON's per-request arrays, as vLLM saves them).
    var requests: [RequestMeasurement] = []

    /// Only successful requests enter the totals and distributions; the throughputs divide by the whole run.
    init(_ measurements: [RequestMeasurement], duration: Double) {
        self.duration = duration
        requests = measurements
        var ttfts: [Double] = [], tpots: [Double] = [], itls: [Double] = [], e2els: [Double] = []
        for m in measurements {
            guard m.success else {
                failed += 1
                if firstError == nil { firstError = m.error }
                continue
            }
            var out = m.outputTokens ?? 0
            if out == 0 {
                out = 1
                withoutUsage += 1
            }
            completed += 1
            totalInput += m.promptTokens
            totalOutput += out
            if let t = ServingStats.tpot(latency: m.latency, ttft: m.ttft, outputTokens: out) { tpots.append(t) }
            ttfts.append(m.ttft)
            e2els.append(m.latency)
            // Pooled over all requests, so long requests weigh more: vLLM's ITL, not a mean of per-request means.
            itls += m.itl
        }
        requestThroughput = Double(completed) / duration
        outputThroughput = Double(totalOutput) / duration
        totalTokenThroughput = Double(totalInput + totalOutput) / duration
        ttft = Distribution(ttfts)
        tpot = Distribution(tpots)
        itl = Distribution(itls)
        e2el = Distribution(e2els)
    }

    private var sections: [(title: String, short: String, key: String, Distribution)] {
        [("Time to First Token", "TTFT", "ttft", ttft), ("Time per Output Token (excl. 1st token)", "TPOT", "tpot", tpot),
         ("Inter-token Latency", "ITL", "itl", itl), ("End-to-end Latency", "E2EL", "e2el", e2el)]
    }

    /// The table vLLM's benchmark prints, same labels, milliseconds for latencies.
    func table() -> String {
        func row(_ label: String, _ value: String) -> String {
            label.padding(toLength: max(40, label.count), withPad: " ", startingAt: 0) + " " + value + "\n"
        }
        func rule(_ title: String) -> String {
            // Python's "{:-^50}": centred in 50 columns, the odd dash on the right.
            let pad = max(0, 50 - title.count)
            return String(repeating: "-", count: pad / 2) + title + String(repeating: "-", count: pad - pad / 2) + "\n"
        }
        let f2 = { (x: Double) in String(format: "%.2f", x) }
        var s = "============ Serving Benchmark Result ============\n"
        s += row("Successful requests:", "\(completed)")
        s += row("Failed requests:", "\(failed)")
        s += row("Benchmark duration (s):", f2(duration))
        s += row("Total input tokens:", "\(totalInput)")
        s += row("Total generated tokens:", "\(totalOutput)")
        s += row("Request throughput (req/s):", f2(requestThroughput))
        s += row("Output token throughput (tok/s):", f2(outputThroughput))
        s += row("Total Token throughput (tok/s):", f2(totalTokenThroughput))
        for (title, short, _, d) in sections {
            s += rule(title)
            s += row("Mean \(short) (ms):", f2(d.mean * 1000))
            s += row("Median \(short) (ms):", f2(d.median * 1000))
            s += row("P90 \(short) (ms):", f2(d.p90 * 1000))
            s += row("P99 \(short) (ms):", f2(d.p99 * 1000))
        }
        s += String(repeating: "=", count: 50) + "\n"
        if let firstError { s += "First error (\(failed) failed): \(firstError)\n" }
        if withoutUsage > 0 { s += "note: \(withoutUsage) responses had no usage chunk; each counted as 1 output token\n" }
        return s
    }

    /// The result fields under vLLM's JSON names (`completed`, `request_throughput`, `mean_ttft_ms`, `p99_itl_ms`...).
    func json(configuration: [(String, JSONValue)]) -> JSONValue {
        var o = JSONObject(configuration)
        o["completed"] = .int(completed)
        o["failed"] = .int(failed)
        o["duration"] = .double(duration)
        o["total_input_tokens"] = .int(totalInput)
        o["total_output_tokens"] = .int(totalOutput)
        o["request_throughput"] = .double(requestThroughput)
        o["output_throughput"] = .double(outputThroughput)
        o["total_token_throughput"] = .double(totalTokenThroughput)
        for (_, _, key, d) in sections {
            o["mean_\(key)_ms"] = .double(d.mean * 1000)
            o["median_\(key)_ms"] = .double(d.median * 1000)
            o["std_\(key)_ms"] = .double(d.std * 1000)
            o["p90_\(key)_ms"] = .double(d.p90 * 1000)
            o["p99_\(key)_ms"] = .double(d.p99 * 1000)
        }
        // Per request, in seconds, under vLLM's keys (its saved result file has the same arrays).
        o["input_lens"] = .array(requests.map { .int($0.promptTokens) })
        o["output_lens"] = .array(requests.map { .int($0.success ? max($0.outputTokens ?? 1, 1) : 0) })
        o["ttfts"] = .array(requests.map { .double($0.ttft) })
        o["itls"] = .array(requests.map { .array($0.itl.map(JSONValue.double)) })
        o["errors"] = .array(requests.map { .string($0.error) })
        o["first_error"] = firstError.map(JSONValue.string) ?? .null
        o["responses_without_usage"] = .int(withoutUsage)
        return .object(o)
    }
}
