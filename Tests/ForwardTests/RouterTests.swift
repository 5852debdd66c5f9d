// Router rules (§1.8): group masking, lowest-id ties, un-biased weights, normalisation and scaling; dispatch layout.
import TestSupport
import Foundation
import Testing
import Kernels
@testable import Models
import Tensors

/// Logits whose sigmoid is exactly `p` (up to float rounding of logit/sigmoid).
func logit(_ p: Float) -> Float { log(p / (1 - p)) }

@Test func groupMaskingKeepsBestGroupsByTopTwoSum() {
    // 8 experts, 4 groups of 2, keep 2 groups, pick 2 experts.
    let params = RouterParameters(experts: 8, topK: 2, groups: 4, topKGroups: 2, normTopKProb: false, routedScalingFactor: 1)
    // Group sums (top-2 of 2): g0 = 0.9+0.1 = 1.0, g1 = 0.6+0.6 = 1.2, g2 = 0.55+0.5 = 1.05, g3 = 0.3+0.3 = 0.6.
    // Expert 0 (0.9) is the single best score but its group loses: picks come from g1 and g2.
    let probs: [Float] = [0.9, 0.1, 0.6, 0.6, 0.55, 0.5, 0.3, 0.3]
    let (experts, weights) = Router.select(logits: probs.map(logit), bias: nil, params)
    #expect(experts == [2, 3])
    #expect(abs(weights[0] - 0.6) < 1e-6 && abs(weights[1] - 0.6) < 1e-6)
    // Without grouping (topk_group = n_group) expert 0 wins.
    var flat = params
    flat.topKGroups = 4
    #expect(Router.select(logits: probs.map(logit), bias: nil, flat).experts == [0, 2])
}

@Test func biasSelectsButDoesNotWeigh() {
    let params = RouterParameters(experts: 4, topK: 1, groups: 1, topKGroups: 1, normTopKProb: false, routedScalingFactor: 2)
    let probs: [Float] = [0.5, 0.7, 0.6, 0.1]
    let bias: [Float] = [0.3, 0, 0, 0]
    let (experts, weights) = Router.select(logits: probs.map(logit), bias: bias, params)
    #expect(experts == [0])
    #expect(abs(weights[0] - 0.5 * 2) < 1e-6)  // un-biased sigmoid times the scaling factor
}

@Test func tiesBreakByLowestExpertID() {
    let params = RouterParameters(experts: 6, topK: 2, groups: 1, topKGroups: 1, normTopKProb: false, routedScalingFactor: 1)
    let logits: [Float] = [0.1, 0.3, 0.3, 0.2, 0.3, 0.0]
    #expect(Router.select(logits: logits, bias: nil, params).experts == [1, 2])
    // Tied groups: lowest group id kept.
    let grouped = RouterParameters(experts: 6, topK: 2, groups: 3, topKGroups: 1, normTopKProb: false, routedScalingFactor: 1)
    let same: [Float] = [0.2, 0.2, 0.2, 0.2, 0.2, 0.2]
    #expect(Router.select(logits: same, bias: nil, grouped).experts == [0, 1])
}

@Test func normalisationThenScaling() {
    let params = RouterParameters(experts: 4, topK: 2, groups: 1, topKGroups: 1, normTopKProb: true, routedScalingFactor: 2.5)
    let probs: [Float] = [0.8, 0.2, 0.4, 0.1]
    let (experts, weights) = Router.select(logits: probs.map(logit), bias: nil, params)
    #expect(experts == [0, 2])
    let s0 = Ops.sigmoid(logit(0.8)), s2 = Ops.sigmoid(logit(0.4))
    #expect(weights[0] == s0 / (s0 + s2 + 1e-20) * 2.5)
    #expect(weights[1] == s2 / (s0 + s2 + 1e-20) * 2.5)
    #expect(abs(weights.reduce(0, +) - 2.5) < 1e-6)
}

@Test func dispatchLayoutOrdersByRankExpertToken() {
    let routing = Routing(tokens: 3, topK: 2, experts: [1, 6, 0, 6, 1, 3], weights: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    // Experts 0..3 on rank 0, 4..7 on rank 1.
    let layout = DispatchLayout.build(routing, ranks: 2) { $0 / 4 }
    #expect(layout.sendCounts == [4, 2])
    #expect(layout.entries.map(\.expert) == [0, 1, 1, 3, 6, 6])
    #expect(layout.entries.map(\.token) == [1, 0, 2, 2, 0, 1])
    #expect(layout.entries.map(\.weight) == [0.3, 0.1, 0.5, 0.6, 0.2, 0.4])
}

@Test func localDispatcherRoundTripSumsInSlotOrder() throws {
    let routing = Routing(tokens: 3, topK: 2, experts: [1, 6, 0, 6, 1, 3], weights: [1, 1, 1, 1, 1, 1])
    let dispatcher = LocalDispatcher(expertCount: 8)
    let layout = try dispatcher.layout(routing)
    var x = Matrix(rows: 3, cols: 2)
    for t in 0..<3 { x[t, 0] = Float(t); x[t, 1] = Float(10 * t) }
    let (received, handle) = try dispatcher.dispatch(x, layout)
    #expect(received.map(\.expert) == [0, 1, 3, 6])
    #expect(received.map(\.rows.rows) == [1, 2, 1, 2])
    // Each expert "FFN" adds its id: out[t] = Σ_slots (x_t + e).
    let outputs = received.map { b in
        ExpertBatch(expert: b.expert, rows: Matrix(rows: b.rows.rows, cols: 2, data: b.rows.data.map { $0 + Float(b.expert) }), weights: b.weights)
    }
    let out = try dispatcher.combine(outputs, handle)
    // token 0 -> experts 1, 6; token 1 -> 0, 6; token 2 -> 1, 3.
    let expected: [Float] = [7, 7, 8, 26, 8, 44]
    #expect(out.data == expected)
}

/// The local combine adds each token's slot rows straight from the expert outputs; the bits equal
/// `DispatchLayout.sumSlots` over the slot matrix (signed zeros and cancellations included).
@Test func localCombineMatchesSumSlots() throws {
    let routing = Routing(tokens: 2, topK: 3, experts: [0, 2, 5, 1, 2, 4], weights: [1, 1, 1, 1, 1, 1])
    let dispatcher = LocalDispatcher(expertCount: 6)
    let x = Matrix(rows: 2, cols: 3)
    let (received, handle) = try dispatcher.dispatch(x, try dispatcher.layout(routing))
    let values: [Float] = [-0.0, 1e-8, -1, 3e7, -0.0, 0.1, 1, -3e7, 0.2, 0.7, -0.0, 1e-8, 2.5, -0.5, -0.0, 0.3, 1.5, -2.5]
    var next = 0
    let outputs = received.map { b in
        let data = (0..<(b.rows.rows * 3)).map { _ in defer { next += 1 }; return values[next % values.count] }
        return ExpertBatch(expert: b.expert, rows: Matrix(rows: b.rows.rows, cols: 3, data: data), weights: b.weights)
    }
    var slots = Matrix(rows: 6, cols: 3)
    var row = [Int](repeating: 0, count: 6)
    for (t, j) in (0..<2).flatMap({ t in (0..<3).map { (t, $0) } }) {
        let e = routing.experts[t * 3 + j], b = received.firstIndex { $0.expert == e }!
        let r = row[e]; row[e] += 1
        for c in 0..<3 { slots[t * 3 + j, c] = outputs[b].rows[r, c] }
    }
    let expected = DispatchLayout.sumSlots(slots, tokens: 2, topK: 3)
    #expect(try dispatcher.combine(outputs, handle).bitwiseEqual(expected))
}

/// Combining unweighted rows out of the batched FFN's flat buffer (the local dispatcher's override, and the protocol's
/// default that the MPI dispatcher inherits) equals weighting each batch with `Ops.scaleRows` and combining it, bit
/// for bit (weights that round, signed zeros, large and tiny values).
@Test func combineWeightingFlatOutputsEqualsWeightedBatches() throws {
    let routing = Routing(tokens: 3, topK: 2, experts: [4, 1, 1, 3, 0, 4], weights: [0.3, 0.7, 0.55, 0.45, 1.0 / 3, 2.0 / 3])
    let dispatcher = LocalDispatcher(expertCount: 5)
    let x = Matrix(rows: 3, cols: 4, data: (0..<12).map { Float($0) })
    let (received, handle) = try dispatcher.dispatch(x, try dispatcher.layout(routing))
    let values: [Float] = [-0.0, 1e-8, -1, 3e7, 0.1, 1, -3e7, 0.2, 0.7, 1e-8, 2.5, -0.5, 0.3, 1.5, -2.5, 7.1]
    var offsets = [0]
    for b in received { offsets.append(offsets.last! + b.rows.rows * 4) }
    let flat = (0..<offsets.last!).map { values[$0 % values.count] * Float(1 + $0 / values.count) }
    let weighted = received.enumerated().map { k, b in
        ExpertBatch(expert: b.expert, rows: Ops.scaleRows(Matrix(rows: b.rows.rows, cols: 4, data: Array(flat[offsets[k]..<offsets[k + 1]])), b.weights),
                    weights: b.weights)
    }
    let expected = try dispatcher.combine(weighted, handle)
    /// Only the protocol's default implementation (what `AllToAllDispatcher` uses).
    final class DefaultOnly: ExpertDispatcher, @unchecked Sendable {
        let local: LocalDispatcher
        init(_ local: LocalDispatcher) { self.local = local }
        var localExperts: Set<Int> { local.localExperts }
        func layout(_ routing: Routing) throws -> DispatchLayout { try local.layout(routing) }
        func dispatch(_ x: Matrix, _ layout: DispatchLayout) throws -> (received: [ExpertBatch], handle: any DispatchHandle) {
            try local.dispatch(x, layout)
        }
        func combine(_ outputs: [ExpertBatch], _ handle: any DispatchHandle) throws -> Matrix { try local.combine(outputs, handle) }
    }
    try flat.withUnsafeBufferPointer { fp in
        let direct = try dispatcher.combine(weighting: fp, offsets: offsets, received: received, handle)
        let viaDefault = try DefaultOnly(dispatcher).combine(weighting: fp, offsets: offsets, received: received, handle)
        #expect(direct.bitwiseEqual(expected), "local: max diff \(direct.maxAbsDiff(expected))")
        #expect(viaDefault.bitwiseEqual(expected))
    }
    #expect(expected.data.contains { $0 != 0 })
}
