// Tracer + Chrome trace: spans from every rank are merged with aligned clocks into valid trace-event JSON.
import Comm
import Foundation
import Runtime
import Testing

@Suite struct TraceTests {
    @Test func disabledTracerRecordsNothing() {
        let tracer = Tracer.disabled()
        let value = tracer.measure(.attention, layer: 3) { 42 }
        tracer.end(tracer.begin(), .dispatch, bytes: 10)
        #expect(value == 42)
        #expect(tracer.spans.isEmpty)
    }

    @Test func mergedTraceHasEveryRankAndPhase() throws {
        let phases: [TracePhase] = [.attention, .router, .dispatch, .expertFFN, .combine]
        let outputs = try LocalCommunicator.run(ranks: 3) { comm -> Data in
            let tracer = Tracer(enabled: true, rank: comm.rank, stage: comm.rank / 2)
            for layer in 0..<2 {
                for phase in phases {
                    tracer.measure(phase, layer: layer, bytes: phase.isCommunication ? 128 * (comm.rank + 1) : 0) { usleep(100) }
                }
            }
            let spans = try ChromeTrace.gather(tracer, comm)
            return try ChromeTrace.json(spans, rankLabels: [0: "rank 0 (stage 0, lane 0)"])
        }
        let object = try JSONSerialization.jsonObject(with: outputs[0]) as! [String: Any]
        let events = object["traceEvents"] as! [[String: Any]]
        let complete = events.filter { $0["ph"] as? String == "X" }
        #expect(complete.count == 3 * 2 * phases.count)
        #expect(Set(complete.map { $0["pid"] as! Int }) == [0, 1, 2])
        for phase in phases {
            #expect(complete.contains { ($0["name"] as! String).hasPrefix(phase.rawValue) })
        }
        for event in complete {
            #expect((event["ts"] as! Double) >= 0)
            #expect((event["dur"] as! Double) > 0)
        }
        let dispatch = complete.first { $0["pid"] as! Int == 2 && ($0["name"] as! String).hasPrefix("dispatch") }!
        #expect((dispatch["args"] as! [String: Any])["bytes"] as? Int == 384)
        let names = events.filter { $0["name"] as? String == "process_name" }.map { ($0["args"] as! [String: Any])["name"] as! String }
        #expect(names.contains("rank 0 (stage 0, lane 0)"))
        // All ranks got the same merged trace.
        #expect(outputs[1] == outputs[0])
    }
}
