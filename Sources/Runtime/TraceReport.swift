// TraceReport: reads a moerun Chrome trace and answers "where did the time go": per rank and phase (time,
// share, bytes), idle time per stage (pipeline bubbles and waits), and for each collective kind the rank the
// others waited for (the last to arrive has the shortest span of the group).
import Foundation

public struct TraceReport: Sendable {
    public struct PhaseTotal: Sendable {
        public var seconds: Double
        public var bytes: Int
        public var count: Int
    }

    public struct RankSummary: Sendable {
        public var rank: Int
        public var label: String
        public var stage: Int
        public var wallSeconds: Double
        public var phases: [String: PhaseTotal]
        /// Time in compute phases (not communication / waiting).
        public var busySeconds: Double
    }

    public struct Straggler: Sendable {
        public var phase: String
        public var groups: Int
        /// How often each rank was the last to arrive, and the waiting it caused others (seconds).
        public var lastArrivals: [Int: Int]
        public var waitCaused: [Int: Double]
    }

    public var ranks: [RankSummary]
    public var stragglers: [Straggler]

    public static func read(path: String) throws -> TraceReport {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let events = object["traceEvents"] as? [[String: Any]] else {
            throw RequestValidation.Problem(message: "\(path) is not a Chrome trace (no traceEvents array); write one with --trace FILE")
        }
        return analyse(events)
    }

    static func analyse(_ events: [[String: Any]]) -> TraceReport {
        var labels: [Int: String] = [:]
        var spans: [Int: [(phase: String, layer: Int, stage: Int, ts: Double, dur: Double, bytes: Int, comm: Bool)]] = [:]
        for e in events {
            guard let pid = e["pid"] as? Int else { continue }
            if e["ph"] as? String == "M", e["name"] as? String == "process_name" {
                labels[pid] = (e["args"] as? [String: Any])?["name"] as? String
            }
            guard e["ph"] as? String == "X", let name = e["name"] as? String,
                  let ts = e["ts"] as? Double, let dur = e["dur"] as? Double else { continue }
            let args = e["args"] as? [String: Any] ?? [:]
            let phase = String(name.split(separator: " ")[0])
            spans[pid, default: []].append((phase, args["layer"] as? Int ?? -1, args["stage"] as? Int ?? 0, ts / 1e6, dur / 1e6,
                                            args["bytes"] as? Int ?? 0, e["cat"] as? String == "comm"))
        }
        var ranks: [RankSummary] = []
        for pid in spans.keys.sorted() {
            let list = spans[pid]!
            let start = list.map(\.ts).min() ?? 0, end = list.map { $0.ts + $0.dur }.max() ?? 0
            var phases: [String: PhaseTotal] = [:]
            var busy = 0.0
            for s in list {
                phases[s.phase, default: PhaseTotal(seconds: 0, bytes: 0, count: 0)].seconds += s.dur
                phases[s.phase]!.bytes += s.bytes
                phases[s.phase]!.count += 1
                if !s.comm && s.phase != "loading" { busy += s.dur }
            }
            ranks.append(RankSummary(rank: pid, label: labels[pid] ?? "rank \(pid)", stage: list.first?.stage ?? 0,
                                     wallSeconds: end - start, phases: phases, busySeconds: busy))
        }
        // Collectives: the k-th span of (phase, layer) on every rank of a stage belongs to the same operation.
        var stragglers: [Straggler] = []
        for phase in ["dispatch", "combine", "step_broadcast"] {
            var groups: [String: [(rank: Int, dur: Double)]] = [:]
            for (pid, list) in spans {
                var occurrence: [Int: Int] = [:]
                for s in list where s.phase == phase {
                    let k = occurrence[s.layer, default: 0]
                    occurrence[s.layer] = k + 1
                    let scope = phase == "step_broadcast" ? "world" : "stage \(s.stage)"
                    groups["\(scope)|\(s.layer)|\(k)", default: []].append((pid, s.dur))
                }
            }
            var last: [Int: Int] = [:], caused: [Int: Double] = [:]
            for members in groups.values where members.count > 1 {
                let latest = members.min { $0.dur < $1.dur }!
                last[latest.rank, default: 0] += 1
                caused[latest.rank, default: 0] += members.reduce(0) { $0 + ($1.dur - latest.dur) }
            }
            if !groups.isEmpty { stragglers.append(Straggler(phase: phase, groups: groups.count, lastArrivals: last, waitCaused: caused)) }
        }
        return TraceReport(ranks: ranks, stragglers: stragglers)
    }

    public func render(top: Int = 4) -> [String] {
        var lines: [String] = ["per rank: wall time, busy (compute) share, top phases by time"]
        for r in ranks {
            let top = r.phases.sorted { $0.value.seconds > $1.value.seconds }.prefix(top).map { name, t in
                name + String(format: " %.1f%%", t.seconds / max(r.wallSeconds, 1e-12) * 100) + (t.bytes > 0 ? " (\(t.bytes / 1024) KiB)" : "")
            }
            lines.append("  \(r.label)" + String(format: ": wall %.3f s, busy %.1f%%: ", r.wallSeconds, r.busySeconds / max(r.wallSeconds, 1e-12) * 100)
                         + top.joined(separator: ", "))
        }
        lines.append("per rank and phase: seconds, share of the rank's wall time, bytes moved, spans")
        for r in ranks {
            for (name, t) in r.phases.sorted(by: { $0.value.seconds > $1.value.seconds }) {
                lines.append(String(format: "  rank %-3d ", r.rank) + name.padding(toLength: 15, withPad: " ", startingAt: 0)
                             + String(format: " %9.4f s %6.1f%% %12d B %7d", t.seconds, t.seconds / max(r.wallSeconds, 1e-12) * 100, t.bytes, t.count))
            }
        }
        lines.append("idle per stage (waiting in communication or for work: pipeline bubbles and stragglers)")
        for stage in Set(ranks.map(\.stage)).sorted() {
            let members = ranks.filter { $0.stage == stage }
            let idle = members.reduce(0.0) { $0 + max(0, $1.wallSeconds - $1.busySeconds) / max($1.wallSeconds, 1e-12) } / Double(members.count)
            lines.append("  stage \(stage) (ranks \(members.map { String($0.rank) }.joined(separator: ","))): "
                         + String(format: "idle %.1f%% of wall time", idle * 100))
        }
        lines.append("who the others waited for (last rank to arrive at each collective)")
        for s in stragglers {
            let worst = s.waitCaused.sorted { $0.value > $1.value }.prefix(3).map { rank, wait in
                String(format: "rank %d (last %d of %d times, %.4f s of waiting caused)", rank, s.lastArrivals[rank] ?? 0, s.groups, wait)
            }
            lines.append("  \(s.phase): " + (worst.isEmpty ? "single-rank groups only" : worst.joined(separator: "; ")))
        }
        return lines
    }
}
