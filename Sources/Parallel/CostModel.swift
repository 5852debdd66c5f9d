// CostModel: predicted prefill / decode tokens/s of a plan on a cluster, following how the engine runs a tick
// (broadcast, per stage: layers with linears as a roofline of FLOPs / GEMM rate vs weight bytes / bandwidth,
// attention over the context, MoE all-to-all dispatch + combine, pipeline receive; one group per tick).
import Foundation
import Kernels
import ModelKit

/// Seconds of one step split by what limits it.
public struct TimeBreakdown: Sendable, Codable, Equatable {
    /// Linears whose FLOPs at the achieved GEMM rate exceed their weight reads, plus attention arithmetic.
    public var compute = 0.0
    /// Linears limited by reading their weights.
    public var memory = 0.0
    /// All-to-all, pipeline and broadcast messages.
    public var network = 0.0
    /// Stages idle because fewer micro-batch groups than stages are in flight.
    public var bubbles = 0.0
    /// The engine's own work between products: per-layer bookkeeping and element-wise passes over activations.
    public var engine = 0.0
    public var total: Double { compute + memory + network + bubbles + engine }

    public var bottleneck: String {
        let parts = [("memory", memory), ("compute", compute), ("network", network), ("engine", engine), ("bubbles", bubbles)]
        return parts.max { $0.1 < $1.1 }!.0
    }

    static func + (a: TimeBreakdown, b: TimeBreakdown) -> TimeBreakdown {
        TimeBreakdown(compute: a.compute + b.compute, memory: a.memory + b.memory, network: a.network + b.network,
                      bubbles: a.bubbles + b.bubbles, engine: a.engine + b.engine)
    }

    func scaled(_ f: Double) -> TimeBreakdown {
        TimeBreakdown(compute: compute * f, memory: memory * f, network: network * f, bubbles: bubbles * f, engine: engine * f)
    }
}

/// Prediction for one phase (prefill or decode).
public struct PhasePrediction: Sendable, Codable, Equatable {
    /// Seconds of one tick (the slowest stage plus the step broadcast).
    public var tickSeconds: Double
    /// Ticks between two steps of one sequence's group: max(groups, stages) rounded up to whole rounds of groups.
    public var ticksPerStep: Int
    /// Tokens per second one request sees.
    public var perRequestTokensPerSecond: Double
    /// Tokens per second over all sequences.
    public var aggregateTokensPerSecond: Double
    /// Seconds of one step of a sequence, split by cause (slowest stage, times ticksPerStep).
    public var breakdown: TimeBreakdown
    public var bottleneck: String { breakdown.bottleneck }
}

public struct CostPrediction: Sendable, Codable, Equatable {
    public var prefill: PhasePrediction
    public var decode: PhasePrediction
    /// Seconds from admitting a prompt to its first token.
    public var timeToFirstTokenSeconds: Double
}

/// Rates of the hardware one rank runs on.
struct RankHardware {
    let gemm: Double, gemv: Double, bandwidth: Double
    /// Seconds of fixed cost per product call (fork/join, packing); oversubscribed ranks pay it per time slice.
    let callOverhead: Double
    let threads: Int
    let node: Int
    /// Ranks sharing the node's cores beyond one per core slow every message a rank must answer.
    let oversubscription: Double
    /// Engine time per layer per step (seconds) and element-wise rate (bytes/s); both slowed by oversubscription.
    let layerOverhead: Double
    let elementwise: Double

    init(node: NodeSpec, index: Int, threads: Int) {
        let cores = min(Double(threads), node.coresPerRank)
        gemm = cores * node.gemmGFlopsPerCore * 1e9
        gemv = cores * node.gemvGFlopsPerCore * 1e9
        // What the linear kernel streams: the hardware's read bandwidth times the kernel's measured efficiency.
        bandwidth = min(cores * node.coreBandwidthGBs, node.memoryBandwidthGBs / Double(node.ranks)) * node.streamEfficiency * 1e9
        self.node = index
        self.threads = threads
        oversubscription = max(1, Double(node.ranks) / Double(node.cores))
        callOverhead = node.callOverheadUS * 1e-6 * oversubscription
        layerOverhead = (node.layerOverheadUS + (threads > 1 ? node.layerSyncUS : 0)) * 1e-6 * oversubscription
        elementwise = node.elementwiseGBs * 1e9 / oversubscription
    }

    /// `calls` products totalling `params` weights (`bytes` stored), each over `tokens` rows: register-tiled for
    /// groups of 4 tokens, matrix-vector for the rest; weights stream from memory once per call (the prefill loop
    /// re-reads L2-sized tiles from cache), plus a fixed cost per call.
    func linear(params: Double, bytes: Double, tokens: Double, calls: Double = 1, into t: inout TimeBreakdown) {
        guard tokens > 0, params > 0 else { return }
        let tiled = 4 * (tokens / 4).rounded(.down)
        let compute = 2 * params * (tiled / gemm + (tokens - tiled) / gemv)
        let memory = bytes / bandwidth
        if compute >= memory { t.compute += compute } else { t.memory += memory }
        t.compute += calls * callOverhead
    }
}

public enum CostModel {
    /// Predict both phases. `threads` = compute threads per rank (default: the node's cores per rank).
    public static func predict(plan: ParallelPlan, model c: ModelShape, weights: WeightBreakdown, workload w: Workload,
                               cluster: Cluster, threads: Int? = nil) -> CostPrediction {
        let nodeOf = cluster.rankNodes
        let hw = (0..<plan.rankCount).map { r in
            let n = cluster.nodes[nodeOf[r]]
            return RankHardware(node: n, index: nodeOf[r], threads: threads ?? n.threadsPerRank)
        }
        let groups = w.groups(pp: plan.pp)
        // Sequences go to lane groups (dp of them; a tensor-parallel group's ranks share its sequences).
        let seqs = w.sequencesPerGroup(ep: plan.dp, pp: plan.pp)
        // Lanes whose group holds no sequence at all (batch < dp) still run every collective.
        let activeGroups = min(plan.dp, w.batch)
        let ticksPerStep = groups * Int((Double(plan.pp) / Double(groups)).rounded(.up))
        let busy = Double(groups) / Double(ticksPerStep)

        func tick(prefill: Bool) -> (Double, TimeBreakdown) {
            var slowest = (0.0, TimeBreakdown())
            for s in 0..<plan.pp {
                for l in 0..<plan.ep {
                    let t = stageTime(plan: plan, c: c, weights: weights, hw: hw, cluster: cluster, stage: s, lane: l,
                                      sequences: plan.group(ofLane: l) < activeGroups ? seqs : 0, activeGroups: activeGroups,
                                      sequencesPerGroup: seqs, prompt: w.prompt, context: w.context, prefill: prefill)
                    if t.total > slowest.0 { slowest = (t.total, t) }
                }
            }
            // Two step broadcasts from rank 0 (size, then descriptor) reach every rank in log2(N) rounds.
            var b = slowest.1
            let rounds = (log2(Double(max(plan.rankCount, 1)))).rounded(.up)
            let link = cluster.nodes.count > 1 ? cluster.interNode : cluster.intraNode
            b.network += 2 * rounds * link.latencyUS * 1e-6 * (hw.map(\.oversubscription).max() ?? 1)
            return (b.total, b)
        }

        let (decodeTick, decodeParts) = tick(prefill: false)
        let (prefillTick, prefillParts) = tick(prefill: true)
        let tokensPerStep = Double(min(w.batch, seqs * plan.dp * groups))
        func phase(_ tickSeconds: Double, _ parts: TimeBreakdown, tokensPerSequence: Double) -> PhasePrediction {
            var step = parts.scaled(Double(groups))
            step.bubbles += tickSeconds * Double(ticksPerStep) * (1 - busy)
            let stepSeconds = tickSeconds * Double(ticksPerStep)
            return PhasePrediction(tickSeconds: tickSeconds, ticksPerStep: ticksPerStep,
                                   perRequestTokensPerSecond: tokensPerSequence / stepSeconds,
                                   aggregateTokensPerSecond: tokensPerStep * tokensPerSequence / stepSeconds, breakdown: step)
        }
        var prefill = phase(prefillTick, prefillParts, tokensPerSequence: Double(w.prompt))
        // All groups' prompts are through after groups + pp - 1 ticks; a request's own first token after pp ticks.
        let ttft = prefillTick * Double(plan.pp)
        prefill.perRequestTokensPerSecond = Double(w.prompt) / ttft
        prefill.aggregateTokensPerSecond = tokensPerStep * Double(w.prompt) / (prefillTick * Double(groups + plan.pp - 1))
        return CostPrediction(prefill: prefill, decode: phase(decodeTick, decodeParts, tokensPerSequence: 1), timeToFirstTokenSeconds: ttft)
    }

    /// Seconds rank (stage, lane) spends on one micro-batch of `sequences` sequences (its lane group's) in one tick.
    /// Under tensor parallelism the rank runs its share of the split products over all of its group's tokens, routes
    /// and dispatches its share of those tokens, and all-gathers inside the group (`tpGather`).
    static func stageTime(plan: ParallelPlan, c: ModelShape, weights: WeightBreakdown, hw: [RankHardware], cluster: Cluster,
                          stage: Int, lane: Int, sequences: Int, activeGroups: Int, sequencesPerGroup: Int,
                          prompt: Int, context: Int, prefill: Bool) -> TimeBreakdown {
        let me = hw[plan.rank(stage: stage, lane: lane).value]
        var t = TimeBreakdown()
        let seqs = Double(sequences), tp = plan.tp
        let tokens = prefill ? seqs * Double(prompt) : seqs
        // The tokens this rank routes and dispatches: its share of the group's.
        let routedTokens = tokens / Double(tp)
        let d = Double(c.hidden)
        // Tokens the whole stage routes in this micro-batch (every group's sequences).
        let stageTokens = (prefill ? Double(prompt) : 1) * Double(sequencesPerGroup * activeGroups)
        let gather = { (floatsPerToken: Double) in tpGather(plan: plan, hw: hw, cluster: cluster, stage: stage, lane: lane, bytes: tokens * floatsPerToken * 4) }
        for l in plan.stageLayers[stage] {
            if tokens > 0 {
                t.engine += me.layerOverhead + tokens * elementwiseBytes(model: c, layer: l) / me.elementwise
            }
            let parts = weights.layerReplicated[l]
            let attn = weights.layerPart(l, .attention, tp: tp) ?? .init()
            switch c.layers[l].mixer {
            case .mla(let mla):
                mlaTime(mla, attn: attn, tp: tp, me: me, seqs: seqs, tokens: tokens, prompt: prompt, context: context, prefill: prefill, into: &t)
                if tp > 1 { t.network += gather(Double(mla.heads * mla.vHeadDim)) + gather(d) }
            case .attention(let a):
                // q, k, v, o over every token; scores and values over the causal triangle (prefill) or the context.
                me.linear(params: Double(attn.parameters), bytes: Double(attn.bytes), tokens: tokens, calls: 4, into: &t)
                let h = Double(a.heads), hd = Double(a.headDim)
                t.compute += prefill ? seqs * h * Double(prompt) * Double(prompt + 1) * hd / me.gemv
                                     : seqs * h * Double(context) * 2 * hd / me.gemv
            }
            if let dense = weights.layerPart(l, .denseFFN, tp: tp) {
                me.linear(params: Double(dense.parameters), bytes: Double(dense.bytes), tokens: tokens, calls: 3, into: &t)
                if tp > 1 { t.network += gather(Double(c.layers[l].denseWidth ?? 0)) + gather(d) }
            }
            if let shared = weights.layerPart(l, .sharedExpert, tp: tp) {
                me.linear(params: Double(shared.parameters), bytes: Double(shared.bytes), tokens: tokens, calls: 3, into: &t)
                if tp > 1 { t.network += gather(Double(c.layers[l].moe?.sharedWidth ?? 0)) + gather(d) }
            }
            if let router = parts[.router] { me.linear(params: Double(router.parameters), bytes: Double(router.bytes), tokens: routedTokens, into: &t) }
            let experts = weights.experts[l]
            guard !experts.isEmpty, let moe = c.layers[l].moe else { continue }
            let k = Double(moe.topK), e = Double(max(moe.experts, 1))
            // Routed experts: pairs arriving at this lane in proportion to its share of experts; each touched
            // expert reads its weights once for all its tokens.
            let mine = plan.laneExperts[lane]
            let share = Double(mine.count) / e
            let pairs = stageTokens * k * share
            let touched = Double(mine.count) * (1 - pow(1 - 1 / e, stageTokens * k))
            if touched > 0 && pairs > 0 {
                // gate, up, down (a third of the expert each) over pairs / touched rows, for every touched expert.
                let expert = experts[mine.lowerBound]
                var one = TimeBreakdown()
                me.linear(params: Double(expert.parameters) / 3, bytes: Double(expert.bytes) / 3, tokens: pairs / touched, calls: 0, into: &one)
                t = t + one.scaled(3 * touched)
                // Decode-sized batches run all experts in two shared regions; larger ones one call per product.
                let batched = me.threads > 1 && touched > 1 && pairs / touched <= Double(Ops.sharedRegionRowsPerProduct)
                t.compute += (batched ? 2 : 3 * touched) * me.callOverhead
            }
            if tp > 1 { t.network += gather(d) }  // the routed rows back to every rank of the group
            if plan.ep > 1 {
                let sentPairs = routedTokens * k * (1 - share)
                t.network += allToAll(plan: plan, hw: hw, cluster: cluster, stage: stage, lane: lane, bytes: 0)
                t.network += allToAll(plan: plan, hw: hw, cluster: cluster, stage: stage, lane: lane, bytes: sentPairs * (d + 2) * 4)
                t.network += allToAll(plan: plan, hw: hw, cluster: cluster, stage: stage, lane: lane, bytes: pairs * (1 - share) * d * 4)
            }
        }
        if stage > 0 && tokens > 0 {
            let from = hw[plan.rank(stage: stage - 1, lane: lane).value]
            let link = from.node == me.node ? cluster.intraNode : cluster.interNode
            t.network += link.latencyUS * 1e-6 * me.oversubscription + tokens * d * 4 / (link.bandwidthGBs * 1e9)
        }
        if stage == plan.pp - 1 && sequences > 0 {
            // lm_head over the last position of each sequence; sampling reads each row of logits.
            let head = weights.headPart(tp: tp)
            me.linear(params: Double(head.parameters), bytes: Double(head.bytes), tokens: seqs, into: &t)
            t.engine += seqs * 3 * 4 * Double(c.vocab) / me.elementwise
            if tp > 1 { t.network += tpGather(plan: plan, hw: hw, cluster: cluster, stage: stage, lane: lane, bytes: seqs * Double(c.vocab) * 4) }
        }
        return t
    }

    /// Multi-head latent attention of one layer: naive for prefill, absorbed for decode (as the engine runs them).
    /// `attn`: the rank's share of the layer's attention weights; `tp`: the heads split that many ways.
    static func mlaTime(_ mla: MLAShape, attn: WeightBreakdown.Part, tp: Int, me: RankHardware, seqs: Double, tokens: Double, prompt: Int,
                        context: Int, prefill: Bool, into t: inout TimeBreakdown) {
        let h = (Double(mla.heads) / Double(tp)).rounded(.up), kvr = Double(mla.kvLoraRank), dr = Double(mla.qkRopeHeadDim)
        let dn = Double(mla.qkNopeHeadDim), dv = Double(mla.vHeadDim)
        let kvbParams = Double(mla.kvBParameters) / Double(tp)
        let kvbBytes = Double(attn.bytes) * kvbParams / Double(max(attn.parameters, 1))
        // Projections other than kv_b run over all tokens of the micro-batch.
        // q_a, q_b (or q), kv_a, o_proj.
        me.linear(params: Double(attn.parameters) - kvbParams, bytes: Double(attn.bytes) - kvbBytes, tokens: tokens,
                  calls: mla.qLoraRank == nil ? 3 : 4, into: &t)
        if prefill {
            // Naive MLA: kv_b expands each sequence's latents; scores and values over the causal triangle (blocks
            // of 64 queries), one parallel region over the heads.
            var one = TimeBreakdown()
            me.linear(params: kvbParams, bytes: kvbBytes, tokens: Double(prompt), calls: 2, into: &one)
            t = t + one.scaled(seqs)
            t.compute += seqs * h * Double(prompt) * Double(prompt + 64) * (dn + dr + dv) / me.gemv
        } else {
            // Absorbed MLA: W_UK / W_UV per head and token (two regions), then scores and the latent sum over
            // the context (two products).
            var one = TimeBreakdown()
            me.linear(params: kvbParams, bytes: kvbBytes, tokens: 1, calls: 4, into: &one)
            t = t + one.scaled(seqs)
            t.compute += seqs * h * Double(context) * 2 * (2 * kvr + dr) / me.gemv
        }
    }

    /// FP32 activation bytes the engine's element-wise work touches per token in decoder layer `layer` (each pass
    /// reads and writes its vectors): two RMSNorms and residual adds over D; attention vectors (q_a norm, kv_a norm,
    /// RoPE, per-head query / key / value layout, softmax-weighted output) over the head dims; for an MoE layer the
    /// router scores, dispatch / combine / weighting copies of k rows of D and SwiGLU over k x moe_intermediate;
    /// for a dense layer SwiGLU over the intermediate width.
    public static func elementwiseBytes(model m: ModelShape, layer: Int) -> Double {
        let d = Double(m.hidden)
        var floats = 3 * 4 * d
        switch m.layers[layer].mixer {
        case .mla(let a):
            let h = Double(a.heads)
            floats += 3 * (Double(a.qLoraRank ?? 0) + Double(a.kvLoraRank + a.qkRopeHeadDim) + h * Double(a.qkHeadDim + a.vHeadDim) + h * Double(a.vHeadDim))
        case .attention(let a):
            floats += 3 * (2 * Double(a.heads * a.headDim) + Double(a.cacheFloatsPerToken))
        }
        if let moe = m.layers[layer].moe {
            let k = Double(moe.topK)
            floats += 3 * Double(moe.experts) + 3 * 4 * k * d + 3 * k * Double(moe.width)
            floats += 3 * Double(moe.sharedWidth) + 2 * d
        } else {
            floats += 3 * Double(m.layers[layer].denseWidth ?? 0)
        }
        return 4 * floats
    }

    /// One all-to-all in a stage's communicator where this rank sends `bytes` to its peers spread evenly: a latency
    /// per peer (intra- or inter-node) plus the bytes over the slower of shared memory and the node's network link
    /// (all ranks of the node share the link).
    static func allToAll(plan: ParallelPlan, hw: [RankHardware], cluster: Cluster, stage: Int, lane: Int, bytes: Double) -> Double {
        let me = hw[plan.rank(stage: stage, lane: lane).value]
        var latency = 0.0, local = 0.0, remote = 0.0
        let perPeer = bytes / Double(plan.ep - 1)
        for peer in 0..<plan.ep where peer != lane {
            if hw[plan.rank(stage: stage, lane: peer).value].node == me.node {
                latency += cluster.intraNode.latencyUS
                local += perPeer
            } else {
                latency += cluster.interNode.latencyUS
                remote += perPeer
            }
        }
        let sharing = Double((0..<plan.ep).filter { hw[plan.rank(stage: stage, lane: $0).value].node == me.node }.count)
        return latency * 1e-6 * me.oversubscription
            + max(local / (cluster.intraNode.bandwidthGBs * 1e9), remote * sharing / (cluster.interNode.bandwidthGBs * 1e9))
    }

    /// An all-gather inside rank (stage, lane)'s tensor-parallel group that assembles `bytes` on every rank: a ring of
    /// tp - 1 steps, each moving 1/tp of the bytes over the slowest link of the group.
    static func tpGather(plan: ParallelPlan, hw: [RankHardware], cluster: Cluster, stage: Int, lane: Int, bytes: Double) -> Double {
        let me = hw[plan.rank(stage: stage, lane: lane).value]
        let first = plan.group(ofLane: lane) * plan.tp
        let remote = (first..<(first + plan.tp)).contains { hw[plan.rank(stage: stage, lane: $0).value].node != me.node }
        let link = remote ? cluster.interNode : cluster.intraNode
        let steps = Double(plan.tp - 1)
        return steps * (link.latencyUS * 1e-6 * me.oversubscription + bytes / Double(plan.tp) / (link.bandwidthGBs * 1e9))
    }
}
