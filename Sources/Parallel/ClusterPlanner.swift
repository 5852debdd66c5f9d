// ClusterPlanner: chooses pp x ep (and tensor-parallel groups of tp of a stage's ep ranks) for a
// cluster (or checks the given one), sizes every rank and node, predicts
// throughput, and when nothing fits says by how much and what would (more nodes, FP8, shorter context, smaller batch).
import Foundation
import ModelKit

/// What to plan.
public struct PlanRequest: Sendable {
    public var model: ModelShape
    /// The main model's tensors (for the bytes each rank holds).
    public var specs: [TensorSpec]
    /// Preset name or model directory, for the report and the launch line.
    public var modelName: String
    public var modelPath: String
    public var dtype: WeightDType
    public var cluster: Cluster
    public var workload: Workload
    public var pp: Int?
    public var ep: Int?
    /// Ranks per tensor-parallel group (nil: considered; 1: none).
    public var tp: Int?
    /// Compute threads per rank (default: the node's cores per rank).
    public var threads: Int?
    /// Where launch files go (named in the printed commands).
    public var launchDirectory: String

    public init(model: ModelShape, specs: [TensorSpec], modelName: String, modelPath: String, dtype: WeightDType, cluster: Cluster,
                workload: Workload, pp: Int? = nil, ep: Int? = nil, tp: Int? = nil, threads: Int? = nil, launchDirectory: String = "plan") {
        self.tp = tp
        self.model = model
        self.specs = specs
        self.modelName = modelName
        self.modelPath = modelPath
        self.dtype = dtype
        self.cluster = cluster
        self.workload = workload
        self.pp = pp
        self.ep = ep
        self.threads = threads
        self.launchDirectory = launchDirectory
    }
}

/// One pp x ep (x tp) shape considered.
public struct ShapeOption: Sendable, Codable, Equatable {
    public var pp: Int
    public var ep: Int
    public var tp: Int
    /// As `--plan` writes it.
    public var text: String { tp == 1 ? "pp=\(pp),ep=\(ep)" : "pp=\(pp),dp=\(ep / tp),tp=\(tp)" }
    public var fits: Bool
    /// Largest node's need / usable memory.
    public var peakNodeUse: Double
    /// Predicted aggregate decode tokens/s (only for shapes that fit).
    public var decodeTokensPerSecond: Double?
    /// Predicted seconds to the first token of a prompt (only for shapes that fit).
    public var timeToFirstTokenSeconds: Double?
}

/// Everything `moerun plan` prints (`--json` encodes this).
public struct ClusterPlanReport: Sendable, Codable {
    public var model: String
    public var dtype: WeightDType
    public var cluster: String
    public var clusterDescription: String
    public var nodeCount: Int
    public var rankCount: Int
    public var workload: Workload
    public var plan: ParallelPlan
    public var planSpec: String
    /// True when the shape was chosen here, false when given with --pp / --ep.
    public var chosen: Bool
    public var modelWeightBytes: Int
    /// Extra bytes from tensors held on every lane of a stage: (ep - 1) x the non-routed-expert weights.
    public var replicationBytes: Int
    public var ranks: [RankBudget]
    public var nodes: [NodeBudget]
    public var fits: Bool
    /// Largest per-node shortfall in bytes (0 when it fits).
    public var shortfallBytes: Int
    public var prediction: CostPrediction?
    public var threadsPerRank: Int
    public var options: [ShapeOption]
    public var suggestions: [String]
    public var launch: LaunchCommands
}

public enum ClusterPlanner {
    /// Shapes the engine accepts for `ranks` ranks.
    public static func shapes(model: ModelShape, ranks: Int) -> [(pp: Int, ep: Int)] {
        divisors(ranks).filter { $0 <= model.layerCount && ranks / $0 <= max(model.routedExperts, 1) }.map { ($0, ranks / $0) }
    }

    /// Tensor-parallel group sizes worth considering for a stage of `ep` ranks: 1, and the divisors of ep up to 8 that
    /// leave every rank a head (a KV head for grouped-query attention).
    public static func tensorParallelSizes(model: ModelShape, ep: Int) -> [Int] {
        guard let heads = try? ParallelPlan.tensorParallelHeadLimit(model) else { return [1] }
        return divisors(ep).filter { $0 == 1 || ($0 <= 8 && $0 <= heads) }
    }

    /// The plan for a shape on a cluster: stages and lanes weighted by the memory of the ranks that hold them.
    public static func layout(model: ModelShape, cluster: Cluster, pp: Int, ep: Int, tp: Int = 1) throws -> ParallelPlan {
        let nodeOf = cluster.rankNodes
        let capacity = (0..<(pp * ep)).map { r in cluster.nodes[nodeOf[r]].usableBytes / Double(cluster.nodes[nodeOf[r]].ranks) }
        let stageWeights = (0..<pp).map { s in (0..<ep).map { capacity[s * ep + $0] }.min()! }
        let laneWeights = (0..<ep).map { l in (0..<pp).map { capacity[$0 * ep + l] }.min()! }
        var plan = try ParallelPlan.make(model: model, ranks: pp * ep, pp: pp, ep: ep, stageWeights: stageWeights, laneWeights: laneWeights)
        try ParallelPlan.checkTensorParallel(model: model, pp: pp, ep: ep, tp: tp)
        plan.tp = tp
        return plan
    }

    struct Evaluation {
        let plan: ParallelPlan
        let ranks: [RankBudget]
        let nodes: [NodeBudget]
        var fits: Bool { nodes.allSatisfy(\.fits) }
        var shortfall: Int { nodes.map(\.shortfallBytes).max() ?? 0 }
        var peakUse: Double { nodes.map { Double($0.neededBytes) / Double(max($0.usableBytes, 1)) }.max() ?? 0 }
    }

    static func evaluate(_ r: PlanRequest, weights: WeightBreakdown, pp: Int, ep: Int, tp: Int = 1) throws -> Evaluation {
        let plan = try layout(model: r.model, cluster: r.cluster, pp: pp, ep: ep, tp: tp)
        let ranks = RankBudget.make(plan: plan, model: r.model, weights: weights, workload: r.workload, cluster: r.cluster)
        return Evaluation(plan: plan, ranks: ranks, nodes: NodeBudget.make(ranks, cluster: r.cluster))
    }

    /// Whether any shape fits (for the suggestion searches).
    static func anyFits(_ r: PlanRequest) -> (pp: Int, ep: Int)? {
        let weights = WeightBreakdown(model: r.model, specs: r.specs, dtype: r.dtype)
        let shapes = r.pp != nil || r.ep != nil ? shapes(model: r.model, ranks: r.cluster.rankCount).filter { s in
            (r.pp.map { $0 == s.pp } ?? true) && (r.ep.map { $0 == s.ep } ?? true)
        } : shapes(model: r.model, ranks: r.cluster.rankCount)
        return shapes.first { (try? evaluate(r, weights: weights, pp: $0.pp, ep: $0.ep))?.fits == true }
    }

    public static func plan(_ r: PlanRequest) throws -> ClusterPlanReport {
        let ranks = r.cluster.rankCount
        let c = r.model
        var all = shapes(model: c, ranks: ranks)
        let valid = all.map { "pp=\($0.pp),ep=\($0.ep)" }.joined(separator: "; ")
        if r.pp != nil || r.ep != nil {
            let pp = r.pp ?? (r.ep.map { ranks % $0 == 0 ? ranks / $0 : 0 } ?? 0)
            let ep = r.ep ?? (ranks % pp == 0 ? ranks / pp : 0)
            guard pp >= 1, ep >= 1, pp * ep == ranks else {
                throw PlanError(message: "--pp \(r.pp.map(String.init) ?? "?") x --ep \(r.ep.map(String.init) ?? "?") does not match the \(ranks) ranks of cluster '\(r.cluster.name)' (\(r.cluster.nodes.count) nodes)",
                                suggestion: valid.isEmpty ? "no shape fits \(ranks) ranks; change ranks per node" : "for \(ranks) ranks use one of: \(valid)")
            }
            _ = try ParallelPlan.make(model: c, ranks: ranks, pp: pp, ep: ep, tp: r.tp ?? 1)
            all = [(pp, ep)]
        }
        // Every shape with each tensor-parallel group size that divides its stage; the one asked for with --tp; none
        // when the shape is given without --tp.
        var candidates: [(pp: Int, ep: Int, tp: Int)] = []
        for shape in all {
            let sizes = r.tp.map { [$0] } ?? (r.pp != nil || r.ep != nil ? [1] : tensorParallelSizes(model: c, ep: shape.ep))
            for tp in sizes where shape.ep % tp == 0 { candidates.append((shape.pp, shape.ep, tp)) }
        }
        if let tp = r.tp, candidates.isEmpty {
            throw PlanError(message: "--tp \(tp) divides the ranks per stage of none of the shapes for \(ranks) ranks", suggestion: "choose tp dividing the ranks per stage")
        }
        guard !all.isEmpty else {
            throw PlanError(message: "no pp x ep shape fits \(ranks) ranks for \(c.layerCount) layers x \(c.routedExperts) experts",
                            suggestion: "change `ranks:` in the cluster file")
        }
        let weights = WeightBreakdown(model: c, specs: r.specs, dtype: r.dtype)
        var evaluations: [Evaluation] = []
        var options: [ShapeOption] = []
        var predictions: [CostPrediction?] = []
        for shape in candidates {
            let e = try evaluate(r, weights: weights, pp: shape.pp, ep: shape.ep, tp: shape.tp)
            let p = e.fits ? CostModel.predict(plan: e.plan, model: c, weights: weights, workload: r.workload, cluster: r.cluster, threads: r.threads) : nil
            evaluations.append(e)
            predictions.append(p)
            options.append(ShapeOption(pp: shape.pp, ep: shape.ep, tp: shape.tp, fits: e.fits, peakNodeUse: e.peakUse,
                                       decodeTokensPerSecond: p?.decode.aggregateTokensPerSecond, timeToFirstTokenSeconds: p?.timeToFirstTokenSeconds))
        }
        // Fastest fitting shape (fewer stages on ties); when none fits, the one closest to fitting.
        let best: Int
        if let fastest = options.indices.filter({ options[$0].fits }).max(by: {
            (options[$0].decodeTokensPerSecond!, -options[$0].pp, -options[$0].tp) < (options[$1].decodeTokensPerSecond!, -options[$1].pp, -options[$1].tp)
        }) {
            best = fastest
        } else {
            best = evaluations.indices.min { evaluations[$0].shortfall < evaluations[$1].shortfall }!
        }
        let e = evaluations[best]
        let prediction = predictions[best] ?? CostModel.predict(plan: e.plan, model: c, weights: weights, workload: r.workload, cluster: r.cluster, threads: r.threads)
        let spec = e.plan.spec(model: c)
        let threads = r.threads ?? (r.cluster.nodes.map(\.threadsPerRank).min() ?? 1)
        return ClusterPlanReport(
            model: r.modelName, dtype: r.dtype, cluster: r.cluster.name, clusterDescription: r.cluster.description,
            nodeCount: r.cluster.nodes.count, rankCount: ranks, workload: r.workload, plan: e.plan, planSpec: spec.text,
            chosen: r.pp == nil && r.ep == nil && r.tp == nil, modelWeightBytes: weights.totalBytes,
            replicationBytes: e.ranks.reduce(0) { $0 + $1.weightBytes } - weights.totalBytes, ranks: e.ranks, nodes: e.nodes, fits: e.fits,
            shortfallBytes: e.shortfall, prediction: e.fits ? prediction : nil, threadsPerRank: threads, options: options,
            suggestions: e.fits ? [] : suggestions(r, evaluation: e),
            launch: Launch.commands(cluster: r.cluster, spec: spec, workload: r.workload, threads: threads,
                                    modelPath: r.modelPath, directory: r.launchDirectory))
    }

    /// What would fit instead: more nodes like the last one, FP8 weights, a shorter context, a smaller batch.
    static func suggestions(_ r: PlanRequest, evaluation e: Evaluation) -> [String] {
        var out: [String] = []
        let gb = { (b: Int) in String(format: "%.1f GB", Double(b) / 1e9) }
        let over = e.nodes.filter { !$0.fits }
        out.append("short by \(gb(e.shortfall)) on the fullest node; \(over.count) of \(e.nodes.count) nodes over "
                   + "(\(gb(over.reduce(0) { $0 + $1.shortfallBytes })) in total)")
        if r.pp != nil || r.ep != nil {
            var free = r
            free.pp = nil
            free.ep = nil
            if let s = anyFits(free) { out.append("another shape fits: --pp \(s.pp) --ep \(s.ep)") }
        }
        // More nodes like the biggest one: double until a shape fits (up to 1024 nodes), then bisect the count.
        let template = r.cluster.nodes.max { $0.usableBytes < $1.usableBytes }!
        func grown(_ k: Int) -> (pp: Int, ep: Int)? {
            var g = r
            g.cluster.nodes = r.cluster.nodes + (0..<(k - r.cluster.nodes.count)).map { i in
                var n = template
                n.host = "added\(i + 1)"
                return n
            }
            g.pp = nil
            g.ep = nil
            return anyFits(g)
        }
        var low = r.cluster.nodes.count, high = max(low + 1, 2 * low)
        while high <= 1024 && grown(high) == nil { (low, high) = (high, 2 * high) }
        if high <= 1024 {
            while high - low > 1 {
                let mid = (low + high) / 2
                if grown(mid) != nil { high = mid } else { low = mid }
            }
            let s = grown(high)!
            out.append("more nodes: \(high) nodes (\(high - r.cluster.nodes.count) more like \(template.host): \(template.ranks) ranks, \(Int(template.memoryGB)) GB) fit with pp=\(s.pp),ep=\(s.ep)")
        }
        if r.dtype == .bf16 {
            var fp8 = r
            fp8.dtype = .fp8
            if anyFits(fp8) != nil { out.append("FP8 weights fit: --dtype fp8 (an FP8 block-quantized checkpoint)") }
        }
        // Shorter context / smaller batch: binary search for the largest value that fits.
        func largest(_ limit: Int, _ apply: (inout PlanRequest, Int) -> Void) -> Int {
            var lo = 0, hi = limit - 1
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                var t = r
                apply(&t, mid)
                if anyFits(t) != nil { lo = mid } else { hi = mid - 1 }
            }
            if lo == 0 { return 0 }
            var t = r
            apply(&t, lo)
            return anyFits(t) != nil ? lo : 0
        }
        let context = largest(r.workload.context) { t, v in t.workload.context = v; t.workload.prompt = min(r.workload.prompt, v) }
        if context > 0 {
            out.append("shorter context: --context \(context >= 256 ? context / 256 * 256 : context) fits with --batch \(r.workload.batch)")
        }
        let batch = largest(r.workload.batch) { t, v in t.workload.batch = v }
        if batch > 0 { out.append("smaller batch: --batch \(batch) fits with --context \(r.workload.context)") }
        if context == 0 && batch == 0 {
            let weightsOnly = e.ranks.reduce(0) { $0 + $1.weightBytes }
            let usable = e.nodes.reduce(0) { $0 + $1.usableBytes }
            out.append("the weights alone (\(gb(weightsOnly)) with replication) exceed what fits next to any cache on these nodes (\(gb(usable)) usable)")
        }
        return out
    }
}
