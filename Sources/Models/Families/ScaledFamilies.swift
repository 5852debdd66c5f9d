// Scaled-down copies of the GQA families' configs (for `moerun synth --preset`): the same structure (attention kind,
// QK-norm, partial rotary, router, shared expert, dense-first layers) at a size class's dimensions.
import Foundation

/// Dimensions of a size class; a family keeps its own structure and takes what applies.
public struct ScaledDimensions: Sendable, Equatable {
    public var hidden: Int, layers: Int, intermediate: Int, moeIntermediate: Int, experts: Int, topK: Int
    public var heads: Int, kvHeads: Int, headDim: Int, vocab: Int

    public init(hidden: Int, layers: Int, intermediate: Int, moeIntermediate: Int, experts: Int, topK: Int, heads: Int, kvHeads: Int,
                headDim: Int, vocab: Int) {
        self.hidden = hidden
        self.layers = layers
        self.intermediate = intermediate
        self.moeIntermediate = moeIntermediate
        self.experts = experts
        self.topK = topK
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.vocab = vocab
    }
}

/// A family config that `synth` can scale and write as config.json.
public protocol ScalableFamilyConfig: FamilyConfiguration, Codable {
    /// The same architecture at `d`'s size (experts and top-k never above the released model's).
    func scaled(_ d: ScaledDimensions) -> Self
    var bosTokenId: Int? { get set }
    var eosTokenId: EosTokenIDs? { get set }
    var torchDtype: String? { get set }
    var dtype: String? { get set }
    var quantizationConfig: QuantizationConfig? { get set }
}

extension ScalableFamilyConfig {
    /// Sorted, pretty HF JSON (as `synth` writes config.json).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

/// The released model's dense-first layer count scaled to `layers` (at least 1 when it has any).
func scaledDenseLayers(_ dense: Int, of total: Int, to layers: Int) -> Int {
    dense == 0 ? 0 : min(layers, max(1, Int((Double(dense * layers) / Double(max(total, 1))).rounded())))
}

extension Qwen3MoeConfig {
    public func scaled(_ d: ScaledDimensions) -> Qwen3MoeConfig {
        var c = self
        c.hiddenSize = d.hidden; c.numHiddenLayers = d.layers; c.intermediateSize = d.intermediate
        c.moeIntermediateSize = d.moeIntermediate; c.numExperts = min(numExperts, d.experts); c.numExpertsPerTok = min(numExpertsPerTok, d.topK)
        c.numAttentionHeads = d.heads; c.numKeyValueHeads = d.kvHeads; c.headDim = d.headDim; c.vocabSize = d.vocab
        c.mlpOnlyLayers = (mlpOnlyLayers ?? []).filter { $0 < d.layers }
        return c
    }
}

extension MixtralConfig {
    public func scaled(_ d: ScaledDimensions) -> MixtralConfig {
        var c = self
        // Mixtral's experts are its FFN: the dense width of the size class, its own 8 experts top-2.
        c.hiddenSize = d.hidden; c.numHiddenLayers = d.layers; c.intermediateSize = d.intermediate
        c.numLocalExperts = min(numLocalExperts, d.experts); c.numExpertsPerTok = min(numExpertsPerTok, d.topK)
        c.numAttentionHeads = d.heads; c.numKeyValueHeads = d.kvHeads; c.headDim = d.headDim; c.vocabSize = d.vocab
        return c
    }
}

extension Glm4MoeConfig {
    public func scaled(_ d: ScaledDimensions) -> Glm4MoeConfig {
        var c = self
        c.hiddenSize = d.hidden; c.intermediateSize = d.intermediate; c.moeIntermediateSize = d.moeIntermediate
        c.firstKDenseReplace = scaledDenseLayers(firstKDenseReplace ?? 1, of: numHiddenLayers, to: d.layers)
        c.numHiddenLayers = d.layers
        c.nRoutedExperts = min(nRoutedExperts, d.experts); c.numExpertsPerTok = min(numExpertsPerTok, d.topK)
        c.nGroup = 1; c.topkGroup = 1
        c.numAttentionHeads = d.heads; c.numKeyValueHeads = d.kvHeads; c.headDim = d.headDim; c.vocabSize = d.vocab
        c.numNextnPredictLayers = 0; c.numMtpLayers = nil
        return c
    }
}

extension MinimaxM2Config {
    public func scaled(_ d: ScaledDimensions) -> MinimaxM2Config {
        var c = self
        c.hiddenSize = d.hidden; c.numHiddenLayers = d.layers; c.intermediateSize = d.moeIntermediate
        c.numLocalExperts = min(numLocalExperts, d.experts); c.numExpertsPerTok = min(numExpertsPerTok, d.topK)
        c.rotaryDim = rotaryDim.map { $0 * d.headDim / max(resolvedHeadDim, 1) }
        c.numAttentionHeads = d.heads; c.numKeyValueHeads = d.kvHeads; c.headDim = d.headDim; c.vocabSize = d.vocab
        return c
    }
}
