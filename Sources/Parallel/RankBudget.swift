// Per-rank memory of a plan: weights of the tensors the rank holds (from the tensor table), the MLA latent KV
// cache of its lane's sequences for its stage's layers, and activation workspace (formula in `Workspace`).
import ModelKit

/// Weight storage of the served checkpoint.
public enum WeightDType: String, Codable, Sendable, CaseIterable {
    case bf16, fp8
}

/// Bytes and parameters of the main model grouped the way plans split it (MTP excluded: not served).
public struct WeightBreakdown: Sendable {
    public struct Part: Sendable, Equatable {
        public var parameters = 0
        public var bytes = 0
        static func + (a: Part, b: Part) -> Part { Part(parameters: a.parameters + b.parameters, bytes: a.bytes + b.bytes) }
    }
    public let dtype: WeightDType
    /// Per layer: tensors replicated on every lane of the layer's stage, by role (attention, norm, denseFFN, sharedExpert, router).
    public let layerReplicated: [[TensorComponent: Part]]
    /// The part of `layerReplicated` a tensor-parallel group splits by output rows (each rank holds its share).
    public let layerSplit: [[TensorComponent: Part]]
    /// Per layer, per routed expert (empty for dense layers).
    public let experts: [[Part]]
    public let embedding: Part
    /// Final norm + lm_head (last stage).
    public let head: Part
    /// The part of `head` split under tensor parallelism (lm_head's vocabulary rows).
    public let headSplit: Part

    /// `specs`: the main model's tensors (the family's table without MTP layers).
    public init(model: ModelShape, specs: [TensorSpec], dtype: WeightDType) {
        self.dtype = dtype
        let layers = model.layerCount
        var replicated = [[TensorComponent: Part]](repeating: [:], count: layers), split = replicated
        var experts = model.layers.map { [Part](repeating: Part(), count: $0.moe?.experts ?? 0) }
        var embedding = Part(), head = Part(), headSplit = Part()
        for spec in specs where !spec.isMTP {
            let part = Part(parameters: spec.parameterCount, bytes: dtype == .fp8 ? spec.bytesFP8 : spec.bytesBF16)
            switch (spec.layer, spec.expert) {
            case let (l?, e?): experts[l][e] = experts[l][e] + part
            case let (l?, nil):
                replicated[l][spec.role, default: Part()] = replicated[l][spec.role, default: Part()] + part
                if spec.splitsUnderTP { split[l][spec.role, default: Part()] = split[l][spec.role, default: Part()] + part }
            case (nil, _):
                if spec.component == .embedding { embedding = embedding + part } else { head = head + part }
                if spec.splitsUnderTP && spec.component != .embedding { headSplit = headSplit + part }
            }
        }
        layerReplicated = replicated
        layerSplit = split
        self.headSplit = headSplit
        self.experts = experts
        self.embedding = embedding
        self.head = head
    }

    public var totalBytes: Int {
        layerReplicated.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.bytes } } + experts.reduce(0) { $0 + $1.reduce(0) { $0 + $1.bytes } }
            + embedding.bytes + head.bytes
    }

    /// Bytes every lane of a stage holds besides its routed experts, summed over the whole model.
    public var replicatedBytes: Int { totalBytes - experts.reduce(0) { $0 + $1.reduce(0) { $0 + $1.bytes } } }

    /// A part as one rank of a `tp`-way group holds it: the split share divided (rounded up), the rest whole.
    public func perRank(_ whole: Part, split: Part?, tp: Int) -> Part {
        guard tp > 1, let split else { return whole }
        return Part(parameters: whole.parameters - split.parameters + (split.parameters + tp - 1) / tp,
                    bytes: whole.bytes - split.bytes + (split.bytes + tp - 1) / tp)
    }

    /// Role `role` of layer `l` as one rank of a `tp`-way group holds it.
    public func layerPart(_ l: Int, _ role: TensorComponent, tp: Int) -> Part? {
        layerReplicated[l][role].map { perRank($0, split: layerSplit[l][role], tp: tp) }
    }

    /// The final norm and lm_head as one rank of a `tp`-way group holds them.
    public func headPart(tp: Int) -> Part { perRank(head, split: headSplit, tp: tp) }

    /// Weight bytes rank (stage, lane) holds under `plan`.
    public func rankBytes(plan: ParallelPlan, stage: Int, lane: Int) -> Int {
        var bytes = 0
        for l in plan.stageLayers[stage] {
            bytes += layerReplicated[l].keys.reduce(0) { $0 + layerPart(l, $1, tp: plan.tp)!.bytes }
            if !experts[l].isEmpty { bytes += plan.laneExperts[lane].reduce(0) { $0 + experts[l][$1].bytes } }
        }
        if stage == 0 { bytes += embedding.bytes }
        if stage == plan.pp - 1 { bytes += headPart(tp: plan.tp).bytes }
        return bytes
    }
}

/// The serving load a plan is sized for.
public struct Workload: Sendable, Codable, Equatable {
    /// Sequences served at once (spread over the lanes).
    public var batch: Int
    /// Tokens per sequence the KV cache must hold (prompt + generated).
    public var context: Int
    /// Prompt tokens prefilled in one step (default: the whole context).
    public var prompt: Int
    /// Micro-batch groups in flight (engine default: one per stage).
    public var microBatches: Int?

    public init(batch: Int, context: Int, prompt: Int? = nil, microBatches: Int? = nil) {
        self.batch = batch
        self.context = context
        self.prompt = prompt ?? context
        self.microBatches = microBatches
    }

    /// Sequences one lane holds (the coordinator fills the least-loaded lane first).
    public func sequencesPerLane(ep: Int) -> Int { (batch + ep - 1) / ep }
    public func groups(pp: Int) -> Int { microBatches ?? pp }
    /// Sequences of one lane in one micro-batch group.
    public func sequencesPerGroup(ep: Int, pp: Int) -> Int { max(1, (sequencesPerLane(ep: ep) + groups(pp: pp) - 1) / groups(pp: pp)) }
}

/// Activation workspace of one rank, in bytes. moerun keeps activations in FP32. The largest step is the prefill of
/// one micro-batch group: T = sequencesPerGroup x prompt tokens on the lane. Peak live buffers, in floats:
///   6 T D                          residual, normed input, attention output, MLP output, shared-expert output, sum
///   T (q_lora + H qk + H v + 2 (kv_lora + rope))   queries, attention heads, latent rows (projection + cache copy)
///   prompt x (H (nope + v) + kv_lora)              naive MLA expands one sequence's latents at a time
///   3 T max(intermediate, moe_intermediate x shared)   gate, up, product of the dense / shared FFN
///   T k (2 (D + 2) + 3 moe_intermediate + 2 D)     dispatch send + receive, expert FFN, weighted + combined rows
///   sequences x vocab                              logits of the last positions
public enum Workspace {
    /// The largest need of any layer (layers run one after the other and reuse the space).
    public static func bytes(model m: ModelShape, tokens t: Int, sequences: Int, prompt: Int) -> Int {
        let d = m.hidden
        let hidden = 6 * t * d
        var attention = 0, expansion = 0, moe = 0
        for layer in m.layers {
            switch layer.mixer {
            case .mla(let a):
                let h = a.heads
                attention = max(attention, t * ((a.qLoraRank ?? 0) + h * a.qkHeadDim + h * a.vHeadDim + 2 * a.cacheFloatsPerToken))
                expansion = max(expansion, prompt * (h * (a.qkNopeHeadDim + a.vHeadDim) + a.kvLoraRank))
            case .attention(let a):
                // q, k, v, the attention output, and one row of scores per head over the prompt.
                attention = max(attention, t * (2 * a.heads * a.headDim + a.cacheFloatsPerToken) + a.heads * prompt)
            }
            if let e = layer.moe { moe = max(moe, t * e.topK * (2 * (d + 2) + 3 * e.width + 2 * d)) }
        }
        let ffn = 3 * t * max(m.denseWidth, m.layers.compactMap(\.moe?.sharedWidth).max() ?? 0)
        return 4 * (hidden + attention + expansion + ffn + moe + sequences * m.vocab)
    }
}

/// Memory of one rank.
public struct RankBudget: Sendable, Codable, Equatable {
    public var rank: Int
    public var stage: Int
    public var lane: Int
    public var node: Int
    public var host: String
    public var layers: Range<Int>
    public var experts: Range<Int>
    public var weightBytes: Int
    public var kvCacheBytes: Int
    public var workspaceBytes: Int
    public var totalBytes: Int { weightBytes + kvCacheBytes + workspaceBytes }

    /// KV-cache bytes: each layer's FP32 cache values per token (MLA: kv_lora_rank + qk_rope_head_dim) over the
    /// stage's layers, for the lane's sequences.
    /// Under tensor parallelism (`tp` > 1) a GQA layer's cache holds only the rank's KV heads; MLA's latent is whole.
    public static func kvCache(model: ModelShape, layers: Range<Int>, sequences: Int, context: Int, tp: Int = 1) -> Int {
        let floats = layers.reduce(0) { sum, l in
            switch model.layers[l].mixer {
            case .mla(let a): return sum + a.cacheFloatsPerToken
            case .attention(let a): return sum + 2 * TensorSplit.block(count: a.kvHeads, parts: tp, index: 0).count * a.headDim
            }
        }
        return floats * 4 * sequences * context
    }

    public static func make(plan: ParallelPlan, model: ModelShape, weights: WeightBreakdown, workload: Workload,
                            cluster: Cluster) -> [RankBudget] {
        let nodeOf = cluster.rankNodes
        // Sequences go to lane groups; every rank of a tensor-parallel group keeps the group's whole cache.
        let seqs = workload.sequencesPerLane(ep: plan.dp)
        let group = workload.sequencesPerGroup(ep: plan.dp, pp: plan.pp)
        let workspace = Workspace.bytes(model: model, tokens: group * workload.prompt, sequences: group, prompt: workload.prompt)
        return (0..<plan.rankCount).map { r in
            let s = plan.stage(of: Rank(r)), l = plan.lane(of: Rank(r))
            return RankBudget(rank: r, stage: s, lane: l, node: nodeOf[r], host: cluster.nodes[nodeOf[r]].host,
                              layers: plan.stageLayers[s], experts: plan.laneExperts[l],
                              weightBytes: weights.rankBytes(plan: plan, stage: s, lane: l),
                              kvCacheBytes: kvCache(model: model, layers: plan.stageLayers[s], sequences: seqs, context: workload.context, tp: plan.tp),
                              workspaceBytes: workspace)
        }
    }
}

/// Memory of one node: its ranks together against what it has.
public struct NodeBudget: Sendable, Codable, Equatable {
    public var node: Int
    public var host: String
    public var ranks: [Int]
    public var neededBytes: Int
    public var usableBytes: Int
    public var fits: Bool { neededBytes <= usableBytes }
    /// Bytes missing (0 when it fits).
    public var shortfallBytes: Int { max(0, neededBytes - usableBytes) }

    public static func make(_ ranks: [RankBudget], cluster: Cluster) -> [NodeBudget] {
        cluster.nodes.enumerated().map { i, n in
            let mine = ranks.filter { $0.node == i }
            return NodeBudget(node: i, host: n.host, ranks: mine.map(\.rank), neededBytes: mine.reduce(0) { $0 + $1.totalBytes },
                              usableBytes: Int(n.usableBytes))
        }
    }
}
