// ModelConfig: HF `config.json` of DeepSeek-V3 / Kimi K2 decoded with HF key names.
// `kimi_k2` is an alias of `deepseek_v3` (same architecture, different values), not a second type.
import Foundation

/// `rope_scaling` / `rope_parameters` (YaRN or none).
public struct RopeScaling: Codable, Sendable, Equatable {
    public var type: String?
    public var ropeType: String?
    public var factor: Double?
    public var betaFast: Double?
    public var betaSlow: Double?
    public var mscale: Double?
    public var mscaleAllDim: Double?
    public var originalMaxPositionEmbeddings: Int?
    public var attentionFactor: Double?
    public var ropeTheta: Double?
    /// Share of each head's dims that RoPE rotates (transformers 5 writes it here; GLM-4.5, MiniMax-M2).
    public var partialRotaryFactor: Double?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case type
        case ropeType = "rope_type"
        case factor
        case betaFast = "beta_fast"
        case betaSlow = "beta_slow"
        case mscale
        case mscaleAllDim = "mscale_all_dim"
        case originalMaxPositionEmbeddings = "original_max_position_embeddings"
        case attentionFactor = "attention_factor"
        case ropeTheta = "rope_theta"
        case partialRotaryFactor = "partial_rotary_factor"
    }

    public init(type: String? = "yarn", factor: Double? = nil, betaFast: Double? = nil, betaSlow: Double? = nil,
                mscale: Double? = nil, mscaleAllDim: Double? = nil, originalMaxPositionEmbeddings: Int? = nil) {
        self.type = type
        self.factor = factor
        self.betaFast = betaFast
        self.betaSlow = betaSlow
        self.mscale = mscale
        self.mscaleAllDim = mscaleAllDim
        self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
    }

    /// HF keys of a rope dict this type decodes.
    public static let knownKeys: Set<String> = Set(CodingKeys.allCases.map(\.rawValue))

    /// The effective kind: `rope_type` (transformers 5) or `type` (older configs); "default" when absent.
    public var kind: String { ropeType ?? type ?? "default" }
}

/// `quantization_config` of FP8 block-quantized checkpoints.
public struct QuantizationConfig: Codable, Sendable, Equatable {
    public var quantMethod: String?
    public var fmt: String?
    public var activationScheme: String?
    public var weightBlockSize: [Int]?
    public var scaleFmt: String?
    /// Modules kept out of FP8 (MiniMax-M2: gate, e_score_correction_bias, lm_head); the stored dtypes say the same.
    public var modulesToNotConvert: [String]?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case quantMethod = "quant_method"
        case fmt
        case activationScheme = "activation_scheme"
        case weightBlockSize = "weight_block_size"
        case scaleFmt = "scale_fmt"
        case modulesToNotConvert = "modules_to_not_convert"
    }

    public init(quantMethod: String? = "fp8", fmt: String? = "e4m3", activationScheme: String? = "dynamic",
                weightBlockSize: [Int]? = [128, 128], scaleFmt: String? = nil) {
        self.quantMethod = quantMethod
        self.fmt = fmt
        self.activationScheme = activationScheme
        self.weightBlockSize = weightBlockSize
        self.scaleFmt = scaleFmt
    }

    /// HF keys of `quantization_config` this type decodes.
    public static let knownKeys: Set<String> = Set(CodingKeys.allCases.map(\.rawValue))
}

/// DeepSeek-V3 family configuration (HF field names in `CodingKeys`).
public struct ModelConfig: Codable, Sendable, Equatable {
    public var modelType: String
    public var architectures: [String]?
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var moeIntermediateSize: Int
    public var numHiddenLayers: Int
    public var numNextnPredictLayers: Int?
    /// transformers-5 spelling of the MTP layer count (`num_mtp_layers`); `num_nextn_predict_layers` wins.
    public var numMtpLayers: Int?
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int?
    public var qLoraRank: Int?
    public var kvLoraRank: Int
    public var qkNopeHeadDim: Int
    public var qkRopeHeadDim: Int
    public var vHeadDim: Int
    public var nRoutedExperts: Int
    public var numExpertsPerTok: Int
    public var nSharedExperts: Int
    public var nGroup: Int
    public var topkGroup: Int
    public var routedScalingFactor: Double
    public var normTopkProb: Bool
    public var scoringFunc: String?
    public var topkMethod: String?
    public var firstKDenseReplace: Int
    public var moeLayerFreq: Int?
    public var hiddenAct: String?
    public var rmsNormEps: Double
    public var ropeTheta: Double?
    public var ropeScaling: RopeScaling?
    public var ropeParameters: RopeScaling?
    public var maxPositionEmbeddings: Int
    public var attentionBias: Bool?
    public var tieWordEmbeddings: Bool?
    public var bosTokenId: Int?
    public var eosTokenId: EosTokenIDs?
    public var quantizationConfig: QuantizationConfig?
    public var torchDtype: String?
    /// transformers-5 spelling of `torch_dtype`.
    public var dtype: String?
    /// HF RoPE layout flag; only the interleaved checkpoint layout (true, the default) is supported.
    public var ropeInterleave: Bool?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case modelType = "model_type"
        case architectures
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case moeIntermediateSize = "moe_intermediate_size"
        case numHiddenLayers = "num_hidden_layers"
        case numNextnPredictLayers = "num_nextn_predict_layers"
        case numMtpLayers = "num_mtp_layers"
        case numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads"
        case qLoraRank = "q_lora_rank"
        case kvLoraRank = "kv_lora_rank"
        case qkNopeHeadDim = "qk_nope_head_dim"
        case qkRopeHeadDim = "qk_rope_head_dim"
        case vHeadDim = "v_head_dim"
        case nRoutedExperts = "n_routed_experts"
        case numExpertsPerTok = "num_experts_per_tok"
        case nSharedExperts = "n_shared_experts"
        case nGroup = "n_group"
        case topkGroup = "topk_group"
        case routedScalingFactor = "routed_scaling_factor"
        case normTopkProb = "norm_topk_prob"
        case scoringFunc = "scoring_func"
        case topkMethod = "topk_method"
        case firstKDenseReplace = "first_k_dense_replace"
        case moeLayerFreq = "moe_layer_freq"
        case hiddenAct = "hidden_act"
        case rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta"
        case ropeScaling = "rope_scaling"
        case ropeParameters = "rope_parameters"
        case maxPositionEmbeddings = "max_position_embeddings"
        case attentionBias = "attention_bias"
        case tieWordEmbeddings = "tie_word_embeddings"
        case bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id"
        case quantizationConfig = "quantization_config"
        case torchDtype = "torch_dtype"
        case dtype
        case ropeInterleave = "rope_interleave"
    }

    /// Every HF key this type decodes (used to list unknown extra keys once at load).
    public static let knownKeys: Set<String> = Set(CodingKeys.allCases.map(\.rawValue))

    // MARK: derived values

    /// Per-head query/key width: nope + rope.
    public var qkHeadDim: Int { qkNopeHeadDim + qkRopeHeadDim }
    /// Number of MTP layers stored after the main layers (0 when absent).
    public var mtpLayerCount: Int { numNextnPredictLayers ?? numMtpLayers ?? 0 }
    /// The effective RoPE parameters: `rope_parameters` (transformers 5) wins over `rope_scaling`.
    public var effectiveRopeScaling: RopeScaling? { ropeParameters ?? ropeScaling }
    /// RoPE base: `rope_theta`, else the one inside `rope_parameters`, else 10000.
    public var effectiveRopeTheta: Double { ropeTheta ?? ropeParameters?.ropeTheta ?? 10000 }
    /// True when the checkpoint declares FP8 block quantization.
    public var isFP8: Bool { quantizationConfig?.quantMethod == "fp8" }
    /// Whether main-model layer `layer` is an MoE layer (DeepSeek remote-code rule, `moe_layer_freq` honoured).
    public func isMoELayer(_ layer: Int) -> Bool {
        layer >= firstKDenseReplace && layer % max(moeLayerFreq ?? 1, 1) == 0
    }
    /// End-of-sequence ids as a list.
    public var eosIDs: [Int] { eosTokenId?.ids ?? [] }
}

/// `eos_token_id` is an int or a list of ints in HF configs.
public struct EosTokenIDs: Codable, Sendable, Equatable {
    public var ids: [Int]
    public init(_ ids: [Int]) { self.ids = ids }
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let one = try? container.decode(Int.self) { ids = [one] } else { ids = try container.decode([Int].self) }
    }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        if ids.count == 1 { try container.encode(ids[0]) } else { try container.encode(ids) }
    }
}
