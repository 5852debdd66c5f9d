// DecoderModel: one rank's part of a decoder-only model, whatever its family: a contiguous range of decoder layers (a
// pipeline stage), optionally the embedding and the final norm + lm_head, and optionally only a subset of the routed
// experts (the `ExpertDispatcher` moves tokens to the other owners). A family loads the weights and builds the
// blocks (its subclass keeps its config); embedding, layer loop, head and cache creation are the same for all.
import Kernels
import Tensors

open class DecoderModel: @unchecked Sendable {
    public let shape: ModelShape
    /// Decoder layers held (absolute indices).
    public let layerRange: Range<Int>
    /// Routed experts whose weights are held.
    public let localExperts: Set<Int>
    public let layers: [TransformerBlock]
    public let embedTokens: Weight?
    public let finalNorm: [Float]?
    public let lmHead: Weight?
    public let rope: RotaryEmbedding
    /// RMSNorm epsilon of the layer and final norms.
    public let eps: Float
    public let pool: ComputePool
    /// Moves routed tokens to expert owners.
    public let dispatcher: any ExpertDispatcher
    /// Attention form of MLA layers for segments of more than one token (prefill) and of one token (decode).
    public var prefillMode: AttentionMode = .naive
    public var decodeMode: AttentionMode = .absorbed
    /// Receives the time of each phase (attention, dense FFN, router, expert FFNs, shared expert); nil = not timed.
    public var phaseObserver: (any PhaseObserver)?
    /// The mixer blocks of the layers (MLA forms are set per call from `prefillMode` / `decodeMode`).
    let mixerTemplates: Mixers
    /// The lane's tensor-parallel group: split weights (attention heads, dense and shared FFN columns, hidden outputs,
    /// vocabulary rows of the head) hold this rank's share.
    public let tp: any TensorParallelGroup

    public init(shape: ModelShape, layerRange: Range<Int>, localExperts: Set<Int>, layers: [TransformerBlock], embedTokens: Weight?,
                finalNorm: [Float]?, lmHead: Weight?, rope: RotaryEmbedding, eps: Float, mixers: Mixers, dispatcher: any ExpertDispatcher,
                pool: ComputePool, tp: any TensorParallelGroup = SingleRank(), cacheRowWidth: Int? = nil) {
        self.tp = tp
        self.cacheRowWidth = cacheRowWidth ?? shape.layers.first?.cacheFloatsPerToken ?? 0
        self.shape = shape
        self.layerRange = layerRange
        self.localExperts = localExperts
        self.layers = layers
        self.embedTokens = embedTokens
        self.finalNorm = finalNorm
        self.lmHead = lmHead
        self.rope = rope
        self.eps = eps
        self.mixerTemplates = mixers
        self.dispatcher = dispatcher
        self.pool = pool
    }

    /// Floats one token takes in one layer's cache on this rank (a tensor-parallel GQA rank keeps only its KV heads).
    public let cacheRowWidth: Int

    /// An empty cache for one sequence, rows as this model's layers write them.
    public func makeCache() -> KVCache {
        KVCache(rowWidth: cacheRowWidth)
    }

    /// Every weight view this model holds, routed experts apart from the rest (embedding, attention, dense FFN,
    /// router, shared experts, head).
    public var weightInventory: (routed: [Weight], other: [Weight]) {
        var routed: [Weight] = [], other: [Weight] = [embedTokens, lmHead].compactMap { $0 }
        for layer in layers {
            other += layer.mixer.products
            switch layer.mlp {
            case .dense(let f): other += [f.gate, f.up, f.down]
            case .moe(let router, let experts, let shared):
                other.append(router.gate)
                if let s = shared { other += [s.gate, s.up, s.down] }
                for id in experts.keys.sorted() { routed += [experts[id]!.gate, experts[id]!.up, experts[id]!.down] }
            }
        }
        return (routed, other)
    }

    // MARK: forward

    /// Embedding rows for `tokens` (dequantized), `[T, D]`. Requires the embedding to be held.
    public func embed(_ tokens: [Int]) throws -> Matrix {
        guard let w = embedTokens else {
            throw ModelError(.badInput, "this model object does not hold model.embed_tokens (not the first stage)", subject: "embed")
        }
        var out = Matrix(rows: tokens.count, cols: shape.hidden)
        try out.data.withUnsafeMutableBufferPointer { p in
            for (t, id) in tokens.enumerated() {
                guard id >= 0 && id < w.rows else {
                    throw ModelError(.badInput, "token id \(id) outside vocabulary 0..<\(w.rows)", subject: "tokens[\(t)]")
                }
                Ops.dequantizeRow(w, id, into: p.baseAddress! + t * shape.hidden)
            }
        }
        return out
    }

    /// Runs the held decoder layers over a token batch `hidden` `[T, D]` whose rows are the concatenation of
    /// `segments` (one per sequence, in order). Appends each segment's rows to its cache.
    /// `mode` forces one MLA attention form for every segment; by default multi-token segments use `prefillMode`
    /// and single-token segments `decodeMode`.
    public func forwardLayers(_ hidden: Matrix, segments: [SequenceSegment], mode: AttentionMode? = nil,
                              observe: ((ForwardEvent) -> Void)? = nil) throws -> Matrix {
        guard hidden.cols == shape.hidden else {
            throw ModelError(.badInput, "hidden width \(hidden.cols) != hidden_size \(shape.hidden)", subject: "hidden")
        }
        guard segments.reduce(0, { $0 + $1.count }) == hidden.rows else {
            throw ModelError(.badInput, "segments cover \(segments.reduce(0) { $0 + $1.count }) rows, hidden has \(hidden.rows)",
                             subject: "segments")
        }
        return try stack.forwardLayers(hidden, segments: segments, mode: mode, observe: observe)
    }

    /// Final norm and lm_head: `[T, D] -> [T, vocab]`. Requires the head to be held.
    public func finalLogits(_ hidden: Matrix) throws -> Matrix {
        guard let norm = finalNorm, let head = lmHead else {
            throw ModelError(.badInput, "this model object does not hold model.norm / lm_head (not the last stage)", subject: "head")
        }
        // Tensor parallel: each rank's vocabulary rows, gathered into whole rows of logits.
        return try tp.gatherColumns(Ops.linear(Ops.rmsNorm(hidden, weight: norm, eps: eps), head, pool: pool), columns: shape.vocab)
    }

    /// One sequence: tokens at `positions` (contiguous, starting at the cache length) -> logits `[T, vocab]`.
    public func forward(tokens: [Int], positions: [Int], cache: KVCache, mode: AttentionMode? = nil,
                        observe: ((ForwardEvent) -> Void)? = nil) throws -> Matrix {
        guard let start = positions.first, positions.count == tokens.count,
              positions == Array(start..<(start + tokens.count)) else {
            throw ModelError(.badInput, "positions must be \(tokens.count) consecutive integers", subject: "positions")
        }
        let segment = SequenceSegment(cache: cache, count: tokens.count, startPosition: start)
        let h = try forwardLayers(try embed(tokens), segments: [segment], mode: mode, observe: observe)
        return try finalLogits(h)
    }

    /// Several sequences in one batch: each continues its cache from its current length.
    /// Returns the logits of each sequence (`[T_i, vocab]`).
    public func forward(batch: [(tokens: [Int], cache: KVCache)], mode: AttentionMode? = nil) throws -> [Matrix] {
        let all = batch.flatMap(\.tokens)
        let segments = batch.map { SequenceSegment(cache: $0.cache, count: $0.tokens.count, startPosition: $0.cache.length) }
        let logits = try finalLogits(try forwardLayers(try embed(all), segments: segments, mode: mode))
        var out: [Matrix] = []
        var row = 0
        for s in segments {
            out.append(logits.rows(row..<(row + s.count)))
            row += s.count
        }
        return out
    }

    // MARK: blocks (their code lives in the block files; these keep the equivalence tests' entry points)

    /// The residual loop over the held layers with the current attention forms and observer.
    public var stack: DecoderStack {
        var mixers = mixerTemplates
        if let m = mixers.mla {
            mixers.mla = MLAAttention(heads: m.heads, nopeDim: m.nopeDim, ropeDim: m.ropeDim, vDim: m.vDim, latentDim: m.latentDim,
                                      softmaxScale: m.softmaxScale, pool: pool, prefillMode: prefillMode, decodeMode: decodeMode, tp: tp)
        }
        return DecoderStack(layers: layers, eps: eps, rope: rope, mixers: mixers, dispatcher: dispatcher, pool: pool, phases: phaseObserver, tp: tp)
    }

    /// `MoEBlock.behindShared` of one layer.
    public func moeBehindShared(_ layer: Int, router: Router, experts: [Int: FeedForward], shared: FeedForward, _ x: Matrix,
                                observe: ((ForwardEvent) -> Void)?) throws -> Matrix {
        try stack.moeBlock(layer, router, experts, shared).behindShared(shared, x, observe: observe)
    }

    /// `MoEBlock.runExperts`: the routed part of one layer through this model's dispatcher.
    public func runExperts(routing: Routing, x: Matrix, experts: [Int: FeedForward], layer: Int) throws -> Matrix {
        try stack.moeBlock(layer, nil, experts, nil).runExperts(routing: routing, x: x)
    }
}
