// GLM-4.5 / GLM-4.5-Air (`glm4_moe`): port of transformers' models/glm4_moe/modeling_glm4_moe.py. Grouped-query
// attention with q / k / v biases, optional per-head QK-norm before RoPE, rotate-half RoPE on the first
// `partial_rotary_factor` (0.5) of each head; DeepSeek-V3's MoE verbatim (sigmoid router with correction bias and
// groups, renormalised, scaled; one shared expert; the first `first_k_dense_replace` layers dense). The MTP layer the
// checkpoints carry after the main layers is not served (its tensors are reported as unused).
import Foundation
import Kernels
import Tensors

public struct Glm4MoeConfig: GQAFamilyConfig, Equatable {
    public var modelType: String
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var moeIntermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int?
    public var partialRotaryFactor: Double?
    public var attentionBias: Bool?
    public var useQkNorm: Bool?
    public var nRoutedExperts: Int
    public var nSharedExperts: Int?
    public var numExpertsPerTok: Int
    public var nGroup: Int?
    public var topkGroup: Int?
    public var routedScalingFactor: Double?
    public var normTopkProb: Bool?
    public var firstKDenseReplace: Int?
    public var numNextnPredictLayers: Int?
    public var numMtpLayers: Int?
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
        case intermediateSize = "intermediate_size", moeIntermediateSize = "moe_intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", partialRotaryFactor = "partial_rotary_factor"
        case attentionBias = "attention_bias", useQkNorm = "use_qk_norm", nRoutedExperts = "n_routed_experts"
        case nSharedExperts = "n_shared_experts", numExpertsPerTok = "num_experts_per_tok", nGroup = "n_group"
        case topkGroup = "topk_group", routedScalingFactor = "routed_scaling_factor", normTopkProb = "norm_topk_prob"
        case firstKDenseReplace = "first_k_dense_replace", numNextnPredictLayers = "num_nextn_predict_layers"
        case numMtpLayers = "num_mtp_layers", rmsNormEps = "rms_norm_eps", ropeTheta = "rope_theta"
        case ropeScaling = "rope_scaling", ropeParameters = "rope_parameters", maxPositionEmbeddings = "max_position_embeddings"
        case tieWordEmbeddings = "tie_word_embeddings", hiddenAct = "hidden_act", bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id", torchDtype = "torch_dtype", dtype, quantizationConfig = "quantization_config"
    }

    public static let modelTypes = ["glm4_moe"]
    public static let knownKeys = Set(CodingKeys.allCases.map(\.rawValue))
    public static let ignoredKnownKeys: Set<String> = GQAConfigKeys.ignored

    public var resolvedHeadDim: Int { headDim ?? hiddenSize / max(numAttentionHeads, 1) }
    /// HF: `partial_rotary_factor` at the top (hub) or in rope_parameters (transformers 5), 0.5 by default.
    public var rotaryDim: Int {
        Int(Double(resolvedHeadDim) * (partialRotaryFactor ?? ropeParameters?.partialRotaryFactor ?? 0.5))
    }
    public var ropeBase: Double { ropeTheta ?? ropeParameters?.ropeTheta ?? 10000 }
    public func isMoELayer(_ layer: Int) -> Bool { layer >= (firstKDenseReplace ?? 1) }

    public func validate() throws {
        var check = GQAConfigCheck()
        check.positive([("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                        ("moe_intermediate_size", moeIntermediateSize), ("num_hidden_layers", numHiddenLayers),
                        ("num_attention_heads", numAttentionHeads), ("num_key_value_heads", numKeyValueHeads),
                        ("head_dim", resolvedHeadDim), ("n_routed_experts", nRoutedExperts), ("num_experts_per_tok", numExpertsPerTok),
                        ("max_position_embeddings", maxPositionEmbeddings)])
        check.attention(heads: numAttentionHeads, kvHeads: numKeyValueHeads, headDim: resolvedHeadDim, bias: false)
        check.rotary(rotaryDim, headDim: resolvedHeadDim, field: "partial_rotary_factor")
        check.topK(numExpertsPerTok, of: nRoutedExperts, expertsField: "n_routed_experts")
        check.groups(nGroup ?? 1, topK: topkGroup ?? 1, experts: nRoutedExperts, perToken: numExpertsPerTok)
        check.common(hiddenAct: hiddenAct, rope: ropeScaling ?? ropeParameters, window: nil, quantization: quantizationConfig)
        try check.throwFirst()
    }

    public var decoder: GQADecoder {
        let attention = GQAShape(heads: numAttentionHeads, kvHeads: numKeyValueHeads, headDim: resolvedHeadDim, qkvBias: attentionBias ?? false)
        let shared = nSharedExperts ?? 0
        let moe = MoEShape(experts: nRoutedExperts, topK: numExpertsPerTok, width: moeIntermediateSize,
                           sharedWidth: moeIntermediateSize * shared)
        let router = RouterParameters(experts: nRoutedExperts, topK: numExpertsPerTok, groups: max(nGroup ?? 1, 1), topKGroups: topkGroup ?? 1,
                                      normTopKProb: normTopkProb ?? true, routedScalingFactor: Float(routedScalingFactor ?? 1))
        let layers = (0..<numHiddenLayers).map { l in
            GQALayer(index: l, attention: attention, qkNorm: (useQkNorm ?? false) ? .perHead : nil,
                     ffn: isMoELayer(l) ? .moe(moe) : .dense(width: intermediateSize), router: router, denseNames: mlpDenseNames,
                     moeNames: .mlp(bias: "mlp.gate.e_score_correction_bias", shared: shared > 0))
        }
        return GQADecoder(hidden: hiddenSize, vocab: vocabSize, layers: layers, tiedEmbeddings: tieWordEmbeddings ?? false, eps: rmsNormEps,
                          rope: .standard(dim: rotaryDim, base: ropeBase))
    }

    public var facts: ArchitectureFacts {
        let groups = (nGroup ?? 1) > 1 ? "\(nGroup!) groups top \(topkGroup ?? 1), " : "no groups, "
        return ArchitectureFacts(
            attention: "GQA \(numAttentionHeads) q / \(numKeyValueHeads) kv, head \(resolvedHeadDim)" + ((attentionBias ?? false) ? ", q/k/v biases" : ""),
            router: "sigmoid + correction bias, \(groups)top-\(numExpertsPerTok), x\(ModelConfig.number(routedScalingFactor ?? 1))",
            norms: "pre-norm RMSNorm" + ((useQkNorm ?? false) ? "; per-head QK-norm" : ""),
            positions: "RoPE rotate-half on \(rotaryDim) of \(resolvedHeadDim) dims, θ \(ModelConfig.number(ropeBase))")
    }

}
