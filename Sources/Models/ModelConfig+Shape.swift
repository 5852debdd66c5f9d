// DeepSeek-V3 / Kimi K2's config as the family-free facts the planner and the engine's bookkeeping read.
@_exported import ModelKit
import Kernels
import Tensors

extension ModelConfig {
    public var shape: ModelShape {
        let attention = MLAShape(heads: numAttentionHeads, qLoraRank: qLoraRank, kvLoraRank: kvLoraRank,
                                 qkNopeHeadDim: qkNopeHeadDim, qkRopeHeadDim: qkRopeHeadDim, vHeadDim: vHeadDim)
        let moe = MoEShape(experts: nRoutedExperts, topK: numExpertsPerTok, width: moeIntermediateSize,
                           sharedWidth: moeIntermediateSize * nSharedExperts)
        return ModelShape(hidden: hiddenSize, vocab: vocabSize, layers: (0..<numHiddenLayers).map { l in
            LayerShape(mixer: .mla(attention), ffn: isMoELayer(l) ? .moe(moe) : .dense(width: intermediateSize))
        })
    }
}

extension RouterParameters {
    public init(config: ModelConfig) {
        self.init(experts: config.nRoutedExperts, topK: config.numExpertsPerTok, groups: max(config.nGroup, 1),
                  topKGroups: config.topkGroup, normTopKProb: config.normTopkProb,
                  routedScalingFactor: Float(config.routedScalingFactor))
    }
}

extension KVCache {
    public convenience init(config: ModelConfig) {
        self.init(rowWidth: config.kvLoraRank + config.qkRopeHeadDim)
    }
}

extension ModelConfig: FamilyConfiguration {
    public var facts: ArchitectureFacts {
        let rope = effectiveRopeScaling.map { $0.kind == "yarn" ? ", YaRN x\(Self.number($0.factor ?? 1))" : "" } ?? ""
        return ArchitectureFacts(
            attention: "MLA, \(numAttentionHeads) heads, latent \(kvLoraRank) + rope \(qkRopeHeadDim)" + (qLoraRank.map { ", q LoRA \($0)" } ?? ""),
            router: "sigmoid + correction bias, " + (nGroup > 1 ? "\(nGroup) groups top \(topkGroup), " : "no groups, ")
                + "top-\(numExpertsPerTok), x\(Self.number(routedScalingFactor))",
            norms: "pre-norm RMSNorm; q_a / kv_a latent norms",
            positions: "RoPE interleaved on \(qkRopeHeadDim) dims\(rope), θ \(Self.number(effectiveRopeTheta))")
    }

    static func number(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x) }

    public var mainTensorSpecs: [TensorSpec] { TensorTable(config: self).mainSpecs }

    public func loadModel(source: any TensorSource, shard: ModelShard, dispatcher: (any ExpertDispatcher)?, pool: ComputePool,
                          weightLayout: WeightLayout, progress: ((Int, Int) -> Void)?) throws -> DecoderModel {
        try DeepSeekModel(config: self, source: source, layers: shard.layers, experts: shard.experts, includeEmbedding: shard.includeEmbedding,
                          includeHead: shard.includeHead, dispatcher: dispatcher, pool: pool, weightLayout: weightLayout, progress: progress,
                          tensorParallel: shard.tp)
    }
}
