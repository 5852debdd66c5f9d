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

    /// Traps unless `x` `[T, D]` fits this FFN and its three matrices fit each other (a caller's bookkeeping error).
    func checkInput(_ x: Matrix) {
        precondition(x.cols == gate.cols && up.rows == gate.rows && up.cols == gate.cols && down.cols == gate.rows,
                     "FeedForward: input [\(x.rows), \(x.cols)] or weights gate [\(gate.rows), \(gate.cols)], up [\(up.rows), \(up.cols)], down [\(down.rows), \(down.cols)] do not fit")
    }

    /// Tensor parallel (this rank holds its share of the intermediate columns in gate / up and its share of the hidden
    /// outputs in down): SwiGLU of its columns, gather them, down onto its outputs over the full width, gather those.
    public func callAsFunction(_ x: Matrix, tp: any TensorParallelGroup, pool: ComputePool) throws -> Matrix {
        if tp.size == 1 { return self(x, pool: pool) }
        let gu = Ops.linear(x, [gate, up], pool: pool)
        let h = try tp.gatherColumns(Ops.siluMul(gate: gu[0], up: gu[1], pool: pool), columns: down.cols)
        return try tp.gatherColumns(Ops.linear(h, down, pool: pool), columns: x.cols)
    }

    /// `[T, D] -> [T, D]`; row t depends only on row t.
    public func callAsFunction(_ x: Matrix, pool: ComputePool = .serial) -> Matrix {
        let gu = Ops.linear(x, [gate, up], pool: pool)  // one region in decode
        return Ops.linear(Ops.siluMul(gate: gu[0], up: gu[1], pool: pool), down, pool: pool)
    }

    /// Average rows per expert up to which `batched` runs all experts in shared parallel regions.
    public static let batchedRowsPerExpert = Ops.sharedRegionRowsPerProduct

    /// Whether `batched` runs these FFNs in shared parallel regions: several of them, several threads, and few rows
    /// per FFN (decode). Many rows per expert (prefill): products are compute-bound and splitting each one over the
    /// threads measured ~25% faster than giving each thread whole experts.
    public static func sharesRegions(_ items: [(x: Matrix, ffn: FeedForward)], pool: ComputePool) -> Bool {
        sharesRegions(rows: items.reduce(0) { $0 + $1.x.rows }, ffns: items.count, pool: pool)
    }

    /// `sharesRegions` for `ffns` FFNs over `rows` rows in all.
    public static func sharesRegions(rows: Int, ffns: Int, pool: ComputePool) -> Bool {
        ffns > 1 && pool.threads > 1 && rows <= batchedRowsPerExpert * ffns
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
                f.checkInput(x)
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

    /// The FFNs of a decode-sized MoE layer with a shared expert, in two shared regions (gate and up, then down), the
    /// `lead` FFN's products first: the workers stream them while the calling thread runs `more` (routing and dispatch:
    /// it returns the routed items) and then packs the routed products, which join the same regions; in the second,
    /// the caller meanwhile runs the routed SwiGLU and packs the down products. Before, the other threads waited
    /// through that serial work (~35 µs per MoE layer of a synth-medium decode step). Same bits as `batchedFlat` of
    /// the routed items plus the lead FFN on its own. Returns the lead's output `[rows, D]` and the routed outputs as
    /// `batchedFlat` lays them out; an error thrown by `more` is rethrown once the lead's products are done.
    /// `capacity`: the most items `more` returns (the rank's local experts).
    static func batchedFlat(lead: (x: Matrix, ffn: FeedForward), capacity: Int, more: () throws -> [(x: Matrix, ffn: FeedForward)],
                            pool: ComputePool) throws -> (lead: Matrix, y: [Float], offsets: [Int]) {
        let (lx, lf) = lead
        lf.checkInput(lx)
        let ln = lx.rows * lf.gate.rows
        let lguh = UnsafeMutablePointer<Float>.allocate(capacity: max(3 * ln, 1))
        defer { lguh.deallocate() }
        var items: [(x: Matrix, ffn: FeedForward)] = [], failure: (any Error)?
        var offsets = [0], hOff: [Int] = [], hn = 0
        var guh: UnsafeMutablePointer<Float>?
        defer { guh?.deallocate() }
        // Region 1: the lead's gate and up; the caller routes, then packs every routed gate and up product.
        lx.data.withUnsafeBufferPointer { xp in
            Ops.withJobs(2, { j in LinearJob(x: xp.baseAddress!, tokens: lx.rows, weight: j == 0 ? lf.gate : lf.up, out: lguh + j * ln) }) { lead in
                Ops.linearBatch(lead, appending: 2 * capacity, pool: pool) { jobs in
                    do { items = try more() } catch { failure = error; return 0 }
                    precondition(items.count <= capacity, "FeedForward.batchedFlat(lead:): \(items.count) routed FFNs for \(capacity)")
                    for (x, f) in items {
                        f.checkInput(x)
                        hOff.append(hn)
                        hn += x.rows * f.gate.rows
                        offsets.append(offsets[offsets.count - 1] + x.rows * f.down.rows)
                    }
                    let g = UnsafeMutablePointer<Float>.allocate(capacity: max(3 * hn, 1))
                    guh = g
                    // Rows read in place (`items` keeps them alive): a decode token's batches are x itself, so
                    // consecutive jobs share one packed copy.
                    var m = 0
                    for (k, (x, f)) in items.enumerated() where x.rows > 0 {
                        x.data.withUnsafeBufferPointer { rp in
                            (jobs.baseAddress! + m).initialize(to: LinearJob(x: rp.baseAddress!, tokens: x.rows, weight: f.gate, out: g + hOff[k]))
                            (jobs.baseAddress! + m + 1).initialize(to: LinearJob(x: rp.baseAddress!, tokens: x.rows, weight: f.up, out: g + hn + hOff[k]))
                        }
                        m += 2
                    }
                    return m
                }
            }
        }
        if let failure { throw failure }
        // Region 2: the lead's down product; the caller runs the routed SwiGLU and packs the routed down products.
        Ops.siluMul(gate: lguh, up: lguh + ln, out: lguh + 2 * ln, count: ln)
        var leadOut = Matrix(rows: lx.rows, cols: lf.down.rows)
        let y = [Float](unsafeUninitializedCapacity: offsets[items.count]) { out, initialized in
            leadOut.data.withUnsafeMutableBufferPointer { lo in
                Ops.withJobs(1, { _ in LinearJob(x: lguh + 2 * ln, tokens: lx.rows, weight: lf.down, out: lo.baseAddress!) }) { lead in
                    Ops.linearBatch(lead, appending: items.count, pool: pool) { jobs in
                        guard let g = guh, hn > 0 else { return 0 }
                        Ops.siluMul(gate: g, up: g + hn, out: g + 2 * hn, count: hn)
                        for (k, (x, f)) in items.enumerated() {
                            (jobs.baseAddress! + k).initialize(to: LinearJob(x: g + 2 * hn + hOff[k], tokens: x.rows, weight: f.down,
                                                                             out: out.baseAddress! + offsets[k]))
                        }
                        return items.count
                    }
                }
            }
            initialized = offsets[items.count]
        }
        return (leadOut, y, offsets)
    }
}
