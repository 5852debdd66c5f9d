// AllToAllDispatcher: the MoE seam over a stage communicator. dispatch = one MPI_Alltoallv carrying each
// (token, expert) pair's row + weight to the expert's owner lane; combine = the inverse MPI_Alltoallv bringing
// weighted rows home, where DispatchLayout.sumSlots adds them in ascending expert id (same bits as 1 rank).
// Every rank of the stage calls both for every MoE layer, also with zero tokens.
import Comm
import Kernels
import Models
import Parallel

/// Dimensions: D = hidden size; an entry on the wire is [expert id bits, weight, row (D floats)].
public final class AllToAllDispatcher: ExpertDispatcher, @unchecked Sendable {
    public let localExperts: Set<Int>
    private let comm: any Communicator
    private let plan: ParallelPlan
    private let tracer: Tracer
    /// MoE layers of this stage in execution order, for watchdog context and trace spans.
    private var moeLayers: [Int] = []
    private var callIndex = 0
    private var stepLabel = ""

    struct Handle: DispatchHandle {
        let layout: DispatchLayout
        /// Rows received from each source rank (the combine sends the same counts back).
        let receivedCounts: [Int]
        /// For each received batch, (source rank, index within that source's block) per row.
        let origins: [[(source: Int, index: Int)]]
        let hidden: Int
        let layer: Int
    }

    public init(comm: any Communicator, plan: ParallelPlan, lane: Int, tracer: Tracer) {
        self.comm = comm
        self.plan = plan
        self.tracer = tracer
        self.localExperts = Set(plan.laneExperts[lane])
    }

    /// Called by the engine before each forward over the stage's layers.
    public func beginForward(moeLayers: [Int], step: String) {
        self.moeLayers = moeLayers
        self.callIndex = 0
        self.stepLabel = step
    }

    private var currentLayer: Int { callIndex < moeLayers.count ? moeLayers[callIndex] : -1 }

    public func layout(_ routing: Routing) throws -> DispatchLayout {
        DispatchLayout.build(routing, ranks: comm.size) { self.plan.ownerLane(of: ExpertID($0)) }
    }

    public func dispatch(_ x: Matrix, _ layout: DispatchLayout) throws -> (received: [ExpertBatch], handle: any DispatchHandle) {
        let layer = currentLayer
        comm.setContext("\(stepLabel) layer \(layer) dispatch")
        let d = x.cols, width = d + 2
        // Pack rows in layout order (destination rank, expert, token).
        var send = [Float](repeating: 0, count: layout.entries.count * width)
        x.data.withUnsafeBufferPointer { xp in
            send.withUnsafeMutableBufferPointer { sp in
                for (i, e) in layout.entries.enumerated() {
                    let row = sp.baseAddress! + i * width
                    row[0] = Float(bitPattern: UInt32(bitPattern: e.expert))
                    row[1] = e.weight
                    (row + 2).update(from: xp.baseAddress! + Int(e.token) * d, count: d)
                }
            }
        }
        let start = tracer.begin()
        var recvCounts64 = [Int64](repeating: 0, count: comm.size)
        let sendCounts64 = layout.sendCounts.map { Int64($0) }
        try sendCounts64.withUnsafeBytes { s in try recvCounts64.withUnsafeMutableBytes { try comm.allToAll(send: s, recv: $0) } }
        let receivedCounts = recvCounts64.map { Int($0) }
        var recv = [Float](repeating: 0, count: receivedCounts.reduce(0, +) * width)
        try send.withUnsafeBytes { s in
            try recv.withUnsafeMutableBytes {
                try comm.allToAllV(send: s, sendCounts: layout.sendCounts.map { $0 * width * 4 }, recv: $0,
                                   recvCounts: receivedCounts.map { $0 * width * 4 })
            }
        }
        tracer.end(start, .dispatch, layer: layer, bytes: send.count * 4)
        // Group received rows per local expert: ascending expert id, then source rank, then arrival order.
        var rowsByExpert: [Int: [(source: Int, index: Int, offset: Int)]] = [:]
        var offset = 0
        for source in 0..<comm.size {
            for index in 0..<receivedCounts[source] {
                let expert = Int(Int32(bitPattern: recv[offset].bitPattern))
                guard localExperts.contains(expert) else {
                    throw CommError(.invalidArgument, call: "dispatch", message: "rank received a row for expert \(expert) it does not own",
                                    rank: comm.worldRank, hint: "all ranks of a stage must use the same plan")
                }
                rowsByExpert[expert, default: []].append((source, index, offset))
                offset += width
            }
        }
        var batches: [ExpertBatch] = []
        var origins: [[(source: Int, index: Int)]] = []
        for expert in rowsByExpert.keys.sorted() {
            let rows = rowsByExpert[expert]!
            var m = Matrix(rows: rows.count, cols: d)
            var weights = [Float](repeating: 0, count: rows.count)
            recv.withUnsafeBufferPointer { rp in
                m.data.withUnsafeMutableBufferPointer { mp in
                    for (r, row) in rows.enumerated() {
                        weights[r] = rp[row.offset + 1]
                        (mp.baseAddress! + r * d).update(from: rp.baseAddress! + row.offset + 2, count: d)
                    }
                }
            }
            batches.append(ExpertBatch(expert: expert, rows: m, weights: weights))
            origins.append(rows.map { ($0.source, $0.index) })
        }
        return (batches, Handle(layout: layout, receivedCounts: receivedCounts, origins: origins, hidden: d, layer: layer))
    }

    public func combine(_ outputs: [ExpertBatch], _ handle: any DispatchHandle) throws -> Matrix {
        guard let h = handle as? Handle else {
            throw CommError(.invalidArgument, call: "combine", message: "handle came from another dispatcher", rank: comm.worldRank)
        }
        defer { callIndex += 1 }
        comm.setContext("\(stepLabel) layer \(h.layer) combine")
        let d = h.hidden
        // Return rows to their sources in the order they arrived.
        let displacement = h.receivedCounts.reduce(into: [0]) { $0.append($0.last! + $1) }
        var send = [Float](repeating: 0, count: h.receivedCounts.reduce(0, +) * d)
        send.withUnsafeMutableBufferPointer { sp in
            for (b, batch) in outputs.enumerated() {
                batch.rows.data.withUnsafeBufferPointer { bp in
                    for (r, origin) in h.origins[b].enumerated() {
                        (sp.baseAddress! + (displacement[origin.source] + origin.index) * d).update(from: bp.baseAddress! + r * d, count: d)
                    }
                }
            }
        }
        let start = tracer.begin()
        var back = [Float](repeating: 0, count: h.layout.entries.count * d)
        try send.withUnsafeBytes { s in
            try back.withUnsafeMutableBytes {
                try comm.allToAllV(send: s, sendCounts: h.receivedCounts.map { $0 * d * 4 }, recv: $0,
                                   recvCounts: h.layout.sendCounts.map { $0 * d * 4 })
            }
        }
        tracer.end(start, .combine, layer: h.layer, bytes: send.count * 4)
        // `back` is in layout-entry order; place each row in its (token, slot) and sum slots in fixed order.
        let topK = h.layout.topK
        var slots = Matrix(rows: h.layout.tokens * topK, cols: d)
        back.withUnsafeBufferPointer { bp in
            slots.data.withUnsafeMutableBufferPointer { sp in
                for (i, e) in h.layout.entries.enumerated() {
                    (sp.baseAddress! + (Int(e.token) * topK + Int(e.slot)) * d).update(from: bp.baseAddress! + i * d, count: d)
                }
            }
        }
        return DispatchLayout.sumSlots(slots, tokens: h.layout.tokens, topK: topK)
    }
}
