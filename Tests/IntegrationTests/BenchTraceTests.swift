// `moerun bench` under mpirun: a report with every requested point and a Chrome trace in which every rank
// and every engine phase appears (valid trace-event structure, loadable in Perfetto).
import Foundation
import Testing
import TestSupport

@Suite(.serialized, .enabled(if: MoerunBinary.hasMPIRun)) struct BenchTraceTests {
    @Test func benchUnderPipelineAndExpertParallelWritesReportAndTrace() throws {
        let trace = FileManager.default.temporaryDirectory.appendingPathComponent("moerun-bench-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: trace) }
        let run = try MoerunBinary.run(["bench", "--model", Fixtures.path("dsv3-tiny-fp32"), "--plan", "pp=2,ep=2",
                                        "--prompt-lengths", "8", "--batch-sizes", "1,3", "--decode-tokens", "3",
                                        "--repetitions", "1", "--warmup", "0", "--json", "--trace", trace, "--collective-timeout", "60"],
                                       ranks: 4, timeout: 180)
        #expect(run.exitCode == 0, "\(run.output)")
        let jsonStart = try #require(run.output.firstIndex(of: "{"))
        let report = try JSONSerialization.jsonObject(with: Data(run.output[jsonStart...].utf8)) as! [String: Any]
        let rows = report["rows"] as! [[String: Any]]
        // prefill 8; 4 prompts of 8 at once with default and 1 micro-batch; decode 1 and 3, each also with a
        // single micro-batch (pp = 2).
        #expect(rows.count == 7)
        #expect(rows.filter { $0["kind"] as! String == "prefill*4" }.map { $0["microBatches"] as! Int }.sorted() == [1, 2])
        #expect(rows.allSatisfy { ($0["tokensPerSecond"] as! Double) > 0 })
        let decode = rows.first { $0["kind"] as! String == "decode" && $0["size"] as! Int == 3 }!
        let shares = decode["phaseShare"] as! [String: Double]
        #expect(shares["dispatch"] != nil && shares["combine"] != nil)
        #expect((decode["allToAllBytesPerToken"] as! Double) > 0)
        // Batch 1 is bracketed by a read probe on every rank (one per measured repetition), compared in the report.
        let batch1 = rows.first { $0["kind"] as! String == "decode" && $0["size"] as! Int == 1 && $0["microBatches"] as! Int == 2 }!
        #expect((batch1["repetitionProbeGBps"] as! [Double]).count == 1 && (batch1["repetitionSeconds"] as! [Double]).count == 1)
        #expect((report["decodeProbeGBps"] as! Double) > 0 && (report["decodeProbeRatio"] as! Double) > 0)
        // Each repetition's before/after spread; the steady median counts only repetitions within the spread limit.
        let spreads = batch1["repetitionProbeSpread"] as! [Double]
        #expect(spreads.count == 1 && spreads[0] >= 0)
        let steady = report["decodeSteadyRepetitions"] as! Int
        #expect(steady == (spreads[0] <= 0.05 ? 1 : 0))
        #expect(report["decodeProbedRepetitions"] as! Int == 1)
        #expect(((report["decodeSteadyRatio"] as! Double) > 0) == (steady == 1))

        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: trace))) as! [String: Any]
        let events = object["traceEvents"] as! [[String: Any]]
        let spans = events.filter { $0["ph"] as? String == "X" }
        #expect(Set(spans.map { $0["pid"] as! Int }) == [0, 1, 2, 3])
        let names = Set(spans.map { ($0["name"] as! String).split(separator: " ")[0] })
        for phase in ["embedding", "attention", "dense_ffn", "router", "dispatch", "expert_ffn", "combine", "shared_expert",
                      "pipeline_send", "pipeline_recv", "head", "step_broadcast"] {
            #expect(names.contains(Substring(phase)), "phase \(phase) missing from the trace")
        }
        for span in spans {
            #expect(span["ts"] is Double && span["dur"] is Double && span["tid"] is Int)
        }

        // The report names every rank, its top phases, idle per stage and who the others waited for.
        let summary = try MoerunBinary.run(["report", trace], timeout: 60)
        #expect(summary.exitCode == 0, "\(summary.output)")
        for r in 0..<4 { #expect(summary.output.contains("rank \(r) (stage \(r / 2), lane \(r % 2))")) }
        #expect(summary.output.contains("idle per stage"))
        #expect(summary.output.contains("stage 1 (ranks 2,3)"))
        #expect(summary.output.contains("dispatch: rank"))
        let bad = try MoerunBinary.run(["report", "/nonexistent/trace.json"], timeout: 30)
        #expect(bad.exitCode != 0)
    }
}
