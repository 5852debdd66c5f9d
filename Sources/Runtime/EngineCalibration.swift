// EngineCalibration: measures the engine's time outside the products - per-layer bookkeeping and element-wise
// passes over activations - as what one rank's real forward passes on a synthetic calibration model take beyond
// the cost model's product / attention terms at the just-measured rates. Decode of one token and prefill of 128,
// with one thread and with every core, fit the node fields `layer_overhead_us`, `layer_sync_us` and
// `elementwise_gbs`; a decode step of 8 sequences checks the fit.
import Comm
import Foundation
import Models
import Parallel

/// The fitted engine terms and the measurements behind them.
public struct EngineOverheadFit: Sendable, Codable {
    /// Per layer per step with one thread, and what a multi-threaded pool adds (fork/join waits, idle workers).
    public var layerOverheadUS: Double
    public var layerSyncUS: Double
    public var elementwiseGBs: Double
    /// Thread counts of the two runs (1 and every core).
    public var threads: [Int]
    /// Per run, measured seconds (medians): prefill of `prefillTokens`, one decode step at batch 1, one at `checkBatch`.
    public var measured: [[Double]]
    /// Per run, the cost model's seconds for the same three steps with the fitted terms.
    public var predicted: [[Double]]
    public var prefillTokens: Int
    public var checkBatch: Int
}

public enum EngineCalibration {
    static let prefillTokens = 128, checkBatch = 8, promptTokens = 8

    /// DeepSeek-V3 structure at a size unlike the shipped synth sizes (hidden 768, 24 experts top-6), so a plan of
    /// a synth model is a prediction, not a replay of the calibration. `quick` (tests): the tiny synth shape.
    public static func config(quick: Bool = false) throws -> ModelConfig {
        var o = SynthOverrides()
        if quick {
            o.mtp = 0
            return try Synth.config(preset: .deepseekV3, size: .tiny, overrides: o, dtype: .bf16)
        }
        o.hidden = 768; o.layers = 4; o.firstDense = 1; o.intermediate = 2048; o.moeIntermediate = 384
        o.experts = 24; o.topK = 6; o.groups = 4; o.topkGroup = 2; o.sharedExperts = 1
        o.heads = 8; o.qLora = 256; o.kvLora = 128; o.ropeDim = 32; o.nopeDim = 64; o.vDim = 64; o.vocab = 16000; o.mtp = 0
        return try Synth.config(preset: .deepseekV3, size: .tiny, overrides: o, dtype: .bf16)
    }

    /// Writes the calibration model to a temporary folder, runs it on one in-process rank with one thread and with
    /// `cores` threads, and fits the engine terms against `cluster` (a one-node cluster holding the measured rates).
    public static func measure(cluster: Cluster, cores: Int, quick: Bool, progress: (String) -> Void) throws -> EngineOverheadFit {
        let c = try config(quick: quick)
        let dir = NSTemporaryDirectory() + "moerun-calibration-\(ProcessInfo.processInfo.processIdentifier)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        progress("calibration: writing a synthetic model (hidden \(c.hiddenSize), \(c.numHiddenLayers) layers, \(c.nRoutedExperts) experts) to \(dir)")
        _ = try Synth.write(config: c, dtype: .bf16, seed: 11, directory: dir)
        let opened = try ModelLoading.open(dir)
        let plan = try ParallelPlan.make(model: c.shape, ranks: 1, pp: 1, ep: 1)
        let decodeSteps = quick ? 4 : 16, repeats = quick ? 1 : 5
        let threadCounts = cores > 1 ? [1, cores] : [1]
        var measured: [[Double]] = []
        for threads in threadCounts {
            progress("calibration: timing the engine on it with \(threads) thread\(threads == 1 ? "" : "s") (prefill \(prefillTokens) tokens, decode at batch 1 and \(checkBatch))")
            measured.append(try LocalCommunicator.run(ranks: 1, timeout: 600) { comm -> [Double] in
                var options = EngineOptions()
                options.threads = threads
                options.maxSequencesPerLane = checkBatch
                let engine = try Engine(world: comm, config: c, source: opened.checkpoint, plan: plan, options: options)
                engine.preload { _, _ in }
                func prompt(_ n: Int, _ seed: Int) -> [Int] { (0..<n).map { (($0 + 1) * 7919 + seed * 104_729) % (c.vocabSize - 2) + 2 } }
                func median(_ body: () throws -> Double) rethrows -> Double {
                    _ = try body()  // warm-up
                    var xs: [Double] = []
                    for _ in 0..<repeats { xs.append(try body()) }
                    return xs.sorted()[xs.count / 2]
                }
                let prefill = try median {
                    _ = try engine.generate([GenerationRequest(prompt: prompt(prefillTokens, 1), maxNewTokens: 1)], eosTokens: [])
                    return engine.lastStats.firstTokenSeconds
                }
                func decodeStep(batch: Int) throws -> Double {
                    try median {
                        let requests = (0..<batch).map { GenerationRequest(prompt: prompt(promptTokens, $0 + 2), maxNewTokens: decodeSteps + 1) }
                        _ = try engine.generate(requests, eosTokens: [])
                        let s = engine.lastStats
                        return (s.seconds - s.firstTokenSeconds) / Double(decodeSteps)
                    }
                }
                return [prefill, try decodeStep(batch: 1), try decodeStep(batch: checkBatch)]
            }[0])
        }
        return try fit(config: c, cluster: cluster, threads: threadCounts, measured: measured, decodeContext: promptTokens + decodeSteps)
    }

    /// The cost model's seconds for [prefill, decode step at batch 1, decode step at `checkBatch`] on one rank.
    public static func steps(config c: ModelConfig, cluster: Cluster, threads: Int, decodeContext: Int) throws -> [Double] {
        let shape = c.shape
        let plan = try ParallelPlan.make(model: shape, ranks: 1, pp: 1, ep: 1)
        let weights = WeightBreakdown(model: shape, specs: TensorTable(config: c).mainSpecs, dtype: .bf16)
        func predicted(batch: Int, prompt: Int, context: Int) -> CostPrediction {
            CostModel.predict(plan: plan, model: shape, weights: weights, workload: Workload(batch: batch, context: context, prompt: prompt),
                              cluster: cluster, threads: threads)
        }
        return [predicted(batch: 1, prompt: prefillTokens, context: prefillTokens + 1).prefill.tickSeconds,
                predicted(batch: 1, prompt: promptTokens, context: decodeContext).decode.tickSeconds,
                predicted(batch: checkBatch, prompt: promptTokens, context: decodeContext).decode.tickSeconds]
    }

    /// `measured - products = layers x overhead + element-wise bytes / rate`. The all-core run's decode and prefill
    /// points give the rate and the all-core per-layer time (its products use the rates measured with every core);
    /// the one-thread decode step gives the one-thread per-layer time, and the difference is the sync term.
    public static func fit(config c: ModelConfig, cluster: Cluster, threads: [Int], measured: [[Double]], decodeContext: Int) throws -> EngineOverheadFit {
        func with(_ overhead: Double, _ sync: Double, _ rate: Double) -> Cluster {
            var cl = cluster
            for i in cl.nodes.indices {
                cl.nodes[i].layerOverheadUS = overhead
                cl.nodes[i].layerSyncUS = sync
                cl.nodes[i].elementwiseGBs = rate
            }
            return cl
        }
        let bare = with(0, 0, .greatestFiniteMagnitude)
        let products = try threads.map { try steps(config: c, cluster: bare, threads: $0, decodeContext: decodeContext) }
        // Element-wise bytes of one step: every layer's per-token bytes times the tokens, plus sampling per sequence.
        let shape = c.shape
        let perToken = (0..<shape.layerCount).reduce(0.0) { $0 + CostModel.elementwiseBytes(model: shape, layer: $1) }
        let sampling = 3 * 4 * Double(c.vocabSize)
        let bytesPrefill = perToken * Double(prefillTokens) + sampling, bytesDecode = perToken + sampling
        let layers = Double(c.numHiddenLayers)
        let all = threads.count - 1
        let residPrefill = max(0, measured[all][0] - products[all][0]), residDecode = max(0, measured[all][1] - products[all][1])
        var perByte = (residPrefill - residDecode) / (bytesPrefill - bytesDecode)
        var overheadAll = (residDecode - bytesDecode * perByte) / layers
        if perByte <= 0 || overheadAll < 0 {
            // The residual does not grow with the tokens (or shrinks): all of it is per-layer time.
            perByte = max(0, perByte)
            overheadAll = max(0, (residDecode - bytesDecode * perByte) / layers)
        }
        let overhead = max(0, (measured[0][1] - products[0][1] - bytesDecode * perByte) / layers)
        let sync = all > 0 ? max(0, overheadAll - overhead) : 0
        let rate = perByte > 0 ? min(1000, 1 / perByte / 1e9) : 1000
        let fitted = with(overhead * 1e6, sync * 1e6, rate)
        return EngineOverheadFit(layerOverheadUS: overhead * 1e6, layerSyncUS: sync * 1e6, elementwiseGBs: rate, threads: threads,
                                 measured: measured,
                                 predicted: try threads.map { try steps(config: c, cluster: fitted, threads: $0, decodeContext: decodeContext) },
                                 prefillTokens: prefillTokens, checkBatch: checkBatch)
    }
}
