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
    public var mainTensorSpecs: [TensorSpec] { TensorTable(config: self).mainSpecs }

    public func loadModel(source: any TensorSource, shard: ModelShard, dispatcher: (any ExpertDispatcher)?, pool: ComputePool,
                          weightLayout: WeightLayout, progress: ((Int, Int) -> Void)?) throws -> DecoderModel {
        try DeepSeekModel(config: self, source: source, layers: shard.layers, experts: shard.experts, includeEmbedding: shard.includeEmbedding,
                          includeHead: shard.includeHead, dispatcher: dispatcher, pool: pool, weightLayout: weightLayout, progress: progress)
    }
}
