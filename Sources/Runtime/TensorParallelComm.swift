// TensorParallelComm: a lane's tensor-parallel group over MPI (the stage communicator split by lane). Each gather is
// one all-gather whose block sizes every rank computes from the split rule, traced as its own phase.
import Comm
import Kernels
import ModelKit
import Tensors

final class TensorParallelComm: TensorParallelGroup, @unchecked Sendable {
    let comm: any Communicator
    let tracer: Tracer

    init(comm: any Communicator, tracer: Tracer) {
        self.comm = comm
        self.tracer = tracer
    }

    var rank: Int { comm.rank }
    var size: Int { comm.size }

    func gatherColumns(_ part: Matrix, columns: Int, unit: Int) throws -> Matrix {
        let t = part.rows
        let widths = TensorSplit.blocks(count: columns / unit, parts: size).map { $0.count * unit }
        precondition(part.cols == widths[rank], "tensor-parallel gather: rank \(rank) holds \(part.cols) columns, the split gives \(widths[rank])")
        let start = tracer.begin()
        var flat = [Float](repeating: 0, count: t * columns)
        try part.data.withUnsafeBytes { s in
            try flat.withUnsafeMutableBytes { try comm.allGatherV(send: s, recv: $0, recvCounts: widths.map { $0 * t * 4 }) }
        }
        tracer.end(start, .tpGather, bytes: (t * columns - part.data.count) * 4)
        // flat holds each rank's [T, w_r] block in turn; interleave them into rows.
        var out = Matrix(rows: t, cols: columns)
        flat.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                var offset = 0, column = 0
                for w in widths {
                    for r in 0..<t { (dst.baseAddress! + r * columns + column).update(from: src.baseAddress! + offset + r * w, count: w) }
                    offset += t * w
                    column += w
                }
            }
        }
        return out
    }

    func gatherRows(_ part: Matrix, rows: Int) throws -> Matrix {
        let counts = TensorSplit.blocks(count: rows, parts: size).map { $0.count * part.cols }
        precondition(part.data.count == counts[rank], "tensor-parallel gather: rank \(rank) holds \(part.rows) rows, the split gives \(counts[rank] / max(part.cols, 1))")
        let start = tracer.begin()
        var out = Matrix(rows: rows, cols: part.cols)
        try part.data.withUnsafeBytes { s in
            try out.data.withUnsafeMutableBytes { try comm.allGatherV(send: s, recv: $0, recvCounts: counts.map { $0 * 4 }) }
        }
        tracer.end(start, .tpGather, bytes: (rows * part.cols - part.data.count) * 4)
        return out
    }
}
