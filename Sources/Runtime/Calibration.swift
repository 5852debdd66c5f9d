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
    /// Matrix-vector over a weight far larger than the caches, one thread (BF16: GFLOP/s = GB/s streamed).
    public var gemvStreamingGFlopsPerCore: Double
    /// The same with every core (the node's kernel streaming rate).
    public var gemvStreamingAllCoresGFlops: Double
    /// Fixed cost of one product call with every core in the pool.
    public var callOverheadUS: Double
    /// Kernel streaming / read probe, all cores.
    public var streamEfficiency: Double {
        nodeBandwidthGBs > 0 ? min(1.5, gemvStreamingAllCoresGFlops / nodeBandwidthGBs) : NodeSpec.defaultStreamEfficiency
    }
    public var coreBandwidthGBs: Double
    public var nodeBandwidthGBs: Double
    /// All-to-all between the launched ranks (nil with one rank).
    public var allToAllLatencyUS: Double?
    public var allToAllBandwidthGBs: Double?
    public var ranks: Int
    public var cores: Int
    public var memoryGB: Double
    /// The engine's time outside products, fitted on a synthetic model (nil when not measured).
    public var engine: EngineOverheadFit? = nil
}

public enum Calibration {
    /// Median time of `repeats` runs of `body`, in seconds (the engine calibration and plan-vs-measured use medians
    /// too: a best-of-N rate would be optimistic against typical runs on a shared machine).
    static func median(_ repeats: Int, _ body: () -> Void) -> Double {
        var times: [Double] = []
        for _ in 0..<max(repeats, 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return times.sorted()[times.count / 2]
    }

    /// GFLOP/s of `pool` running `Ops.linear` with `tokens` rows over a rows x cols BF16 weight (for BF16 at one
    /// token, GFLOP/s = GB/s of weights streamed).
    public static func linearRate(rows: Int, cols: Int, tokens: Int, repeats: Int, pool: ComputePool = .serial,
                                  uncached: Bool = false) -> Double {
        let (seconds, inner) = linearSeconds(rows: rows, cols: cols, tokens: tokens, repeats: repeats, pool: pool, uncached: uncached)
        return 2 * Double(rows * cols * tokens * inner) / seconds / 1e9
    }

    /// Seconds of one `Ops.linear` call on a weight small enough that only the fixed cost (fork/join, packing) shows.
    public static func callOverhead(pool: ComputePool, repeats: Int) -> Double {
        let (seconds, inner) = linearSeconds(rows: 64, cols: 256, tokens: 1, repeats: repeats, pool: pool, minimumCalls: 20_000)
        return seconds / Double(inner)
    }

    /// `uncached`: cycle through distinct weights totalling >= 96 MB, so every call reads its weight from memory as a
    /// forward pass does (one weight reused would sit in L2/L3 and overstate the rate).
    static func linearSeconds(rows: Int, cols: Int, tokens: Int, repeats: Int, pool: ComputePool,
                              minimumCalls: Int = 1, uncached: Bool = false) -> (seconds: Double, calls: Int) {
        let copies = uncached ? max(1, (96 << 20) / (rows * cols * 2)) : 1
        let values = (0..<(rows * cols)).map { Float(($0 * 7919) % 1000) / 1000 - 0.5 }
        let ws = (0..<copies).map { _ in Weight.bf16(rows: rows, cols: cols, values) }
        let x = Matrix(rows: tokens, cols: cols, data: (0..<(tokens * cols)).map { Float($0 % 17) / 17 })
        var sink: Float = 0
        let inner = max(minimumCalls, 50_000_000 / max(rows * cols * tokens, 1))
        let seconds = median(repeats) {
            for i in 0..<inner { sink += Ops.linear(x, ws[i % copies], pool: pool).data[0] }
        }
        if sink.isNaN { print("") }
        return (seconds, inner)
    }

    /// Measure everything; every rank takes part in the all-to-all, rank 0's figures are returned on rank 0.
    public static func measure(world: any Communicator, quick: Bool = false,
                               progress: (String) -> Void = { _ in }) throws -> CalibrationResult {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        var m = CalibrationResult(gemmGFlopsPerCore: 0, gemvGFlopsPerCore: 0, gemvStreamingGFlopsPerCore: 0, gemvStreamingAllCoresGFlops: 0,
                                  callOverheadUS: 0, coreBandwidthGBs: 0, nodeBandwidthGBs: 0, allToAllLatencyUS: nil,
                                  allToAllBandwidthGBs: nil, ranks: world.size, cores: cores,
                                  memoryGB: Double(ProcessInfo.processInfo.physicalMemory) / 1e9)
        world.setContext("calibration: rank 0 measures kernels while the others wait")
        if world.rank == 0 {
            let repeats = quick ? 2 : 5
            // Rates with every core of the node in one pool, as a rank that owns the node runs (fork/join included).
            let pool = ComputePool(threads: cores)
            m.gemmGFlopsPerCore = linearRate(rows: 1024, cols: 2048, tokens: 32, repeats: repeats, pool: pool, uncached: true) / Double(cores)
            m.gemvGFlopsPerCore = linearRate(rows: 256, cols: 2048, tokens: 1, repeats: repeats, pool: pool) / Double(cores)
            m.gemvStreamingGFlopsPerCore = linearRate(rows: 8192, cols: 4096, tokens: 1, repeats: quick ? 1 : 3)
            m.gemvStreamingAllCoresGFlops = linearRate(rows: 8192, cols: 4096, tokens: 1, repeats: quick ? 1 : 3, pool: pool)
            m.callOverheadUS = callOverhead(pool: pool, repeats: repeats) * 1e6
            let bytes = quick ? 64 << 20 : 256 << 20
            // The same probe `moerun bench` reports against (median of 5 passes).
            m.coreBandwidthGBs = MachineProbe.readBandwidth(bytes: bytes, threads: 1)
            m.nodeBandwidthGBs = MachineProbe.readBandwidth(bytes: bytes, threads: cores)

            world.setContext("calibration: rank 0 times the engine on a synthetic model while the others wait")
            // The engine terms are fitted against the cost model at the rates just measured, one rank owning the node.
            var rates = apply(m, to: nil)
            rates.nodes[0].ranks = 1
            m.engine = try EngineCalibration.measure(cluster: rates, cores: cores, quick: quick, progress: progress)
        }
        try world.barrier()
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
            m.allToAllBandwidthGBs = slope > 0 ? 1e-3 / slope : nil
            m.allToAllLatencyUS = max(0.1, (small.medianMicroseconds - Double(small.bytesPerRank) * max(slope, 0)) / Double(world.size - 1))
        }
        return m
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
            cluster.nodes[i].streamEfficiency = r(m.streamEfficiency)
            cluster.nodes[i].callOverheadUS = r(m.callOverheadUS)
            if let e = m.engine {
                cluster.nodes[i].layerOverheadUS = r(e.layerOverheadUS)
                cluster.nodes[i].layerSyncUS = r(e.layerSyncUS)
                cluster.nodes[i].elementwiseGBs = max(0.01, r(e.elementwiseGBs))
            }
        }
        if let l = m.allToAllLatencyUS { cluster.intraNode.latencyUS = r(l) }
        if let b = m.allToAllBandwidthGBs { cluster.intraNode.bandwidthGBs = r(b) }
        let date = ISO8601DateFormatter().string(from: Date())
        cluster.calibration = String(format: "moerun plan --calibrate, %d ranks, %@: linear BF16 on %d threads %.2f GFLOP/s/core (32 tokens), %.2f (1 token, cached), streaming 64 MB %.2f GB/s (1 thread) %.2f GB/s (%d threads), %.1f us per call; read probe %.2f GB/s (1 thread), %.2f GB/s (%d threads)",
                                     m.ranks, date, m.cores, m.gemmGFlopsPerCore, m.gemvGFlopsPerCore, m.gemvStreamingGFlopsPerCore,
                                     m.gemvStreamingAllCoresGFlops, m.cores, m.callOverheadUS, m.coreBandwidthGBs, m.nodeBandwidthGBs, m.cores)
            + (m.engine.map { e in
                let runs = e.threads.indices.map { i in
                    String(format: "%d thread%@ prefill %d tokens %.1f ms (model %.1f), decode step %.2f ms (%.2f), at batch %d %.2f ms (%.2f)",
                           e.threads[i], e.threads[i] == 1 ? "" : "s", e.prefillTokens, e.measured[i][0] * 1e3, e.predicted[i][0] * 1e3,
                           e.measured[i][1] * 1e3, e.predicted[i][1] * 1e3, e.checkBatch, e.measured[i][2] * 1e3, e.predicted[i][2] * 1e3)
                }
                return String(format: "; engine %.1f us per layer (+%.1f us with threads), element-wise %.2f GB/s, from a synthetic model: ",
                              e.layerOverheadUS, e.layerSyncUS, e.elementwiseGBs) + runs.joined(separator: "; ")
            } ?? "")
            + (m.allToAllLatencyUS.map { String(format: "; all-to-all %.1f us/peer + %.2f GB/s", $0, m.allToAllBandwidthGBs ?? 0) } ?? "; all-to-all not measured (one rank)")
        return cluster
    }
}
