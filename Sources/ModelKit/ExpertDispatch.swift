// The MoE seam (docs/architecture.md §3): Router -> ExpertDispatcher.layout -> dispatch -> local expert
// FFNs -> combine. `LocalDispatcher` is the single-rank implementation; an MPI `AllToAllDispatcher` in Runtime
// implements the same protocol (dispatch = Alltoallv of (row, expert, weight) to owners, combine = the inverse).
//
// Fixed-order contract: whatever the grouping or placement, the routed sum of token t is
//   Σ over its k slots in ascending expert id of (w_k · FFN_k(x_t))     (FP32, left to right, from 0)
// computed on the token's home rank by `DispatchLayout.sumSlots`. The caller then adds the shared expert
// and then the residual. Each weighted row is computed by the owner as `w · y` (one rounding), so the bits do
// not depend on where it ran.
import Kernels
import Tensors

/// One (token, slot) -> expert assignment.
public struct DispatchEntry: Sendable, Equatable {
    /// Row of the token in the home rank's batch.
    public var token: Int32
    /// Slot j of the token's routing (`Routing.experts[token * topK + j]`), ascending expert id.
    public var slot: Int32
    /// Logical expert id.
    public var expert: Int32
    /// Routing weight (applied by the owner).
    public var weight: Float

    public init(token: Int32, slot: Int32, expert: Int32, weight: Float) {
        self.token = token
        self.slot = slot
        self.expert = expert
        self.weight = weight
    }
}

/// Where every (token, slot) goes. `entries` are ordered by destination rank, then expert id, then token;
/// `sendCounts[r]` entries go to rank r (the rows to send are `x[entry.token]` in entry order).
public struct DispatchLayout: Sendable, Equatable {
    public let tokens: Int
    public let topK: Int
    public let entries: [DispatchEntry]
    public let sendCounts: [Int]

    public init(tokens: Int, topK: Int, entries: [DispatchEntry], sendCounts: [Int]) {
        precondition(sendCounts.reduce(0, +) == entries.count, "sendCounts do not cover the entries")
        self.tokens = tokens
        self.topK = topK
        self.entries = entries
        self.sendCounts = sendCounts
    }

    /// Builds the layout for `ranks` destinations, `owner(expert)` giving the rank that holds a logical expert.
    public static func build(_ routing: Routing, ranks: Int, owner: (Int) -> Int) -> DispatchLayout {
        let n = routing.tokens * routing.topK
        var counts = [Int](repeating: 0, count: ranks)
        // Entries placed by destination (a counting sort: two passes, no list per rank), each rank's run then sorted
        // by (expert, token, slot) unless already in order (one decode token: its slots ascend by expert id).
        let entries = withUnsafeTemporaryAllocation(of: Int.self, capacity: n + ranks) { scratch in
            let dest = scratch.baseAddress!, next = dest + n
            for i in 0..<n {
                let e = routing.experts[i], r = owner(e)
                precondition(r >= 0 && r < ranks, "expert \(e) owned by rank \(r) outside 0..<\(ranks)")
                dest[i] = r
                counts[r] += 1
            }
            var start = 0
            for r in 0..<ranks { next[r] = start; start += counts[r] }
            return [DispatchEntry](unsafeUninitializedCapacity: n) { out, count in
                for i in 0..<n {
                    let r = dest[i]
                    (out.baseAddress! + next[r]).initialize(to: DispatchEntry(
                        token: Int32(i / routing.topK), slot: Int32(i % routing.topK), expert: Int32(routing.experts[i]),
                        weight: routing.weights[i]))
                    next[r] += 1
                }
                count = n
                let before = { (a: DispatchEntry, b: DispatchEntry) in (a.expert, a.token, a.slot) < (b.expert, b.token, b.slot) }
                var lo = 0
                for r in 0..<ranks {
                    var run = UnsafeMutableBufferPointer(rebasing: out[lo..<(lo + counts[r])])
                    if !zip(run, run.dropFirst()).allSatisfy({ before($0, $1) }) { run.sort(by: before) }
                    lo += counts[r]
                }
            }
        }
        return DispatchLayout(tokens: routing.tokens, topK: routing.topK, entries: entries, sendCounts: counts)
    }

    /// The routed sum on the home rank: `slotRows` is `[tokens * topK, D]` (row t*topK + j = weighted output of
    /// slot j of token t, zero if the slot was not routed); returns `[tokens, D]` with slots summed in ascending
    /// slot order (= ascending expert id) starting from +0.
    public static func sumSlots(_ slotRows: Matrix, tokens: Int, topK: Int) -> Matrix {
        precondition(slotRows.rows == tokens * topK, "slot rows \(slotRows.rows) != \(tokens) x \(topK)")
        let d = slotRows.cols
        var out = Matrix(rows: tokens, cols: d)
        slotRows.data.withUnsafeBufferPointer { sp in
            out.data.withUnsafeMutableBufferPointer { op in
                let s = sp.baseAddress!, o = op.baseAddress!
                for t in 0..<tokens {
                    for j in 0..<topK {
                        let base = s + (t * topK + j) * d, row = o + t * d
                        for c in 0..<d { row[c] += base[c] }
                    }
                }
            }
        }
        return out
    }
}

/// Tokens received by one local expert, in a fixed order (origin rank, then token); `rows` `[n, D]`,
/// `weights` `[n]`. After the FFN, the same type carries the weighted outputs back.
public struct ExpertBatch: Sendable, Equatable {
    public var expert: Int
    public var rows: Matrix
    public var weights: [Float]

    public init(expert: Int, rows: Matrix, weights: [Float]) {
        precondition(rows.rows == weights.count, "expert batch: \(rows.rows) rows, \(weights.count) weights")
        self.expert = expert
        self.rows = rows
        self.weights = weights
    }
}

/// What `combine` needs to bring outputs home; each dispatcher defines its own.
public protocol DispatchHandle: Sendable {
    var layout: DispatchLayout { get }
}

/// Moves routed token rows to the ranks owning their experts and the expert outputs back.
/// All ranks of a stage call `dispatch` and `combine` together (collectives for the MPI implementation).
public protocol ExpertDispatcher: AnyObject, Sendable {
    /// Logical experts whose FFNs run on this rank.
    var localExperts: Set<Int> { get }
    /// Destination of every (token, slot) of this rank's routing.
    func layout(_ routing: Routing) throws -> DispatchLayout
    /// Sends `x` `[T, D]` rows per `layout`; returns the rows this rank's local experts must process, one batch
    /// per local expert that received anything, in ascending expert id.
    func dispatch(_ x: Matrix, _ layout: DispatchLayout) throws -> (received: [ExpertBatch], handle: any DispatchHandle)
    /// Takes the weighted expert outputs (same batches, same order and row counts as `received`) back to their
    /// home rows; returns the routed sum `[T, D]` of this rank's tokens (fixed order: `DispatchLayout.sumSlots`).
    func combine(_ outputs: [ExpertBatch], _ handle: any DispatchHandle) throws -> Matrix
    /// `combine` of outputs not yet weighted, still where the batched FFN wrote them: batch b's rows `[n_b, D]` at
    /// `y[offsets[b]...]`, weighted by `received[b].weights` (w · y, one rounding, as `Ops.scaleRows`). Same result as
    /// weighting them into batches and calling `combine`, which is what the default does.
    func combine(weighting y: UnsafeBufferPointer<Float>, offsets: [Int], received: [ExpertBatch],
                 _ handle: any DispatchHandle) throws -> Matrix
}

extension ExpertDispatcher {
    public func combine(weighting y: UnsafeBufferPointer<Float>, offsets: [Int], received: [ExpertBatch],
                        _ handle: any DispatchHandle) throws -> Matrix {
        ExpertBatch.checkFlat(y, offsets: offsets, received: received)
        let outputs = received.enumerated().map { k, batch in
            ExpertBatch(expert: batch.expert, rows: Ops.scaleRows(y.baseAddress! + offsets[k], rows: batch.rows.rows, cols: batch.rows.cols, batch.weights),
                        weights: batch.weights)
        }
        return try combine(outputs, handle)
    }
}

extension ExpertBatch {
    /// Traps unless flat output rows hold every batch's rows at its offset (a caller's bookkeeping error).
    static func checkFlat(_ y: UnsafeBufferPointer<Float>, offsets: [Int], received: [ExpertBatch]) {
        precondition(offsets.count > received.count, "combine(weighting:): \(offsets.count) offsets for \(received.count) batches")
        for (k, b) in received.enumerated() {
            precondition(offsets[k] >= 0 && offsets[k] + b.rows.rows * b.rows.cols <= y.count,
                         "combine(weighting:): batch \(k) reaches past the \(y.count) output values")
        }
    }
}

/// Single rank: every expert is local; dispatch groups rows per expert, combine scatters and sums in order.
public final class LocalDispatcher: ExpertDispatcher {
    public let localExperts: Set<Int>

    /// `experts`: the logical ids present on this rank (all routed experts for N = 1).
    public init(experts: Set<Int>) { self.localExperts = experts }
    public convenience init(expertCount: Int) { self.init(experts: Set(0..<expertCount)) }

    struct Handle: DispatchHandle {
        let layout: DispatchLayout
        /// Received batch b holds the rows of `layout.entries[starts[b] ..< starts[b + 1]]`, in entry order.
        let starts: [Int]
        let hidden: Int
    }

    public func layout(_ routing: Routing) throws -> DispatchLayout {
        for e in routing.experts where !localExperts.contains(e) {
            throw ModelError(.expertNotLocal, "routed expert \(e) is not held by this LocalDispatcher; use a distributed dispatcher or load all experts",
                             subject: "expert \(e)")
        }
        return DispatchLayout.build(routing, ranks: 1) { _ in 0 }
    }

    public func dispatch(_ x: Matrix, _ layout: DispatchLayout) throws -> (received: [ExpertBatch], handle: any DispatchHandle) {
        guard x.rows == layout.tokens else {
            throw ModelError(.badInput, "dispatch got \(x.rows) rows for a layout of \(layout.tokens) tokens", subject: "x")
        }
        var batches: [ExpertBatch] = [], starts = [0]
        batches.reserveCapacity(layout.entries.count)
        starts.reserveCapacity(layout.entries.count + 1)
        var i = 0
        let entries = layout.entries
        while i < entries.count {
            let e = entries[i].expert
            var j = i
            while j < entries.count && entries[j].expert == e { j += 1 }
            // Token indices on the stack, not an array per expert (a decode token's batch is x itself, see `gatherRows`).
            let rows = withUnsafeTemporaryAllocation(of: Int.self, capacity: j - i) { tokens in
                for k in i..<j { tokens[k - i] = Int(entries[k].token) }
                return x.gatherRows(UnsafeBufferPointer(tokens))
            }
            batches.append(ExpertBatch(expert: Int(e), rows: rows, weights: (i..<j).map { entries[$0].weight }))
            starts.append(j)
            i = j
        }
        return (batches, Handle(layout: layout, starts: starts, hidden: x.cols))
    }

    public func combine(_ outputs: [ExpertBatch], _ handle: any DispatchHandle) throws -> Matrix {
        try sumSlots(outputs.map { ($0.rows.rows, $0.rows.cols) }, handle) { b, r, into, d in
            outputs[b].rows.data.withUnsafeBufferPointer { src in
                let from = src.baseAddress! + r * d
                for c in 0..<d { into[c] += from[c] }
            }
        }
    }

    /// Sums straight from the FFN's flat outputs: a decode step's weighted copy of every routed row was ~11 µs per
    /// MoE layer of serial time (synth medium, fast mode; half of those rows sit in the other core's cache).
    public func combine(weighting y: UnsafeBufferPointer<Float>, offsets: [Int], received: [ExpertBatch],
                        _ handle: any DispatchHandle) throws -> Matrix {
        ExpertBatch.checkFlat(y, offsets: offsets, received: received)
        return try sumSlots(received.map { ($0.rows.rows, $0.rows.cols) }, handle) { b, r, into, d in
            let from = y.baseAddress! + offsets[b] + r * d, w = received[b].weights[r]
            for c in 0..<d { into[c] += from[c] * w }  // the weighted value rounded, then added: `scaleRows` then sum
        }
    }

    /// The routed sum of every token: `add(b, r, row, D)` adds row r of output batch b (of `shapes[b]` = rows x D)
    /// into the token's output row, per token in slot order from +0 (the sequence of `DispatchLayout.sumSlots`, without
    /// first copying every row into a slot matrix).
    private func sumSlots(_ shapes: [(rows: Int, cols: Int)], _ handle: any DispatchHandle,
                          _ add: (Int, Int, UnsafeMutablePointer<Float>, Int) -> Void) throws -> Matrix {
        guard let h = handle as? Handle else {
            throw ModelError(.badInput, "combine got a handle from another dispatcher", subject: "handle")
        }
        guard shapes.count == h.starts.count - 1 else {
            throw ModelError(.badInput, "combine got \(shapes.count) batches, dispatched \(h.starts.count - 1)", subject: "outputs")
        }
        let topK = h.layout.topK, d = h.hidden, tokens = h.layout.tokens
        // Where each (token, slot) was computed: batch b, row r.
        var source = [(batch: Int32, row: Int32)](repeating: (-1, -1), count: tokens * topK)
        for (b, shape) in shapes.enumerated() {
            guard shape.rows == h.starts[b + 1] - h.starts[b], shape.cols == d else {
                throw ModelError(.badInput, "output batch \(b) has shape \(shape.rows)x\(shape.cols)", subject: "outputs")
            }
            for k in h.starts[b]..<h.starts[b + 1] {
                let o = h.layout.entries[k]
                source[Int(o.token) * topK + Int(o.slot)] = (Int32(b), Int32(k - h.starts[b]))
            }
        }
        var out = Matrix(rows: tokens, cols: d)
        out.data.withUnsafeMutableBufferPointer { op in
            for (k, s) in source.enumerated() where s.batch >= 0 {
                add(Int(s.batch), Int(s.row), op.baseAddress! + (k / topK) * d, d)
            }
        }
        return out
    }
}
