// Calibration: measures this machine's rates for the cost model - moerun's linear kernel over BF16 weights
// (tiled GEMM and matrix-vector), streaming-read bandwidth (one thread and all cores) and the MPI all-to-all
// cost between the launched ranks - and returns them as a cluster description (`moerun plan --calibrate`).
import Comm
import Foundation
import Kernels
import Parallel
import Tensors

public struct CalibrationResult: Sendable, Codable {
    public var gemmGFlopsPerCore: Double
    public var gemvGFlopsPerCore: Double
    /// Matrix-vector over a weight far larger than the caches (for reference: the roofline should predict it).
    public var gemvStreamingGFlopsPerCore: Double
    public var coreBandwidthGBs: Double
    public var nodeBandwidthGBs: Double
    /// All-to-all between the launched ranks (nil with one rank).
    public var allToAllLatencyUS: Double?
    public var allToAllBandwidthGBs: Double?
    public var ranks: Int
    public var cores: Int
    public var memoryGB: Double
}

public enum Calibration {
    /// Best time of `repeats` runs of `body`, in seconds.
    static func best(_ repeats: Int, _ body: () -> Void) -> Double {
        var bestTime = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            bestTime = min(bestTime, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return bestTime
    }

    /// GFLOP/s of one thread running `Ops.linear` with `tokens` rows over a rows x cols BF16 weight.
    public static func linearRate(rows: Int, cols: Int, tokens: Int, repeats: Int) -> Double {
        let w = Weight.bf16(rows: rows, cols: cols, (0..<(rows * cols)).map { Float(($0 * 7919) % 1000) / 1000 - 0.5 })
        let x = Matrix(rows: tokens, cols: cols, data: (0..<(tokens * cols)).map { Float($0 % 17) / 17 })
        var sink: Float = 0
        let inner = max(1, 50_000_000 / max(rows * cols * tokens, 1))
        let seconds = best(repeats) {
            for _ in 0..<inner { sink += Ops.linear(x, w).data[0] }
        }
        if sink.isNaN { print("") }
        return 2 * Double(rows * cols * tokens * inner) / seconds / 1e9
    }

    /// Measure everything; every rank takes part in the all-to-all, rank 0's figures are returned on rank 0.
    public static func measure(world: any Communicator, quick: Bool = false) throws -> CalibrationResult {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        var gemm = 0.0, gemv = 0.0, streaming = 0.0, coreBW = 0.0, nodeBW = 0.0
        world.setContext("calibration: rank 0 measures kernels while the others wait")
        if world.rank == 0 {
            let repeats = quick ? 2 : 5
            gemm = linearRate(rows: 1024, cols: 2048, tokens: 32, repeats: repeats)
            gemv = linearRate(rows: 256, cols: 2048, tokens: 1, repeats: repeats)
            streaming = linearRate(rows: 8192, cols: 4096, tokens: 1, repeats: quick ? 1 : 3)
            let bytes = quick ? 64 << 20 : 256 << 20
            // The same probe `moerun bench` reports against (median of 5 passes).
            coreBW = MachineProbe.readBandwidth(bytes: bytes, threads: 1)
            nodeBW = MachineProbe.readBandwidth(bytes: bytes, threads: cores)
        }
        try world.barrier()
        var latency: Double? = nil, bandwidth: Double? = nil
        if world.size > 1 {
            world.setContext("calibration: all-to-all")
            var options = SelfTestOptions()
            options.hidden = 1024
            options.bandwidthTokens = [1, 1024]
            options.repetitions = quick ? 5 : 20
            let samples = try SelfTest.measureAllToAll(world, options: options)
            let (small, large) = (samples[0], samples[1])
            // time = peers x latency + bytes / bandwidth, fitted through the two sizes.
            let slope = (large.medianMicroseconds - small.medianMicroseconds) / Double(large.bytesPerRank - small.bytesPerRank)
            bandwidth = slope > 0 ? 1e-3 / slope : nil
            latency = max(0.1, (small.medianMicroseconds - Double(small.bytesPerRank) * max(slope, 0)) / Double(world.size - 1))
        }
        return CalibrationResult(gemmGFlopsPerCore: gemm, gemvGFlopsPerCore: gemv, gemvStreamingGFlopsPerCore: streaming,
                                 coreBandwidthGBs: coreBW, nodeBandwidthGBs: nodeBW, allToAllLatencyUS: latency,
                                 allToAllBandwidthGBs: bandwidth, ranks: world.size, cores: cores,
                                 memoryGB: Double(ProcessInfo.processInfo.physicalMemory) / 1e9)
    }

    /// `base` with every node's rates replaced by the measured ones (a one-node `local` cluster when nil).
    public static func apply(_ m: CalibrationResult, to base: Cluster?) -> Cluster {
        var cluster = base ?? Cluster(
            name: "local", description: "this machine",
            nodes: [NodeSpec(host: "localhost", ranks: m.ranks, slots: max(8, 4 * m.cores), memoryGB: (m.memoryGB * 10).rounded() / 10,
                             reservedGB: max(1, (m.memoryGB / 10).rounded()), cores: m.cores, sockets: 1,
                             memoryBandwidthGBs: 0, coreBandwidthGBs: 0, gemmGFlopsPerCore: 0, gemvGFlopsPerCore: 0)],
            interNode: LinkSpec(bandwidthGBs: 12.5, latencyUS: 2), intraNode: LinkSpec(bandwidthGBs: 10, latencyUS: 2),
            launcher: LauncherSpec(), calibration: nil)
        func r(_ x: Double) -> Double { (x * 100).rounded() / 100 }
        for i in cluster.nodes.indices {
            cluster.nodes[i].gemmGFlopsPerCore = r(m.gemmGFlopsPerCore)
            cluster.nodes[i].gemvGFlopsPerCore = r(m.gemvGFlopsPerCore)
            cluster.nodes[i].coreBandwidthGBs = r(m.coreBandwidthGBs)
            cluster.nodes[i].memoryBandwidthGBs = r(max(m.nodeBandwidthGBs, m.coreBandwidthGBs))
        }
        if let l = m.allToAllLatencyUS { cluster.intraNode.latencyUS = r(l) }
        if let b = m.allToAllBandwidthGBs { cluster.intraNode.bandwidthGBs = r(b) }
        let date = ISO8601DateFormatter().string(from: Date())
        cluster.calibration = String(format: "moerun plan --calibrate, %d ranks, %@: linear BF16 %.2f GFLOP/s/core (32 tokens), %.2f (1 token, cached), %.2f (1 token, 64 MB weight); read %.2f GB/s (1 thread), %.2f GB/s (%d threads)",
                                     m.ranks, date, m.gemmGFlopsPerCore, m.gemvGFlopsPerCore, m.gemvStreamingGFlopsPerCore,
                                     m.coreBandwidthGBs, m.nodeBandwidthGBs, m.cores)
            + (m.allToAllLatencyUS.map { String(format: "; all-to-all %.1f us/peer + %.2f GB/s", $0, m.allToAllBandwidthGBs ?? 0) } ?? "; all-to-all not measured (one rank)")
        return cluster
    }
}
