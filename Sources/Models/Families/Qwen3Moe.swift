// Qwen3-MoE (`qwen3_moe`: Qwen3-30B-A3B, Qwen3-235B-A22B): port of transformers' models/qwen3_moe/modeling_qwen3_moe.py.
// Grouped-query attention with per-head RMSNorm of q and k before rotate-half RoPE, head_dim explicit; MoE layers route
// by softmax over all experts, top-k, renormalised when `norm_topk_prob`; no shared expert; layers listed in
// `mlp_only_layers` (or off the `decoder_sparse_step` grid) are dense SwiGLU of `intermediate_size`.
import Foundation
import Kernels
import Tensors

public struct Qwen3MoeConfig: GQAFamilyConfig, Equatable {
    public var modelType: String
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var moeIntermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    /// Explicit in every released config; HF falls back to hidden_size / num_attention_heads.
    public var headDim: Int?
    public var numExperts: Int
    public var numExpertsPerTok: Int
    public var normTopkProb: Bool?
    public var decoderSparseStep: Int?
    public var mlpOnlyLayers: [Int]?
    public var rmsNormEps: Double
    public var ropeTheta: Double?
    public var ropeScaling: RopeScaling?
    public var ropeParameters: RopeScaling?
    public var maxPositionEmbeddings: Int
    public var attentionBias: Bool?
    public var tieWordEmbeddings: Bool?
    public var hiddenAct: String?
    public var slidingWindow: Int?
    public var useSlidingWindow: Bool?
    public var bosTokenId: Int?
    public var eosTokenId: EosTokenIDs?
    public var torchDtype: String?
    public var dtype: String?
    public var quantizationConfig: QuantizationConfig?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case modelType = "model_type", vocabSize = "vocab_size", hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", moeIntermediateSize = "moe_intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", numExperts = "num_experts"
        case numExpertsPerTok = "num_experts_per_tok", normTopkProb = "norm_topk_prob"
        case decoderSparseStep = "decoder_sparse_step", mlpOnlyLayers = "mlp_only_layers", rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta", ropeScaling = "rope_scaling", ropeParameters = "rope_parameters"
        case maxPositionEmbeddings = "max_position_embeddings", attentionBias = "attention_bias"
        case tieWordEmbeddings = "tie_word_embeddings", hiddenAct = "hidden_act", slidingWindow = "sliding_window"
        case useSlidingWindow = "use_sliding_window", bosTokenId = "bos_token_id", eosTokenId = "eos_token_id"
        case torchDtype = "torch_dtype", dtype, quantizationConfig = "quantization_config"
    }

    public static let modelTypes = ["qwen3_moe"]
    public static let knownKeys = Set(CodingKeys.allCases.map(\.rawValue))
    public static let ignoredKnownKeys: Set<String> = GQAConfigKeys.ignored.union(["max_window_layers"])

    public var resolvedHeadDim: Int { headDim ?? hiddenSize / max(numAttentionHeads, 1) }

    /// HF `Qwen3MoeDecoderLayer`: MoE unless listed in mlp_only_layers, and on the decoder_sparse_step grid.
    public func isMoELayer(_ layer: Int) -> Bool {
        !(mlpOnlyLayers ?? []).contains(layer) && numExperts > 0 && (layer + 1) % max(decoderSparseStep ?? 1, 1) == 0
    }

    public func validate() throws {
        var check = GQAConfigCheck()
        check.positive([("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                        ("moe_intermediate_size", moeIntermediateSize), ("num_hidden_layers", numHiddenLayers),
                        ("num_attention_heads", numAttentionHeads), ("num_key_value_heads", numKeyValueHeads),
                        ("head_dim", resolvedHeadDim), ("num_experts", numExperts), ("num_experts_per_tok", numExpertsPerTok),
                        ("max_position_embeddings", maxPositionEmbeddings)])
        check.attention(heads: numAttentionHeads, kvHeads: numKeyValueHeads, headDim: resolvedHeadDim, bias: attentionBias ?? false)
        check.topK(numExpertsPerTok, of: numExperts, expertsField: "num_experts")
        check.common(hiddenAct: hiddenAct, rope: ropeParameters ?? ropeScaling, window: (useSlidingWindow ?? false) ? slidingWindow : nil,
                     quantization: quantizationConfig)
        if let bad = (mlpOnlyLayers ?? []).first(where: { $0 < 0 || $0 >= numHiddenLayers }) {
            check.fail(.invalidValue, "mlp_only_layers", "lists layer \(bad), outside 0..<\(numHiddenLayers)", "list decoder layer indices")
        }
        try check.throwFirst()
    }

    public var decoder: GQADecoder {
        let attention = GQAShape(heads: numAttentionHeads, kvHeads: numKeyValueHeads, headDim: resolvedHeadDim)
        let moe = MoEShape(experts: numExperts, topK: numExpertsPerTok, width: moeIntermediateSize, sharedWidth: 0, scoring: .softmax)
        let router = RouterParameters(scoring: .softmax, experts: numExperts, topK: numExpertsPerTok, groups: 1, topKGroups: 1,
                                      normTopKProb: normTopkProb ?? false, routedScalingFactor: 1)
        let layers = (0..<numHiddenLayers).map { l in
            GQALayer(index: l, attention: attention, qkNorm: .perHead, ffn: isMoELayer(l) ? .moe(moe) : .dense(width: intermediateSize),
                     router: router, denseNames: mlpDenseNames, moeNames: .mlp())
        }
        return GQADecoder(hidden: hiddenSize, vocab: vocabSize, layers: layers, tiedEmbeddings: tieWordEmbeddings ?? false, eps: rmsNormEps,
                          rope: .standard(dim: resolvedHeadDim, base: ropeTheta ?? ropeParameters?.ropeTheta ?? 10000))
    }

    public var facts: ArchitectureFacts {
        ArchitectureFacts(attention: "GQA \(numAttentionHeads) q / \(numKeyValueHeads) kv, head \(resolvedHeadDim)", router: "softmax top-\(numExpertsPerTok)" + ((normTopkProb ?? false) ? ", renormalised" : ""),
                          norms: "pre-norm RMSNorm; per-head QK-norm", positions: "RoPE rotate-half on \(resolvedHeadDim) dims, θ \(ModelConfig.number(ropeTheta ?? ropeParameters?.ropeTheta ?? 10000))")
    }

}
