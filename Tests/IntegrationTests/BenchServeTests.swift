// `moerun bench-serve`: its statistics against hand-computed vLLM / numpy values (percentiles, TPOT, pooled ITL,
// throughputs), the wire pieces of its HTTP client (chunked bodies and SSE cut anywhere), and one run against a
// real `moerun serve` whose JSON counts must add up.
import Foundation
import Testing
import TestSupport
import Text
@testable import moerun

@Suite struct ServingStatsTests {
    @Test func percentilesInterpolateLinearlyAsNumpy() {
        // np.percentile([1, 2, 3, 4], [50, 90, 99]) == [2.5, 3.7, 3.97]; [15, 20, 35, 40, 50] at 40 == 29.
        let xs = [1.0, 2, 3, 4]
        #expect(ServingStats.percentile(sorted: xs, 50) == 2.5)
        #expect(abs(ServingStats.percentile(sorted: xs, 90) - 3.7) < 1e-12)
        #expect(abs(ServingStats.percentile(sorted: xs, 99) - 3.97) < 1e-12)
        #expect(ServingStats.percentile(sorted: [15, 20, 35, 40, 50], 40) == 29)
        #expect(ServingStats.percentile(sorted: [7], 99) == 7)
        #expect(ServingStats.percentile(sorted: xs, 100) == 4)
        #expect(ServingStats.percentile(sorted: xs, 0) == 1)
    }

    @Test func distributionIsNumpyMeanMedianPopulationStdAndZeroWhenEmpty() {
        let d = Distribution([4, 1, 3, 2])
        #expect(d.mean == 2.5)
        #expect(d.median == 2.5)
        #expect(abs(d.std - 1.25.squareRoot()) < 1e-12)
        #expect(abs(d.p90 - 3.7) < 1e-12)
        #expect(Distribution([]) == Distribution([]))
        #expect(Distribution([]).p99 == 0 && Distribution([]).mean == 0)
    }

    @Test func reportFollowsVLLMsDefinitions() {
        // Request A: 5 tokens, first chunk at 0.1 s, last at 0.5 s -> TPOT (0.5 - 0.1) / 4 = 0.1.
        var a = RequestMeasurement(success: true, promptTokens: 10, outputTokens: 5, ttft: 0.1, itl: [0.1, 0.1, 0.1, 0.1], latency: 0.5)
        // Request B: one token: no TPOT, no ITL; its TTFT and E2EL still count.
        let b = RequestMeasurement(success: true, promptTokens: 20, outputTokens: 1, ttft: 0.3, itl: [], latency: 0.3)
        // Request C: 3 tokens in 2 chunks plus a finish chunk; ITL pools its gaps with A's.
        let c = RequestMeasurement(success: true, promptTokens: 30, outputTokens: 3, ttft: 0.2, itl: [0.4, 0.2], latency: 0.8)
        // A failure is in no total and no distribution; its message is kept.
        let f = RequestMeasurement(success: false, promptTokens: 99, outputTokens: nil, error: "HTTP 400 from POST /v1/completions: bad")
        // A success without a usage chunk counts as one output token (vLLM's rule without a tokenizer).
        let n = RequestMeasurement(success: true, promptTokens: 5, outputTokens: nil, ttft: 0.05, itl: [0.01], latency: 0.06)
        let r = ServingReport([a, b, c, f, n], duration: 2)
        #expect(r.completed == 4 && r.failed == 1)
        #expect(r.firstError == "HTTP 400 from POST /v1/completions: bad")
        #expect(r.withoutUsage == 1)
        #expect(r.totalInput == 65 && r.totalOutput == 10)
        #expect(r.requestThroughput == 2 && r.outputThroughput == 5 && r.totalTokenThroughput == 37.5)
        // TPOT only from A (0.1) and C ((0.8 - 0.2) / 2 = 0.3).
        #expect(abs(r.tpot.mean - 0.2) < 1e-12)
        #expect(abs(r.tpot.median - 0.2) < 1e-12)
        // ITL pooled over every gap of every request: [0.1 x4, 0.4, 0.2, 0.01].
        let gaps = [0.1, 0.1, 0.1, 0.1, 0.4, 0.2, 0.01]
        #expect(abs(r.itl.mean - gaps.reduce(0, +) / 7) < 1e-12)
        #expect(abs(r.itl.median - 0.1) < 1e-12)
        #expect(abs(r.itl.p99 - ServingStats.percentile(sorted: gaps.sorted(), 99)) < 1e-12)
        #expect(abs(r.ttft.mean - (0.1 + 0.3 + 0.2 + 0.05) / 4) < 1e-12)
        #expect(abs(r.e2el.median - (0.3 + 0.5) / 2) < 1e-12)
        #expect(ServingStats.tpot(latency: 1, ttft: 0.5, outputTokens: 1) == nil)
        a.success = false
        #expect(ServingReport([a], duration: 1).itl == Distribution([]))
    }

    @Test func reportJSONUsesVLLMsKeys() throws {
        let m = RequestMeasurement(success: true, promptTokens: 4, outputTokens: 2, ttft: 0.25, itl: [0.5], latency: 0.75)
        let json = ServingReport([m], duration: 1).json(configuration: [("model_id", .string("x"))])
        #expect(json["model_id"] == .string("x"))
        #expect(json["completed"] == .int(1) && json["total_output_tokens"] == .int(2))
        #expect(json["mean_ttft_ms"] == .double(250) && json["p99_itl_ms"] == .double(500) && json["median_tpot_ms"] == .double(500))
        #expect(ServingReport([m], duration: 1).table().contains("P99 ITL (ms):"))
    }

    @Test func poissonArrivalsAreSeededAndEndAtCountOverRate() {
        let a = ServingStats.arrivalOffsets(count: 200, rate: 4, seed: 7)
        #expect(a == ServingStats.arrivalOffsets(count: 200, rate: 4, seed: 7))
        #expect(a != ServingStats.arrivalOffsets(count: 200, rate: 4, seed: 8))
        #expect(abs(a.last! - 50) < 1e-9)
        #expect(zip(a, a.dropFirst()).allSatisfy { $0 <= $1 } && a[0] > 0)
        // Exponential gaps: the coefficient of variation is near 1 (a fixed interval would give 0).
        let gaps = zip(a.dropFirst(), a).map { $0 - $1 }
        let d = Distribution(gaps)
        #expect(d.std / d.mean > 0.7 && d.std / d.mean < 1.3)
        #expect(ServingStats.arrivalOffsets(count: 3, rate: .infinity, seed: 1) == [0, 0, 0])
    }

    /// vLLM's random lengths: floor(L (1 - R)) ... floor(L (1 + R)), both ends included, never below 1.
    @Test func randomRangeRatioGivesVLLMsLengthRange() {
        #expect(BenchServeCommand.lengthRange(128, 0.5) == 64...192)
        #expect(BenchServeCommand.lengthRange(128, 0) == 128...128)
        #expect(BenchServeCommand.lengthRange(10, 0.25) == 7...12)
        #expect(BenchServeCommand.lengthRange(1, 0.9) == 1...1)
    }
}

@Suite struct HTTPClientPieceTests {
    /// `wire` as the network might deliver it: pieces of `cut` bytes.
    func pieces(_ wire: [UInt8], _ cut: Int) -> [[UInt8]] {
        stride(from: 0, to: wire.count, by: cut).map { Array(wire[$0..<min($0 + cut, wire.count)]) }
    }

    @Test func chunkedBodiesDecodeWhereverTheNetworkCutsThem() throws {
        let wire = Array("5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n".utf8)
        for cut in 1...wire.count {
            var d = ChunkedDecoder()
            var out: [UInt8] = []
            for piece in pieces(wire, cut) { out += try d.push(piece) }
            #expect(String(decoding: out, as: UTF8.self) == "hello, world" && d.isDone, "cut \(cut)")
        }
        var bad = ChunkedDecoder()
        #expect(throws: HTTPClientError.self) { try bad.push(Array("zz\r\n".utf8)) }
    }

    @Test func serverSentEventsSplitWhereverTheNetworkCutsThem() {
        let wire = Array("data: {\"a\":1}\n\n: ping\n\ndata: x\r\ndata: y\r\n\r\nevent: e\ndata: [DONE]".utf8)
        for cut in 1...wire.count {
            var sse = ServerSentEvents()
            var events = pieces(wire, cut).flatMap { sse.push($0) }
            events += sse.finish()
            #expect(events == ["{\"a\":1}", "x\ny", "[DONE]"], "cut \(cut)")
        }
    }

    @Test func endpointsParseHostPortAndPrefix() throws {
        let e = try HTTPEndpoint("http://localhost:8123/v1/")
        #expect(e.host == "localhost" && e.port == 8123 && e.prefix == "/v1")
        let v6 = try HTTPEndpoint("http://[::1]:9000")
        #expect(v6.host == "::1" && v6.port == 9000 && v6.description == "http://[::1]:9000")
        #expect(try HTTPEndpoint("http://example.org").port == 80)
        #expect(throws: HTTPClientError.self) { try HTTPEndpoint("https://example.org") }
        #expect(throws: HTTPClientError.self) { try HTTPEndpoint("http://host:notaport") }
    }
}

@Suite(.serialized, .enabled(if: MoerunBinary.hasMPIRun)) struct BenchServeEndToEndTests {
    @Test func benchServeAgainstMoerunServeCountsEveryRequestAndToken() throws {
        let job = try ServerJob(ranks: 1, arguments: ["--model", synthTextModel, "--port", "0", "--collective-timeout", "60"])
        let port = try #require(job.waitReady(), "server did not start: \(job.output)")
        defer { _ = job.terminate() }
        let run = try MoerunBinary.run(["bench-serve", "--url", "http://127.0.0.1:\(port)", "--requests", "8", "--rate", "inf",
                                        "--input-len", "16", "--output-len", "8", "--json"], timeout: 300)
        #expect(run.exitCode == 0, "\(run.output)")
        let line = try #require(run.output.split(separator: "\n").last { $0.hasPrefix("{") }, "no JSON in \(run.output)")
        let json = try JSONValue.parse(String(line))
        #expect(json["completed"] == .int(8) && json["failed"] == .int(0), "\(line)")
        #expect(json["num_prompts"] == .int(8) && json["first_error"] == .null)
        #expect(json["total_input_tokens"] == .int(8 * 16) && json["total_output_tokens"] == .int(8 * 8), "\(line)")
        #expect(json["responses_without_usage"] == .int(0))
        for key in ["duration", "output_throughput", "mean_ttft_ms", "p99_ttft_ms", "median_tpot_ms", "median_itl_ms", "p90_e2el_ms"] {
            guard case .double(let v)? = json[key] else { Issue.record("\(key) missing in \(line)"); continue }
            #expect(v > 0, "\(key) = \(v)")
        }

        // An unreachable server is an error that names the address, not a report of zeros.
        let refused = try MoerunBinary.run(["bench-serve", "--url", "http://127.0.0.1:1", "--requests", "1",
                                            "--input-len", "4", "--output-len", "2"], timeout: 60)
        #expect(refused.exitCode != 0 && refused.output.contains("cannot connect to http://127.0.0.1:1"), "\(refused.output)")
        // A model the server does not serve fails on the test request, with the server's 404 in the message.
        let wrong = try MoerunBinary.run(["bench-serve", "--url", "http://127.0.0.1:\(port)/v1", "--model", "nope", "--requests", "1",
                                          "--input-len", "4", "--output-len", "2"], timeout: 60)
        #expect(wrong.exitCode != 0 && wrong.output.contains("HTTP 404"), "\(wrong.output)")
        #expect(job.terminate() == 0, "\(job.output)")
    }
}
