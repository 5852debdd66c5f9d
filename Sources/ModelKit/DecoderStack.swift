// DecoderStack: the pre-norm residual loop of a decoder-only model over the layers one rank holds
// (h += attention(norm(h)); h += ffn(norm(h))), with the blocks every family shares. The embedding, the head and
// loading the weights are the family's; the loop, the RoPE tables of a call and the MoE wiring are here.
import Kernels
import Tensors

/// The feed-forward part of a layer.
public enum FFNBlock: Sendable {
    case dense(FeedForward)
    case moe(router: Router, experts: [Int: FeedForward], shared: FeedForward?)
}

/// The token mixer of a layer, with its weights.
public enum MixerWeights: Sendable {
    case mla(AttentionWeights)
    case attention(GQAWeights)

    /// The weights only products read (for the weight inventory).
    public var products: [Weight] {
        switch self {
        case .mla(let a): return [a.qAProj, a.qBProj, a.qProj, a.kvAProjWithMqa, a.kvBProj, a.oProj].compactMap { $0 }
        case .attention(let a): return a.products
        }
    }
}

/// One decoder layer's weights: two RMSNorms, the token mixer and the FFN.
public struct TransformerBlock: Sendable {
    public let index: Int
    public let inputLayernorm: [Float]
    public let postAttentionLayernorm: [Float]
    public let mixer: MixerWeights
    public let mlp: FFNBlock

    public init(index: Int, inputLayernorm: [Float], postAttentionLayernorm: [Float], mixer: MixerWeights, mlp: FFNBlock) {
        self.index = index
        self.inputLayernorm = inputLayernorm
        self.postAttentionLayernorm = postAttentionLayernorm
        self.mixer = mixer
        self.mlp = mlp
    }

    /// An MLA layer (DeepSeek-V3, Kimi K2).
    public init(index: Int, inputLayernorm: [Float], postAttentionLayernorm: [Float], attention: AttentionWeights, mlp: FFNBlock) {
        self.init(index: index, inputLayernorm: inputLayernorm, postAttentionLayernorm: postAttentionLayernorm, mixer: .mla(attention), mlp: mlp)
    }

}

/// The mixer blocks a stack runs: one per kind its layers use.
public struct Mixers {
    public var mla: MLAAttention?
    public var attention: GQAAttention?

    public init(mla: MLAAttention? = nil, attention: GQAAttention? = nil) {
        self.mla = mla
        self.attention = attention
    }
}

public struct DecoderStack {
    public let layers: [TransformerBlock]
    public let eps: Float
    public let rope: RotaryEmbedding
    public let mixers: Mixers
    public let dispatcher: any ExpertDispatcher
    public let pool: ComputePool
    public let phases: (any PhaseObserver)?
    /// The lane's tensor-parallel group; the layers hold this rank's share of every split weight.
    public let tp: any TensorParallelGroup

    public init(layers: [TransformerBlock], eps: Float, rope: RotaryEmbedding, mixers: Mixers, dispatcher: any ExpertDispatcher,
                pool: ComputePool, phases: (any PhaseObserver)?, tp: any TensorParallelGroup = SingleRank()) {
        self.tp = tp
        self.layers = layers
        self.eps = eps
        self.rope = rope
        self.mixers = mixers
        self.dispatcher = dispatcher
        self.pool = pool
        self.phases = phases
    }

    /// The layers over `hidden` `[T, D]`, whose rows are the segments' tokens in order (checked by the caller);
    /// appends each segment's cache rows.
    public func forwardLayers(_ hidden: Matrix, segments: [SequenceSegment], mode: AttentionMode?,
                              observe: ((ForwardEvent) -> Void)?) throws -> Matrix {
        // Positions and RoPE tables, once per call.
        var positions: [Int] = []
        for s in segments { positions += (s.startPosition..<(s.startPosition + s.count)) }
        let half = rope.dim / 2
        var cosTable = [Float](repeating: 0, count: positions.count * half), sinTable = cosTable
        for (t, p) in positions.enumerated() {
            let (c, s) = rope.cosSin(position: p)
            for i in 0..<half { cosTable[t * half + i] = c[i]; sinTable[t * half + i] = s[i] }
        }
        let tables = RopeTables(cos: cosTable, sin: sinTable, half: half)
        var h = hidden
        for layer in layers {
            let xn = Ops.rmsNorm(h, weight: layer.inputLayernorm, eps: eps)
            let attentionStart = phases?.begin() ?? 0
            let attn: Matrix
            switch layer.mixer {
            case .mla(let w):
                guard let mla = mixers.mla else { preconditionFailure("layer \(layer.index) is MLA but the stack has no MLA block") }
                attn = try mla(w, layer: layer.index, xn, segments: segments, tables: tables, mode: mode)
            case .attention(let w):
                guard let gqa = mixers.attention else { preconditionFailure("layer \(layer.index) is GQA but the stack has no GQA block") }
                attn = try gqa(w, layer: layer.index, xn, segments: segments, tables: tables)
            }
            phases?.end(attentionStart, .attention, layer: layer.index)
            Ops.addInPlace(&h, attn)
            let xn2 = Ops.rmsNorm(h, weight: layer.postAttentionLayernorm, eps: eps)
            let m = try mlp(layer, xn2, observe: observe)
            Ops.addInPlace(&h, m)
            observe?(.layerOutput(layer: layer.index, hidden: h))
        }
        return h
    }

    func mlp(_ layer: TransformerBlock, _ x: Matrix, observe: ((ForwardEvent) -> Void)?) throws -> Matrix {
        switch layer.mlp {
        case .dense(let ffn):
            let start = phases?.begin() ?? 0
            defer { phases?.end(start, .denseFFN, layer: layer.index) }
            return try ffn(x, tp: tp, pool: pool)
        case .moe(let router, let experts, let shared):
            return try moeBlock(layer.index, router, experts, shared)(x, observe: observe)
        }
    }

    /// The MoE block of layer `layer`, wired to this stack's dispatcher, pool and observer.
    public func moeBlock(_ layer: Int, _ router: Router?, _ experts: [Int: FeedForward], _ shared: FeedForward?) -> MoEBlock {
        MoEBlock(layer: layer, router: router, experts: experts, shared: shared, dispatcher: dispatcher, pool: pool, phases: phases, tp: tp)
    }
}
