// Router: DeepSeek-V3 `noaux_tc` gate (HF `DeepseekV3TopkRouter`), FP32 throughout.
// logits = x W_gate^T (fp32) -> s = sigmoid -> s' = s + e_score_correction_bias (selection only) ->
// group-limited top-k (group score = sum of the top-2 s' in the group; keep topk_group groups) ->
// top-k experts, ties to the lowest expert id -> weights = s of the chosen experts, optionally divided by
// (Σw + 1e-20), times routed_scaling_factor. See reference/architectures.md §1.8.
import Kernels
import Tensors

/// Per-token expert choice: `experts[t * topK + j]` / `weights[t * topK + j]`, j ascending by expert id.
public struct Routing: Sendable, Equatable {
    public let tokens: Int
    public let topK: Int
    public var experts: [Int]
    public var weights: [Float]

    public init(tokens: Int, topK: Int, experts: [Int], weights: [Float]) {
        precondition(experts.count == tokens * topK && weights.count == tokens * topK, "routing size mismatch")
        self.tokens = tokens
        self.topK = topK
        self.experts = experts
        self.weights = weights
    }

    public func experts(ofToken t: Int) -> ArraySlice<Int> { experts[(t * topK)..<((t + 1) * topK)] }
    public func weights(ofToken t: Int) -> ArraySlice<Float> { weights[(t * topK)..<((t + 1) * topK)] }
}

/// The scalar knobs of the router (from `ModelConfig`).
public struct RouterParameters: Sendable, Equatable {
    public var experts: Int
    public var topK: Int
    public var groups: Int
    public var topKGroups: Int
    public var normTopKProb: Bool
    public var routedScalingFactor: Float

    public init(experts: Int, topK: Int, groups: Int, topKGroups: Int, normTopKProb: Bool, routedScalingFactor: Float) {
        self.experts = experts
        self.topK = topK
        self.groups = groups
        self.topKGroups = topKGroups
        self.normTopKProb = normTopKProb
        self.routedScalingFactor = routedScalingFactor
    }

    public init(config: ModelConfig) {
        self.init(experts: config.nRoutedExperts, topK: config.numExpertsPerTok, groups: max(config.nGroup, 1),
                  topKGroups: config.topkGroup, normTopKProb: config.normTopkProb,
                  routedScalingFactor: Float(config.routedScalingFactor))
    }
}

public struct Router: Sendable {
    /// `mlp.gate.weight` `[experts, D]`.
    public let gate: Weight
    /// `mlp.gate.e_score_correction_bias` `[experts]` (nil: no bias).
    public let bias: [Float]?
    public let parameters: RouterParameters

    public init(gate: Weight, bias: [Float]?, parameters: RouterParameters) {
        precondition(gate.rows == parameters.experts, "router gate rows \(gate.rows) != experts \(parameters.experts)")
        precondition(bias == nil || bias!.count == parameters.experts, "router bias size")
        self.gate = gate
        self.bias = bias
        self.parameters = parameters
    }

    /// Routes every row of `x` `[T, D]` (the post-attention-normed hidden states).
    public func route(_ x: Matrix, pool: ComputePool = .serial) -> Routing {
        let logits = Ops.linear(x, gate, pool: pool)
        var experts: [Int] = [], weights: [Float] = []
        experts.reserveCapacity(x.rows * parameters.topK)
        weights.reserveCapacity(x.rows * parameters.topK)
        for t in 0..<x.rows {
            let (e, w) = Router.select(logits: logits.row(t), bias: bias, parameters)
            experts += e
            weights += w
        }
        return Routing(tokens: x.rows, topK: parameters.topK, experts: experts, weights: weights)
    }

    /// Selection for one token from its FP32 gate logits. Returns experts ascending by id with their weights.
    public static func select(logits: [Float], bias: [Float]?, _ p: RouterParameters) -> (experts: [Int], weights: [Float]) {
        let n = p.experts
        precondition(logits.count == n, "router logits \(logits.count) != experts \(n)")
        let scores = logits.map(Ops.sigmoid)
        var choice = scores
        if let bias { for i in 0..<n { choice[i] = scores[i] + bias[i] } }
        if p.groups > 1 && p.topKGroups < p.groups {
            precondition(n % p.groups == 0, "experts \(n) not divisible by n_group \(p.groups)")
            let size = n / p.groups
            var groupScores = [Float](repeating: 0, count: p.groups)
            for g in 0..<p.groups {
                let members = Array(choice[(g * size)..<((g + 1) * size)])
                let top = Ops.topK(members, min(2, size))
                groupScores[g] = top.count == 2 ? members[top[0]] + members[top[1]] : members[top[0]]
            }
            let kept = Set(Ops.topK(groupScores, p.topKGroups))
            for g in 0..<p.groups where !kept.contains(g) {
                for i in (g * size)..<((g + 1) * size) { choice[i] = -.infinity }
            }
        }
        let chosen = Ops.topK(choice, p.topK).sorted()
        var w = chosen.map { scores[$0] }
        if p.normTopKProb {
            var sum: Float = 0
            for v in w { sum += v }
            let denominator = sum + 1e-20
            for j in w.indices { w[j] /= denominator }
        }
        for j in w.indices { w[j] *= p.routedScalingFactor }
        return (chosen, w)
    }
}
