// ParallelPlan: the distribution of a model over N = pp x ep ranks as plain data. Stages own contiguous
// layers (embedding on the first, final norm + lm_head on the last); inside a stage, lane l (ep index)
// owns a contiguous block of routed experts of every MoE layer. rank = stage * ep + lane. With tensor parallelism
// the ep ranks of a stage form dp groups of tp consecutive lanes: a group serves the same sequences and splits the
// attention (by heads; by KV heads for grouped-query attention), dense FFN, shared expert and head among its ranks
// (ep = dp x tp; `pp=P,dp=D,tp=T`).
import Foundation
import ModelKit

/// A rejected plan: what was asked, why it cannot work and which plans would.
public struct PlanError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let suggestion: String
    public var description: String { suggestion.isEmpty ? message : "\(message)\n  hint: \(suggestion)" }
}

public struct ParallelPlan: Sendable, Codable, Equatable {
    /// Pipeline stages.
    public let pp: Int
    /// Expert-parallel ranks (lanes) per stage.
    public let ep: Int
    /// Main-model layers (MTP layers are not served by the pipeline).
    public let layerCount: Int
    /// Routed experts per MoE layer.
    public let expertCount: Int
    /// Layer range of each stage.
    public let stageLayers: [Range<Int>]
    /// Logical experts owned by each lane (identical for every MoE layer).
    public let laneExperts: [Range<Int>]
    /// Ranks per tensor-parallel group (consecutive lanes); 1: none.
    public internal(set) var tp: Int = 1

    public var rankCount: Int { pp * ep }
    /// Groups of lanes that serve sequences (data-parallel replicas of the dense part) per stage.
    public var dp: Int { ep / tp }
    /// The sequence group of a lane and the lane's rank inside its tensor-parallel group.
    public func group(ofLane lane: Int) -> Int { lane / tp }
    public func tpRank(ofLane lane: Int) -> Int { lane % tp }
    /// The plan as `--plan` writes it.
    public var shapeText: String { tp == 1 ? "pp=\(pp),ep=\(ep)" : "pp=\(pp),dp=\(dp),tp=\(tp)" }

    // MARK: rank geometry

    public func stage(of rank: Rank) -> Int { rank.value / ep }
    public func lane(of rank: Rank) -> Int { rank.value % ep }
    public func rank(stage: Int, lane: Int) -> Rank { Rank(stage * ep + lane) }
    public func stage(ofLayer layer: LayerIndex) -> Int { stageLayers.firstIndex { $0.contains(layer.value) }! }
    public func isFirstStage(_ rank: Rank) -> Bool { stage(of: rank) == 0 }
    public func isLastStage(_ rank: Rank) -> Bool { stage(of: rank) == pp - 1 }

    // MARK: expert placement

    /// Physical copies of a logical expert (one today; a list so redundant copies fit later).
    public func slots(of expert: ExpertID) -> [PhysicalSlot] {
        let lane = laneExperts.firstIndex { $0.contains(expert.value) }!
        return [PhysicalSlot(lane: lane, local: expert.value - laneExperts[lane].lowerBound)]
    }

    /// The lane a token's (expert) pair is dispatched to.
    public func ownerLane(of expert: ExpertID) -> Int { slots(of: expert)[0].lane }

    /// Logical experts held by a lane, ascending.
    public func localExperts(lane: Int) -> [ExpertID] { laneExperts[lane].map(ExpertID.init) }

    // MARK: construction

    /// Parse "pp=P,ep=E" or "pp=P,dp=D,tp=T" (ep = dp x tp ranks per stage; any one size may be left out and is
    /// derived from `ranks`).
    public static func parse(_ text: String, ranks: Int) throws -> (pp: Int, ep: Int, tp: Int) {
        var values: [String: Int] = [:]
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, let value = Int(kv[1]), value >= 1 else {
                throw PlanError(message: "cannot read plan '\(text)': '\(part)' is not KEY=POSITIVE_INT", suggestion: "write e.g. --plan pp=2,ep=2")
            }
            guard ["pp", "ep", "dp", "tp"].contains(kv[0]) else {
                throw PlanError(message: "unknown plan key '\(kv[0])' in '\(text)'",
                                suggestion: "keys are pp (pipeline stages), ep (expert-parallel ranks per stage), or dp and tp (ep = dp x tp: groups of tp ranks that split the attention and dense weights)")
            }
            values[kv[0]] = value
        }
        if values["ep"] != nil && (values["dp"] != nil || values["tp"] != nil) {
            throw PlanError(message: "plan '\(text)' gives ep together with dp / tp", suggestion: "ep=E means dp=E,tp=1; write either pp=P,ep=E or pp=P,dp=D,tp=T")
        }
        let tp = values["tp"] ?? 1
        var pp = values["pp"], perStage = values["ep"] ?? values["dp"].map { $0 * tp }
        if values["ep"] == nil && values["dp"] == nil && values["tp"] != nil, let p = pp {
            guard ranks % p == 0 else { throw PlanError(message: "pp=\(p) does not divide \(ranks) ranks", suggestion: "choose pp among \(divisors(ranks))") }
            perStage = ranks / p
        }
        switch (pp, perStage) {
        case let (p?, e?): return (p, e, tp)
        case let (p?, nil):
            guard ranks % p == 0 else { throw PlanError(message: "pp=\(p) does not divide \(ranks) ranks", suggestion: "choose pp among \(divisors(ranks))") }
            return (p, ranks / p, tp)
        case let (nil, e?):
            guard ranks % e == 0 else {
                throw PlanError(message: "\(e) ranks per stage (ep = dp x tp) do not divide \(ranks) ranks", suggestion: "choose ranks per stage among \(divisors(ranks))")
            }
            pp = ranks / e
            return (pp!, e, tp)
        case (nil, nil):
            if values["tp"] != nil {
                guard ranks % tp == 0 else { throw PlanError(message: "tp=\(tp) does not divide \(ranks) ranks", suggestion: "choose tp among \(divisors(ranks))") }
                return (1, ranks, tp)
            }
            throw PlanError(message: "empty plan '\(text)'", suggestion: "write e.g. --plan pp=2,ep=2")
        }
    }

    /// The default for N ranks: all ranks expert-parallel in one stage when the experts allow it,
    /// otherwise the smallest number of stages that does.
    public static func defaultShape(ranks: Int, model: ModelShape) -> (pp: Int, ep: Int) {
        for pp in divisors(ranks) where ranks / pp <= max(model.routedExperts, 1) && pp <= model.layerCount {
            return (pp, ranks / pp)
        }
        return (ranks, 1)
    }

    /// Build and check a plan for `ranks` launched ranks. Fails before anything loads, saying what would work.
    /// `tp` > 1 groups each stage's `ep` ranks into `ep / tp` tensor-parallel groups.
    public static func make(model: ModelShape, ranks: Int, pp: Int, ep: Int, tp: Int) throws -> ParallelPlan {
        var plan = try make(model: model, ranks: ranks, pp: pp, ep: ep)
        try checkTensorParallel(model: model, pp: pp, ep: ep, tp: tp)
        plan.tp = tp
        return plan
    }

    /// Throws unless groups of `tp` of a stage's `ep` ranks can split `model` (tp divides ep, every rank keeps a head).
    static func checkTensorParallel(model: ModelShape, pp: Int, ep: Int, tp: Int) throws {
        guard tp > 1 else { return }
        guard ep % tp == 0 else {
            throw PlanError(message: "tp=\(tp) does not divide the \(ep) ranks per stage (ranks per stage = dp x tp)",
                            suggestion: "choose tp among \(divisors(ep).filter { $0 > 1 }.map(String.init).joined(separator: ", ")) or change the ranks per stage")
        }
        let heads = try tensorParallelHeadLimit(model, layerHint: "tp=\(tp)", pp: pp, ep: ep)
        guard tp <= heads else {
            throw PlanError(message: "tp=\(tp) exceeds the model's \(heads) attention heads (KV heads for grouped-query attention: each rank of a group needs at least one)",
                            suggestion: "choose tp <= \(heads)")
        }
    }

    /// The most ranks a tensor-parallel group may have: the fewest heads of any MLA layer, KV heads of any GQA layer.
    public static func tensorParallelHeadLimit(_ model: ModelShape, layerHint: String = "tensor parallelism", pp: Int = 1, ep: Int = 1) throws -> Int {
        var heads = Int.max
        for (l, layer) in model.layers.enumerated() {
            switch layer.mixer {
            case .mla(let a): heads = min(heads, a.heads)
            case .attention(let a):
                if a.wholeProjectionNorm {
                    throw PlanError(message: "\(layerHint): layer \(l) normalises q and k over the whole projection (MiniMax-M2), which a head split cannot compute",
                                    suggestion: "use pp / ep for this model (e.g. --plan pp=\(pp),ep=\(ep))")
                }
                heads = min(heads, a.kvHeads)
            }
        }
        return heads
    }

    public static func make(model: ModelShape, ranks: Int, pp: Int, ep: Int) throws -> ParallelPlan {
        let layers = model.layerCount, experts = model.routedExperts
        let valid = divisors(ranks).filter { $0 <= layers && ranks / $0 <= experts }.map { "pp=\($0),ep=\(ranks / $0)" }
        let hint = valid.isEmpty ? "no plan fits \(ranks) ranks for \(layers) layers x \(experts) experts; launch fewer ranks"
            : "for \(ranks) ranks use one of: \(valid.joined(separator: "; "))"
        guard pp * ep == ranks else {
            throw PlanError(message: "plan pp=\(pp),ep=\(ep) needs \(pp * ep) ranks but \(ranks) were launched", suggestion: hint)
        }
        guard pp <= layers else {
            throw PlanError(message: "pp=\(pp) stages exceed the model's \(layers) layers (every stage needs a layer)", suggestion: hint)
        }
        guard ep <= experts else {
            throw PlanError(message: "ep=\(ep) ranks per stage exceed the model's \(experts) routed experts", suggestion: hint)
        }
        let costs = (0..<layers).map { LayerCost.perRank(model: model, layer: $0, ep: ep) }
        let fixed = pp == 1 ? [LayerCost.embedding(model) + LayerCost.head(model)]
            : [LayerCost.embedding(model)] + Array(repeating: 0, count: pp - 2) + [LayerCost.head(model)]
        return ParallelPlan(pp: pp, ep: ep, layerCount: layers, expertCount: experts,
                            stageLayers: Partition.contiguous(costs: costs, parts: pp, fixed: fixed),
                            laneExperts: Partition.blocks(count: experts, parts: ep))
    }

    /// One line per stage, e.g. for `moerun plan` and run headers.
    public var summary: [String] {
        var lines = ["plan \(shapeText): \(rankCount) ranks, \(layerCount) layers, \(expertCount) routed experts per MoE layer"]
        if tp > 1 {
            let groups = (0..<dp).map { g in "[" + (0..<tp).map { String(rank(stage: 0, lane: g * tp + $0).value) }.joined(separator: ", ") + "]" }
            lines.append("  tensor-parallel groups of \(tp) (stage 0: \(groups.joined(separator: " "))): heads, dense FFN, shared expert and head split; routed experts over all \(ep) ranks of a stage")
        }
        for (s, range) in stageLayers.enumerated() {
            let ranks = (0..<ep).map { rank(stage: s, lane: $0).value }
            var extras: [String] = []
            if s == 0 { extras.append("embedding") }
            if s == pp - 1 { extras.append("norm + lm_head") }
            lines.append("  stage \(s): layers \(range.lowerBound)..<\(range.upperBound) on ranks \(ranks)"
                         + (extras.isEmpty ? "" : " (+ \(extras.joined(separator: ", ")))"))
        }
        if ep > 1 {
            let blocks = laneExperts.enumerated().map { "lane \($0.offset): \($0.element.lowerBound)..<\($0.element.upperBound)" }
            lines.append("  experts per lane: \(blocks.joined(separator: ", "))")
        }
        return lines
    }
}

func divisors(_ n: Int) -> [Int] { (1...max(n, 1)).filter { n % $0 == 0 } }

/// Relative per-rank cost of layers for stage balancing: parameters a rank holds plus parameters a token
/// touches (memory traffic and FLOPs of decode both scale with these).
enum LayerCost {
    static func attention(_ m: ModelShape, layer: Int) -> Double {
        m.layers[layer].mixer.parameters(hidden: m.hidden)
    }

    static func perRank(model m: ModelShape, layer: Int, ep: Int) -> Double {
        let d = Double(m.hidden)
        let attention = attention(m, layer: layer)
        guard let moe = m.layers[layer].moe else {
            let dense = 3 * d * Double(m.layers[layer].denseWidth ?? 0)
            return 2 * (attention + dense)
        }
        let expert = 3 * d * Double(moe.width)
        let shared = 3 * d * Double(moe.sharedWidth)
        let router = d * Double(moe.experts)
        let held = attention + shared + router + expert * (Double(moe.experts) / Double(ep)).rounded(.up)
        let touched = attention + shared + router + expert * Double(moe.topK)
        return held + touched
    }

    static func embedding(_ m: ModelShape) -> Double { Double(m.vocab * m.hidden) }
    static func head(_ m: ModelShape) -> Double { 2 * Double(m.vocab * m.hidden) }
}
