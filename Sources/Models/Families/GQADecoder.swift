// GQADecoder: the Llama-shaped decoder that Qwen3-MoE, Mixtral and the other GQA families share: pre-norm layers of
// grouped-query attention and a gated FFN or a softmax-routed MoE. A family gives each layer's shape and tensor
// names (`GQALayer`); the tensor table and the loader both walk that one list, so they cannot drift apart.
import Kernels
import Tensors

/// One decoder layer of a GQA family: shapes and the checkpoint names, spelled once.
struct GQALayer {
    let index: Int
    let attention: GQAShape
    /// q_norm / k_norm over each head (Qwen3).
    let qkNorm: Bool
    let ffn: FFNShape
    let router: RouterParameters?
    /// `model.layers.L.`
    var prefix: String { "model.layers.\(index)." }
    /// Dense FFN tensors (gate, up, down), relative to the prefix.
    let denseNames: (gate: String, up: String, down: String)
    /// Router weight, relative to the prefix.
    let routerName: String
    /// Expert e's (gate, up, down), relative to the prefix.
    let expertNames: @Sendable (Int) -> (gate: String, up: String, down: String)

    var q: String { prefix + "self_attn.q_proj.weight" }
    var k: String { prefix + "self_attn.k_proj.weight" }
    var v: String { prefix + "self_attn.v_proj.weight" }
    var o: String { prefix + "self_attn.o_proj.weight" }
    var qNorm: String { prefix + "self_attn.q_norm.weight" }
    var kNorm: String { prefix + "self_attn.k_norm.weight" }
    var inputNorm: String { prefix + "input_layernorm.weight" }
    var postNorm: String { prefix + "post_attention_layernorm.weight" }
}

/// The whole model's facts a GQA family gives.
struct GQADecoder {
    let hidden: Int
    let vocab: Int
    let layers: [GQALayer]
    let tiedEmbeddings: Bool
    let eps: Double
    let rope: RotaryEmbedding

    var shape: ModelShape {
        ModelShape(hidden: hidden, vocab: vocab, layers: layers.map { LayerShape(mixer: .attention($0.attention), ffn: $0.ffn) })
    }

    /// Every checkpoint tensor, in load order.
    var tensorSpecs: [TensorSpec] {
        var specs: [TensorSpec] = []
        func add(_ name: String, _ shape: [Int], _ role: TensorComponent, layer: Int? = nil, expert: Int? = nil) {
            let linear = shape.count == 2 && role != .embedding && role != .router
            specs.append(TensorSpec(name: name, shape: shape, dtypes: linear ? TensorTable.linearDTypes : TensorTable.plainDTypes,
                                    component: role, role: role, layer: layer, expert: expert, quantizable: linear, optional: false))
        }
        let d = hidden
        add("model.embed_tokens.weight", [vocab, d], .embedding)
        for l in layers {
            let a = l.attention, qw = a.heads * a.headDim, kvw = a.kvHeads * a.headDim
            add(l.inputNorm, [d], .norm, layer: l.index)
            add(l.q, [qw, d], .attention, layer: l.index)
            add(l.k, [kvw, d], .attention, layer: l.index)
            add(l.v, [kvw, d], .attention, layer: l.index)
            add(l.o, [d, qw], .attention, layer: l.index)
            if l.qkNorm {
                add(l.qNorm, [a.headDim], .norm, layer: l.index)
                add(l.kNorm, [a.headDim], .norm, layer: l.index)
            }
            add(l.postNorm, [d], .norm, layer: l.index)
            switch l.ffn {
            case .dense(let width):
                add(l.prefix + l.denseNames.gate, [width, d], .denseFFN, layer: l.index)
                add(l.prefix + l.denseNames.up, [width, d], .denseFFN, layer: l.index)
                add(l.prefix + l.denseNames.down, [d, width], .denseFFN, layer: l.index)
            case .moe(let m):
                add(l.prefix + l.routerName, [m.experts, d], .router, layer: l.index)
                for e in 0..<m.experts {
                    let n = l.expertNames(e)
                    add(l.prefix + n.gate, [m.width, d], .routedExpert, layer: l.index, expert: e)
                    add(l.prefix + n.up, [m.width, d], .routedExpert, layer: l.index, expert: e)
                    add(l.prefix + n.down, [d, m.width], .routedExpert, layer: l.index, expert: e)
                }
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
        guard range.lowerBound >= 0, range.upperBound <= layers.count else {
            throw ModelError(.badInput, "layer range \(range) outside 0..<\(layers.count)", subject: "layers")
        }
        let experts = shard.experts ?? Set(0..<shape.routedExperts)
        let loader = WeightLoader(source: source, layout: weightLayout, pool: pool)
        let d = hidden
        let embedding = (shard.includeEmbedding ?? (range.lowerBound == 0)) || (tiedEmbeddings && (shard.includeHead ?? false))
        let embedTokens = embedding ? try loader.weight("model.embed_tokens.weight", rows: vocab, cols: d) : nil
        let head = shard.includeHead ?? (range.upperBound == layers.count), steps = range.count + (head ? 1 : 0)
        var built: [TransformerBlock] = []
        for l in range {
            built.append(try loadLayer(layers[l], loader: loader, experts: experts))
            progress?(built.count, steps)
        }
        var finalNorm: [Float]? = nil, lmHead: Weight? = nil
        if head {
            finalNorm = try loader.vector("model.norm.weight", count: d)
            lmHead = tiedEmbeddings ? loader.product(embedTokens!) : try loader.product("lm_head.weight", rows: vocab, cols: d)
            progress?(steps, steps)
        }
        let first = layers[range.lowerBound < layers.count ? range.lowerBound : 0].attention
        let gqa = GQAAttention(shape: first, rotaryDim: rope.dim, normEps: Float(eps),
                               softmaxScale: Float(1 / Double(first.headDim).squareRoot()), pool: pool)
        return DecoderModel(shape: shape, layerRange: range, localExperts: experts, layers: built,
                            embedTokens: (shard.includeEmbedding ?? (range.lowerBound == 0)) ? embedTokens : nil,
                            finalNorm: finalNorm, lmHead: lmHead, rope: rope, eps: Float(eps), mixers: Mixers(attention: gqa),
                            dispatcher: dispatcher ?? LocalDispatcher(experts: experts), pool: pool)
    }

    func loadLayer(_ l: GQALayer, loader: WeightLoader, experts: Set<Int>) throws -> TransformerBlock {
        let d = hidden, a = l.attention, qw = a.heads * a.headDim, kvw = a.kvHeads * a.headDim
        let attention = GQAWeights(q: try loader.product(l.q, rows: qw, cols: d), k: try loader.product(l.k, rows: kvw, cols: d),
                                   v: try loader.product(l.v, rows: kvw, cols: d), o: try loader.product(l.o, rows: d, cols: qw),
                                   qNorm: l.qkNorm ? try loader.vector(l.qNorm, count: a.headDim) : nil,
                                   kNorm: l.qkNorm ? try loader.vector(l.kNorm, count: a.headDim) : nil)
        let mlp: FFNBlock
        switch l.ffn {
        case .dense(let width):
            mlp = .dense(FeedForward(gate: try loader.product(l.prefix + l.denseNames.gate, rows: width, cols: d),
                                     up: try loader.product(l.prefix + l.denseNames.up, rows: width, cols: d),
                                     down: try loader.product(l.prefix + l.denseNames.down, rows: d, cols: width)))
        case .moe(let m):
            var routed: [Int: FeedForward] = [:]
            for e in experts.sorted() {
                let n = l.expertNames(e)
                routed[e] = FeedForward(gate: try loader.product(l.prefix + n.gate, rows: m.width, cols: d),
                                        up: try loader.product(l.prefix + n.up, rows: m.width, cols: d),
                                        down: try loader.product(l.prefix + n.down, rows: d, cols: m.width))
            }
            let gate = try loader.weight(l.prefix + l.routerName, rows: m.experts, cols: d)
            mlp = .moe(router: Router(gate: gate, bias: nil, parameters: l.router!), experts: routed, shared: nil)
        }
        return TransformerBlock(index: l.index, inputLayernorm: try loader.vector(l.inputNorm, count: d),
                                postAttentionLayernorm: try loader.vector(l.postNorm, count: d), mixer: .attention(attention), mlp: mlp)
    }
}
