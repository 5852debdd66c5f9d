// DeepSeek-V3 / Kimi K2's config as the family-free facts the planner and the engine's bookkeeping read.
@_exported import ModelKit

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
