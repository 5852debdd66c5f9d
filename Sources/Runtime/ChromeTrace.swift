// ChromeTrace: merges every rank's spans on rank 0 (clock offsets estimated with barrier-timestamp
// exchanges) and writes Chrome trace-event JSON (process = rank, thread = phase), which Perfetto opens.
import Comm
import Foundation

public enum ChromeTrace {
    /// Per-rank clock offset relative to rank 0 in nanoseconds: median over rounds of (t_r - t_0) taken right
    /// after a barrier. Collective: every rank calls it.
    public static func clockOffsets(_ comm: any Communicator, rounds: Int = 7) throws -> [Int64] {
        var samples = [[Int64]](repeating: [], count: comm.size)
        for _ in 0..<rounds {
            try comm.barrier()
            let stamps = try comm.allGather([Int64(bitPattern: Tracer.now)])
            for r in 0..<comm.size { samples[r].append(stamps[r] - stamps[0]) }
        }
        return samples.map { s in s.sorted()[s.count / 2] }
    }

    /// Collective: gather all spans on every rank, aligned to rank 0's clock. (All ranks receive them; only
    /// rank 0 writes. Traces are small next to activations.)
    public static func gather(_ tracer: Tracer, _ comm: any Communicator) throws -> [TraceSpan] {
        let offsets = try clockOffsets(comm)
        // Fixed-width records: rank, stage, layer, phase, start, duration, bytes.
        let mine: [Int64] = tracer.spans.flatMap { s in
            [Int64(s.rank), Int64(s.stage), Int64(s.layer), Int64(s.phase.code),
             Int64(bitPattern: s.start) - offsets[comm.rank], Int64(bitPattern: s.duration), Int64(s.bytes)]
        }
        let all = try comm.allGatherV(mine)
        var spans: [TraceSpan] = []
        for records in all {
            for i in stride(from: 0, to: records.count, by: 7) {
                spans.append(TraceSpan(rank: Int(records[i]), stage: Int(records[i + 1]), layer: Int(records[i + 2]),
                                       phase: TracePhase.allCases[Int(records[i + 3])],
                                       start: UInt64(bitPattern: records[i + 4]), duration: UInt64(bitPattern: records[i + 5]),
                                       bytes: Int(records[i + 6])))
            }
        }
        return spans
    }

    /// Chrome trace-event JSON for merged spans. `rankLabels[r]` names the process (e.g. "rank 1 (stage 0, lane 1)").
    public static func json(_ spans: [TraceSpan], rankLabels: [Int: String] = [:]) throws -> Data {
        let origin = spans.map(\.start).min() ?? 0
        var events: [[String: Any]] = []
        let ranks = Set(spans.map(\.rank)).sorted()
        for r in ranks {
            events.append(["name": "process_name", "ph": "M", "pid": r, "tid": 0,
                           "args": ["name": rankLabels[r] ?? "rank \(r)"]])
            events.append(["name": "process_sort_index", "ph": "M", "pid": r, "tid": 0, "args": ["sort_index": r]])
            for phase in TracePhase.allCases {
                events.append(["name": "thread_name", "ph": "M", "pid": r, "tid": phase.code + 1, "args": ["name": phase.rawValue]])
            }
        }
        for s in spans {
            var args: [String: Any] = ["stage": s.stage]
            if s.layer >= 0 { args["layer"] = s.layer }
            if s.bytes > 0 || s.phase.isCommunication { args["bytes"] = s.bytes }
            events.append([
                "name": s.layer >= 0 ? "\(s.phase.rawValue) L\(s.layer)" : s.phase.rawValue,
                "cat": s.phase.isCommunication ? "comm" : "compute",
                "ph": "X", "pid": s.rank, "tid": s.phase.code + 1,
                "ts": Double(s.start &- origin) / 1000, "dur": Double(s.duration) / 1000,
                "args": args,
            ])
        }
        return try JSONSerialization.data(withJSONObject: ["traceEvents": events, "displayTimeUnit": "ms"], options: [.sortedKeys])
    }
}
