// Bench: throughput of the engine under the launched layout — prefill at several prompt lengths and decode
// at several batch sizes, warm-up + repetitions with medians and spread, phase shares and all-to-all bytes
// from one traced repetition, machine probes measured in the same run (read bandwidth at 1 and N threads, fp32 FMA
// and bf16 dot-product peaks), decode's achieved weight-streaming GB/s and each point's GFLOP/s against them.
// Every rank runs the same sequence of (collective) generate calls; rank 0 reports.
import Comm
import Foundation
import Kernels
import Models
import Parallel

public struct BenchOptions: Sendable {
    public var promptLengths: [Int] = [32, 128]
    public var batchSizes: [Int] = [1, 4, 16]
    public var decodeTokens = 16
    public var repetitions = 3
    public var warmup = 1
    /// Also run decode with a single micro-batch, to show what pipelining buys (pp > 1 only).
    public var compareMicroBatches = true
    public var bandwidthProbeBytes = 512 << 20
    public init() {}
}

public struct BenchRow: Sendable, Codable {
    public var kind: String
    /// Prompt length (prefill) or batch size (decode).
    public var size: Int
    public var microBatches: Int
    public var medianSeconds: Double
    public var minSeconds: Double
    public var maxSeconds: Double
    /// Aggregate tokens/s (prefill: prompt tokens; decode: generated tokens after the first).
    public var tokensPerSecond: Double
    public var tokensPerSecondPerRequest: Double
    /// Mean over ranks of each phase's share of the wall time (traced repetition).
    public var phaseShare: [String: Double]
    public var allToAllBytesPerToken: Double
    /// Same measurement with tracing on: (traced - untraced) / untraced of the median time.
    public var tracingOverhead: Double
    /// Useful FLOPs per second (2 x active weights per token, plus causal attention for prefill).
    public var gflops: Double = 0
    /// Weight bytes streamed per second (decode; batch > 1 estimates the distinct experts touched, uniform routing).
    public var weightGBps: Double = 0
    /// Untraced repetitions in the order they ran (seconds), and the read probe (GB/s, all ranks) taken right
    /// before and after each, averaged; empty where no probe brackets the repetitions (all but batch-1 decode).
    public var repetitionSeconds: [Double] = []
    public var repetitionProbeGBps: [Double] = []
    /// Per repetition: |after - before| / mean of its two probes. A large spread means the machine's bandwidth changed
    /// while it ran (a shared VM flips between modes within seconds), so that repetition has no well-defined limit.
    public var repetitionProbeSpread: [Double] = []
}

public struct BenchReport: Sendable, Codable {
    public var ranks: Int
    public var plan: String
    public var threads: Int
    public var precision: String
    public var rows: [BenchRow]
    /// Read bandwidth probe with 1 thread and with `threads` threads (GB/s), same run.
    public var bandwidthGBps: Double
    public var bandwidthThreadsGBps: Double
    /// Register-only peaks at `threads` threads (GFLOP/s); 0 where the instructions are missing.
    public var fp32PeakGFLOPs: Double
    public var bf16PeakGFLOPs: Double
    /// Weight bytes a batch-1 decode step streams (all ranks), and the rate achieved at batch 1.
    public var weightBytesPerDecodeStep: Int
    public var decodeStreamingGBps: Double
    /// Batch-1 decode against the read probe bracketing each repetition: median probe (GB/s) and median over the
    /// repetitions of (weight GB/s of the repetition / its probe); 0 when not measured.
    public var decodeProbeGBps: Double = 0
    public var decodeProbeRatio: Double = 0
    /// The same median over the repetitions whose two probes agree within `steadyProbeSpread`, how many those are,
    /// and how many repetitions were bracketed by probes in all.
    public var decodeSteadyRatio: Double = 0
    public var decodeSteadyRepetitions: Int = 0
    public var decodeProbedRepetitions: Int = 0
    /// Largest before/after probe spread of a repetition counted as steady.
    public static let steadyProbeSpread = 0.05
    /// Weight FLOPs per token (2 x active parameters).
    public var weightFLOPsPerToken: Double
}

public enum Bench {
    /// Deterministic prompt tokens (no tokenizer needed).
    static func prompt(length: Int, seed: Int, vocab: Int) -> [Int] {
        var rng = SeededGenerator(seed: UInt64(seed) &+ 77)
        return (0..<length).map { _ in Int(rng.next() % UInt64(vocab)) }
    }

    public static func run(engine: Engine, world: any Communicator, options: BenchOptions,
                           progress: (String) -> Void) throws -> BenchReport? {
        let config = engine.config
        let vocab = config.vocabSize
        var rows: [BenchRow] = []

        /// Read bandwidth of every rank's probe run at once (GB/s): all ranks' bytes over the slowest rank's time.
        func probeAll(_ probe: ReadProbe) throws -> Double {
            try world.barrier()
            let slowest = try world.allReduce(probe.seconds(passes: 3), op: .max)
            return Double(probe.bytes * world.size) / slowest / 1e9
        }

        /// `probe`: taken right before and after every untraced measured repetition (the same moment as it ran).
        func measure(kind: String, size: Int, microBatches: Int?, requests: [GenerationRequest], tokens: Int,
                     decode: Bool, probe: ReadProbe? = nil) throws -> BenchRow {
            engine.setMicroBatches(microBatches)
            // Untraced and traced repetitions alternate, so the tracing overhead is measured under the same
            // conditions; phase shares come from the traced ones.
            var plain: [Double] = [], traced: [Double] = [], tracedFull = 0.0, probes: [Double] = [], spreads: [Double] = []
            engine.tracer.clear()
            for rep in 0..<(options.warmup + 2 * options.repetitions) {
                let tracing = rep >= options.warmup && (rep - options.warmup) % 2 == 1
                let bracketed = rep >= options.warmup && !tracing ? probe : nil
                let before = try bracketed.map(probeAll)
                engine.tracer.isEnabled = tracing
                _ = try engine.generate(world.rank == 0 ? requests : [], eosTokens: [])
                if let before, let bracketed {
                    let after = try probeAll(bracketed)
                    probes.append((before + after) / 2)
                    spreads.append(abs(after - before) / ((before + after) / 2))
                }
                engine.tracer.isEnabled = false
                let s = engine.lastStats
                let t = decode ? s.seconds - s.firstTokenSeconds : s.seconds
                if rep >= options.warmup {
                    if tracing {
                        traced.append(t)
                        tracedFull += s.seconds
                    } else {
                        plain.append(t)
                    }
                }
            }
            let spans = try ChromeTrace.gather(engine.tracer, world)
            engine.tracer.clear()
            // Every rank agrees on rank 0's timings.
            var shared = plain + traced + [tracedFull]
            try world.broadcast(&shared, root: 0)
            let times = Array(shared.prefix(plain.count)).sorted()
            let tracedTimes = Array(shared[plain.count..<(plain.count + traced.count)]).sorted()
            let median = times[times.count / 2]
            let tracedMedian = tracedTimes[tracedTimes.count / 2]
            // Shares: phase time per rank per traced run over the traced run's wall time.
            let tracedWall = shared.last!
            var share: [String: Double] = [:]
            for phase in TracePhase.allCases {
                let total = spans.filter { $0.phase == phase }.reduce(0.0) { $0 + Double($1.duration) / 1e9 }
                if total > 0 { share[phase.rawValue] = total / Double(world.size) / max(tracedWall, 1e-9) }
            }
            let a2aBytes = spans.filter { $0.phase == .dispatch || $0.phase == .combine }.reduce(0) { $0 + $1.bytes }
            let processed = options.repetitions * requests.reduce(0) { $0 + $1.prompt.count + $1.maxNewTokens - 1 }
            return BenchRow(kind: kind, size: size, microBatches: microBatches ?? engine.plan.pp,
                            medianSeconds: median, minSeconds: times.first!, maxSeconds: times.last!,
                            tokensPerSecond: Double(tokens) / median, tokensPerSecondPerRequest: Double(tokens) / median / Double(requests.count),
                            phaseShare: share, allToAllBytesPerToken: Double(a2aBytes) / Double(max(processed, 1)),
                            tracingOverhead: tracedMedian / median - 1,
                            repetitionSeconds: Array(shared.prefix(plain.count)), repetitionProbeGBps: probes,
                            repetitionProbeSpread: spreads)
        }

        for length in options.promptLengths {
            progress("bench: prefill \(length) tokens")
            let request = GenerationRequest(prompt: prompt(length: length, seed: length, vocab: vocab), maxNewTokens: 1)
            rows.append(try measure(kind: "prefill", size: length, microBatches: nil, requests: [request], tokens: length, decode: false))
        }
        if options.compareMicroBatches && engine.plan.pp > 1, let length = options.promptLengths.last {
            // Several prompts at once: with one micro-batch a stage idles while the other works; with pp groups
            // the stages overlap.
            let count = 2 * engine.plan.pp
            let requests = (0..<count).map { GenerationRequest(prompt: prompt(length: length, seed: 500 + $0, vocab: vocab), maxNewTokens: 1) }
            for mb in [nil, 1] as [Int?] {
                progress("bench: prefill \(count) x \(length) tokens, \(mb.map { "\($0)" } ?? "default") micro-batches")
                rows.append(try measure(kind: "prefill*\(count)", size: length, microBatches: mb, requests: requests, tokens: count * length, decode: false))
            }
        }
        for batch in options.batchSizes {
            let requests = (0..<batch).map { GenerationRequest(prompt: prompt(length: 4, seed: 1000 + $0, vocab: vocab), maxNewTokens: options.decodeTokens) }
            let tokens = batch * (options.decodeTokens - 1)
            // Batch 1 is compared with the read bandwidth: probe it on the engine's own threads right before and
            // after each repetition. Ranks sharing a node split the probe size (each buffer still exceeds the L3).
            let probe = batch == 1
                ? ReadProbe(bytes: max(128 << 20, options.bandwidthProbeBytes / ThreadPolicy.localRanks()), pool: engine.model.pool) : nil
            progress("bench: decode batch \(batch)\(probe == nil ? "" : " (read probe before and after each repetition)")")
            rows.append(try measure(kind: "decode", size: batch, microBatches: nil, requests: requests, tokens: tokens, decode: true, probe: probe))
            if options.compareMicroBatches && engine.plan.pp > 1 {
                progress("bench: decode batch \(batch), 1 micro-batch")
                rows.append(try measure(kind: "decode", size: batch, microBatches: 1, requests: requests, tokens: tokens, decode: true))
            }
        }
        engine.setMicroBatches(nil)

        // Weight bytes a decode step streams: everything but the embedding table, experts at top-k / experts.
        let m = engine.memory()
        let embedding = engine.model.embedTokens?.byteCount ?? 0
        var total = [Double(m.otherWeightBytes - embedding), Double(m.routedExpertBytes)]
        try world.allReduce(&total, op: .sum)
        // Replicated tensors are streamed by every lane group that has tokens (a tensor-parallel group's ranks each
        // stream their share); at batch 1 only one group works.
        let other = total[0] / Double(engine.plan.dp), routed = total[1]
        let shape = engine.shape, fraction = shape.expertFraction
        /// Expected distinct experts of a batch of `b` tokens under uniform routing: E (1 - (1 - k/E)^b).
        func bytesPerStep(batch b: Int) -> Double { other + routed * (1 - pow(1 - fraction, Double(b))) }
        let perStep = bytesPerStep(batch: 1)
        let active = config.mainTensorSpecs.reduce(0) { $0 + $1.activeParameters(expertFraction: fraction) }
        let flopsPerToken = 2 * Double(active)
        let attentionFlops = 2 * Double(shape.attentionMACsPerContextToken)
        for i in rows.indices {
            let r = rows[i]
            if r.kind == "prefill" {
                let flops = flopsPerToken * Double(r.size) + attentionFlops * Double(r.size * (r.size + 1) / 2)
                rows[i].gflops = flops / r.medianSeconds / 1e9
            } else {
                rows[i].gflops = flopsPerToken * r.tokensPerSecond / 1e9
                rows[i].weightGBps = bytesPerStep(batch: r.size) * r.tokensPerSecond / Double(r.size) / 1e9
            }
        }
        guard world.rank == 0 else { return nil }
        progress("bench: machine probes (read bandwidth, fp32 FMA and bf16 dot-product peaks)")
        let threads = engine.options.threads
        let bandwidth1 = MachineProbe.readBandwidth(bytes: options.bandwidthProbeBytes, threads: 1)
        let bandwidthN = threads == 1 ? bandwidth1 : MachineProbe.readBandwidth(bytes: options.bandwidthProbeBytes, threads: threads)
        let batch1 = rows.first { $0.kind == "decode" && $0.size == 1 && $0.microBatches == engine.plan.pp }
        // Per repetition: the weight GB/s it streamed over the probe taken around it.
        let paired = batch1.map { row in zip(row.repetitionSeconds, row.repetitionProbeGBps).map { perStep * Double(options.decodeTokens - 1) / $0.0 / 1e9 / $0.1 } } ?? []
        let probes = batch1?.repetitionProbeGBps.sorted() ?? []
        let steady = zip(paired, batch1?.repetitionProbeSpread ?? []).filter { $0.1 <= BenchReport.steadyProbeSpread }.map(\.0).sorted()
        return BenchReport(ranks: world.size, plan: engine.plan.shapeText, threads: threads,
                           precision: engine.options.matmulPrecision.rawValue, rows: rows, bandwidthGBps: bandwidth1, bandwidthThreadsGBps: bandwidthN,
                           fp32PeakGFLOPs: MachineProbe.fp32FMAPeak(threads: threads),
                           bf16PeakGFLOPs: MachineProbe.bf16DotPeak(threads: threads),
                           weightBytesPerDecodeStep: Int(perStep),
                           decodeStreamingGBps: (batch1?.tokensPerSecond ?? 0) * perStep / 1e9,
                           decodeProbeGBps: probes.isEmpty ? 0 : probes[probes.count / 2],
                           decodeProbeRatio: paired.isEmpty ? 0 : paired.sorted()[paired.count / 2],
                           decodeSteadyRatio: steady.isEmpty ? 0 : steady[steady.count / 2], decodeSteadyRepetitions: steady.count,
                           decodeProbedRepetitions: paired.count,
                           weightFLOPsPerToken: flopsPerToken)
    }

    /// Plain-text table of a report.
    public static func render(_ r: BenchReport) -> [String] {
        var lines = ["bench: \(r.ranks) rank\(r.ranks == 1 ? "" : "s"), plan \(r.plan), \(r.threads) thread\(r.threads == 1 ? "" : "s") per rank, matmul precision \(r.precision)"]
        lines.append("  kind       size  mb   median s   (min..max)        tok/s  tok/s/req  GFLOP/s  weight GB/s  a2a%  a2a B/tok  trace ovh  top phases")
        for row in r.rows {
            let a2a = (row.phaseShare["dispatch"] ?? 0) + (row.phaseShare["combine"] ?? 0)
            let top = row.phaseShare.sorted { $0.value > $1.value }.prefix(3).map { "\($0.key) \(Int(($0.value * 100).rounded()))%" }.joined(separator: ", ")
            let gbs = row.kind == "decode" ? String(format: "%11.2f%@", row.weightGBps, row.size == 1 ? " " : "~") : String(repeating: " ", count: 12)
            lines.append(String(format: "  %@ %5d %3d %10.4f  (%.4f..%.4f) %9.1f %10.2f %8.1f %@ %4.1f%% %10.0f %9.1f%%  %@",
                                row.kind.padding(toLength: 9, withPad: " ", startingAt: 0) as NSString, row.size, row.microBatches, row.medianSeconds, row.minSeconds, row.maxSeconds,
                                row.tokensPerSecond, row.tokensPerSecondPerRequest, row.gflops, gbs as NSString, a2a * 100,
                                row.allToAllBytesPerToken, row.tracingOverhead * 100, top as NSString))
        }
        func pct(_ a: Double, _ b: Double) -> String { b > 0 ? String(format: "%.0f%%", a / b * 100) : "n/a" }
        lines.append(String(format: "  machine (probes, this run): read %.1f GB/s at 1 thread, %.1f GB/s at %d; fp32 FMA peak %.0f GFLOP/s, bf16 dot peak %.0f GFLOP/s at %d thread%@",
                            r.bandwidthGBps, r.bandwidthThreadsGBps, r.threads, r.fp32PeakGFLOPs, r.bf16PeakGFLOPs, r.threads,
                            r.threads == 1 ? "" : "s"))
        lines.append(String(format: "  decode batch 1: %.1f MB of weights per step, %.2f GB/s = %@ of the %d-thread read probe at the end of the run",
                            Double(r.weightBytesPerDecodeStep) / 1e6, r.decodeStreamingGBps,
                            pct(r.decodeStreamingGBps, r.bandwidthThreadsGBps) as NSString, r.threads))
        if r.decodeProbeRatio > 0 {
            lines.append(String(format: "  decode batch 1 vs the read probe taken right before and after each repetition (same threads, same moment): %.0f%% (median over repetitions; probes median %.1f GB/s)",
                                r.decodeProbeRatio * 100, r.decodeProbeGBps))
            lines.append(String(format: "  of those, repetitions whose before and after probes agree within %.0f%% (the bandwidth held still): %d of %d%@",
                                BenchReport.steadyProbeSpread * 100, r.decodeSteadyRepetitions, r.decodeProbedRepetitions,
                                r.decodeSteadyRepetitions > 0 ? String(format: ", median %.0f%%", r.decodeSteadyRatio * 100) : ""))
        }
        if let p = r.rows.filter({ $0.kind == "prefill" }).max(by: { $0.size < $1.size }) {
            lines.append(String(format: "  prefill %d: %.1f GFLOP/s = %@ of fp32 FMA peak, %@ of bf16 dot peak (%.2f GFLOP weights per token; ~ = estimated distinct experts)",
                                p.size, p.gflops, pct(p.gflops, r.fp32PeakGFLOPs) as NSString, pct(p.gflops, r.bf16PeakGFLOPs) as NSString,
                                r.weightFLOPsPerToken / 1e9))
        }
        return lines
    }
}
