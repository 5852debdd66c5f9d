// Writes a cluster back as commented YAML in the clusters/ format (used by `moerun plan --calibrate`);
// `Cluster.decode` reads it back to an equal value.
import Foundation

extension Cluster {
    public func yaml() -> String {
        func num(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)" }  // shortest exact form
        func quoted(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        var out = ["# Cluster description for `moerun plan` (format: clusters/README.md).",
                   "name: \(quoted(name))", "description: \(quoted(description))"]
        if let calibration { out.append("calibration: \(quoted(calibration))") }
        out.append("nodes:")
        for n in nodes {
            out.append("  - host: \(quoted(n.host))")
            out.append("    ranks: \(n.ranks)")
            if n.slots != n.cores { out.append("    slots: \(n.slots)") }
            out.append("    cores: \(n.cores)")
            out.append("    sockets: \(n.sockets)")
            out.append("    memory_gb: \(num(n.memoryGB))")
            out.append("    reserved_gb: \(num(n.reservedGB))")
            out.append("    memory_bandwidth_gbs: \(num(n.memoryBandwidthGBs))     # all cores, streaming read")
            out.append("    core_bandwidth_gbs: \(num(n.coreBandwidthGBs))       # one thread, streaming read")
            out.append("    gemm_gflops_per_core: \(num(n.gemmGFlopsPerCore))     # moerun linear, >= 4 tokens")
            out.append("    gemv_gflops_per_core: \(num(n.gemvGFlopsPerCore))     # moerun linear, 1 token")
            out.append("    stream_efficiency: \(num(n.streamEfficiency))     # moerun linear streaming weights / read bandwidth")
            out.append("    call_overhead_us: \(num(n.callOverheadUS))     # fixed cost per product call")
            out.append("    layer_overhead_us: \(num(n.layerOverheadUS))     # engine time per layer per step outside products")
            out.append("    layer_sync_us: \(num(n.layerSyncUS))     # added per layer when a rank runs several threads")
            out.append("    elementwise_gbs: \(num(n.elementwiseGBs))     # engine element-wise work, GB of activations per second")
        }
        out.append("network:")
        if nodes.count > 1 {
            out.append("  inter_node: {bandwidth_gbps: \(num(interNode.bandwidthGBs * 8)), latency_us: \(num(interNode.latencyUS))}")
        }
        out.append("  intra_node: {bandwidth_gbs: \(num(intraNode.bandwidthGBs)), latency_us: \(num(intraNode.latencyUS))}")
        if launcher != LauncherSpec() {
            out.append("launcher:")
            if !launcher.mpirunArgs.isEmpty { out.append("  mpirun_args: [\(launcher.mpirunArgs.map(quoted).joined(separator: ", "))]") }
            if !launcher.srunArgs.isEmpty { out.append("  srun_args: [\(launcher.srunArgs.map(quoted).joined(separator: ", "))]") }
            if launcher.binary != "moerun" { out.append("  binary: \(quoted(launcher.binary))") }
        }
        return out.joined(separator: "\n") + "\n"
    }
}
