// `moerun serve` under real mpirun: concurrent clients (different prompts, lengths, max_tokens, seeds and
// temperatures, some streaming) each get exactly what an offline `generate` of the same request gives; bad
// requests get their status while the server keeps serving; SIGTERM drains and every rank exits 0.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import TestSupport

/// A `moerun serve` job in the background, with its output collected; `port` once it listens and is ready.
final class ServerJob: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var text = ""

    init(ranks: Int, arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: MoerunBinary.which("mpirun") ?? "/usr/bin/mpirun")
        process.arguments = MoerunBinary.mpirunArguments(ranks: ranks) + [MoerunBinary.path, "serve"] + arguments
        var env = ProcessInfo.processInfo.environment
        env["OMPI_MCA_orte_base_help_aggregate"] = "0"
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        pipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            if !d.isEmpty, let self { self.lock.withLock { self.text += String(decoding: d, as: UTF8.self) } }
        }
        try process.run()
    }

    var output: String { lock.withLock { text } }

    /// The port from "serving ... on http://HOST:PORT/v1" once "ready:" was printed (nil on timeout or exit).
    func waitReady(timeout: Double = 90) -> Int? {
        let start = Date()
        while Date().timeIntervalSince(start) < timeout && process.isRunning {
            let out = output
            if out.contains("ready: engine loop running"),
               let range = out.range(of: #"http://127\.0\.0\.1:(\d+)/v1"#, options: .regularExpression) {
                let url = out[range]
                return Int(url.split(separator: ":").last!.split(separator: "/").first!)
            }
            usleep(50_000)
        }
        return nil
    }

    /// SIGTERM to rank 0 (what mpirun forwards; the test runner's own signal setup can keep mpirun from
    /// forwarding it); waits for the job to end.
    func terminate(timeout: Double = 60) -> Int32? {
        if let range = output.range(of: #"rank 0 pid (\d+)"#, options: .regularExpression),
           let pid = Int32(output[range].split(separator: " ").last!) {
            kill(pid, SIGTERM)
        } else {
            process.terminate()
        }
        let start = Date()
        while process.isRunning && Date().timeIntervalSince(start) < timeout { usleep(50_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            return nil
        }
        return process.terminationStatus
    }
}

/// One blocking HTTP call; returns (status, body).
func http(_ method: String, _ url: String, json: String? = nil, headers: [String: String] = [:], timeout: Double = 120) -> (Int, String) {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    request.timeoutInterval = timeout
    if let json {
        request.httpBody = Data(json.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    }
    for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result = (0, "")
    URLSession.shared.dataTask(with: request) { data, response, error in
        result = ((response as? HTTPURLResponse)?.statusCode ?? -1, data.map { String(decoding: $0, as: UTF8.self) } ?? "\(error.map(String.init(describing:)) ?? "")")
        done.signal()
    }.resume()
    done.wait()
    return result
}

/// The text of choices[0] in a non-streaming response, or the concatenated deltas of a streamed one.
func completionText(_ body: String, streamed: Bool) -> String? {
    if !streamed {
        guard let o = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let c = (o["choices"] as? [[String: Any]])?.first else { return nil }
        return c["text"] as? String
    }
    var text = ""
    for line in body.split(separator: "\n") where line.hasPrefix("data: ") && line != "data: [DONE]" {
        guard let o = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any] else { return nil }
        if let c = (o["choices"] as? [[String: Any]])?.first, let t = c["text"] as? String { text += t }
    }
    return text
}

@Suite(.serialized, .enabled(if: MoerunBinary.hasMPIRun)) struct ServeTests {
    struct Case: Sendable {
        var prompt: [Int]
        var maxTokens: Int
        var temperature: Float
        var seed: UInt64
        var stream: Bool
    }

    /// What offline `generate` makes of one request, as text (eos on, as the server has it).
    func offline(_ c: Case, ignoreEOS: Bool = false) throws -> String {
        let run = try MoerunBinary.run(["generate", "--model", synthTextModel, "--prompt-ids", c.prompt.map(String.init).joined(separator: ","),
                                        "--max-new-tokens", "\(c.maxTokens)", "--temperature", "\(c.temperature)", "--seed", "\(c.seed)",
                                        "--top-p", "1", "--show-ids"] + (ignoreEOS ? ["--ignore-eos"] : []), timeout: 120)
        let line = try #require(run.output.split(separator: "\n").first { $0.hasPrefix("prompt 0: [") }, "\(run.output)")
        let ids = String(line.components(separatedBy: "-> ").last!.split(separator: " ").first!)
        return try MoerunBinary.run(["detokenize", "--model", synthTextModel, "--ids", ids, "--skip-special"], timeout: 60).output
    }

    @Test func concurrentClientsGetExactlyTheOfflineOutputAndBadRequestsDoNotStopTheServer() throws {
        let job = try ServerJob(ranks: 4, arguments: ["--model", synthTextModel, "--plan", "pp=2,ep=2", "--port", "0",
                                                      "--served-model-name", "synth", "--max-batch", "3", "--collective-timeout", "60",
                                                      // Small chunks: long prompts are prefilled over several ticks beside running decodes.
                                                      "--prefill-chunk", "8"])
        let port = try #require(job.waitReady(), "server did not start: \(job.output)")
        let base = "http://127.0.0.1:\(port)"
        // Different prompts (some sharing a long prefix), lengths, max_tokens, seeds and temperatures; with
        // --prefill-chunk 8 the 40-token prefix arrives in chunks, and the output must not change by a bit.
        let shared = Array(100..<140)
        let cases = (0..<16).map { i in
            Case(prompt: (i % 4 == 0 ? shared : []) + (0..<(3 + i % 5)).map { 200 + (i * 37 + $0 * 11) % 700 },
                 maxTokens: 4 + i % 7, temperature: i % 3 == 0 ? 0 : 0.8, seed: UInt64(1000 + i), stream: i % 2 == 1)
        }
        nonisolated(unsafe) var served = [String?](repeating: nil, count: cases.count)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: cases.count) { i in
            let c = cases[i]
            let body = #"{"model": "synth", "prompt": [\#(c.prompt.map(String.init).joined(separator: ","))], "max_tokens": \#(c.maxTokens), "temperature": \#(c.temperature), "top_p": 1, "seed": \#(c.seed), "stream": \#(c.stream)}"#
            let (status, text) = http("POST", base + "/v1/completions", json: body)
            lock.withLock { served[i] = status == 200 ? completionText(text, streamed: c.stream) : "HTTP \(status): \(text)" }
        }
        // Bad requests get their status and the server keeps serving.
        #expect(http("POST", base + "/v1/completions", json: "{not json").0 == 400)
        #expect(http("POST", base + "/v1/completions", json: #"{"model": "other", "prompt": "hi"}"#).0 == 404)
        #expect(http("POST", base + "/v1/completions", json: #"{"model": "synth", "prompt": "hi", "bogus": 1}"#).0 == 400)
        #expect(http("POST", base + "/v1/completions", json: #"{"model": "synth", "prompt": [1, 999999]}"#).0 == 400)
        #expect(http("POST", base + "/v1/completions", json: #"{"model": "synth", "prompt": "hi", "max_tokens": 10000000}"#).0 == 400)
        #expect(http("GET", base + "/health").0 == 200)
        // The official `openai` Python client: completion, chat completion, streaming, a refused request.
        let python = MoerunBinary.which("python3") ?? "/usr/bin/python3"
        let hasClient = (try? runProcess(python, ["-c", "import openai"], timeout: 60))?.exitCode == 0
        if hasClient {
            let script = MoerunBinary.packageRoot.appendingPathComponent("scripts/openai_client_check.py").path
            let check = try runProcess(python, [script, "--base-url", base + "/v1", "--model", "synth"], timeout: 300)
            #expect(check.exitCode == 0, "openai client: \(check.output)")
        } else {
            // CI installs it (.ci/run); elsewhere the check is skipped with a note rather than failing.
            #expect(ProcessInfo.processInfo.environment["CI"] != "true", "CI must have the openai package (pip install openai)")
            print("note: python3 has no openai package; the OpenAI client check was skipped")
        }
        for (i, c) in cases.enumerated() {
            let expected = try offline(c)
            #expect(served[i] == expected, "request \(i) (stream \(c.stream), seed \(c.seed), T \(c.temperature)): served \(String(describing: served[i])) vs offline \(expected)")
        }
        #expect(job.terminate() == 0, "SIGTERM drains and every rank exits 0: \(job.output)")
        #expect(job.output.contains("drained"), "\(job.output)")
    }
}

/// Sends a raw HTTP request on a fresh connection, reads `readBytes` of the answer (0: none), then drops the
/// connection: a client that disconnects mid-stream, or while its request still waits for a slot.
func dropAfter(port: Int, body: String, readBytes: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return }
    let request = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    // A queued client gives up after a while (its own timeout), not within microseconds of sending.
    if readBytes == 0 { usleep(300_000) }
    var got = 0
    var buffer = [UInt8](repeating: 0, count: 4096)
    while got < readBytes {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 { break }
        got += n
    }
}

/// Processes whose parent is `pid` (mpirun's ranks), from /proc.
func childPIDs(of pid: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { child in
        guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        // Fields after "(comm)": state, ppid, ...
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 && Int32(fields[1]) == pid
    }.sorted()
}

/// Resident set size of a process in bytes (VmRSS), nil once it is gone.
func residentBytes(_ pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
    return kb * 1024
}

/// A Prometheus gauge or counter value from /metrics text.
func metric(_ text: String, _ name: String) -> Double? {
    text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last!) }
}

@Suite(.serialized, .enabled(if: MoerunBinary.hasMPIRun)) struct ServeLoadTests {
    /// 64 clients at once, half streaming, with their own prompts (a quarter sharing a 40-token prefix), lengths,
    /// max_tokens, temperatures and seeds; three rounds with different arrival orders; every response must equal
    /// one offline `generate` of the same requests (JSON lines with per-request settings) token for token.
    @Test func sixtyFourConcurrentClientsMatchOfflineGenerationThreeTimes() throws {
        let cases = (0..<64).map { i in
            ServeTests.Case(prompt: (i % 4 == 0 ? Array(100..<140) : []) + (0..<(2 + i % 9)).map { 200 + (i * 53 + $0 * 17) % 700 },
                            maxTokens: 3 + i % 11, temperature: i % 3 == 0 ? 0 : 0.7, seed: UInt64(5000 + i), stream: i % 2 == 0)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("moerun-load-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lines = cases.map { c in
            #"{"prompt": [\#(c.prompt.map(String.init).joined(separator: ","))], "max_tokens": \#(c.maxTokens), "temperature": \#(c.temperature), "top_p": 1, "seed": \#(c.seed)}"#
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/prompts.jsonl", atomically: true, encoding: .utf8)
        let offline = try MoerunBinary.run(["generate", "--model", synthTextModel, "--prompts", dir + "/prompts.jsonl", "--max-batch", "64",
                                            "--output", dir + "/offline.jsonl"], timeout: 300)
        #expect(offline.exitCode == 0, "\(offline.output)")
        let expected = try String(contentsOfFile: dir + "/offline.jsonl", encoding: .utf8).split(separator: "\n").map { line in
            ((try JSONSerialization.jsonObject(with: Data(line.utf8))) as! [String: Any])["text"] as! String
        }
        #expect(expected.count == 64)

        let job = try ServerJob(ranks: 4, arguments: ["--model", synthTextModel, "--plan", "pp=2,ep=2", "--port", "0", "--served-model-name", "synth",
                                                      "--max-batch", "8", "--prefill-chunk", "16", "--collective-timeout", "60"])
        let port = try #require(job.waitReady(), "server did not start: \(job.output)")
        for round in 0..<3 {
            nonisolated(unsafe) var served = [String?](repeating: nil, count: cases.count)
            let lock = NSLock()
            // Each round sends in another order, so requests meet different neighbours and chunk boundaries.
            let order = (0..<cases.count).map { ($0 * (2 * round + 1) + round * 7) % cases.count }
            DispatchQueue.concurrentPerform(iterations: cases.count) { k in
                let i = order[k]
                let c = cases[i]
                let body = #"{"model": "synth", "prompt": [\#(c.prompt.map(String.init).joined(separator: ","))], "max_tokens": \#(c.maxTokens), "temperature": \#(c.temperature), "top_p": 1, "seed": \#(c.seed), "stream": \#(c.stream)}"#
                let (status, text) = http("POST", "http://127.0.0.1:\(port)/v1/completions", json: body, timeout: 300)
                lock.withLock { served[i] = status == 200 ? completionText(text, streamed: c.stream) : "HTTP \(status): \(text)" }
            }
            let wrong = (0..<cases.count).filter { served[$0] != expected[$0] }
            #expect(wrong.isEmpty, "round \(round): requests \(wrong) differ, e.g. \(wrong.first.map { "\(String(describing: served[$0])) vs \(expected[$0])" } ?? "")")
        }
        // The shared 40-token prefix was copied from retained caches, and the outputs above did not change.
        let metrics = http("GET", "http://127.0.0.1:\(port)/metrics").1
        #expect((metric(metrics, "moerun_prefix_cache_hit_tokens_total") ?? 0) >= 40, "\(metrics)")
        #expect(job.terminate() == 0, "\(job.output)")
    }

    /// 16 clients that drop mid-stream and 16 that drop while queued: their slots are freed (the gauges return to
    /// zero), and the requests beside them still get exactly their offline output.
    @Test func disconnectedClientsFreeTheirSlotsAndOthersFinish() throws {
        let job = try ServerJob(ranks: 4, arguments: ["--model", synthTextModel, "--plan", "pp=2,ep=2", "--port", "0", "--served-model-name", "synth",
                                                      "--max-batch", "2", "--kv-cache-tokens", "4000", "--collective-timeout", "60"])
        let port = try #require(job.waitReady(), "server did not start: \(job.output)")
        let base = "http://127.0.0.1:\(port)"
        // The idle level of resident memory: after requests of the same kind ran to completion once.
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            let body = #"{"model": "synth", "prompt": [\#(400 + i), 5, 6], "max_tokens": 120, "stream": \#(i < 4), "ignore_eos": true}"#
            _ = http("POST", base + "/v1/completions", json: body, timeout: 300)
        }
        let ranks = childPIDs(of: job.process.processIdentifier)
        #expect(ranks.count == 4, "rank processes: \(ranks)")
        let idle = ranks.map { residentBytes($0) ?? 0 }
        // More than a lane's KV cache could ever hold: refused up front, not queued forever.
        let huge = http("POST", base + "/v1/completions", json: #"{"model": "synth", "prompt": [5, 6], "max_tokens": 4000}"#)
        #expect(huge.0 == 400 && huge.1.contains("KV cache"), "\(huge)")
        let keeper = ServeTests.Case(prompt: [300, 301, 302, 303], maxTokens: 40, temperature: 0.7, seed: 42, stream: false)
        nonisolated(unsafe) var kept: [String?] = [nil, nil]
        let group = DispatchGroup()
        for k in 0..<2 {
            DispatchQueue.global().async(group: group) {
                let body = #"{"model": "synth", "prompt": [300, 301, 302, 303], "max_tokens": 40, "temperature": 0.7, "top_p": 1, "seed": 42, "ignore_eos": true}"#
                let (status, text) = http("POST", base + "/v1/completions", json: body, timeout: 300)
                kept[k] = status == 200 ? completionText(text, streamed: false) : "HTTP \(status): \(text)"
            }
        }
        // Long streams that are dropped after their first bytes, and requests dropped before any answer (queued:
        // 2 lanes x 2 slots are taken most of the time).
        DispatchQueue.concurrentPerform(iterations: 32) { i in
            let body = #"{"model": "synth", "prompt": [\#(400 + i), 5, 6], "max_tokens": 500, "stream": \#(i < 16), "ignore_eos": true}"#
            dropAfter(port: port, body: body, readBytes: i < 16 ? 200 : 0)
        }
        group.wait()
        var metrics = ""
        for _ in 0..<100 {
            metrics = http("GET", base + "/metrics").1
            if metric(metrics, "moerun_num_requests_running") == 0 && metric(metrics, "moerun_num_requests_waiting") == 0 { break }
            usleep(100_000)
        }
        #expect(metric(metrics, "moerun_num_requests_running") == 0, "running: \(metrics.split(separator: "\n").filter { $0.hasPrefix("moerun_num_requests") })")
        #expect(metric(metrics, "moerun_num_requests_running") == 0 && metric(metrics, "moerun_num_requests_waiting") == 0,
                "slots still held after the clients left: \(metrics.split(separator: "\n").filter { $0.hasPrefix("moerun_num_requests") })")
        // Far fewer tokens than 32 x 500 were generated: the dropped requests stopped.
        let generated = metric(metrics, "moerun_generation_tokens_total") ?? 0
        #expect(generated < 32 * 500 / 2, "generated \(generated) tokens")
        let offline = try ServeTests().offline(keeper, ignoreEOS: true)
        #expect(kept[0] == offline && kept[1] == offline, "\(String(describing: kept)) vs \(offline)")
        #expect(http("GET", base + "/health").0 == 200)
        #expect(metrics.contains("moerun_kv_cache_usage_perc{lane=\"1\"} 0"), "\(metrics)")
        // Every rank's resident memory is back at its idle level (freed caches returned, within allocator slack).
        let after = ranks.map { residentBytes($0) ?? 0 }
        for (rank, (before, now)) in zip(idle, after).enumerated() {
            #expect(now <= before + max(before / 10, 16 << 20), "rank \(rank): resident \(now >> 20) MiB after the dropped clients, \(before >> 20) MiB idle before")
        }
        // Queue time and expert load reach /metrics (expert counts arrive every 2 s).
        for _ in 0..<40 where metric(metrics, "moerun_expert_tokens_total{rank=\"3\"}") == nil {
            usleep(100_000)
            metrics = http("GET", base + "/metrics").1
        }
        #expect((metric(metrics, "moerun_request_queue_time_seconds_count") ?? 0) >= 40, "\(metrics)")
        for rank in 0..<4 {
            #expect((metric(metrics, "moerun_expert_tokens_total{rank=\"\(rank)\"}") ?? 0) > 0, "rank \(rank): \(metrics)")
        }
        #expect((metric(metrics, "moerun_engine_steps_total") ?? 0) > 0 && (metric(metrics, "moerun_engine_step_seconds_total") ?? 0) > 0,
                "\(metrics)")
        let balance = metric(metrics, "moerun_expert_load_balance") ?? 0
        #expect(balance > 0 && balance <= 1, "\(metrics)")
        #expect(job.terminate() == 0, "\(job.output)")
    }
}

@Suite(.serialized, .enabled(if: MoerunBinary.hasMPIRun)) struct ServeIdleTests {
    /// A rank killed mid-stream: mpirun tears the job down, and every open stream ends with an OpenAI error chunk
    /// naming what happened, then [DONE], instead of a cut connection.
    @Test func lostRankEndsEveryOpenStreamWithAnErrorChunk() throws {
        let job = try ServerJob(ranks: 2, arguments: ["--model", synthTextModel, "--plan", "pp=2,ep=1", "--port", "0",
                                                      "--served-model-name", "synth", "--collective-timeout", "60"])
        let port = try #require(job.waitReady(), "server did not start: \(job.output)")
        nonisolated(unsafe) var bodies = ["", "", ""]
        let group = DispatchGroup()
        for i in 0..<3 {
            DispatchQueue.global().async(group: group) {
                let body = #"{"model": "synth", "prompt": [\#(300 + i), 5, 6], "max_tokens": 5000, "stream": true, "ignore_eos": true}"#
                bodies[i] = http("POST", "http://127.0.0.1:\(port)/v1/completions", json: body, timeout: 60).1
            }
        }
        var metrics = ""
        for _ in 0..<100 where (metric(metrics, "moerun_generation_tokens_total") ?? 0) < 30 {
            usleep(100_000)
            metrics = http("GET", "http://127.0.0.1:\(port)/metrics").1
        }
        let rankZero = job.output.range(of: #"rank 0 pid (\d+)"#, options: .regularExpression)
            .flatMap { Int32(job.output[$0].split(separator: " ").last!) }
        let victim = try #require(childPIDs(of: job.process.processIdentifier).first { $0 != rankZero }, "\(job.output)")
        kill(victim, SIGKILL)
        #expect(group.wait(timeout: .now() + 30) == .success, "clients still waiting: \(job.output)")
        for (i, body) in bodies.enumerated() {
            let events = body.split(separator: "\n").filter { $0.hasPrefix("data: ") }
            #expect(events.count > 2, "client \(i) got no tokens: \(body)")
            #expect(events.last == "data: [DONE]", "client \(i): \(body.suffix(400))")
            let error = events.dropLast().last ?? ""
            #expect(error.hasPrefix(#"data: {"error":"#) && error.contains("launcher"), "client \(i): \(body.suffix(400))")
        }
        #expect(job.terminate() != 0, "\(job.output)")
    }

    /// An idle server sends a keep-alive tick every 0.5 s: with a 2 s collective timeout, 6 s without requests
    /// must not trip any rank's watchdog, and the next request is served.
    @Test func idleServerDoesNotTripTheWatchdog() throws {
        let job = try ServerJob(ranks: 2, arguments: ["--model", synthTextModel, "--plan", "pp=2,ep=1", "--port", "0",
                                                      "--served-model-name", "synth", "--collective-timeout", "2"])
        let port = try #require(job.waitReady(), "server did not start: \(job.output)")
        sleep(6)
        let (status, body) = http("POST", "http://127.0.0.1:\(port)/v1/completions", json: #"{"model": "synth", "prompt": "Hello", "max_tokens": 4}"#)
        #expect(status == 200, "\(body)\n\(job.output)")
        #expect(!job.output.contains("was waiting in"), "a watchdog fired: \(job.output)")
        #expect(job.terminate() == 0, "\(job.output)")
    }
}
