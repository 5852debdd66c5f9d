// TensorTable: for a config, every HF checkpoint tensor the model has (incl. MTP layers), with shape, allowed
// dtypes, component, layer and expert; and the check of a checkpoint's tensor list against it.
import ModelKit
import Tensors

/// The full expected tensor set of a config.
public struct TensorTable: Sendable {
    public let config: ModelConfig
    /// Every tensor, main model first (embedding, layers in order, norm, head), then MTP layers.
    public let specs: [TensorSpec]
    private let byName: [String: Int]

    static let linearDTypes: [DType] = [.bf16, .f16, .f32, .f8e4m3]
    static let plainDTypes: [DType] = [.bf16, .f16, .f32]
    static let biasDTypes: [DType] = [.f32, .bf16, .f16]

    public init(config: ModelConfig) {
        self.config = config
        var specs: [TensorSpec] = []
        let c = config
        let d = c.hiddenSize
        // What DeepSeekModel.loadLayer splits under tensor parallelism: per-head q / kv_b, o_proj and the FFNs' outputs.
        let splitSuffixes = ["q_b_proj.weight", "self_attn.q_proj.weight", "kv_b_proj.weight", "o_proj.weight", "lm_head.weight"]
        func add(_ name: String, _ shape: [Int], _ role: TensorComponent, layer: Int? = nil, expert: Int? = nil,
                 mtp: Bool = false, quantizable: Bool = false, dtypes: [DType]? = nil, optional: Bool = false) {
            let splits = !mtp && expert == nil && (splitSuffixes.contains { name.hasSuffix($0) } || role == .denseFFN || role == .sharedExpert)
            specs.append(TensorSpec(name: name, shape: shape,
                                    dtypes: dtypes ?? (quantizable ? Self.linearDTypes : Self.plainDTypes),
                                    component: mtp ? .mtp : role, role: role, layer: layer, expert: expert,
                                    quantizable: quantizable, optional: optional, splitsUnderTP: splits))
        }
        func decoderLayer(_ l: Int, moe: Bool, mtp: Bool) {
            let p = "model.layers.\(l)."
            let h = c.numAttentionHeads
            add(p + "input_layernorm.weight", [d], .norm, layer: l, mtp: mtp)
            if let q = c.qLoraRank {
                add(p + "self_attn.q_a_proj.weight", [q, d], .attention, layer: l, mtp: mtp, quantizable: true)
                add(p + "self_attn.q_a_layernorm.weight", [q], .norm, layer: l, mtp: mtp)
                add(p + "self_attn.q_b_proj.weight", [h * c.qkHeadDim, q], .attention, layer: l, mtp: mtp, quantizable: true)
            } else {
                add(p + "self_attn.q_proj.weight", [h * c.qkHeadDim, d], .attention, layer: l, mtp: mtp, quantizable: true)
            }
            add(p + "self_attn.kv_a_proj_with_mqa.weight", [c.kvLoraRank + c.qkRopeHeadDim, d], .attention, layer: l, mtp: mtp, quantizable: true)
            add(p + "self_attn.kv_a_layernorm.weight", [c.kvLoraRank], .norm, layer: l, mtp: mtp)
            add(p + "self_attn.kv_b_proj.weight", [h * (c.qkNopeHeadDim + c.vHeadDim), c.kvLoraRank], .attention, layer: l, mtp: mtp, quantizable: true)
            add(p + "self_attn.o_proj.weight", [d, h * c.vHeadDim], .attention, layer: l, mtp: mtp, quantizable: true)
            add(p + "post_attention_layernorm.weight", [d], .norm, layer: l, mtp: mtp)
            if !moe {
                let i = c.intermediateSize
                add(p + "mlp.gate_proj.weight", [i, d], .denseFFN, layer: l, mtp: mtp, quantizable: true)
                add(p + "mlp.up_proj.weight", [i, d], .denseFFN, layer: l, mtp: mtp, quantizable: true)
                add(p + "mlp.down_proj.weight", [d, i], .denseFFN, layer: l, mtp: mtp, quantizable: true)
                return
            }
            let e = c.nRoutedExperts, mi = c.moeIntermediateSize
            add(p + "mlp.gate.weight", [e, d], .router, layer: l, mtp: mtp)
            add(p + "mlp.gate.e_score_correction_bias", [e], .router, layer: l, mtp: mtp, dtypes: Self.biasDTypes)
            for x in 0..<e {
                let q = p + "mlp.experts.\(x)."
                add(q + "gate_proj.weight", [mi, d], .routedExpert, layer: l, expert: x, mtp: mtp, quantizable: true)
                add(q + "up_proj.weight", [mi, d], .routedExpert, layer: l, expert: x, mtp: mtp, quantizable: true)
                add(q + "down_proj.weight", [d, mi], .routedExpert, layer: l, expert: x, mtp: mtp, quantizable: true)
            }
            if c.nSharedExperts > 0 {
                let si = mi * c.nSharedExperts
                add(p + "mlp.shared_experts.gate_proj.weight", [si, d], .sharedExpert, layer: l, mtp: mtp, quantizable: true)
                add(p + "mlp.shared_experts.up_proj.weight", [si, d], .sharedExpert, layer: l, mtp: mtp, quantizable: true)
                add(p + "mlp.shared_experts.down_proj.weight", [d, si], .sharedExpert, layer: l, mtp: mtp, quantizable: true)
            }
        }

        add("model.embed_tokens.weight", [c.vocabSize, d], .embedding)
        for l in 0..<c.numHiddenLayers { decoderLayer(l, moe: c.isMoELayer(l), mtp: false) }
        add("model.norm.weight", [d], .norm)
        if c.tieWordEmbeddings != true { add("lm_head.weight", [c.vocabSize, d], .head) }
        for m in 0..<max(c.mtpLayerCount, 0) {
            // MTP layer (DeepSeek-V3 layer 61): glue tensors + a full decoder layer whose FFN is always MoE.
            let l = c.numHiddenLayers + m
            let p = "model.layers.\(l)."
            add(p + "embed_tokens.weight", [c.vocabSize, d], .embedding, layer: l, mtp: true, optional: true)
            add(p + "enorm.weight", [d], .norm, layer: l, mtp: true)
            add(p + "hnorm.weight", [d], .norm, layer: l, mtp: true)
            add(p + "eh_proj.weight", [d, 2 * d], .mtp, layer: l, mtp: true, quantizable: true)
            decoderLayer(l, moe: true, mtp: true)
            add(p + "shared_head.norm.weight", [d], .norm, layer: l, mtp: true)
            add(p + "shared_head.head.weight", [c.vocabSize, d], .head, layer: l, mtp: true, optional: true)
        }
        self.specs = specs
        var index: [String: Int] = [:]
        for (i, s) in specs.enumerated() { index[s.name] = i }
        byName = index
    }

    public subscript(name: String) -> TensorSpec? { byName[name].map { specs[$0] } }

    /// Main-model tensors only.
    public var mainSpecs: [TensorSpec] { specs.filter { !$0.isMTP } }
    /// MTP-layer tensors only.
    public var mtpSpecs: [TensorSpec] { specs.filter(\.isMTP) }
}

/// A tensor as a checkpoint reader reports it (plain values, so Models needs no Checkpoint import).
public struct CheckpointTensor: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let file: String
    public init(name: String, dtype: DType, shape: [Int], file: String) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.file = file
    }
}

/// Result of checking a checkpoint's tensors against the table.
public struct TensorAccounting: Sendable, Codable, Equatable {
    /// Tensors of the checkpoint matched to a table entry (weights and vectors).
    public var matched: Int
    /// FP8 block-scale tensors matched to their weight.
    public var scales: Int
    /// Checkpoint tensors the table does not know (tolerated, reported).
    public var unexpected: [String]
    /// Whether the checkpoint carries the MTP layer(s) the config declares.
    public var mtpPresent: Bool
    /// Optional table entries that are absent (e.g. MTP copies of embedding / head).
    public var optionalAbsent: [String]
    /// Checkpoint tensor count per stored dtype.
    public var dtypeCounts: [String: Int]
    /// Total checkpoint tensors.
    public var total: Int
}

extension TensorTable {
    /// Checks presence, shape and dtype of every tensor the model needs; FP8 weights need a correct scale sibling.
    /// MTP tensors are required only if any MTP tensor is present or `requireMTP` is set.
    public func check(_ tensors: [CheckpointTensor], requireMTP: Bool = false, checkpointName: String = "checkpoint") throws(ConfigError) -> TensorAccounting {
        let mtpPrefixes = (0..<max(config.mtpLayerCount, 0)).map { "model.layers.\(config.numHiddenLayers + $0)." }
        return try Self.check(specs, tensors, mtpPrefixes: mtpPrefixes, requireMTP: requireMTP, checkpointName: checkpointName)
    }

    /// `check` against any family's table: `mtpPrefixes` name the MTP layers (whose tensors are then optional as a group).
    public static func check(_ specs: [TensorSpec], _ tensors: [CheckpointTensor], mtpPrefixes: [String] = [], requireMTP: Bool = false,
                             checkpointName: String = "checkpoint") throws(ConfigError) -> TensorAccounting {
        var present: [String: CheckpointTensor] = [:]
        for t in tensors { present[t.name] = t }
        let mtpPresent = !mtpPrefixes.isEmpty && tensors.contains { t in mtpPrefixes.contains { t.name.hasPrefix($0) } }
        var accounted = Set<String>()
        var matched = 0, scales = 0
        var optionalAbsent: [String] = []
        for spec in specs {
            if spec.isMTP && !mtpPresent && !requireMTP { continue }
            guard let t = present[spec.name] else {
                if spec.optional { optionalAbsent.append(spec.name); continue }
                throw ConfigError(.missingTensor, tensor: spec.name, file: checkpointName,
                                  "required tensor is absent (expected shape \(spec.shape))",
                                  hint: spec.isMTP ? "the config declares MTP layers; the checkpoint is incomplete (or set num_nextn_predict_layers to 0)"
                                                   : "the checkpoint is incomplete or was made for a different config; compare with `moerun inspect`")
            }
            guard t.shape == spec.shape else {
                throw ConfigError(.tensorShape, tensor: spec.name, file: t.file,
                                  "shape \(t.shape) but the config implies \(spec.shape)",
                                  hint: "config.json does not match the weights (hidden_size, heads, ranks, experts?)")
            }
            guard spec.dtypes.contains(t.dtype) else {
                throw ConfigError(.tensorDType, tensor: spec.name, file: t.file,
                                  "dtype \(t.dtype) not accepted here (allowed: \(spec.dtypes.map(\.rawValue).joined(separator: ", ")))",
                                  hint: spec.quantizable ? "store this linear weight as BF16/F16/F32 or F8_E4M3 with block scales"
                                                         : "norms, router, embedding and head are not quantized; store them as BF16/F16/F32")
            }
            accounted.insert(spec.name)
            matched += 1
            if t.dtype == .f8e4m3 {
                guard let s = present[spec.scaleName] else {
                    throw ConfigError(.missingTensor, tensor: spec.scaleName, file: t.file,
                                      "F8_E4M3 weight '\(spec.name)' has no block-scale tensor",
                                      hint: "FP8 weights need a [ceil(out/128), ceil(in/128)] F32 weight_scale_inv sibling")
                }
                guard s.shape == spec.scaleShape else {
                    throw ConfigError(.tensorShape, tensor: spec.scaleName, file: s.file,
                                      "scale grid \(s.shape) but weight \(spec.shape) needs \(spec.scaleShape) (128x128 blocks, ceil)",
                                      hint: "re-quantize with 128x128 blocks; partial edge blocks count as whole blocks")
                }
                guard s.dtype == .f32 else {
                    throw ConfigError(.tensorDType, tensor: spec.scaleName, file: s.file, "scale dtype \(s.dtype), expected F32",
                                      hint: "block scales are F32 multipliers")
                }
                accounted.insert(spec.scaleName)
                scales += 1
            }
        }
        var counts: [String: Int] = [:]
        for t in tensors { counts[t.dtype.rawValue, default: 0] += 1 }
        let unexpected = tensors.map(\.name).filter { !accounted.contains($0) }.sorted()
        return TensorAccounting(matched: matched, scales: scales, unexpected: unexpected, mtpPresent: mtpPresent,
                                optionalAbsent: optionalAbsent, dtypeCounts: counts, total: tensors.count)
    }
}
