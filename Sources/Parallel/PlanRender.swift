// Text rendering of a cluster plan (what `moerun plan` prints): placement, per-rank and per-node memory,
// predicted tokens/s with the bottleneck, other shapes, suggestions when it does not fit, and launch lines.
import Foundation

extension ClusterPlanReport {
    static func gb(_ bytes: Int) -> String { String(format: "%.1f GB", Double(bytes) / 1e9) }
    static func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, w - s.count))
        return left ? s + fill : fill + s
    }
    static func rate(_ x: Double) -> String { x >= 100 ? String(format: "%.0f", x) : x >= 1 ? String(format: "%.1f", x) : String(format: "%.3f", x) }
    static func share(_ b: TimeBreakdown) -> String {
        let total = max(b.total, 1e-30)
        return [("memory", b.memory), ("compute", b.compute), ("network", b.network), ("engine", b.engine), ("bubbles", b.bubbles)]
            .map { "\($0.0) \(Int(($0.1 / total * 100).rounded()))%" }.joined(separator: ", ")
    }

    public func render() -> String {
        var out: [String] = []
        out.append("model    \(model), \(dtype.rawValue.uppercased()) weights \(Self.gb(modelWeightBytes)) (MTP not served)")
        out.append("cluster  \(cluster): \(nodeCount) node\(nodeCount == 1 ? "" : "s"), \(rankCount) ranks" + (clusterDescription.isEmpty ? "" : " - \(clusterDescription)"))
        out.append("load     \(workload.batch) sequences x \(workload.context) tokens (prompt \(workload.prompt)), "
                   + "\(workload.groups(pp: plan.pp)) micro-batch group\(workload.groups(pp: plan.pp) == 1 ? "" : "s"), \(threadsPerRank) thread\(threadsPerRank == 1 ? "" : "s") per rank")
        out.append("plan     \(planSpec)" + (chosen ? "  (chosen: fastest fitting of \(options.count) shape\(options.count == 1 ? "" : "s"); --pp/--ep/--tp to override)" : "  (given)"))
        out.append("")
        out.append(contentsOf: plan.summary.dropFirst())
        out.append("  replication: \(Self.gb(replicationBytes)) (non-expert weights held more than once: "
                   + (plan.tp == 1 ? "on each of \(plan.ep) lanes)" : "on each of \(plan.dp) groups, the unsplit ones on each of their \(plan.tp) ranks)"))
        out.append("")
        out.append("rank  host          stage lane  layers     experts      weights    KV cache  workspace      total")
        for r in ranks {
            out.append(Self.pad("\(r.rank)", 4) + "  " + Self.pad(r.host, 12, left: true) + Self.pad("\(r.stage)", 6) + Self.pad("\(r.lane)", 5)
                       + "  " + Self.pad("\(r.layers.lowerBound)..<\(r.layers.upperBound)", 9, left: true)
                       + "  " + Self.pad("\(r.experts.lowerBound)..<\(r.experts.upperBound)", 11, left: true)
                       + Self.pad(Self.gb(r.weightBytes), 10) + Self.pad(Self.gb(r.kvCacheBytes), 12) + Self.pad(Self.gb(r.workspaceBytes), 11)
                       + Self.pad(Self.gb(r.totalBytes), 11))
        }
        out.append("")
        out.append("node  host          ranks      needed      usable    use")
        for n in nodes {
            let ranksText = n.ranks.count <= 3 ? n.ranks.map(String.init).joined(separator: ",") : "\(n.ranks.first!)-\(n.ranks.last!)"
            out.append(Self.pad("\(n.node)", 4) + "  " + Self.pad(n.host, 12, left: true) + "  " + Self.pad(ranksText, 7, left: true)
                       + Self.pad(Self.gb(n.neededBytes), 10) + Self.pad(Self.gb(n.usableBytes), 12)
                       + Self.pad("\(Int((Double(n.neededBytes) / Double(max(n.usableBytes, 1)) * 100).rounded()))%", 7)
                       + (n.fits ? "" : "  OVER by \(Self.gb(n.shortfallBytes))"))
        }
        out.append("")
        if fits, let p = prediction {
            out.append("predicted (batch \(workload.batch), context \(workload.context)):")
            out.append("  decode   \(Self.rate(p.decode.perRequestTokensPerSecond)) tokens/s per request, \(Self.rate(p.decode.aggregateTokensPerSecond)) aggregate;"
                       + String(format: " tick %.2f ms x %d per token", p.decode.tickSeconds * 1e3, p.decode.ticksPerStep))
            out.append("           bottleneck: \(p.decode.bottleneck) (\(Self.share(p.decode.breakdown)))")
            out.append("  prefill  \(Self.rate(p.prefill.perRequestTokensPerSecond)) tokens/s per request, \(Self.rate(p.prefill.aggregateTokensPerSecond)) aggregate;"
                       + String(format: " first token after %.2f s", p.timeToFirstTokenSeconds))
            out.append("           bottleneck: \(p.prefill.bottleneck) (\(Self.share(p.prefill.breakdown)))")
        } else {
            out.append("DOES NOT FIT: short by \(Self.gb(shortfallBytes)) on the fullest node")
            for s in suggestions { out.append("  - \(s)") }
        }
        if options.count > 1 {
            out.append("")
            out.append("shapes considered:")
            for o in options {
                out.append("  \(o.text): " + (o.fits ? "fits (peak node \(Int((o.peakNodeUse * 100).rounded()))%), decode \(Self.rate(o.decodeTokensPerSecond ?? 0)) tokens/s"
                                                            + String(format: ", first token after %.1f s", o.timeToFirstTokenSeconds ?? 0)
                                                            : "does not fit (peak node \(Int((o.peakNodeUse * 100).rounded()))%)"))
            }
        }
        out.append("")
        out.append("launch with mpirun (files in \(launch.directory)/ with --write-launch \(launch.directory)):")
        out.append("  " + Launch.shellLine(launch.mpirun))
        out.append("launch with Slurm:")
        out.append("  " + Launch.shellLine(launch.srun, environment: launch.srunEnvironment))
        return out.joined(separator: "\n")
    }
}
