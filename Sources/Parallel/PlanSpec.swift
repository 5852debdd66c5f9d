// PlanSpec: the `--plan` text with explicit sizes, "pp=P,ep=E[,layers=a:b:..][,experts=x:y:...]", so plans for
// unequal nodes (weighted layer / expert splits chosen by `moerun plan`) travel to `generate` as plain counts.
import ModelKit

public struct PlanSpec: Sendable, Equatable, Codable {
    public var pp: Int
    public var ep: Int
    /// Layers per stage (sums to the layer count); nil = cost-balanced split.
    public var layerCounts: [Int]?
    /// Routed experts per lane (sums to the expert count); nil = equal contiguous blocks.
    public var expertCounts: [Int]?
    /// Ranks per tensor-parallel group (ep = dp x tp); 1: none.
    public var tp: Int = 1

    public init(pp: Int, ep: Int, layerCounts: [Int]? = nil, expertCounts: [Int]? = nil, tp: Int = 1) {
        self.tp = tp
        self.pp = pp
        self.ep = ep
        self.layerCounts = layerCounts
        self.expertCounts = expertCounts
    }

    /// Round-trips through `ParallelPlan.parseSpec`.
    public var text: String {
        var parts = tp == 1 ? ["pp=\(pp)", "ep=\(ep)"] : ["pp=\(pp)", "dp=\(ep / tp)", "tp=\(tp)"]
        if let layerCounts { parts.append("layers=" + layerCounts.map(String.init).joined(separator: ":")) }
        if let expertCounts { parts.append("experts=" + expertCounts.map(String.init).joined(separator: ":")) }
        return parts.joined(separator: ",")
    }
}

extension ParallelPlan {
    /// The spec that rebuilds exactly this plan (counts only where they differ from the default split).
    public func spec(model: ModelShape) -> PlanSpec {
        let defaultPlan = try? ParallelPlan.make(model: model, ranks: rankCount, pp: pp, ep: ep)
        return PlanSpec(pp: pp, ep: ep,
                        layerCounts: defaultPlan?.stageLayers == stageLayers ? nil : stageLayers.map(\.count),
                        expertCounts: defaultPlan?.laneExperts == laneExperts ? nil : laneExperts.map(\.count), tp: tp)
    }

    /// Parse "pp=P,ep=E,layers=a:b,experts=x:y" (pp or ep may be left out and derived from `ranks`).
    public static func parseSpec(_ text: String, ranks: Int) throws -> PlanSpec {
        var plain: [Substring] = []
        var layers: [Int]?, experts: [Int]?
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, kv[0] == "layers" || kv[0] == "experts" else { plain.append(part); continue }
            let counts = kv[1].split(separator: ":").map { Int($0) }
            guard !counts.isEmpty, counts.allSatisfy({ ($0 ?? 0) >= 1 }) else {
                throw PlanError(message: "cannot read '\(part)' in plan '\(text)': expected positive counts separated by ':'",
                                suggestion: "e.g. \(kv[0])=\(kv[0] == "layers" ? "31:30" : "160:96")")
            }
            if kv[0] == "layers" { layers = counts.map { $0! } } else { experts = counts.map { $0! } }
        }
        if plain.isEmpty {
            // Counts alone determine the shape.
            guard let l = layers?.count ?? (experts.map { ranks / max($0.count, 1) }), let e = experts?.count ?? (layers.map { ranks / $0.count }) else {
                throw PlanError(message: "empty plan '\(text)'", suggestion: "write e.g. --plan pp=2,ep=2")
            }
            return PlanSpec(pp: l, ep: e, layerCounts: layers, expertCounts: experts)
        }
        let shape = try parse(plain.joined(separator: ","), ranks: ranks)
        return PlanSpec(pp: shape.pp, ep: shape.ep, layerCounts: layers, expertCounts: experts, tp: shape.tp)
    }

    /// Build and check a plan from a spec: the default split, with explicit counts where the spec has them.
    public static func make(model: ModelShape, ranks: Int, spec: PlanSpec) throws -> ParallelPlan {
        let base = try make(model: model, ranks: ranks, pp: spec.pp, ep: spec.ep, tp: spec.tp)
        var stageLayers = base.stageLayers, laneExperts = base.laneExperts
        if let counts = spec.layerCounts {
            guard counts.count == spec.pp, counts.reduce(0, +) == model.layerCount else {
                throw PlanError(message: "layers=\(counts.map(String.init).joined(separator: ":")) must give \(spec.pp) stage sizes summing to \(model.layerCount) layers",
                                suggestion: "omit layers= for the cost-balanced split")
            }
            stageLayers = ranges(counts)
        }
        if let counts = spec.expertCounts {
            guard counts.count == spec.ep, counts.reduce(0, +) == model.routedExperts else {
                throw PlanError(message: "experts=\(counts.map(String.init).joined(separator: ":")) must give \(spec.ep) lane sizes summing to \(model.routedExperts) experts",
                                suggestion: "omit experts= for equal blocks")
            }
            laneExperts = ranges(counts)
        }
        var plan = ParallelPlan(pp: spec.pp, ep: spec.ep, layerCount: base.layerCount, expertCount: base.expertCount,
                                stageLayers: stageLayers, laneExperts: laneExperts)
        plan.tp = base.tp
        return plan
    }

    /// A plan whose stages are balanced against `stageWeights` (relative capacity of each stage's ranks) and whose
    /// lanes own experts in proportion to `laneWeights` (unequal nodes). Equal weights give `make(model:ranks:pp:ep:)`.
    public static func make(model: ModelShape, ranks: Int, pp: Int, ep: Int,
                            stageWeights: [Double], laneWeights: [Double]) throws -> ParallelPlan {
        let base = try make(model: model, ranks: ranks, pp: pp, ep: ep)
        precondition(stageWeights.count == pp && laneWeights.count == ep, "one weight per stage and per lane")
        var stageLayers = base.stageLayers
        if !stageWeights.allSatisfy({ $0 == stageWeights[0] }) {
            let costs = (0..<model.layerCount).map { LayerCost.perRank(model: model, layer: $0, ep: ep) }
            let fixed = pp == 1 ? [LayerCost.embedding(model) + LayerCost.head(model)]
                : [LayerCost.embedding(model)] + Array(repeating: 0, count: pp - 2) + [LayerCost.head(model)]
            stageLayers = Partition.contiguous(costs: costs, parts: pp, fixed: fixed, capacity: stageWeights)
        }
        return ParallelPlan(pp: pp, ep: ep, layerCount: base.layerCount, expertCount: base.expertCount, stageLayers: stageLayers,
                            laneExperts: Partition.weighted(count: model.routedExperts, weights: laneWeights))
    }

    static func ranges(_ counts: [Int]) -> [Range<Int>] {
        var start = 0
        return counts.map { c in
            defer { start += c }
            return start..<(start + c)
        }
    }
}
