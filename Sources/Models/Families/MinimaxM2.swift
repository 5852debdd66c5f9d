// MiniMax-M2 (`minimax_m2`): port of transformers' models/minimax_m2/modeling_minimax_m2.py. Grouped-query attention
// with RMSNorm of q and k over the whole projection (before the head split), rotate-half RoPE on the first
// `rotary_dim` of each head; every layer MoE with a sigmoid router whose correction bias
// (`block_sparse_moe.e_score_correction_bias`) steers the selection only, weights renormalised, no scaling, no shared
// expert; experts named w1 / w3 / w2 (gate / up / down). The MTP modules are not served.
import Foundation
import Kernels
import Tensors

public struct MinimaxM2Config: GQAFamilyConfig, Equatable {
    public var modelType: String
    public var vocabSize: Int
    public var hiddenSize: Int
    /// Width of one routed expert.
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int?
    /// The released configs give partial RoPE as `rotary_dim`; transformers 5 also accepts `partial_rotary_factor`.
    public var rotaryDim: Int?
    public var partialRotaryFactor: Double?
    public var numLocalExperts: Int
    public var numExpertsPerTok: Int
    public var scoringFunc: String?
    public var useRoutingBias: Bool?
    public var useQkNorm: Bool?
    public var qkNormType: String?
    public var sharedIntermediateSize: Int?
    public var rmsNormEps: Double
    public var ropeTheta: Double?
    public var ropeScaling: RopeScaling?
    public var ropeParameters: RopeScaling?
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool?
    public var hiddenAct: String?
    public var bosTokenId: Int?
    public var eosTokenId: EosTokenIDs?
    public var torchDtype: String?
    public var dtype: String?
    public var quantizationConfig: QuantizationConfig?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case modelType = "model_type", vocabSize = "vocab_size", hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numKeyValueHeads = "num_key_value_heads", headDim = "head_dim"
        case rotaryDim = "rotary_dim", partialRotaryFactor = "partial_rotary_factor", numLocalExperts = "num_local_experts"
        case numExpertsPerTok = "num_experts_per_tok", scoringFunc = "scoring_func", useRoutingBias = "use_routing_bias"
        case useQkNorm = "use_qk_norm", qkNormType = "qk_norm_type", sharedIntermediateSize = "shared_intermediate_size"
        case rmsNormEps = "rms_norm_eps", ropeTheta = "rope_theta", ropeScaling = "rope_scaling"
        case ropeParameters = "rope_parameters", maxPositionEmbeddings = "max_position_embeddings"
        case tieWordEmbeddings = "tie_word_embeddings", hiddenAct = "hidden_act", bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id", torchDtype = "torch_dtype", dtype, quantizationConfig = "quantization_config"
    }

    public static let modelTypes = ["minimax_m2"]
    public static let knownKeys = Set(CodingKeys.allCases.map(\.rawValue))
    /// Keys of the released config that describe training, MTP or attention variants this checkpoint does not use.
    public static let ignoredKnownKeys: Set<String> = GQAConfigKeys.ignored.union([
        "router_jitter_noise", "attn_type_list", "use_mtp", "num_mtp_modules", "mtp_transformer_layers", "auto_map",
        "layernorm_full_attention_beta", "layernorm_linear_attention_beta", "layernorm_mlp_beta", "full_attn_alpha_factor",
        "full_attn_beta_factor", "linear_attn_alpha_factor", "linear_attn_beta_factor", "mlp_alpha_factor", "mlp_beta_factor",
        "shared_moe_mode", "swa_rope_theta", "sliding_window", "attn_window_size", "partial_rotary_factor_swa",
    ])

    public var resolvedHeadDim: Int { headDim ?? hiddenSize / max(numAttentionHeads, 1) }
    public var resolvedRotaryDim: Int {
        rotaryDim ?? Int(Double(resolvedHeadDim) * (partialRotaryFactor ?? ropeParameters?.partialRotaryFactor ?? 1))
    }
    public var ropeBase: Double { ropeTheta ?? ropeParameters?.ropeTheta ?? 10000 }

    public func validate() throws {
        var check = GQAConfigCheck()
        check.positive([("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                        ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
                        ("num_key_value_heads", numKeyValueHeads), ("head_dim", resolvedHeadDim), ("num_local_experts", numLocalExperts),
                        ("num_experts_per_tok", numExpertsPerTok), ("max_position_embeddings", maxPositionEmbeddings)])
        check.attention(heads: numAttentionHeads, kvHeads: numKeyValueHeads, headDim: resolvedHeadDim, bias: false)
        check.rotary(resolvedRotaryDim, headDim: resolvedHeadDim, field: "rotary_dim")
        check.topK(numExpertsPerTok, of: numLocalExperts, expertsField: "num_local_experts")
        if let s = scoringFunc, s != "sigmoid" {
            check.fail(.unsupportedValue, "scoring_func", "'\(s)' is not implemented", "MiniMax-M2 routes with 'sigmoid'")
        }
        if useQkNorm == false {
            check.fail(.unsupportedValue, "use_qk_norm", "false is not implemented", "the released MiniMax-M2 normalises q and k")
        }
        if let t = qkNormType, t != "per_layer" {
            check.fail(.unsupportedValue, "qk_norm_type", "'\(t)' is not implemented", "'per_layer' (over the whole projection) is")
        }
        if let s = sharedIntermediateSize, s != 0 {
            check.fail(.unsupportedValue, "shared_intermediate_size", "\(s): shared experts are not implemented for MiniMax-M2",
                       "the released MiniMax-M2 has none (0)")
        }
        check.common(hiddenAct: hiddenAct, rope: ropeScaling ?? ropeParameters, window: nil, quantization: quantizationConfig)
        try check.throwFirst()
    }

    public var decoder: GQADecoder {
        let attention = GQAShape(heads: numAttentionHeads, kvHeads: numKeyValueHeads, headDim: resolvedHeadDim, wholeProjectionNorm: true)
        let moe = MoEShape(experts: numLocalExperts, topK: numExpertsPerTok, width: intermediateSize, sharedWidth: 0)
        let router = RouterParameters(experts: numLocalExperts, topK: numExpertsPerTok, groups: 1, topKGroups: 1, normTopKProb: true,
                                      routedScalingFactor: 1)
        let bias = (useRoutingBias ?? true) ? "block_sparse_moe.e_score_correction_bias" : nil
        let layers = (0..<numHiddenLayers).map { l in
            GQALayer(index: l, attention: attention, qkNorm: .wholeProjection, ffn: .moe(moe), router: router, denseNames: mlpDenseNames,
                     moeNames: .blockSparse(bias: bias))
        }
        return GQADecoder(hidden: hiddenSize, vocab: vocabSize, layers: layers, tiedEmbeddings: tieWordEmbeddings ?? false, eps: rmsNormEps,
                          rope: .standard(dim: resolvedRotaryDim, base: ropeBase))
    }

    public var facts: ArchitectureFacts {
        ArchitectureFacts(attention: "GQA \(numAttentionHeads) q / \(numKeyValueHeads) kv, head \(resolvedHeadDim)",
                          router: "sigmoid + correction bias, no groups, top-\(numExpertsPerTok), renormalised",
                          norms: "pre-norm RMSNorm; QK-norm over the whole projection",
                          positions: "RoPE rotate-half on \(resolvedRotaryDim) of \(resolvedHeadDim) dims, θ \(ModelConfig.number(ropeBase))")
    }

}
