// Bench: throughput of the engine under the launched layout — prefill at several prompt lengths and decode
// at several batch sizes, warm-up + repetitions with medians and spread, phase shares and all-to-all bytes
// from one traced repetition, a memory-bandwidth probe and decode's achieved weight-streaming rate.
// Every rank runs the same sequence of (collective) generate calls; rank 0 reports.
import Comm
import Foundation
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
}

public struct BenchReport: Sendable, Codable {
    public var ranks: Int
    public var plan: String
    public var threads: Int
    public var rows: [BenchRow]
    public var bandwidthGBps: Double
    /// Weight bytes a batch-1 decode step streams (all ranks), and the rate achieved at batch 1.
    public var weightBytesPerDecodeStep: Int
    public var decodeStreamingGBps: Double
}

public enum Bench {
    /// Deterministic prompt tokens (no tokenizer needed).
    static func prompt(length: Int, seed: Int, vocab: Int) -> [Int] {
        var rng = SeededGenerator(seed: UInt64(seed) &+ 77)
        return (0..<length).map { _ in Int(rng.next() % UInt64(vocab)) }
    }

    /// Single-core streaming read bandwidth in GB/s (median of 5 passes over a buffer larger than caches).
    public static func readBandwidth(bytes: Int) -> Double {
        let count = bytes / 4
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        for i in 0..<count { buffer[i] = Float(i & 1023) }
        var times: [Double] = []
        var sink = SIMD16<Float>()
        for _ in 0..<5 {
            let start = DispatchTime.now().uptimeNanoseconds
            var a = SIMD16<Float>(), b = SIMD16<Float>(), c = SIMD16<Float>(), d = SIMD16<Float>()
            UnsafeRawPointer(buffer).withMemoryRebound(to: SIMD16<Float>.self, capacity: count / 16) { v in
                var i = 0
                while i + 4 <= count / 16 {
                    a += v[i]; b += v[i + 1]; c += v[i + 2]; d += v[i + 3]
                    i += 4
                }
            }
            sink += a + b + c + d
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        if sink.sum() == .infinity { print("") }  // keep the reads alive
        return Double(bytes) / times.sorted()[2] / 1e9
    }

    public static func run(engine: Engine, world: any Communicator, options: BenchOptions,
                           progress: (String) -> Void) throws -> BenchReport? {
        let config = engine.config
        let vocab = config.vocabSize
        var rows: [BenchRow] = []

        func measure(kind: String, size: Int, microBatches: Int?, requests: [GenerationRequest], tokens: Int,
                     decode: Bool) throws -> BenchRow {
            engine.setMicroBatches(microBatches)
            // Untraced and traced repetitions alternate, so the tracing overhead is measured under the same
            // conditions; phase shares come from the traced ones.
            var plain: [Double] = [], traced: [Double] = [], tracedFull = 0.0
            engine.tracer.clear()
            for rep in 0..<(options.warmup + 2 * options.repetitions) {
                let tracing = rep >= options.warmup && (rep - options.warmup) % 2 == 1
                engine.tracer.isEnabled = tracing
                _ = try engine.generate(world.rank == 0 ? requests : [], eosTokens: [])
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
                            tracingOverhead: tracedMedian / median - 1)
        }

        for length in options.promptLengths {
            progress("bench: prefill \(length) tokens")
            let request = GenerationRequest(prompt: prompt(length: length, seed: length, vocab: vocab), maxNewTokens: 1)
            rows.append(try measure(kind: "prefill", size: length, microBatches: nil, requests: [request], tokens: length, decode: false))
        }
        for batch in options.batchSizes {
            let requests = (0..<batch).map { GenerationRequest(prompt: prompt(length: 4, seed: 1000 + $0, vocab: vocab), maxNewTokens: options.decodeTokens) }
            let tokens = batch * (options.decodeTokens - 1)
            progress("bench: decode batch \(batch)")
            rows.append(try measure(kind: "decode", size: batch, microBatches: nil, requests: requests, tokens: tokens, decode: true))
            if options.compareMicroBatches && engine.plan.pp > 1 {
                progress("bench: decode batch \(batch), 1 micro-batch")
                rows.append(try measure(kind: "decode", size: batch, microBatches: 1, requests: requests, tokens: tokens, decode: true))
            }
        }
        engine.setMicroBatches(nil)

        // Weight bytes a decode step streams: everything but the embedding table, experts at top-k / experts.
        let m = engine.memory()
        let embedding = engine.model.embedTokens?.byteCount ?? 0
        let streamed = Double(m.otherWeightBytes - embedding)
            + Double(m.routedExpertBytes) * Double(config.numExpertsPerTok) / Double(max(config.nRoutedExperts, 1)) * Double(engine.plan.ep)
        var total = [streamed]
        try world.allReduce(&total, op: .sum)
        // Replicated tensors are streamed by every lane that has tokens; at batch 1 only one lane works.
        let perStep = total[0] / Double(engine.plan.ep)
        progress("bench: memory bandwidth probe")
        let bandwidth = world.rank == 0 ? readBandwidth(bytes: options.bandwidthProbeBytes) : 0
        guard world.rank == 0 else { return nil }
        let batch1 = rows.first { $0.kind == "decode" && $0.size == 1 && $0.microBatches == engine.plan.pp }
        return BenchReport(ranks: world.size, plan: "pp=\(engine.plan.pp),ep=\(engine.plan.ep)", threads: engine.options.threads,
                           rows: rows, bandwidthGBps: bandwidth, weightBytesPerDecodeStep: Int(perStep),
                           decodeStreamingGBps: (batch1?.tokensPerSecond ?? 0) * perStep / 1e9)
    }

    /// Plain-text table of a report.
    public static func render(_ r: BenchReport) -> [String] {
        var lines = ["bench: \(r.ranks) rank\(r.ranks == 1 ? "" : "s"), plan \(r.plan), \(r.threads) thread\(r.threads == 1 ? "" : "s") per rank"]
        lines.append("  kind     size  mb   median s   (min..max)        tok/s   tok/s/req  dispatch+combine  a2a B/tok  trace ovh  top phases")
        for row in r.rows {
            let a2a = (row.phaseShare["dispatch"] ?? 0) + (row.phaseShare["combine"] ?? 0)
            let top = row.phaseShare.sorted { $0.value > $1.value }.prefix(3).map { "\($0.key) \(Int(($0.value * 100).rounded()))%" }.joined(separator: ", ")
            lines.append(String(format: "  %-7@ %5d %3d %10.4f  (%.4f..%.4f) %9.1f %10.1f %16.1f%% %10.0f %9.1f%%  %@",
                                row.kind as NSString, row.size, row.microBatches, row.medianSeconds, row.minSeconds, row.maxSeconds,
                                row.tokensPerSecond, row.tokensPerSecondPerRequest, a2a * 100, row.allToAllBytesPerToken,
                                row.tracingOverhead * 100, top as NSString))
        }
        lines.append(String(format: "  memory read bandwidth (1 core probe): %.1f GB/s; decode batch 1 streams %.1f MB of weights per step: %.2f GB/s (%.0f%% of the probe)",
                            r.bandwidthGBps, Double(r.weightBytesPerDecodeStep) / 1e6, r.decodeStreamingGBps,
                            r.bandwidthGBps > 0 ? r.decodeStreamingGBps / r.bandwidthGBps * 100 : 0))
        return lines
    }
}
