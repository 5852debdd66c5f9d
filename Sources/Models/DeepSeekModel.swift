// DeepSeek-V3 / Kimi K2 forward pass on one device (transformers' modeling_deepseek_v3.py), FP32 activations,
// weights in their stored dtype (via `TensorSource`, HF checkpoint names), all products through `Ops.linear`.
//
// A model object holds a contiguous range of decoder layers (a pipeline stage), optionally the embedding
// and the final norm + lm_head, and optionally only a subset of the routed experts (an expert shard; the
// `ExpertDispatcher` then moves tokens to the other owners).
import Foundation
import Kernels
import Tensors

/// DeepSeek-V3's names for the shared block types (kept for the code and tests written against them).
public typealias MLPWeights = FFNBlock
public typealias DecoderLayerWeights = TransformerBlock

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
    /// The attention block with the current forms (they may be switched between calls).
    var mla: MLAAttention {
        MLAAttention(heads: heads, nopeDim: nopeDim, ropeDim: ropeDim, vDim: vDim, latentDim: latentDim, softmaxScale: softmaxScale,
                     pool: pool, prefillMode: prefillMode, decodeMode: decodeMode)
    }
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
        return try stack.forwardLayers(hidden, segments: segments, mode: mode, observe: observe)
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

    // MARK: MLP / MoE (the blocks' own code lives in ModelKit; these keep the equivalence tests' entry points)

    /// The residual loop over the held layers with the current attention forms and observer.
    var stack: DecoderStack {
        DecoderStack(layers: layers, eps: Float(config.rmsNormEps), rope: rope, attention: mla, dispatcher: dispatcher, pool: pool,
                     phases: phaseObserver)
    }

    /// `MoEBlock.behindShared` of one layer.
    func moeBehindShared(_ layer: Int, router: Router, experts: [Int: FeedForward], shared: FeedForward, _ x: Matrix,
                         observe: ((ForwardEvent) -> Void)?) throws -> Matrix {
        try stack.moeBlock(layer, router, experts, shared).behindShared(shared, x, observe: observe)
    }

    /// `MoEBlock.runExperts`: the routed part of one layer through this model's dispatcher.
    public func runExperts(routing: Routing, x: Matrix, experts: [Int: FeedForward], layer: Int) throws -> Matrix {
        try stack.moeBlock(layer, nil, experts, nil).runExperts(routing: routing, x: x)
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
