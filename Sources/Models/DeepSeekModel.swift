// DeepSeek-V3 / Kimi K2 forward pass on one device (reference/architectures.md §1.2-1.8), FP32 activations,
// weights in their stored dtype (via `TensorSource`, HF checkpoint names), all products through `Ops.linear`.
//
// A model object holds a contiguous range of decoder layers (a pipeline stage), optionally the embedding
// and the final norm + lm_head, and optionally only a subset of the routed experts (an expert shard; the
// `ExpertDispatcher` then moves tokens to the other owners).
import Foundation
import Kernels
import Tensors

/// MLA weights of one layer, with per-head views of kv_b_proj for the absorbed form.
public struct AttentionWeights: Sendable {
    public let qAProj: Weight?
    public let qALayernorm: [Float]?
    public let qBProj: Weight?
    public let qProj: Weight?
    public let kvAProjWithMqa: Weight
    public let kvALayernorm: [Float]
    public let kvBProj: Weight
    public let oProj: Weight
    /// W_UK[h]: rows h·(dn+dv) ..< h·(dn+dv)+dn of kv_b_proj, `[dn, kv_lora_rank]`.
    public let wUK: [Weight]
    /// W_UV[h]: rows h·(dn+dv)+dn ..< (h+1)·(dn+dv), `[dv, kv_lora_rank]` (in the decode layout when the model's
    /// weights are interleaved: only `Ops.linear` reads it).
    public let wUV: [Weight]
}

public enum MLPWeights: Sendable {
    case dense(FeedForward)
    case moe(router: Router, experts: [Int: FeedForward], shared: FeedForward?)
}

public struct DecoderLayerWeights: Sendable {
    public let index: Int
    public let inputLayernorm: [Float]
    public let postAttentionLayernorm: [Float]
    public let attention: AttentionWeights
    public let mlp: MLPWeights
}

/// Timed phases of the forward pass (the engine's tracer maps them onto its trace phases).
public enum ForwardPhase: String, Sendable, CaseIterable {
    case attention, denseFFN, router, expertFFN, sharedExpert
}

/// Times phases of the forward pass; `begin` returns a start stamp that `end` closes.
public protocol PhaseObserver: AnyObject {
    func begin() -> UInt64
    func end(_ start: UInt64, _ phase: ForwardPhase, layer: Int)
}

/// What the forward pass reports while it runs (tests, fixture comparisons, tracing).
public enum ForwardEvent {
    /// Hidden state `[T, D]` after decoder layer `layer`.
    case layerOutput(layer: Int, hidden: Matrix)
    /// Router decision of an MoE layer.
    case routing(layer: Int, Routing)
}

public final class DeepSeekModel: @unchecked Sendable {
    public let config: ModelConfig
    /// Decoder layers held (absolute indices).
    public let layerRange: Range<Int>
    /// Routed experts whose weights are held.
    public let localExperts: Set<Int>
    public let layers: [DecoderLayerWeights]
    public let embedTokens: Weight?
    public let finalNorm: [Float]?
    public let lmHead: Weight?
    public let rope: RotaryEmbedding
    /// qk_head_dim^-0.5 · mscale² (§1.5).
    public let softmaxScale: Float
    public let pool: ComputePool
    /// Moves routed tokens to expert owners; `LocalDispatcher` over `localExperts` unless given.
    public let dispatcher: any ExpertDispatcher
    /// Attention form for segments of more than one token (prefill) and of one token (decode).
    public var prefillMode: AttentionMode = .naive
    public var decodeMode: AttentionMode = .absorbed
    /// Receives the time of each phase (attention, dense FFN, router, expert FFNs, shared expert); nil = not timed.
    public var phaseObserver: (any PhaseObserver)?

    let heads: Int, nopeDim: Int, ropeDim: Int, vDim: Int, latentDim: Int
    var qkDim: Int { nopeDim + ropeDim }

    /// Loads weights from `source` by HF name.
    /// - layers: decoder layers to hold (default: all `num_hidden_layers`).
    /// - experts: routed experts to hold (default: all).
    /// - includeEmbedding / includeHead: default true for the first / last stage.
    /// - weightLayout: `.interleaved` copies the projection weights into the decode kernels' read order (same
    ///   results, faster batch-1 decode; the embedding and kv_b_proj, read by row or transposed, stay as mapped).
    /// - progress: called with (layers done, layers) after each decoder layer (the head counts as the last one);
    ///   with `.interleaved` each layer is a copy of its weights, seconds per layer on a large model.
    public init(config: ModelConfig, source: any TensorSource, layers: Range<Int>? = nil, experts: Set<Int>? = nil,
                includeEmbedding: Bool? = nil, includeHead: Bool? = nil,
                dispatcher: (any ExpertDispatcher)? = nil, pool: ComputePool = .serial,
                weightLayout: WeightLayout = .checkpoint, progress: ((Int, Int) -> Void)? = nil) throws {
        let range = layers ?? 0..<config.numHiddenLayers
        guard range.lowerBound >= 0, range.upperBound <= config.numHiddenLayers else {
            throw ModelError(.badInput, "layer range \(range) outside 0..<\(config.numHiddenLayers)", subject: "layers")
        }
        if let act = config.hiddenAct, act != "silu" {
            throw ModelError(.unsupportedConfig, "hidden_act '\(act)' is not implemented (DeepSeek-V3 / Kimi K2 use 'silu')", subject: "hidden_act")
        }
        if let scoring = config.scoringFunc, scoring != "sigmoid" {
            throw ModelError(.unsupportedConfig, "scoring_func '\(scoring)' is not implemented (the noaux_tc router uses 'sigmoid')", subject: "scoring_func")
        }
        if let method = config.topkMethod, method != "noaux_tc" {
            throw ModelError(.unsupportedConfig, "topk_method '\(method)' is not implemented (DeepSeek-V3 / Kimi K2 use 'noaux_tc')", subject: "topk_method")
        }
        self.config = config
        self.layerRange = range
        self.localExperts = experts ?? Set(0..<config.nRoutedExperts)
        self.pool = pool
        self.heads = config.numAttentionHeads
        self.nopeDim = config.qkNopeHeadDim
        self.ropeDim = config.qkRopeHeadDim
        self.vDim = config.vHeadDim
        self.latentDim = config.kvLoraRank
        self.dispatcher = dispatcher ?? LocalDispatcher(experts: localExperts)
        (self.rope, self.softmaxScale) = try DeepSeekModel.ropeSetup(config)

        let loader = WeightLoader(source: source, layout: weightLayout, pool: pool)
        let d = config.hiddenSize
        if includeEmbedding ?? (range.lowerBound == 0) {
            embedTokens = try loader.weight("model.embed_tokens.weight", rows: config.vocabSize, cols: d)
        } else {
            embedTokens = nil
        }
        var built: [DecoderLayerWeights] = []
        let head = includeHead ?? (range.upperBound == config.numHiddenLayers), steps = range.count + (head ? 1 : 0)
        for l in range {
            built.append(try DeepSeekModel.loadLayer(l, config: config, loader: loader, experts: localExperts))
            progress?(built.count, steps)
        }
        self.layers = built
        if head {
            finalNorm = try loader.vector("model.norm.weight", count: d)
            lmHead = try loader.product("lm_head.weight", rows: config.vocabSize, cols: d)
            progress?(steps, steps)
        } else {
            finalNorm = nil
            lmHead = nil
        }
    }

    // MARK: setup

    static func ropeSetup(_ config: ModelConfig) throws -> (RotaryEmbedding, Float) {
        let dim = config.qkRopeHeadDim
        let base = config.effectiveRopeTheta
        guard let rs = config.effectiveRopeScaling, rs.kind != "default" else {
            return (.standard(dim: dim, base: base),
                    mlaSoftmaxScale(qkHeadDim: config.qkHeadDim, ropeKind: "default", factor: nil, mscaleAllDim: nil))
        }
        guard rs.kind == "yarn" else {
            throw ModelError(.unsupportedConfig, "rope type '\(rs.kind)' is not supported (DeepSeek-V3 uses 'yarn' or none)",
                             subject: "rope_scaling.type")
        }
        let original = rs.originalMaxPositionEmbeddings ?? config.maxPositionEmbeddings
        let factor = rs.factor ?? Double(config.maxPositionEmbeddings) / Double(original)
        let betaFast = (rs.betaFast ?? 0) == 0 ? 32 : rs.betaFast!
        let betaSlow = (rs.betaSlow ?? 0) == 0 ? 1 : rs.betaSlow!
        let rope = RotaryEmbedding.yarn(dim: dim, base: base, factor: factor, originalMaxPositions: original,
                                        betaFast: betaFast, betaSlow: betaSlow, mscale: rs.mscale,
                                        mscaleAllDim: rs.mscaleAllDim, attentionFactor: rs.attentionFactor)
        let scale = mlaSoftmaxScale(qkHeadDim: config.qkHeadDim, ropeKind: rs.kind, factor: factor,
                                    mscaleAllDim: rs.mscaleAllDim)
        return (rope, scale)
    }

    static func loadLayer(_ l: Int, config c: ModelConfig, loader: WeightLoader, experts: Set<Int>) throws -> DecoderLayerWeights {
        let p = "model.layers.\(l)."
        let d = c.hiddenSize, h = c.numAttentionHeads
        let qk = c.qkHeadDim, dn = c.qkNopeHeadDim, dv = c.vHeadDim, kvr = c.kvLoraRank
        var qA: Weight? = nil, qANorm: [Float]? = nil, qB: Weight? = nil, q: Weight? = nil
        if let rq = c.qLoraRank {
            qA = try loader.product(p + "self_attn.q_a_proj.weight", rows: rq, cols: d)
            qANorm = try loader.vector(p + "self_attn.q_a_layernorm.weight", count: rq)
            qB = try loader.product(p + "self_attn.q_b_proj.weight", rows: h * qk, cols: rq)
        } else {
            q = try loader.product(p + "self_attn.q_proj.weight", rows: h * qk, cols: d)
        }
        let kvB = try loader.weight(p + "self_attn.kv_b_proj.weight", rows: h * (dn + dv), cols: kvr)
        let attention = AttentionWeights(
            qAProj: qA, qALayernorm: qANorm, qBProj: qB, qProj: q,
            kvAProjWithMqa: try loader.product(p + "self_attn.kv_a_proj_with_mqa.weight", rows: kvr + c.qkRopeHeadDim, cols: d),
            kvALayernorm: try loader.vector(p + "self_attn.kv_a_layernorm.weight", count: kvr),
            kvBProj: kvB,
            oProj: try loader.product(p + "self_attn.o_proj.weight", rows: d, cols: h * dv),
            wUK: (0..<h).map { sliceRows(kvB, ($0 * (dn + dv))..<($0 * (dn + dv) + dn)) },
            wUV: (0..<h).map { loader.product(sliceRows(kvB, ($0 * (dn + dv) + dn)..<(($0 + 1) * (dn + dv)))) })
        let mlp: MLPWeights
        if c.isMoELayer(l) {
            let e = c.nRoutedExperts, mi = c.moeIntermediateSize
            let gate = try loader.weight(p + "mlp.gate.weight", rows: e, cols: d)
            let biasName = p + "mlp.gate.e_score_correction_bias"
            let bias = loader.source.contains(biasName) ? try loader.vector(biasName, count: e) : nil
            var routed: [Int: FeedForward] = [:]
            for id in experts.sorted() {
                let ep = p + "mlp.experts.\(id)."
                routed[id] = FeedForward(gate: try loader.product(ep + "gate_proj.weight", rows: mi, cols: d),
                                         up: try loader.product(ep + "up_proj.weight", rows: mi, cols: d),
                                         down: try loader.product(ep + "down_proj.weight", rows: d, cols: mi))
            }
            var shared: FeedForward? = nil
            if c.nSharedExperts > 0 {
                let si = mi * c.nSharedExperts, sp = p + "mlp.shared_experts."
                shared = FeedForward(gate: try loader.product(sp + "gate_proj.weight", rows: si, cols: d),
                                     up: try loader.product(sp + "up_proj.weight", rows: si, cols: d),
                                     down: try loader.product(sp + "down_proj.weight", rows: d, cols: si))
            }
            mlp = .moe(router: Router(gate: gate, bias: bias, parameters: RouterParameters(config: c)),
                       experts: routed, shared: shared)
        } else {
            let i = c.intermediateSize
            mlp = .dense(FeedForward(gate: try loader.product(p + "mlp.gate_proj.weight", rows: i, cols: d),
                                     up: try loader.product(p + "mlp.up_proj.weight", rows: i, cols: d),
                                     down: try loader.product(p + "mlp.down_proj.weight", rows: d, cols: i)))
        }
        return DecoderLayerWeights(index: l,
                                   inputLayernorm: try loader.vector(p + "input_layernorm.weight", count: d),
                                   postAttentionLayernorm: try loader.vector(p + "post_attention_layernorm.weight", count: d),
                                   attention: attention, mlp: mlp)
    }

    // MARK: forward

    /// Embedding rows for `tokens` (dequantized), `[T, D]`. Requires the embedding to be held.
    public func embed(_ tokens: [Int]) throws -> Matrix {
        guard let w = embedTokens else {
            throw ModelError(.badInput, "this model object does not hold model.embed_tokens (not the first stage)", subject: "embed")
        }
        var out = Matrix(rows: tokens.count, cols: config.hiddenSize)
        try out.data.withUnsafeMutableBufferPointer { p in
            for (t, id) in tokens.enumerated() {
                guard id >= 0 && id < w.rows else {
                    throw ModelError(.badInput, "token id \(id) outside vocabulary 0..<\(w.rows)", subject: "tokens[\(t)]")
                }
                Ops.dequantizeRow(w, id, into: p.baseAddress! + t * config.hiddenSize)
            }
        }
        return out
    }

    /// Runs the held decoder layers over a token batch `hidden` `[T, D]` whose rows are the concatenation of
    /// `segments` (one per sequence, in order). Appends each segment's latent rows to its cache.
    /// `mode` forces one attention form for every segment; by default multi-token segments use `prefillMode`
    /// and single-token segments `decodeMode`.
    public func forwardLayers(_ hidden: Matrix, segments: [SequenceSegment], mode: AttentionMode? = nil,
                              observe: ((ForwardEvent) -> Void)? = nil) throws -> Matrix {
        guard hidden.cols == config.hiddenSize else {
            throw ModelError(.badInput, "hidden width \(hidden.cols) != hidden_size \(config.hiddenSize)", subject: "hidden")
        }
        guard segments.reduce(0, { $0 + $1.count }) == hidden.rows else {
            throw ModelError(.badInput, "segments cover \(segments.reduce(0) { $0 + $1.count }) rows, hidden has \(hidden.rows)",
                             subject: "segments")
        }
        // Positions and RoPE tables, once per call.
        var positions: [Int] = []
        for s in segments { positions += (s.startPosition..<(s.startPosition + s.count)) }
        let half = ropeDim / 2
        var cosTable = [Float](repeating: 0, count: positions.count * half), sinTable = cosTable
        for (t, p) in positions.enumerated() {
            let (c, s) = rope.cosSin(position: p)
            for i in 0..<half { cosTable[t * half + i] = c[i]; sinTable[t * half + i] = s[i] }
        }
        let tables = RopeTables(cos: cosTable, sin: sinTable, half: half)
        let eps = Float(config.rmsNormEps)
        var h = hidden
        for layer in layers {
            let xn = Ops.rmsNorm(h, weight: layer.inputLayernorm, eps: eps)
            let attentionStart = phaseObserver?.begin() ?? 0
            let attn = try attention(layer, xn, segments: segments, tables: tables, mode: mode)
            phaseObserver?.end(attentionStart, .attention, layer: layer.index)
            Ops.addInPlace(&h, attn)
            let xn2 = Ops.rmsNorm(h, weight: layer.postAttentionLayernorm, eps: eps)
            let m = try mlp(layer, xn2, observe: observe)
            Ops.addInPlace(&h, m)
            observe?(.layerOutput(layer: layer.index, hidden: h))
        }
        return h
    }

    /// Final norm and lm_head: `[T, D] -> [T, vocab]`. Requires the head to be held.
    public func finalLogits(_ hidden: Matrix) throws -> Matrix {
        guard let norm = finalNorm, let head = lmHead else {
            throw ModelError(.badInput, "this model object does not hold model.norm / lm_head (not the last stage)", subject: "head")
        }
        return Ops.linear(Ops.rmsNorm(hidden, weight: norm, eps: Float(config.rmsNormEps)), head, pool: pool)
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

    // MARK: MLP / MoE

    func mlp(_ layer: DecoderLayerWeights, _ x: Matrix, observe: ((ForwardEvent) -> Void)?) throws -> Matrix {
        switch layer.mlp {
        case .dense(let ffn):
            let start = phaseObserver?.begin() ?? 0
            defer { phaseObserver?.end(start, .denseFFN, layer: layer.index) }
            return ffn(x, pool: pool)
        case .moe(let router, let experts, let shared):
            // Where the routed and shared FFNs would share regions even if the tokens picked as many experts as they can.
            let k = router.parameters.topK
            if let shared, FeedForward.sharesRegions(rows: x.rows * (k + 1), ffns: min(experts.count, x.rows * k) + 1, pool: pool) {
                return try moeBehindShared(layer.index, router: router, experts: experts, shared: shared, x, observe: observe)
            }
            let routerStart = phaseObserver?.begin() ?? 0
            let routing = router.route(x, pool: pool)
            phaseObserver?.end(routerStart, .router, layer: layer.index)
            observe?(.routing(layer: layer.index, routing))
            // Not decode-sized (prefill, or one thread): the shared expert runs as its own products.
            var out = try runExperts(routing: routing, x: x, experts: experts, layer: layer.index)
            if let shared {
                let sharedStart = phaseObserver?.begin() ?? 0
                Ops.addInPlace(&out, shared(x, pool: pool))
                phaseObserver?.end(sharedStart, .sharedExpert, layer: layer.index)
            }
            return out
        }
    }

    /// A decode-sized MoE layer with a shared expert on several threads: the shared expert's products open both
    /// regions and the workers stream them while this thread routes, dispatches and packs the routed products, which
    /// join the same regions (`FeedForward.batchedFlat(lead:)`). Same bits as routing, `runExperts` and then adding the
    /// shared expert. Phases: the router and the dispatcher's own spans inside, `expertFFN` around them.
    func moeBehindShared(_ layer: Int, router: Router, experts: [Int: FeedForward], shared: FeedForward, _ x: Matrix,
                         observe: ((ForwardEvent) -> Void)?) throws -> Matrix {
        var received: [ExpertBatch] = [], handle: (any DispatchHandle)?
        var expertStart = phaseObserver?.begin() ?? 0
        let (sharedOut, y, offsets) = try FeedForward.batchedFlat(lead: (x, shared), capacity: experts.count, more: {
            phaseObserver?.end(expertStart, .expertFFN, layer: layer)
            let routerStart = phaseObserver?.begin() ?? 0
            let routing = router.route(x, pool: pool)  // inside the region: on this thread
            phaseObserver?.end(routerStart, .router, layer: layer)
            observe?(.routing(layer: layer, routing))
            (received, handle) = try dispatcher.dispatch(x, try dispatcher.layout(routing))
            expertStart = phaseObserver?.begin() ?? 0
            return try expertItems(received, experts, layer: layer)
        }, pool: pool)
        phaseObserver?.end(expertStart, .expertFFN, layer: layer)
        var out = try y.withUnsafeBufferPointer { try dispatcher.combine(weighting: $0, offsets: offsets, received: received, handle!) }
        Ops.addInPlace(&out, sharedOut)
        return out
    }

    /// Routed part of an MoE layer through the dispatcher: dispatch, grouped expert FFNs (one batched linear per
    /// expert), weight each output row, combine (sum in ascending expert id per token).
    public func runExperts(routing: Routing, x: Matrix, experts: [Int: FeedForward], layer: Int) throws -> Matrix {
        let (received, handle) = try dispatcher.dispatch(x, try dispatcher.layout(routing))
        let items = try expertItems(received, experts, layer: layer)
        // Every expert that received rows, in one batched product (same bits as one FFN call per expert). Each weighted
        // row is w · y (one rounding, as `Ops.scaleRows`): in shared regions the dispatcher weights the rows as it
        // sums them out of the batched outputs, otherwise they are weighted into the returned batches.
        let expertStart = phaseObserver?.begin() ?? 0
        if FeedForward.sharesRegions(items, pool: pool) {
            let (y, offsets) = FeedForward.batchedFlat(items, pool: pool)
            phaseObserver?.end(expertStart, .expertFFN, layer: layer)
            return try y.withUnsafeBufferPointer { try dispatcher.combine(weighting: $0, offsets: offsets, received: received, handle) }
        }
        let ys = FeedForward.batched(items, pool: pool)
        let outputs = zip(received, ys).map { batch, y in
            ExpertBatch(expert: batch.expert, rows: Ops.scaleRows(y, batch.weights), weights: batch.weights)
        }
        phaseObserver?.end(expertStart, .expertFFN, layer: layer)
        return try dispatcher.combine(outputs, handle)
    }

    /// The FFN of every received batch's expert, with its rows; an expert whose weights are not held is an error.
    func expertItems(_ received: [ExpertBatch], _ experts: [Int: FeedForward], layer: Int) throws -> [(x: Matrix, ffn: FeedForward)] {
        try received.map { batch in
            guard let ffn = experts[batch.expert] else {
                throw ModelError(.expertNotLocal, "expert \(batch.expert) of layer \(layer) received tokens but its weights are not loaded here",
                                 subject: "model.layers.\(layer).mlp.experts.\(batch.expert)")
            }
            return (x: batch.rows, ffn: ffn)
        }
    }
}

/// Rows of a weight as a view; an FP8 slice that does not start on a 128-row block boundary (only in tiny test
/// configs: real heads are 128 rows) becomes a small exact F32 copy instead.
func sliceRows(_ w: Weight, _ range: Range<Int>) -> Weight {
    if case .fp8e4m3 = w.storage, range.lowerBound % fp8BlockSize != 0 {
        var values: [Float] = []
        values.reserveCapacity(range.count * w.cols)
        for r in range { values += Ops.dequantizeRow(w, r) }
        return .f32(rows: range.count, cols: w.cols, values)
    }
    return w.rows(range)
}

/// Fetches tensors by name and checks their shapes.
struct WeightLoader {
    let source: any TensorSource
    let layout: WeightLayout
    /// Threads that make the layout copies.
    let pool: ComputePool

    /// A weight only `Ops.linear` reads: in the requested layout.
    func product(_ name: String, rows: Int, cols: Int) throws -> Weight {
        product(try weight(name, rows: rows, cols: cols))
    }

    /// A weight or view only `Ops.linear` reads (e.g. W_UV of kv_b_proj), in the requested layout. Releasing a view's
    /// mapped pages is safe while other views read the same tensor (W_UK, the naive prefill's kv_b_proj): only whole
    /// pages inside the view are dropped, and a later read faults them back in from the page cache.
    func product(_ w: Weight) -> Weight {
        layout == .interleaved ? w.interleavedForDecode(pool: pool) : w
    }

    func weight(_ name: String, rows: Int, cols: Int) throws -> Weight {
        guard source.contains(name) else {
            throw ModelError(.missingTensor, "the checkpoint has no tensor of this name", subject: name)
        }
        let w = try source.weight(name)
        guard w.rows == rows && w.cols == cols else {
            throw ModelError(.shapeMismatch, "shape [\(w.rows), \(w.cols)], config expects [\(rows), \(cols)]", subject: name)
        }
        return w
    }

    func vector(_ name: String, count: Int) throws -> [Float] {
        guard source.contains(name) else {
            throw ModelError(.missingTensor, "the checkpoint has no tensor of this name", subject: name)
        }
        let v = try source.vector(name)
        guard v.count == count else {
            throw ModelError(.shapeMismatch, "length \(v.count), config expects \(count)", subject: name)
        }
        return v
    }
}
