// ModelShape: the facts about a model that the planner, the cost model and the engine's bookkeeping need, whatever
// its family: sizes and, per decoder layer, the kind of token mixer and feed-forward block. A family derives it from
// its config; `Parallel` imports ModelKit and never Models, so the planner cannot reach into a family.

public struct ModelShape: Sendable, Equatable {
    public var hidden: Int
    public var vocab: Int
    /// The main decoder layers, in order (MTP layers are not served and not listed).
    public var layers: [LayerShape]

    public init(hidden: Int, vocab: Int, layers: [LayerShape]) {
        self.hidden = hidden
        self.vocab = vocab
        self.layers = layers
    }

    public var layerCount: Int { layers.count }
    public func isMoE(_ layer: Int) -> Bool { layers[layer].moe != nil }
    /// Routed experts per MoE layer (the largest, 0 for a dense model): the expert-parallel axis splits these.
    public var routedExperts: Int { layers.compactMap(\.moe?.experts).max() ?? 0 }
    /// FP32 values one token keeps in the caches of `layers` together (a stage's share of a sequence's cache).
    public func cacheFloatsPerToken(layers range: Range<Int>) -> Int { range.reduce(0) { $0 + layers[$1].cacheFloatsPerToken } }
    /// Top-k over routed experts of the MoE layers (0 for a dense model): the share of expert weights a token reads.
    public var expertFraction: Double {
        guard let m = layers.compactMap(\.moe).first, m.experts > 0 else { return 0 }
        return Double(m.topK) / Double(m.experts)
    }
    /// Multiply-adds of attention scores and values per query token and cached token, all layers together.
    public var attentionMACsPerContextToken: Int {
        layers.reduce(0) { sum, layer in
            switch layer.mixer {
            case .mla(let a): return sum + a.heads * (a.qkHeadDim + a.vHeadDim)
            case .attention(let a): return sum + a.heads * 2 * a.headDim
            }
        }
    }
    /// Widest dense FFN of any layer (0 when every layer is MoE).
    public var denseWidth: Int { layers.compactMap(\.denseWidth).max() ?? 0 }
}

public struct LayerShape: Sendable, Equatable {
    public var mixer: MixerShape
    public var ffn: FFNShape

    public init(mixer: MixerShape, ffn: FFNShape) {
        self.mixer = mixer
        self.ffn = ffn
    }

    public var moe: MoEShape? { if case .moe(let m) = ffn { return m } else { return nil } }
    public var denseWidth: Int? { if case .dense(let w) = ffn { return w } else { return nil } }
    /// FP32 values one token keeps in this layer's cache.
    public var cacheFloatsPerToken: Int {
        switch mixer {
        case .mla(let a): return a.cacheFloatsPerToken
        case .attention(let a): return a.cacheFloatsPerToken
        }
    }
}

/// How a layer mixes tokens. New kinds (linear attention) arrive with their families.
public enum MixerShape: Sendable, Equatable {
    case mla(MLAShape)
    /// Grouped-query attention (multi-head when kvHeads == heads).
    case attention(GQAShape)

    /// Parameters of the layer's attention projections (weights and biases, no norms) for hidden size `d`.
    public func parameters(hidden d: Int) -> Double {
        switch self {
        case .mla(let a): return a.parameters(hidden: d)
        case .attention(let a): return a.parameters(hidden: d)
        }
    }
}

/// Grouped-query attention: `heads` query heads share `kvHeads` key / value heads of `headDim` each; the cache keeps
/// every KV head's key (after RoPE) and value per token.
public struct GQAShape: Sendable, Equatable {
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    /// Biases on the q / k / v projections.
    public var qkvBias: Bool
    /// q and k are normalised over the whole projection (MiniMax-M2): the heads cannot be split without the full row.
    public var wholeProjectionNorm: Bool

    public init(heads: Int, kvHeads: Int, headDim: Int, qkvBias: Bool = false, wholeProjectionNorm: Bool = false) {
        self.wholeProjectionNorm = wholeProjectionNorm
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.qkvBias = qkvBias
    }

    public var cacheFloatsPerToken: Int { 2 * kvHeads * headDim }

    public func parameters(hidden d: Int) -> Double {
        let q = Double(heads * headDim), kv = Double(kvHeads * headDim), dd = Double(d)
        return dd * (q + 2 * kv) + q * dd + (qkvBias ? q + 2 * kv : 0)
    }
}

/// Multi-head latent attention (DeepSeek-V2/V3, Kimi K2): queries through an optional low-rank q_a / q_b pair, keys
/// and values from one compressed latent (kv_a) expanded per head by kv_b; the cache keeps the latent and the rotary
/// key of each token.
public struct MLAShape: Sendable, Equatable {
    public var heads: Int
    /// nil: queries come from one q_proj.
    public var qLoraRank: Int?
    public var kvLoraRank: Int
    public var qkNopeHeadDim: Int
    public var qkRopeHeadDim: Int
    public var vHeadDim: Int

    public init(heads: Int, qLoraRank: Int?, kvLoraRank: Int, qkNopeHeadDim: Int, qkRopeHeadDim: Int, vHeadDim: Int) {
        self.heads = heads
        self.qLoraRank = qLoraRank
        self.kvLoraRank = kvLoraRank
        self.qkNopeHeadDim = qkNopeHeadDim
        self.qkRopeHeadDim = qkRopeHeadDim
        self.vHeadDim = vHeadDim
    }

    public var qkHeadDim: Int { qkNopeHeadDim + qkRopeHeadDim }
    public var cacheFloatsPerToken: Int { kvLoraRank + qkRopeHeadDim }
    /// Parameters of kv_b (the per-head expansion of the latent into keys and values).
    public var kvBParameters: Int { heads * (qkNopeHeadDim + vHeadDim) * kvLoraRank }

    /// Parameters of the layer's projections for hidden size `d` (q_a + q_b or q_proj, kv_a, kv_b, o_proj).
    public func parameters(hidden d: Int) -> Double {
        let d = Double(d), h = Double(heads)
        let q: Double = qLoraRank.map { Double($0) * d + Double($0) * h * Double(qkHeadDim) } ?? d * h * Double(qkHeadDim)
        let kv = d * Double(kvLoraRank + qkRopeHeadDim) + Double(kvLoraRank) * h * Double(qkNopeHeadDim + vHeadDim)
        return q + kv + h * Double(vHeadDim) * d
    }
}

public enum FFNShape: Sendable, Equatable {
    /// A gated FFN of this intermediate width.
    case dense(width: Int)
    case moe(MoEShape)
}

public struct MoEShape: Sendable, Equatable {
    public var experts: Int
    public var topK: Int
    /// Intermediate width of one routed expert.
    public var width: Int
    /// Intermediate width of the shared expert(s) together (0: none).
    public var sharedWidth: Int
    public var scoring: RouterScoring

    public init(experts: Int, topK: Int, width: Int, sharedWidth: Int, scoring: RouterScoring = .groupedSigmoid) {
        self.scoring = scoring
        self.experts = experts
        self.topK = topK
        self.width = width
        self.sharedWidth = sharedWidth
    }
}
