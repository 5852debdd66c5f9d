// DeepSeek-V3 / Kimi K2 (`deepseek_v3`, `kimi_k2`) on one device (transformers' modeling_deepseek_v3.py), FP32
// activations, weights in their stored dtype (via `TensorSource`, HF checkpoint names), all products through
// `Ops.linear`: multi-head latent attention, the grouped sigmoid router, shared experts, dense-first layers.
import Foundation
import Kernels
import Tensors

/// DeepSeek-V3's names for the shared block types (kept for the code and tests written against them).
public typealias MLPWeights = FFNBlock
public typealias DecoderLayerWeights = TransformerBlock

public final class DeepSeekModel: DecoderModel, @unchecked Sendable {
    public let config: ModelConfig
    /// qk_head_dim^-0.5 · mscale² (§1.5).
    public let softmaxScale: Float

    /// Loads weights from `source` by HF name.
    /// - layers: decoder layers to hold (default: all `num_hidden_layers`).
    /// - experts: routed experts to hold (default: all).
    /// - includeEmbedding / includeHead: default true for the first / last stage.
    /// - dispatcher: moves routed tokens to expert owners; `LocalDispatcher` over `experts` unless given.
    /// - weightLayout: `.interleaved` copies the projection weights into the decode kernels' read order (same
    ///   results, faster batch-1 decode; the embedding and kv_b_proj, read by row or transposed, stay as mapped).
    /// - progress: called with (layers done, layers) after each decoder layer (the head counts as the last one);
    ///   with `.interleaved` each layer is a copy of its weights, seconds per layer on a large model.
    /// - tensorParallel: the lane's group; this rank then holds its share of every split weight (`loadLayer`) and of the
    ///   head's vocabulary rows, and the blocks gather across the group.
    public init(config: ModelConfig, source: any TensorSource, layers: Range<Int>? = nil, experts: Set<Int>? = nil,
                includeEmbedding: Bool? = nil, includeHead: Bool? = nil,
                dispatcher: (any ExpertDispatcher)? = nil, pool: ComputePool = .serial,
                weightLayout: WeightLayout = .checkpoint, progress: ((Int, Int) -> Void)? = nil,
                tensorParallel tp: any TensorParallelGroup = SingleRank()) throws {
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
        guard tp.size <= config.numAttentionHeads else {
            throw ModelError(.badInput, "tensor parallelism over \(tp.size) ranks needs at least as many attention heads; the model has \(config.numAttentionHeads)",
                             subject: "tp")
        }
        self.config = config
        let localExperts = experts ?? Set(0..<config.nRoutedExperts)
        let (rope, softmaxScale) = try DeepSeekModel.ropeSetup(config)
        self.softmaxScale = softmaxScale

        let loader = WeightLoader(source: source, layout: weightLayout, pool: pool)
        let d = config.hiddenSize
        let embedTokens = try (includeEmbedding ?? (range.lowerBound == 0))
            ? loader.weight("model.embed_tokens.weight", rows: config.vocabSize, cols: d) : nil
        var built: [DecoderLayerWeights] = []
        let head = includeHead ?? (range.upperBound == config.numHiddenLayers), steps = range.count + (head ? 1 : 0)
        for l in range {
            built.append(try DeepSeekModel.loadLayer(l, config: config, loader: loader, experts: localExperts, tp: tp))
            progress?(built.count, steps)
        }
        var finalNorm: [Float]? = nil, lmHead: Weight? = nil
        if head {
            finalNorm = try loader.vector("model.norm.weight", count: d)
            lmHead = try loader.product("lm_head.weight", rows: config.vocabSize, cols: d, share: tp.share(of: config.vocabSize))
            progress?(steps, steps)
        }
        let mla = MLAAttention(heads: tp.share(of: config.numAttentionHeads).count, nopeDim: config.qkNopeHeadDim,
                               ropeDim: config.qkRopeHeadDim, vDim: config.vHeadDim, latentDim: config.kvLoraRank, softmaxScale: softmaxScale,
                               pool: pool, prefillMode: .naive, decodeMode: .absorbed, tp: tp)
        super.init(shape: config.shape, layerRange: range, localExperts: localExperts, layers: built, embedTokens: embedTokens,
                   finalNorm: finalNorm, lmHead: lmHead, rope: rope, eps: Float(config.rmsNormEps), mixers: Mixers(mla: mla),
                   dispatcher: dispatcher ?? LocalDispatcher(experts: localExperts), pool: pool, tp: tp)
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

    /// Layer `l` with the routed `experts` and, under tensor parallelism, this rank's share of every split weight: its
    /// heads of q_b (or q_proj) and kv_b, its rows of the hidden outputs of o_proj and of the FFNs' down, its columns of
    /// the dense and shared FFNs' gate / up. q_a, kv_a, the norms and the router are whole on every rank.
    static func loadLayer(_ l: Int, config c: ModelConfig, loader: WeightLoader, experts: Set<Int>,
                          tp: any TensorParallelGroup = SingleRank()) throws -> DecoderLayerWeights {
        let p = "model.layers.\(l)."
        let d = c.hiddenSize, h = c.numAttentionHeads
        let qk = c.qkHeadDim, dn = c.qkNopeHeadDim, dv = c.vHeadDim, kvr = c.kvLoraRank
        let heads = tp.share(of: h), hidden = tp.share(of: d)
        func scaled(_ r: Range<Int>, _ width: Int) -> Range<Int> { (r.lowerBound * width)..<(r.upperBound * width) }
        var qA: Weight? = nil, qANorm: [Float]? = nil, qB: Weight? = nil, q: Weight? = nil
        if let rq = c.qLoraRank {
            qA = try loader.product(p + "self_attn.q_a_proj.weight", rows: rq, cols: d)
            qANorm = try loader.vector(p + "self_attn.q_a_layernorm.weight", count: rq)
            qB = try loader.product(p + "self_attn.q_b_proj.weight", rows: h * qk, cols: rq, share: scaled(heads, qk))
        } else {
            q = try loader.product(p + "self_attn.q_proj.weight", rows: h * qk, cols: d, share: scaled(heads, qk))
        }
        let kvBName = p + "self_attn.kv_b_proj.weight"
        let kvBAll = try loader.weight(kvBName, rows: h * (dn + dv), cols: kvr)
        let kvB = heads.count == h ? kvBAll : try WeightLoader.share(kvBAll, scaled(heads, dn + dv), name: kvBName)
        let attention = AttentionWeights(
            qAProj: qA, qALayernorm: qANorm, qBProj: qB, qProj: q,
            kvAProjWithMqa: try loader.product(p + "self_attn.kv_a_proj_with_mqa.weight", rows: kvr + c.qkRopeHeadDim, cols: d),
            kvALayernorm: try loader.vector(p + "self_attn.kv_a_layernorm.weight", count: kvr),
            kvBProj: kvB,
            oProj: try loader.product(p + "self_attn.o_proj.weight", rows: d, cols: h * dv, share: hidden),
            wUK: (0..<heads.count).map { sliceRows(kvB, ($0 * (dn + dv))..<($0 * (dn + dv) + dn)) },
            wUV: (0..<heads.count).map { loader.product(sliceRows(kvB, ($0 * (dn + dv) + dn)..<(($0 + 1) * (dn + dv)))) })
        /// A SwiGLU FFN of intermediate width `width`: this rank's columns of gate / up, its hidden outputs of down.
        func ffn(_ prefix: String, width: Int) throws -> FeedForward {
            let columns = tp.share(of: width)
            return FeedForward(gate: try loader.product(prefix + "gate_proj.weight", rows: width, cols: d, share: columns),
                               up: try loader.product(prefix + "up_proj.weight", rows: width, cols: d, share: columns),
                               down: try loader.product(prefix + "down_proj.weight", rows: d, cols: width, share: hidden))
        }
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
            let shared = c.nSharedExperts > 0 ? try ffn(p + "mlp.shared_experts.", width: mi * c.nSharedExperts) : nil
            mlp = .moe(router: Router(gate: gate, bias: bias, parameters: RouterParameters(config: c)),
                       experts: routed, shared: shared)
        } else {
            mlp = .dense(try ffn(p + "mlp.", width: c.intermediateSize))
        }
        return DecoderLayerWeights(index: l,
                                   inputLayernorm: try loader.vector(p + "input_layernorm.weight", count: d),
                                   postAttentionLayernorm: try loader.vector(p + "post_attention_layernorm.weight", count: d),
                                   attention: attention, mlp: mlp)
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

    /// Rows `share` of a weight only `Ops.linear` reads (a tensor-parallel rank's output features), in the requested
    /// layout; the whole weight, untouched, when the share is all of it.
    func product(_ name: String, rows: Int, cols: Int, share: Range<Int>) throws -> Weight {
        let w = try weight(name, rows: rows, cols: cols)
        return product(share == 0..<rows ? w : try Self.share(w, share, name: name))
    }

    /// A tensor-parallel rank's rows of `w` as a view. FP8 blocks share one scale per 128 rows and the products sum each
    /// block before scaling, so a share must start on a block: anything else would not be bit-exact.
    static func share(_ w: Weight, _ rows: Range<Int>, name: String) throws -> Weight {
        if rows == 0..<w.rows { return w }
        if case .fp8e4m3 = w.storage, rows.lowerBound % fp8BlockSize != 0 {
            throw ModelError(.unsupportedConfig,
                             "this tensor-parallel split gives a rank rows \(rows.lowerBound)..<\(rows.upperBound), which start inside a \(fp8BlockSize)-row FP8 block; choose a tp whose shares start on \(fp8BlockSize)-row boundaries (DeepSeek-V3 and Kimi K2: tp = 2, 4 or 8), or a BF16 checkpoint",
                             subject: name)
        }
        return w.rows(rows)
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
