// FeedForward: the SwiGLU FFN of dense layers, routed and shared experts, and its batched form (several experts'
// products in shared parallel regions, same bits as one call per expert).
import Foundation
import Kernels
import Tensors

/// SwiGLU FFN `down(silu(gate x) ⊙ up x)` (dense MLP, routed expert, shared experts).
public struct FeedForward: Sendable {
    public let gate: Weight
    public let up: Weight
    public let down: Weight

    public init(gate: Weight, up: Weight, down: Weight) {
        self.gate = gate
        self.up = up
        self.down = down
    }

    /// `[T, D] -> [T, D]`; row t depends only on row t.
    public func callAsFunction(_ x: Matrix, pool: ComputePool = .serial) -> Matrix {
        let gu = Ops.linear(x, [gate, up], pool: pool)  // one region in decode
        return Ops.linear(Ops.siluMul(gate: gu[0], up: gu[1], pool: pool), down, pool: pool)
    }

    /// Average rows per expert up to which `batched` runs all experts in shared parallel regions.
    public static let batchedRowsPerExpert = 8

    /// Whether `batched` runs these FFNs in shared parallel regions: several of them, several threads, and few rows
    /// per FFN (decode). Many rows per expert (prefill): products are compute-bound and splitting each one over the
    /// threads measured ~25% faster than giving each thread whole experts.
    public static func sharesRegions(_ items: [(x: Matrix, ffn: FeedForward)], pool: ComputePool) -> Bool {
        let rows = items.reduce(0) { $0 + $1.x.rows }
        return items.count > 1 && pool.threads > 1 && rows <= batchedRowsPerExpert * items.count
    }

    /// Several FFNs over their own rows (the routed experts of one layer) in two parallel regions: gate and up of
    /// all, then down of all (`Ops.linearBatch`). Bit-identical to calling each FFN on its rows.
    public static func batched(_ items: [(x: Matrix, ffn: FeedForward)], pool: ComputePool) -> [Matrix] {
        if items.isEmpty { return [] }
        if !sharesRegions(items, pool: pool) { return items.map { $0.ffn($0.x, pool: pool) } }
        let (y, offsets) = batchedFlat(items, pool: pool)
        return items.indices.map { k in
            Matrix(rows: items[k].x.rows, cols: items[k].ffn.down.rows, data: Array(y[offsets[k]..<offsets[k + 1]]))
        }
    }

    /// `batched` in shared regions (`sharesRegions` must hold), the outputs end to end: item k's `[rows_k, D_k]` is
    /// `y[offsets[k] ..< offsets[k + 1]]`. Scratch and job lists live in one buffer and on the stack, inputs that
    /// share storage are read in place: this runs serially between products every MoE layer of a decode step.
    static func batchedFlat(_ items: [(x: Matrix, ffn: FeedForward)], pool: ComputePool) -> (y: [Float], offsets: [Int]) {
        let count = items.count
        var offsets = [Int](repeating: 0, count: count + 1)
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * count + 1) { ints in
            let xOff = ints.baseAddress!, hOff = xOff + count
            var xn = 0, hn = 0
            // Inputs that share storage with the previous item's (one decode token routed to several experts, and the
            // shared expert: all the same rows) are read once, so their products also share one packed copy.
            var distinct = 0
            for (k, (x, f)) in items.enumerated() {
                precondition(x.cols == f.gate.cols && f.up.rows == f.gate.rows && f.down.cols == f.gate.rows, "FeedForward.batched: shape mismatch")
                if k > 0 && items[k - 1].x.sharesStorage(with: x) {
                    xOff[k] = xOff[k - 1]
                } else {
                    distinct += 1
                    xOff[k] = xn
                    xn += x.rows * x.cols
                }
                hOff[k] = hn
                offsets[k + 1] = offsets[k] + x.rows * f.down.rows
                hn += x.rows * f.gate.rows
            }
            // One distinct input (decode): its own storage. Several: packed end to end.
            let packed = distinct > 1 ? UnsafeMutablePointer<Float>.allocate(capacity: xn) : nil
            defer { packed?.deallocate() }
            if let packed {
                for (k, (x, _)) in items.enumerated() where k == 0 || xOff[k] != xOff[k - 1] {
                    x.data.withUnsafeBufferPointer { (packed + xOff[k]).initialize(from: $0.baseAddress!, count: $0.count) }
                }
            }
            // gate, up and silu(gate)·up of all items.
            let guh = UnsafeMutablePointer<Float>.allocate(capacity: max(3 * hn, 1))
            defer { guh.deallocate() }
            let g = guh, u = guh + hn, h = guh + 2 * hn
            items[0].x.data.withUnsafeBufferPointer { x0 in
                let xs = packed.map { UnsafePointer($0) } ?? x0.baseAddress!
                Ops.withJobs(2 * count, { j in
                    let k = j / 2, (x, f) = items[k]
                    return LinearJob(x: xs + xOff[k], tokens: x.rows, weight: j % 2 == 0 ? f.gate : f.up, out: (j % 2 == 0 ? g : u) + hOff[k])
                }) { Ops.linearBatch($0, pool: pool) }
            }
            Ops.siluMul(gate: g, up: u, out: h, count: hn, pool: pool)
            let y = [Float](unsafeUninitializedCapacity: offsets[count]) { out, initialized in
                Ops.withJobs(count, { k in
                    LinearJob(x: h + hOff[k], tokens: items[k].x.rows, weight: items[k].ffn.down, out: out.baseAddress! + offsets[k])
                }) { Ops.linearBatch($0, pool: pool) }
                initialized = offsets[count]
            }
            return (y, offsets)
        }
    }
}
