// `moerun bench-serve`: load an OpenAI-compatible server with streamed completions (Poisson arrivals or closed-loop
// clients) and report vLLM benchmark_serving's metrics with its definitions (ServingStats.swift, ServingClient.swift).
import ArgumentParser
import Foundation
import Runtime
import Text

struct BenchServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-serve",
        abstract: "Benchmark a running OpenAI-compatible server (moerun serve, vLLM, ...) with streamed completions.",
        discussion: """
            Metrics and definitions follow vLLM's serving benchmark
            (benchmarks/benchmark_serving.py; now vllm/benchmarks/serve.py, its
            client in vllm/benchmarks/lib/endpoint_request_func.py):
              TTFT  request sent -> first stream chunk with choices
              TPOT  (latency - TTFT) / (output tokens - 1), requests with 2+ tokens
              ITL   gaps between consecutive chunks with choices, requests pooled
              E2EL  request sent -> last chunk with choices
            Output tokens are the usage chunk's completion_tokens; throughputs
            divide by the whole run. Latencies: mean, median, p90, p99 in ms
            (numpy's linear-interpolation percentiles).

            Example: moerun serve --model DIR --port 8000 &
                     moerun bench-serve --url http://127.0.0.1:8000 \\
                       --requests 32 --concurrency 4 --input-len 128 --output-len 64
            """)

    @Option(help: "The server's root URL, http://HOST:PORT (a trailing /v1 is accepted).")
    var url: String
    @Option(help: "Model name to send (default: the first model of GET /v1/models).")
    var model: String?
    @Option(help: "Requests to send (default: 100, or every line of --dataset).")
    var requests: Int?
    @Option(help: "Poisson arrival rate in requests/s, or 'inf' to send every request at once.")
    var rate = "inf"
    @Option(help: "At most this many requests open at once (with the default --rate inf: C clients in a closed loop).")
    var concurrency: Int?
    @Option(help: "Prompt length in tokens: random token ids (seeded) sent as an id array.")
    var inputLen: Int?
    @Option(help: "Tokens to generate per request (with --dataset: for lines without max_tokens).")
    var outputLen: Int?
    @Option(help: "With --input-len / --output-len: each request's lengths drawn uniformly from [L(1-R), L(1+R)] (vLLM's --random-range-ratio; 0 = every request the same).")
    var randomRangeRatio = 0.0
    @Option(help: "JSONL file, one {\"prompt\": TEXT or [ids], \"max_tokens\": M} per line; cycled when --requests is larger.")
    var dataset: String?
    @Option(help: "Seed for the prompts and the arrival times.")
    var seed: UInt64 = 0
    @Option(help: "Random prompt ids are drawn from 100..<N (default: the vocabulary size, probed through /detokenize).")
    var vocabSize: Int?
    @Option(help: "Sent as 'Authorization: Bearer KEY' (default: $MOERUN_API_KEY, else $OPENAI_API_KEY).")
    var apiKey: String?
    @Flag(inversion: .prefixedNo, help: "Send ignore_eos so every request generates exactly its max_tokens.")
    var ignoreEos = true
    @Option(help: "Sampling temperature sent with every request (0 = greedy; default: the server's, e.g. the checkpoint's generation_config).")
    var temperature: Double?
    @Option(help: "Seconds a request may wait for data before it counts as failed.")
    var timeout = 600
    @Flag(help: "Print the result as JSON (vLLM's result keys) instead of the table.")
    var json = false

    func validate() throws {
        guard rateValue != nil else { throw ValidationError("--rate must be a positive number of requests/s or 'inf' (got '\(rate)')") }
        if let c = concurrency, c < 1 { throw ValidationError("--concurrency must be at least 1") }
        if let r = requests, r < 1 { throw ValidationError("--requests must be at least 1") }
        if let v = vocabSize, v < 1 { throw ValidationError("--vocab-size must be at least 1") }
        if let t = temperature, !(t >= 0 && t.isFinite) { throw ValidationError("--temperature must be 0 or more") }
        guard timeout >= 1 else { throw ValidationError("--timeout must be at least 1 second") }
        if dataset == nil {
            guard let i = inputLen, let o = outputLen else {
                throw ValidationError("give --input-len and --output-len (random prompts) or --dataset FILE.jsonl")
            }
            guard i >= 1, o >= 1 else { throw ValidationError("--input-len and --output-len must be at least 1") }
            guard randomRangeRatio >= 0 && randomRangeRatio < 1 else { throw ValidationError("--random-range-ratio must be in [0, 1)") }
        } else {
            guard inputLen == nil else { throw ValidationError("--input-len is for random prompts; --dataset brings its own") }
            guard randomRangeRatio == 0 else { throw ValidationError("--random-range-ratio is for random prompts; --dataset brings its own lengths") }
            if let o = outputLen, o < 1 { throw ValidationError("--output-len must be at least 1") }
        }
    }

    var rateValue: Double? {
        if rate.lowercased() == "inf" { return .infinity }
        guard let r = Double(rate), r > 0, r.isFinite else { return nil }
        return r
    }

    func run() throws {
        try reportingErrors {
            var endpoint = try HTTPEndpoint(url)
            if endpoint.prefix.hasSuffix("/v1") { endpoint.prefix.removeLast(3) }
            let key = apiKey ?? ProcessInfo.processInfo.environment["MOERUN_API_KEY"] ?? ProcessInfo.processInfo.environment["OPENAI_API_KEY"]
            let headers = key.map { ["Authorization": "Bearer \($0)"] } ?? [:]
            let server = try Self.modelCard(endpoint, headers: headers)
            let modelName = model ?? server.id
            let items = try workload(endpoint, headers: headers, maxModelLength: server.maxModelLength)
            let rate = rateValue!
            let client = ServingClient(endpoint: endpoint, model: modelName, headers: headers, ignoreEOS: ignoreEos,
                                       timeoutSeconds: timeout, temperature: temperature)
            printError("bench-serve: \(items.count) requests to \(endpoint) model '\(modelName)', rate \(rate.isFinite ? "\(rate)/s (Poisson)" : "inf"), "
                       + "concurrency \(concurrency.map(String.init) ?? "unlimited"), \(promptDescription)")

            // vLLM's initial test run: one request first, so a wrong model or field fails fast with its message.
            let probe = client.measure(items[0])
            guard probe.success else { throw HTTPClientError(description: "the test request failed: \(probe.error)") }

            let offsets = ServingStats.arrivalOffsets(count: items.count, rate: rate, seed: seed ^ 0x5EED_A771_7A15)
            let total = items.count
            let (measurements, duration) = client.run(items, offsets: offsets, concurrency: concurrency) { done in
                if done == total || done % max(1, total / 10) == 0 { printError("bench-serve: \(done)/\(total) done") }
            }
            let report = ServingReport(measurements, duration: duration)
            if json {
                let configuration: [(String, JSONValue)] = [
                    ("date", .string(ISO8601DateFormatter().string(from: Date()))), ("backend", .string("openai")),
                    ("base_url", .string(endpoint.description)), ("model_id", .string(modelName)),
                    ("num_prompts", .int(items.count)), ("request_rate", rate.isFinite ? .double(rate) : .string("inf")),
                    ("max_concurrency", concurrency.map(JSONValue.int) ?? .null),
                    ("input_len", inputLen.map(JSONValue.int) ?? .null), ("output_len", outputLen.map(JSONValue.int) ?? .null),
                    ("dataset", dataset.map(JSONValue.string) ?? .null), ("random_range_ratio", .double(randomRangeRatio)), ("seed", .int(Int(truncatingIfNeeded: seed))),
                    ("ignore_eos", .bool(ignoreEos)), ("temperature", temperature.map(JSONValue.double) ?? .null),
                ]
                emit(report.json(configuration: configuration).serialized())
            } else {
                print(report.table(), terminator: "")
            }
            if report.completed == 0 { throw ExitCode(1) }
        }
    }

    private var promptDescription: String {
        if let dataset { return "prompts from \(dataset)" }
        if randomRangeRatio > 0 {
            let i = Self.lengthRange(inputLen!, randomRangeRatio), o = Self.lengthRange(outputLen!, randomRangeRatio)
            return "random prompts of \(i.lowerBound)-\(i.upperBound) token ids, \(o.lowerBound)-\(o.upperBound) output tokens each"
        }
        return "random prompts of \(inputLen!) token ids, \(outputLen!) output tokens each"
    }

    /// The served model's name and context length from GET /v1/models; this is also the reachability check.
    static func modelCard(_ endpoint: HTTPEndpoint, headers: [String: String]) throws -> (id: String, maxModelLength: Int?) {
        let (status, body) = try HTTPClient.fetch("GET", "/v1/models", to: endpoint, headers: headers)
        let text = String(decoding: body, as: UTF8.self)
        guard status == 200 else { throw HTTPClientError(description: "GET \(endpoint)/v1/models answered \(status): \(text.prefix(500))") }
        guard let card = (try? JSONValue.parse(text))?["data"]?.arrayValue?.first, let id = card["id"]?.stringValue else {
            throw HTTPClientError(description: "GET \(endpoint)/v1/models lists no model: \(text.prefix(500))")
        }
        if case .int(let n)? = card["max_model_len"] { return (id, n) }
        return (id, nil)
    }

    func workload(_ endpoint: HTTPEndpoint, headers: [String: String], maxModelLength: Int?) throws -> [ServingWorkItem] {
        if let dataset { return try Self.readDataset(dataset, requests: requests, outputLen: outputLen) }
        let (inputLen, outputLen) = (inputLen!, outputLen!)
        let inputRange = Self.lengthRange(inputLen, randomRangeRatio), outputRange = Self.lengthRange(outputLen, randomRangeRatio)
        if let limit = maxModelLength, inputRange.upperBound + outputRange.upperBound > limit {
            throw ValidationError("--input-len \(inputRange.upperBound) + --output-len \(outputRange.upperBound) (with --random-range-ratio) is more than the server's max_model_len \(limit)")
        }
        let vocabulary = try vocabSize ?? Self.probeVocabulary(endpoint, headers: headers)
        // Ids below 100 hold the special and byte tokens in the usual layouts; skip them when the vocabulary allows.
        let low = vocabulary > 200 ? 100 : 0
        var rng = SeededGenerator(seed: seed)
        // Lengths first, then the ids, as vLLM's random dataset draws them.
        let count = requests ?? 100
        // (No draws for fixed lengths: a seed gives the prompts it gave before the option existed.)
        let inputs = (0..<count).map { _ in randomRangeRatio > 0 ? Int.random(in: inputRange, using: &rng) : inputLen }
        let outputs = (0..<count).map { _ in randomRangeRatio > 0 ? Int.random(in: outputRange, using: &rng) : outputLen }
        return (0..<count).map { r in
            let ids = (0..<inputs[r]).map { _ in JSONValue.int(Int.random(in: low..<vocabulary, using: &rng)) }
            return ServingWorkItem(prompt: .array(ids), promptTokens: inputs[r], maxTokens: outputs[r])
        }
    }

    /// vLLM's random lengths: integers from floor(L (1 - R)) to floor(L (1 + R)), both included, at least 1.
    static func lengthRange(_ length: Int, _ ratio: Double) -> ClosedRange<Int> {
        max(Int(Double(length) * (1 - ratio)), 1)...max(Int(Double(length) * (1 + ratio)), 1)
    }

    /// The vocabulary size: the first id /detokenize refuses (400 for an id outside the vocabulary, as moerun and
    /// vLLM answer), found by doubling then bisecting; ~30 small requests.
    static func probeVocabulary(_ endpoint: HTTPEndpoint, headers: [String: String]) throws -> Int {
        func valid(_ id: Int) throws -> Bool {
            let (status, body) = try HTTPClient.fetch("POST", "/detokenize", to: endpoint, json: "{\"tokens\":[\(id)]}", headers: headers)
            switch status {
            case 200: return true
            case 400: return false
            default:
                throw HTTPClientError(description: "POST \(endpoint)/detokenize answered \(status) while probing the vocabulary size "
                                      + "(\(String(decoding: body.prefix(300), as: UTF8.self))); give --vocab-size")
            }
        }
        guard try valid(0) else { throw HTTPClientError(description: "\(endpoint)/detokenize refuses token id 0; give --vocab-size") }
        var good = 0, bad = 1024
        while try valid(bad - 1) {
            good = bad - 1
            bad *= 2
            if bad > 1 << 24 { return good + 1 }
        }
        while bad - good > 1 {
            let mid = (good + bad) / 2
            if try valid(mid) { good = mid } else { bad = mid }
        }
        return good + 1
    }

    /// JSONL lines `{"prompt": TEXT or [ids], "max_tokens": M}` in file order, cycled up to `requests`.
    static func readDataset(_ path: String, requests: Int?, outputLen: Int?) throws -> [ServingWorkItem] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ValidationError("cannot read --dataset \(path): \(error.localizedDescription)")
        }
        var items: [ServingWorkItem] = []
        for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
            let place = "\(path) line \(n + 1)"
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            let value: JSONValue
            do { value = try JSONValue.parse(String(line)) } catch { throw ValidationError("\(place): \(error)") }
            let promptTokens: Int
            switch value["prompt"] {
            case .string?: promptTokens = 0
            case .array(let ids)? where !ids.isEmpty && ids.allSatisfy({ if case .int = $0 { true } else { false } }):
                promptTokens = ids.count
            default: throw ValidationError("\(place): 'prompt' must be a string or an array of token ids")
            }
            let maxTokens: Int
            switch value["max_tokens"] {
            case .int(let m)? where m >= 1: maxTokens = m
            case nil, .null?:
                guard let outputLen else { throw ValidationError("\(place) has no max_tokens; give --output-len") }
                maxTokens = outputLen
            default: throw ValidationError("\(place): 'max_tokens' must be a positive integer")
            }
            items.append(ServingWorkItem(prompt: value["prompt"]!, promptTokens: promptTokens, maxTokens: maxTokens))
        }
        guard !items.isEmpty else { throw ValidationError("--dataset \(path) has no requests") }
        guard let requests else { return items }
        return (0..<requests).map { items[$0 % items.count] }
    }
}
