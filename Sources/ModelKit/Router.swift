// Router: picks each token's experts and their weights, FP32 throughout; ties go to the lowest expert id.
// `.groupedSigmoid` is DeepSeek-V3's `noaux_tc` gate (HF `DeepseekV3TopkRouter`): logits = x W_gate^T ->
// s = sigmoid -> s' = s + e_score_correction_bias (selection only) -> group-limited top-k (group score = sum of the
// top-2 s' in the group; keep topk_group groups) -> weights = s of the chosen experts, optionally divided by
// (Σw + 1e-20), times routed_scaling_factor. `.softmax` (Qwen3-MoE, Mixtral): s = softmax over all experts -> top-k
// -> weights = s of the chosen, optionally renormalised to sum 1.
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

/// How a router turns gate logits into scores.
public enum RouterScoring: String, Sendable, Equatable {
    /// Sigmoid scores, selection biased and limited to the best groups (DeepSeek-V3, Kimi K2, GLM-4.5, MiniMax-M2).
    case groupedSigmoid
    /// Softmax over all experts, then top-k (Qwen3-MoE, Mixtral).
    case softmax
}

/// The scalar knobs of the router (a family fills them from its config).
public struct RouterParameters: Sendable, Equatable {
    public var scoring: RouterScoring
    public var experts: Int
    public var topK: Int
    public var groups: Int
    public var topKGroups: Int
    public var normTopKProb: Bool
    public var routedScalingFactor: Float

    public init(scoring: RouterScoring = .groupedSigmoid, experts: Int, topK: Int, groups: Int, topKGroups: Int, normTopKProb: Bool,
                routedScalingFactor: Float) {
        self.scoring = scoring
        self.experts = experts
        self.topK = topK
        self.groups = groups
        self.topKGroups = topKGroups
        self.normTopKProb = normTopKProb
        self.routedScalingFactor = routedScalingFactor
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
        let k = parameters.topK, n = parameters.experts
        var experts = [Int](repeating: 0, count: x.rows * k), weights = [Float](repeating: 0, count: x.rows * k)
        logits.data.withUnsafeBufferPointer { lp in
            experts.withUnsafeMutableBufferPointer { ep in
                weights.withUnsafeMutableBufferPointer { wp in
                    for t in 0..<x.rows {
                        Router.select(logits: UnsafeBufferPointer(rebasing: lp[(t * n)..<((t + 1) * n)]), bias: bias, parameters,
                                      experts: ep.baseAddress! + t * k, weights: wp.baseAddress! + t * k)
                    }
                }
            }
        }
        return Routing(tokens: x.rows, topK: k, experts: experts, weights: weights)
    }

    /// Selection for one token from its FP32 gate logits. Returns experts ascending by id with their weights.
    public static func select(logits: [Float], bias: [Float]?, _ p: RouterParameters) -> (experts: [Int], weights: [Float]) {
        if p.topK == 0 { return ([], []) }
        var experts = [Int](repeating: 0, count: p.topK), weights = [Float](repeating: 0, count: p.topK)
        logits.withUnsafeBufferPointer { lp in
            experts.withUnsafeMutableBufferPointer { ep in
                weights.withUnsafeMutableBufferPointer { wp in
                    select(logits: lp, bias: bias, p, experts: ep.baseAddress!, weights: wp.baseAddress!)
                }
            }
        }
        return (experts, weights)
    }

    /// `select` into caller storage (`topK` experts ascending by id, and their weights); scratch on the stack: it runs
    /// once per token and MoE layer, serial between two products of a decode step.
    public static func select(logits: UnsafeBufferPointer<Float>, bias: [Float]?, _ p: RouterParameters,
                              experts chosen: UnsafeMutablePointer<Int>, weights w: UnsafeMutablePointer<Float>) {
        let n = p.experts, k = p.topK
        precondition(logits.count == n, "router logits \(logits.count) != experts \(n)")
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * n + p.groups) { floats in
            let scores = floats.baseAddress!, choice = scores + n, groupScores = choice + n
            switch p.scoring {
            case .groupedSigmoid: for i in 0..<n { scores[i] = Ops.sigmoid(logits[i]) }
            case .softmax:
                scores.update(from: logits.baseAddress!, count: n)
                Ops.softmaxInPlace(scores, n)
            }
            if let bias { for i in 0..<n { choice[i] = scores[i] + bias[i] } } else { choice.update(from: scores, count: n) }
            if p.groups > 1 && p.topKGroups < p.groups {
                precondition(n % p.groups == 0, "experts \(n) not divisible by n_group \(p.groups)")
                let size = n / p.groups
                withUnsafeTemporaryAllocation(of: Int.self, capacity: max(2, p.groups)) { top in
                    for g in 0..<p.groups {
                        let members = UnsafeBufferPointer(start: choice + g * size, count: size)
                        Ops.topK(members, min(2, size), into: top.baseAddress!)
                        groupScores[g] = size >= 2 ? members[top[0]] + members[top[1]] : members[top[0]]
                    }
                    Ops.topK(UnsafeBufferPointer(start: groupScores, count: p.groups), p.topKGroups, into: top.baseAddress!)
                    for g in 0..<p.groups where !top[0..<p.topKGroups].contains(g) {
                        for i in (g * size)..<((g + 1) * size) { choice[i] = -.infinity }
                    }
                }
            }
            Ops.topK(UnsafeBufferPointer(start: choice, count: n), k, into: chosen)
            // Ascending expert id (insertion sort of k indices).
            for j in 1..<max(k, 1) {
                let v = chosen[j]
                var i = j
                while i > 0 && chosen[i - 1] > v { chosen[i] = chosen[i - 1]; i -= 1 }
                chosen[i] = v
            }
            for j in 0..<k { w[j] = scores[chosen[j]] }
            if p.normTopKProb {
                var sum: Float = 0
                for j in 0..<k { sum += w[j] }
                let denominator = sum + 1e-20
                for j in 0..<k { w[j] /= denominator }
            }
            for j in 0..<k { w[j] *= p.routedScalingFactor }
        }
    }
}
