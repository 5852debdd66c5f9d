// Mixtral (`mixtral`: Mixtral 8x7B, 8x22B): port of transformers' models/mixtral/modeling_mixtral.py. Llama attention
// (grouped-query, rotate-half RoPE, no biases, no QK-norm); every layer is MoE with softmax routing over all experts,
// top-k, always renormalised; experts named `block_sparse_moe.experts.E.w1 / w3 / w2` (gate / up / down).
import Foundation
import Kernels
import Tensors

public struct MixtralConfig: GQAFamilyConfig, Equatable {
    public var modelType: String
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int?
    public var numLocalExperts: Int
    public var numExpertsPerTok: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double?
    public var ropeScaling: RopeScaling?
    public var ropeParameters: RopeScaling?
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool?
    public var hiddenAct: String?
    public var slidingWindow: Int?
    public var bosTokenId: Int?
    public var eosTokenId: EosTokenIDs?
    public var torchDtype: String?
    public var dtype: String?
    public var quantizationConfig: QuantizationConfig?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case modelType = "model_type", vocabSize = "vocab_size", hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numKeyValueHeads = "num_key_value_heads", headDim = "head_dim"
        case numLocalExperts = "num_local_experts", numExpertsPerTok = "num_experts_per_tok", rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta", ropeScaling = "rope_scaling", ropeParameters = "rope_parameters"
        case maxPositionEmbeddings = "max_position_embeddings", tieWordEmbeddings = "tie_word_embeddings"
        case hiddenAct = "hidden_act", slidingWindow = "sliding_window", bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id", torchDtype = "torch_dtype", dtype, quantizationConfig = "quantization_config"
    }

    public static let modelTypes = ["mixtral"]
    public static let knownKeys = Set(CodingKeys.allCases.map(\.rawValue))
    public static let ignoredKnownKeys: Set<String> = GQAConfigKeys.ignored.union(["router_jitter_noise"])

    public var resolvedHeadDim: Int { headDim ?? hiddenSize / max(numAttentionHeads, 1) }

    public func validate() throws {
        var check = GQAConfigCheck()
        check.positive([("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                        ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
                        ("num_key_value_heads", numKeyValueHeads), ("head_dim", resolvedHeadDim), ("num_local_experts", numLocalExperts),
                        ("num_experts_per_tok", numExpertsPerTok), ("max_position_embeddings", maxPositionEmbeddings)])
        check.attention(heads: numAttentionHeads, kvHeads: numKeyValueHeads, headDim: resolvedHeadDim, bias: false)
        check.topK(numExpertsPerTok, of: numLocalExperts, expertsField: "num_local_experts")
        check.common(hiddenAct: hiddenAct, rope: ropeParameters ?? ropeScaling, window: slidingWindow, quantization: quantizationConfig)
        try check.throwFirst()
    }

    public var decoder: GQADecoder {
        let attention = GQAShape(heads: numAttentionHeads, kvHeads: numKeyValueHeads, headDim: resolvedHeadDim)
        let moe = MoEShape(experts: numLocalExperts, topK: numExpertsPerTok, width: intermediateSize, sharedWidth: 0, scoring: .softmax)
        let router = RouterParameters(scoring: .softmax, experts: numLocalExperts, topK: numExpertsPerTok, groups: 1, topKGroups: 1,
                                      normTopKProb: true, routedScalingFactor: 1)
        let layers = (0..<numHiddenLayers).map { l in
            GQALayer(index: l, attention: attention, qkNorm: nil, ffn: .moe(moe), router: router, denseNames: mlpDenseNames,
                     moeNames: .blockSparse())
        }
        return GQADecoder(hidden: hiddenSize, vocab: vocabSize, layers: layers, tiedEmbeddings: tieWordEmbeddings ?? false, eps: rmsNormEps,
                          rope: .standard(dim: resolvedHeadDim, base: ropeTheta ?? ropeParameters?.ropeTheta ?? 1e6))
    }

    public var facts: ArchitectureFacts {
        ArchitectureFacts(attention: "GQA \(numAttentionHeads) q / \(numKeyValueHeads) kv, head \(resolvedHeadDim)", router: "softmax top-\(numExpertsPerTok), renormalised",
                          norms: "pre-norm RMSNorm", positions: "RoPE rotate-half on \(resolvedHeadDim) dims, θ \(ModelConfig.number(ropeTheta ?? ropeParameters?.ropeTheta ?? 1e6))")
    }

}
