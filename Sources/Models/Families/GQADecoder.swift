// GQADecoder: the Llama-shaped decoder that the GQA families share (Qwen3-MoE, Mixtral, GLM-4.5, MiniMax-M2): pre-norm
// layers of grouped-query attention and a gated FFN or an MoE block. A family gives each layer's shape and tensor
// names (`GQALayer`); the tensor table and the loader both walk that one list, so they cannot drift apart.
import Kernels
import Tensors

/// The names of an MoE block's tensors, relative to the layer prefix.
struct MoENames: Sendable {
    /// Router weight `[E, D]`.
    let router: String
    /// Selection bias `[E]` (sigmoid routers with `e_score_correction_bias`); nil: none.
    let bias: String?
    /// Expert e's (gate, up, down).
    let expert: @Sendable (Int) -> (gate: String, up: String, down: String)
    /// Shared expert (gate, up, down); nil: none.
    let shared: (gate: String, up: String, down: String)?
}

/// One decoder layer of a GQA family: shapes and the checkpoint names, spelled once.
struct GQALayer {
    let index: Int
    let attention: GQAShape
    /// q_norm / k_norm, and over what (nil: none).
    let qkNorm: QKNormPlacement?
    let ffn: FFNShape
    let router: RouterParameters?
    /// Dense FFN tensors (gate, up, down), relative to the prefix.
    let denseNames: (gate: String, up: String, down: String)
    let moeNames: MoENames
    /// `model.layers.L.`
    var prefix: String { "model.layers.\(index)." }

    func attn(_ name: String) -> String { prefix + "self_attn." + name }
    var inputNorm: String { prefix + "input_layernorm.weight" }
    var postNorm: String { prefix + "post_attention_layernorm.weight" }
    /// Width of the q / k norm weights.
    var qkNormWidths: (q: Int, k: Int) {
        qkNorm == .wholeProjection ? (attention.heads * attention.headDim, attention.kvHeads * attention.headDim)
                                   : (attention.headDim, attention.headDim)
    }
}

/// The whole model's facts a GQA family gives (built by the family's config; its members are this module's).
public struct GQADecoder {
    let hidden: Int
    let vocab: Int
    let layers: [GQALayer]
    let tiedEmbeddings: Bool
    let eps: Double
    /// RoPE over the leading `rope.dim` dims of each head (partial rotary when smaller than head_dim).
    let rope: RotaryEmbedding

    var shape: ModelShape {
        ModelShape(hidden: hidden, vocab: vocab, layers: layers.map { LayerShape(mixer: .attention($0.attention), ffn: $0.ffn) })
    }

    /// Every checkpoint tensor, in load order.
    var tensorSpecs: [TensorSpec] {
        var specs: [TensorSpec] = []
        // What `loadLayer` splits under tensor parallelism: q / k / v / o and their biases, dense and shared FFNs, lm_head.
        func add(_ name: String, _ shape: [Int], _ role: TensorComponent, layer: Int? = nil, expert: Int? = nil, dtypes: [DType]? = nil) {
            let linear = shape.count == 2 && role != .embedding && role != .router
            let splits = expert == nil && (role == .attention || role == .denseFFN || role == .sharedExpert || role == .head)
            specs.append(TensorSpec(name: name, shape: shape, dtypes: dtypes ?? (linear ? TensorTable.linearDTypes : TensorTable.plainDTypes),
                                    component: role, role: role, layer: layer, expert: expert, quantizable: linear, optional: false,
                                    splitsUnderTP: splits))
        }
        func ffn(_ names: (gate: String, up: String, down: String), width: Int, _ role: TensorComponent, _ l: GQALayer, expert: Int? = nil) {
            add(l.prefix + names.gate, [width, hidden], role, layer: l.index, expert: expert)
            add(l.prefix + names.up, [width, hidden], role, layer: l.index, expert: expert)
            add(l.prefix + names.down, [hidden, width], role, layer: l.index, expert: expert)
        }
        let d = hidden
        add("model.embed_tokens.weight", [vocab, d], .embedding)
        for l in layers {
            let a = l.attention, qw = a.heads * a.headDim, kvw = a.kvHeads * a.headDim
            add(l.inputNorm, [d], .norm, layer: l.index)
            add(l.attn("q_proj.weight"), [qw, d], .attention, layer: l.index)
            add(l.attn("k_proj.weight"), [kvw, d], .attention, layer: l.index)
            add(l.attn("v_proj.weight"), [kvw, d], .attention, layer: l.index)
            if a.qkvBias {
                add(l.attn("q_proj.bias"), [qw], .attention, layer: l.index)
                add(l.attn("k_proj.bias"), [kvw], .attention, layer: l.index)
                add(l.attn("v_proj.bias"), [kvw], .attention, layer: l.index)
            }
            add(l.attn("o_proj.weight"), [d, qw], .attention, layer: l.index)
            if l.qkNorm != nil {
                add(l.attn("q_norm.weight"), [l.qkNormWidths.q], .norm, layer: l.index)
                add(l.attn("k_norm.weight"), [l.qkNormWidths.k], .norm, layer: l.index)
            }
            add(l.postNorm, [d], .norm, layer: l.index)
            switch l.ffn {
            case .dense(let width):
                ffn(l.denseNames, width: width, .denseFFN, l)
            case .moe(let m):
                add(l.prefix + l.moeNames.router, [m.experts, d], .router, layer: l.index)
                if let bias = l.moeNames.bias { add(l.prefix + bias, [m.experts], .router, layer: l.index, dtypes: TensorTable.biasDTypes) }
                for e in 0..<m.experts { ffn(l.moeNames.expert(e), width: m.width, .routedExpert, l, expert: e) }
                if let shared = l.moeNames.shared { ffn(shared, width: m.sharedWidth, .sharedExpert, l) }
            }
        }
        add("model.norm.weight", [d], .norm)
        if !tiedEmbeddings { add("lm_head.weight", [vocab, d], .head) }
        return specs
    }

    /// Loads `shard` from `source`.
    func load(source: any TensorSource, shard: ModelShard, dispatcher: (any ExpertDispatcher)?, pool: ComputePool,
              weightLayout: WeightLayout, progress: ((Int, Int) -> Void)?) throws -> DecoderModel {
        let range = shard.layers ?? 0..<layers.count
        let tp = shard.tp
        if tp.size > 1 {
            let first = layers[0]
            guard first.qkNorm != .wholeProjection else {
                throw ModelError(.unsupportedConfig, "tensor parallelism cannot split heads whose q / k norm spans the whole projection (MiniMax-M2); use pp / ep",
                                 subject: "tp")
            }
            guard tp.size <= first.attention.kvHeads else {
                throw ModelError(.badInput, "tensor parallelism over \(tp.size) ranks needs at least as many KV heads; the model has \(first.attention.kvHeads)",
                                 subject: "tp")
            }
        }
        guard range.lowerBound >= 0, range.upperBound <= layers.count else {
            throw ModelError(.badInput, "layer range \(range) outside 0..<\(layers.count)", subject: "layers")
        }
        let experts = shard.experts ?? Set(0..<shape.routedExperts)
        let loader = WeightLoader(source: source, layout: weightLayout, pool: pool)
        let d = hidden
        let wantsEmbedding = shard.includeEmbedding ?? (range.lowerBound == 0)
        let head = shard.includeHead ?? (range.upperBound == layers.count), steps = range.count + (head ? 1 : 0)
        let embedTokens = wantsEmbedding || (tiedEmbeddings && head) ? try loader.weight("model.embed_tokens.weight", rows: vocab, cols: d) : nil
        var built: [TransformerBlock] = []
        for l in range {
            built.append(try loadLayer(layers[l], loader: loader, experts: experts, tp: tp))
            progress?(built.count, steps)
        }
        var finalNorm: [Float]? = nil, lmHead: Weight? = nil
        if head {
            finalNorm = try loader.vector("model.norm.weight", count: d)
            let rows = tp.share(of: vocab)
            lmHead = tiedEmbeddings ? loader.product(rows == 0..<vocab ? embedTokens! : try WeightLoader.share(embedTokens!, rows, name: "model.embed_tokens.weight"))
                                    : try loader.product("lm_head.weight", rows: vocab, cols: d, share: rows)
            progress?(steps, steps)
        }
        let first = layers[0], local = localAttention(first.attention, tp: tp)
        let gqa = GQAAttention(shape: local, qkNorm: first.qkNorm ?? .perHead, rotaryDim: rope.dim, normEps: Float(eps),
                               softmaxScale: Float(1 / Double(first.attention.headDim).squareRoot()), pool: pool, tp: tp,
                               totalKVHeads: first.attention.kvHeads)
        return DecoderModel(shape: shape, layerRange: range, localExperts: experts, layers: built, embedTokens: wantsEmbedding ? embedTokens : nil,
                            finalNorm: finalNorm, lmHead: lmHead, rope: rope, eps: Float(eps), mixers: Mixers(attention: gqa),
                            dispatcher: dispatcher ?? LocalDispatcher(experts: experts), pool: pool, tp: tp,
                            cacheRowWidth: local.cacheFloatsPerToken)
    }

    /// The attention a rank of a `tp`-way group computes: its share of the KV heads and their query heads.
    func localAttention(_ a: GQAShape, tp: any TensorParallelGroup) -> GQAShape {
        var local = a
        local.kvHeads = tp.share(of: a.kvHeads).count
        local.heads = local.kvHeads * (a.heads / a.kvHeads)
        return local
    }

    /// Layer `l` with the routed `experts` and, under tensor parallelism, this rank's share of the split weights: its KV
    /// heads of k / v (and their query heads of q, biases alike), its hidden outputs of o_proj and of the FFNs' down,
    /// its columns of the dense and shared FFNs' gate / up.
    func loadLayer(_ l: GQALayer, loader: WeightLoader, experts: Set<Int>, tp: any TensorParallelGroup = SingleRank()) throws -> TransformerBlock {
        let d = hidden, a = l.attention, qw = a.heads * a.headDim, kvw = a.kvHeads * a.headDim
        let kvHeads = tp.share(of: a.kvHeads), group = a.heads / a.kvHeads, hiddenShare = tp.share(of: d)
        let kvRows = (kvHeads.lowerBound * a.headDim)..<(kvHeads.upperBound * a.headDim)
        let qRows = (kvRows.lowerBound * group)..<(kvRows.upperBound * group)
        func bias(_ name: String, _ n: Int, _ rows: Range<Int>) throws -> [Float]? {
            a.qkvBias ? Array(try loader.vector(l.attn(name), count: n)[rows]) : nil
        }
        func norm(_ name: String, _ n: Int) throws -> [Float]? { l.qkNorm != nil ? try loader.vector(l.attn(name), count: n) : nil }
        func ffn(_ names: (gate: String, up: String, down: String), width: Int, split: Bool) throws -> FeedForward {
            let columns = split ? tp.share(of: width) : 0..<width, outputs = split ? hiddenShare : 0..<d
            return FeedForward(gate: try loader.product(l.prefix + names.gate, rows: width, cols: d, share: columns),
                               up: try loader.product(l.prefix + names.up, rows: width, cols: d, share: columns),
                               down: try loader.product(l.prefix + names.down, rows: d, cols: width, share: outputs))
        }
        let attention = GQAWeights(q: try loader.product(l.attn("q_proj.weight"), rows: qw, cols: d, share: qRows),
                                   k: try loader.product(l.attn("k_proj.weight"), rows: kvw, cols: d, share: kvRows),
                                   v: try loader.product(l.attn("v_proj.weight"), rows: kvw, cols: d, share: kvRows),
                                   o: try loader.product(l.attn("o_proj.weight"), rows: d, cols: qw, share: hiddenShare),
                                   qBias: try bias("q_proj.bias", qw, qRows), kBias: try bias("k_proj.bias", kvw, kvRows),
                                   vBias: try bias("v_proj.bias", kvw, kvRows),
                                   qNorm: try norm("q_norm.weight", l.qkNormWidths.q), kNorm: try norm("k_norm.weight", l.qkNormWidths.k))
        let mlp: FFNBlock
        switch l.ffn {
        case .dense(let width):
            mlp = .dense(try ffn(l.denseNames, width: width, split: true))
        case .moe(let m):
            var routed: [Int: FeedForward] = [:]
            for e in experts.sorted() { routed[e] = try ffn(l.moeNames.expert(e), width: m.width, split: false) }
            let gate = try loader.weight(l.prefix + l.moeNames.router, rows: m.experts, cols: d)
            let correction = try l.moeNames.bias.map { try loader.vector(l.prefix + $0, count: m.experts) }
            mlp = .moe(router: Router(gate: gate, bias: correction, parameters: l.router!), experts: routed,
                       shared: try l.moeNames.shared.map { try ffn($0, width: m.sharedWidth, split: true) })
        }
        return TransformerBlock(index: l.index, inputLayernorm: try loader.vector(l.inputNorm, count: d),
                                postAttentionLayernorm: try loader.vector(l.postNorm, count: d), mixer: .attention(attention), mlp: mlp)
    }
}

extension MoENames {
    /// `mlp.gate.weight`, `mlp.experts.E.{gate,up,down}_proj.weight` (Qwen3-MoE, GLM-4.5, DeepSeek naming).
    static func mlp(bias: String? = nil, shared: Bool = false) -> MoENames {
        MoENames(router: "mlp.gate.weight", bias: bias,
                 expert: { e in ("mlp.experts.\(e).gate_proj.weight", "mlp.experts.\(e).up_proj.weight", "mlp.experts.\(e).down_proj.weight") },
                 shared: shared ? ("mlp.shared_experts.gate_proj.weight", "mlp.shared_experts.up_proj.weight", "mlp.shared_experts.down_proj.weight") : nil)
    }

    /// `block_sparse_moe.gate.weight`, `block_sparse_moe.experts.E.w1 / w3 / w2` (gate / up / down: Mixtral, MiniMax-M2).
    static func blockSparse(bias: String? = nil) -> MoENames {
        MoENames(router: "block_sparse_moe.gate.weight", bias: bias,
                 expert: { e in ("block_sparse_moe.experts.\(e).w1.weight", "block_sparse_moe.experts.\(e).w3.weight",
                                 "block_sparse_moe.experts.\(e).w2.weight") },
                 shared: nil)
    }
}

/// The dense FFN names every Llama-derived family uses.
let mlpDenseNames = (gate: "mlp.gate_proj.weight", up: "mlp.up_proj.weight", down: "mlp.down_proj.weight")

/// A family built on `GQADecoder`: its shape, tensor table and loader come from the decoder its config describes, and
/// the keys every such config shares (end-of-sequence ids, FP8 flag, nested RoPE and quantization objects) are read alike.
public protocol GQAFamilyConfig: HFConfig, ScalableFamilyConfig {
    var decoder: GQADecoder { get }
}

extension GQAFamilyConfig {
    public static var nestedKnownKeys: [String: Set<String>] {
        ["rope_scaling": RopeScaling.knownKeys, "rope_parameters": RopeScaling.knownKeys, "quantization_config": QuantizationConfig.knownKeys]
    }
    public var eosIDs: [Int] { eosTokenId?.ids ?? [] }
    public var isFP8: Bool { quantizationConfig?.quantMethod == "fp8" }
    public var shape: ModelShape { decoder.shape }
    public var mainTensorSpecs: [TensorSpec] { decoder.tensorSpecs }

    public func loadModel(source: any TensorSource, shard: ModelShard, dispatcher: (any ExpertDispatcher)?, pool: ComputePool,
                          weightLayout: WeightLayout, progress: ((Int, Int) -> Void)?) throws -> DecoderModel {
        try decoder.load(source: source, shard: shard, dispatcher: dispatcher, pool: pool, weightLayout: weightLayout, progress: progress)
    }
}
