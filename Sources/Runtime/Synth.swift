// Synth: a preset scaled down (same structure: MLA or grouped-query attention, routed + shared experts, dense-first
// layers, groups, MTP) written as a deterministic random-weight HF checkpoint (config.json, sharded safetensors +
// index, optional FP8). DeepSeek-V3 / Kimi K2 take every override; the other families take a size class.
import Checkpoint
import Foundation
import Text
import Models
import Tensors

/// Size classes of synthetic checkpoints.
public enum SynthSize: String, CaseIterable, Sendable, Codable {
    /// A few MB: unit and integration tests.
    case tiny
    /// A few hundred MB: the README demo on a 2-core machine.
    case small
    /// A few GB: the kernel-benchmark shape (hidden 2048, 12 layers, 64 experts of 512, top-8).
    case medium
}

/// Optional per-field overrides (nil = keep the size's value).
public struct SynthOverrides: Sendable, Codable, Equatable {
    public var hidden: Int?
    public var layers: Int?
    public var intermediate: Int?
    public var moeIntermediate: Int?
    public var experts: Int?
    public var topK: Int?
    public var groups: Int?
    public var topkGroup: Int?
    public var sharedExperts: Int?
    public var firstDense: Int?
    public var heads: Int?
    public var qLora: Int?
    public var kvLora: Int?
    public var ropeDim: Int?
    public var nopeDim: Int?
    public var vDim: Int?
    public var vocab: Int?
    public var mtp: Int?
    public init() {}
}

/// Storage format of the synthetic weights.
public enum SynthDType: String, CaseIterable, Sendable, Codable {
    case bf16
    /// Linear weights F8_E4M3 with 128x128 F32 block scales; embedding, head, norms, router BF16; bias F32.
    case fp8
}

/// Progress of a synth run (bytes written so far).
public struct SynthProgress: Sendable {
    public let written: Int
    public let total: Int
    public let seconds: Double
}

/// What synth wrote.
public struct SynthResult: Sendable {
    public let directory: String
    /// The DeepSeek-V3 / Kimi K2 config written (nil for the other families: `write(family:)` returns theirs).
    public let config: ModelConfig?
    public let shards: [String]
    public let tensors: Int
    public let bytes: Int
    public let seconds: Double
    /// Tokenizer files written next to the weights (empty when none was asked for).
    public var tokenizerFiles: [String] = []
}

public enum Synth {
    /// The config of a scaled-down preset. Structure follows the preset: dense-first layer count scaled
    /// (at least 1 if the preset has any), groups kept when the preset groups (n_group > 1), MTP kept.
    public static func config(preset: ModelPreset, size: SynthSize, overrides o: SynthOverrides = SynthOverrides(),
                              dtype: SynthDType = .bf16) throws(ConfigError) -> ModelConfig {
        var c = preset.config
        let base = c
        struct Shape { var hidden, layers, inter, moeInter, experts, topK, groups, topkGroup, heads, qLora, kvLora, rope, nope, v, vocab: Int }
        var s: Shape
        switch size {
        case .tiny:
            s = Shape(hidden: 128, layers: 4, inter: 256, moeInter: 64, experts: 16, topK: 4, groups: 4, topkGroup: 2,
                      heads: 4, qLora: 64, kvLora: 32, rope: 16, nope: 32, v: 32, vocab: 1024)
        case .small:
            s = Shape(hidden: 1024, layers: 6, inter: 2816, moeInter: 256, experts: 32, topK: 8, groups: 8, topkGroup: 4,
                      heads: 8, qLora: 384, kvLora: 128, rope: 32, nope: 64, v: 64, vocab: 32000)
        case .medium:
            s = Shape(hidden: 2048, layers: 12, inter: 5632, moeInter: 512, experts: 64, topK: 8, groups: 8, topkGroup: 4,
                      heads: 16, qLora: 384, kvLora: 256, rope: 32, nope: 64, v: 64, vocab: 32000)
        }
        if base.nGroup <= 1 { s.groups = 1; s.topkGroup = 1 }
        c.hiddenSize = o.hidden ?? s.hidden
        c.numHiddenLayers = o.layers ?? s.layers
        c.intermediateSize = o.intermediate ?? s.inter
        c.moeIntermediateSize = o.moeIntermediate ?? s.moeInter
        c.nRoutedExperts = o.experts ?? s.experts
        c.numExpertsPerTok = o.topK ?? s.topK
        c.nGroup = o.groups ?? s.groups
        c.topkGroup = o.topkGroup ?? min(s.topkGroup, c.nGroup)
        c.nSharedExperts = o.sharedExperts ?? base.nSharedExperts
        let scaledDense = Int((Double(base.firstKDenseReplace * c.numHiddenLayers) / Double(base.numHiddenLayers)).rounded())
        c.firstKDenseReplace = o.firstDense ?? min(c.numHiddenLayers, base.firstKDenseReplace > 0 ? max(1, scaledDense) : 0)
        c.numAttentionHeads = o.heads ?? s.heads
        c.numKeyValueHeads = c.numAttentionHeads
        c.qLoraRank = o.qLora ?? s.qLora
        c.kvLoraRank = o.kvLora ?? s.kvLora
        c.qkRopeHeadDim = o.ropeDim ?? s.rope
        c.qkNopeHeadDim = o.nopeDim ?? s.nope
        c.vHeadDim = o.vDim ?? s.v
        c.vocabSize = o.vocab ?? s.vocab
        c.numNextnPredictLayers = o.mtp ?? base.mtpLayerCount
        c.numMtpLayers = nil
        if let bos = c.bosTokenId, bos >= c.vocabSize { c.bosTokenId = max(c.vocabSize - 2, 0) }
        if c.eosIDs.contains(where: { $0 >= c.vocabSize }) { c.eosTokenId = EosTokenIDs([c.vocabSize - 1]) }
        c.quantizationConfig = dtype == .fp8 ? (base.quantizationConfig ?? QuantizationConfig()) : nil
        c.torchDtype = "bfloat16"
        c.dtype = nil
        try c.validate()
        return c
    }

    /// How each tensor is stored and initialised.
    struct Plan {
        let spec: TensorSpec
        let dtype: DType
        /// Uniform amplitude for linear/embedding weights; norms and bias use their own recipes.
        let amplitude: Float
        var declarations: [TensorDeclaration] {
            var d = [TensorDeclaration(name: spec.name, dtype: dtype, shape: spec.shape)]
            if dtype == .f8e4m3 { d.append(TensorDeclaration(name: spec.scaleName, dtype: .f32, shape: spec.scaleShape)) }
            return d
        }
        var bytes: Int { declarations.reduce(0) { $0 + $1.byteCount } }
    }

    /// Magnitudes: uniform with std 1/sqrt(fan_in) for linears (activations stay O(1) after every RMSNorm),
    /// residual-writing projections (o_proj, down_proj) further x 1/sqrt(2 x layers) so the residual stream stays
    /// O(1) through all layers; embedding std 1; lm_head std 2/sqrt(D) so logits are spread but finite.
    static func plans(config c: ModelConfig, dtype: SynthDType) -> [Plan] {
        plans(specs: TensorTable(config: c).specs, layers: c.numHiddenLayers + c.mtpLayerCount, dtype: dtype)
    }

    static func plans(specs: [TensorSpec], layers: Int, dtype: SynthDType) -> [Plan] {
        let residual = 1 / Float(2 * max(layers, 1)).squareRoot()
        let uniformStd = Float(3).squareRoot()   // amplitude of a uniform with std 1
        // Optional tensors (the MTP layer's copies of embedding and lm_head, which HF ties to the main ones) are
        // left out: they would double the vocabulary-sized bytes of small models.
        return specs.filter { !$0.optional }.map { spec in
            let stored: DType
            if spec.dtypes.first == .f32 { stored = .f32 } else if spec.quantizable && dtype == .fp8 { stored = .f8e4m3 } else { stored = .bf16 }
            var std: Float = 1
            if spec.shape.count == 2 {
                std = 1 / Float(spec.shape[1]).squareRoot()
                if spec.name.hasSuffix("o_proj.weight") || spec.name.hasSuffix("down_proj.weight") || spec.name.hasSuffix(".w2.weight") { std *= residual }
                if spec.role == .embedding { std = 1 }
                if spec.role == .head { std = 2 / Float(spec.shape[1]).squareRoot() }
            }
            return Plan(spec: spec, dtype: stored, amplitude: std * uniformStd)
        }
    }

    /// Writes the checkpoint into `directory` (created if needed). `progress` is called about once a second.
    /// `tokenizer` also writes a byte-level BPE tokenizer of the config's family (its vocabulary fills
    /// vocab_size), its special tokens and chat template, so text prompts work on the synthetic model.
    public static func write(config: ModelConfig, dtype: SynthDType, seed: UInt64, directory: String, shards requested: Int? = nil,
                             tokenizer: Bool = true, progress: ((SynthProgress) -> Void)? = nil) throws -> SynthResult {
        var config = config
        let style: SyntheticTokenizer.Style = config.modelType == "kimi_k2" ? .kimiK2 : .deepseekV3
        let written = try writeCheckpoint(plans: plans(config: config, dtype: dtype), vocabSize: config.vocabSize,
                                          maxPositions: config.maxPositionEmbeddings, tokenizer: tokenizer ? style : nil, seed: seed,
                                          directory: directory, shards: requested, progress: progress) { bos, eos in
            if let bos, let eos { config.bosTokenId = bos; config.eosTokenId = EosTokenIDs(eos) }
            return try config.jsonData()
        }
        return SynthResult(directory: directory, config: config, shards: written.shards, tensors: written.tensors, bytes: written.bytes,
                           seconds: written.seconds, tokenizerFiles: written.tokenizerFiles)
    }

    /// A GQA family's preset at `size` (the size class's dimensions; the family keeps its structure).
    public static func config<C: ScalableFamilyConfig>(family base: C, size: SynthSize, dtype: SynthDType = .bf16) throws -> C {
        let d: ScaledDimensions
        switch size {
        case .tiny: d = ScaledDimensions(hidden: 128, layers: 4, intermediate: 256, moeIntermediate: 64, experts: 16, topK: 4, heads: 4, kvHeads: 2, headDim: 32, vocab: 1024)
        case .small: d = ScaledDimensions(hidden: 1024, layers: 6, intermediate: 2816, moeIntermediate: 256, experts: 32, topK: 8, heads: 8, kvHeads: 2, headDim: 128, vocab: 32000)
        case .medium: d = ScaledDimensions(hidden: 2048, layers: 12, intermediate: 5632, moeIntermediate: 512, experts: 64, topK: 8, heads: 16, kvHeads: 4, headDim: 128, vocab: 32000)
        }
        var c = base.scaled(d)
        c.quantizationConfig = dtype == .fp8 ? (base.quantizationConfig ?? QuantizationConfig()) : nil
        c.torchDtype = "bfloat16"
        c.dtype = nil
        try c.validate()
        return c
    }

    /// A family preset (Qwen3-MoE, Mixtral, GLM-4.5, MiniMax-M2) at `size`.
    public static func config(preset: FamilyPreset, size: SynthSize, dtype: SynthDType = .bf16) throws -> any ScalableFamilyConfig {
        guard let base = preset.config as? any ScalableFamilyConfig else {
            throw ConfigError(.unknownPreset, field: "--preset", "synth does not scale \(preset.rawValue) yet", hint: "pick another preset")
        }
        return try config(family: base, size: size, dtype: dtype)
    }

    /// Writes a GQA family's checkpoint (config, weights, byte-level BPE tokenizer) into `directory`.
    public static func write<C: ScalableFamilyConfig>(family config: C, dtype: SynthDType, seed: UInt64, directory: String,
                                                       shards: Int? = nil, progress: ((SynthProgress) -> Void)? = nil) throws -> (config: C, result: SynthResult) {
        var config = config
        let written = try writeCheckpoint(plans: plans(specs: config.mainTensorSpecs, layers: config.shape.layerCount, dtype: dtype),
                                          vocabSize: config.vocabSize, maxPositions: config.maxPositionEmbeddings, tokenizer: .deepseekV3,
                                          seed: seed, directory: directory, shards: shards, progress: progress) { bos, eos in
            if let bos, let eos { config.bosTokenId = bos; config.eosTokenId = EosTokenIDs(eos) }
            return try config.jsonData()
        }
        return (config, SynthResult(directory: directory, config: nil, shards: written.shards, tensors: written.tensors, bytes: written.bytes,
                                    seconds: written.seconds, tokenizerFiles: written.tokenizerFiles))
    }

    struct Written { let shards: [String]; let tensors: Int; let bytes: Int; let seconds: Double; let tokenizerFiles: [String] }

    /// The shared writer: tokenizer first (it decides the BOS / EOS ids that `configJSON` gets), config.json, then the
    /// weights in shards with an index.
    static func writeCheckpoint(plans: [Plan], vocabSize: Int, maxPositions: Int, tokenizer style: SyntheticTokenizer.Style?, seed: UInt64,
                                directory: String, shards requested: Int?, progress: ((SynthProgress) -> Void)?,
                                configJSON: (_ bos: Int?, _ eos: [Int]?) throws -> Data) throws -> Written {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError(.writeFailed, file: directory, "cannot create the output directory", hint: "check the path and permissions")
        }
        let total = plans.reduce(0) { $0 + $1.bytes }
        // Several shards even for tiny models, so every run exercises the index path; ~1 GB per shard when large.
        let shardCount = max(1, min(plans.count, requested ?? max(3, (total + (1 << 30) - 1) >> 30)))
        var groups: [[Plan]] = [[]]
        var acc = 0
        for p in plans {
            if acc >= (total * groups.count) / shardCount && !groups[groups.count - 1].isEmpty && groups.count < shardCount { groups.append([]) }
            groups[groups.count - 1].append(p)
            acc += p.bytes
        }
        let names = groups.indices.map { String(format: "model-%05d-of-%05d.safetensors", $0 + 1, groups.count) }
        var tokenizerFiles: [String] = []
        var ids: (bos: Int?, eos: [Int]?) = (nil, nil)
        if let style {
            let written = try SyntheticTokenizer.write(style: style, vocabSize: vocabSize, modelMaxLength: maxPositions, directory: directory)
            ids = (written.bosID, written.eosIDs)
            tokenizerFiles = written.files
        }
        let configText = try configJSON(ids.bos, ids.eos)
        guard FileManager.default.createFile(atPath: directory + "/config.json", contents: configText) else {
            throw CheckpointError(.writeFailed, file: directory + "/config.json", "cannot write", hint: "check the path and permissions")
        }
        let start = Date()
        var written = 0
        var lastReport = Date.distantPast
        var weightMap: [String: String] = [:]
        let generator = Generator(seed: seed)
        for (group, shard) in zip(groups, names) {
            let writer = try SafetensorsWriter(path: directory + "/" + shard, declarations: group.flatMap(\.declarations),
                                               metadata: ["format": "pt", "moerun_synth_seed": "\(seed)"])
            for p in group {
                try generator.write(p, to: writer) { bytes in
                    written += bytes
                    if let progress, Date().timeIntervalSince(lastReport) >= 1 {
                        lastReport = Date()
                        progress(SynthProgress(written: written, total: total, seconds: Date().timeIntervalSince(start)))
                    }
                }
                for d in p.declarations { weightMap[d.name] = shard }
            }
            try writer.finish()
        }
        try SafetensorsWriter.writeIndex(directory: directory, weightMap: weightMap, totalSize: total)
        progress?(SynthProgress(written: total, total: total, seconds: Date().timeIntervalSince(start)))
        return Written(shards: names, tensors: weightMap.count, bytes: total, seconds: Date().timeIntervalSince(start),
                       tokenizerFiles: tokenizerFiles)
    }
}

/// Seeded value generation: each tensor has its own xoshiro256** stream derived from (seed, name), so the
/// values do not depend on shard layout or write order.
final class Generator {
    let seed: UInt64
    private var floats: [Float] = []
    private var out: [UInt8] = []

    init(seed: UInt64) { self.seed = seed }

    /// FNV-1a of the tensor name (stable across runs, unlike Hasher).
    static func nameHash(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    func write(_ p: Synth.Plan, to writer: SafetensorsWriter, wrote: (Int) -> Void) throws {
        var rng = SeededGenerator(seed: seed ^ Self.nameHash(p.spec.name))
        let shape = p.spec.shape
        let rows = shape.count == 2 ? shape[0] : 1
        let cols = shape.last ?? 1
        let isNorm = p.spec.role == .norm && shape.count == 1
        let isBias = p.spec.name.hasSuffix("e_score_correction_bias")
        if p.dtype == .f8e4m3 {
            // 128 rows at a time: amax per 128x128 block -> scale = amax/448 -> e4m3 codes; scales written after.
            let gridCols = ceilDiv(cols, fp8BlockSize)
            var scales: [Float] = []
            scales.reserveCapacity(ceilDiv(rows, fp8BlockSize) * gridCols)
            var r0 = 0
            while r0 < rows {
                let n = min(fp8BlockSize, rows - r0)
                fill(&rng, count: n * cols, amplitude: p.amplitude)
                if out.count < n * cols { out = [UInt8](repeating: 0, count: n * cols) }
                floats.withUnsafeBufferPointer { f in
                    out.withUnsafeMutableBufferPointer { o in
                        for bc in 0..<gridCols {
                            let c0 = bc * fp8BlockSize, c1 = min(cols, c0 + fp8BlockSize)
                            var amax: Float = 0
                            for r in 0..<n { for c in c0..<c1 { amax = max(amax, abs(f[r * cols + c])) } }
                            let scale: Float = amax > 0 ? amax / 448 : 1
                            scales.append(scale)
                            let inv = 1 / scale
                            for r in 0..<n { for c in c0..<c1 { o[r * cols + c] = fastFloatToFP8E4M3(f[r * cols + c] * inv) } }
                        }
                    }
                }
                try writer.write(values: out, count: n * cols)
                wrote(n * cols)
                r0 += n
            }
            // Scales were appended block-row by block-row, i.e. row-major [gridRows, gridCols].
            try writer.write(values: scales)
            wrote(scales.count * 4)
            return
        }
        let chunkRows = max(1, (1 << 20) / max(cols, 1))
        var r0 = 0
        while r0 < rows {
            let n = min(chunkRows, rows - r0)
            let count = n * cols
            if isNorm {
                fill(&rng, count: count, amplitude: 0.1)
                for i in 0..<count { floats[i] += 1 }   // near 1 with jitter
            } else if isBias {
                fill(&rng, count: count, amplitude: 0.01)
            } else {
                fill(&rng, count: count, amplitude: p.amplitude)
            }
            switch p.dtype {
            case .f32:
                try writer.write(values: floats, count: count)
                wrote(count * 4)
            default:
                if out.count < count * 2 { out = [UInt8](repeating: 0, count: count * 2) }
                floats.withUnsafeBufferPointer { f in
                    out.withUnsafeMutableBytes { o in
                        let b = o.bindMemory(to: UInt16.self)
                        for i in 0..<count { b[i] = floatToBF16(f[i]).littleEndian }
                    }
                }
                try writer.write(values: out, count: count * 2)
                wrote(count * 2)
            }
            r0 += n
        }
    }

    /// Fills `floats[0..<count]` with uniform values in [-amplitude, amplitude).
    private func fill(_ rng: inout SeededGenerator, count: Int, amplitude: Float) {
        if floats.count < count { floats = [Float](repeating: 0, count: count) }
        let scale = amplitude * 0x1p-23
        floats.withUnsafeMutableBufferPointer { f in
            var i = 0
            while i + 1 < count {
                let x = rng.next()
                f[i] = Float(Int32(truncatingIfNeeded: x >> 40) - (1 << 23)) * scale
                f[i + 1] = Float(Int32(truncatingIfNeeded: (x >> 8) & 0xFF_FFFF) - (1 << 23)) * scale
                i += 2
            }
            if i < count { f[i] = Float(Int32(truncatingIfNeeded: rng.next() >> 40) - (1 << 23)) * scale }
        }
    }
}

/// Float -> e4m3fn with round-to-nearest-even and saturation at 448, by integer rounding of the float's bits;
/// equal to `floatToFP8E4M3` for every non-NaN input (tested), several times faster (synth writes GBs).
@inline(__always)
func fastFloatToFP8E4M3(_ x: Float) -> UInt8 {
    let bits = x.bitPattern
    let sign = UInt8(truncatingIfNeeded: (bits >> 24) & 0x80)
    let magnitude = bits & 0x7FFF_FFFF
    if magnitude >= 0x43E0_0000 { return sign | 0x7E }                 // >= 448: saturate
    if magnitude < 0x3C80_0000 {                                        // < 2^-6: subnormal steps of 2^-9
        return sign | UInt8((Float(bitPattern: magnitude) * 512).rounded(.toNearestOrEven))
    }
    // Keep 3 mantissa bits with RNE (a carry rolls into the exponent), then rebias 127 -> 7.
    let rounded = magnitude &+ 0x7FFFF &+ ((magnitude >> 20) & 1)
    return sign | UInt8(min((rounded >> 20) &- (120 << 3), 0x7E))
}
