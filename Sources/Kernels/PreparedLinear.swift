// PreparedLinear: one product whose activations are packed once and whose output rows are then computed piece by
// piece on whichever thread asks, for parallel regions that interleave a product with other per-row-group work
// (decode attention: each head's q_b rows, then that head's attention). Same bits as `Ops.linear`.
import Foundation
import Tensors

public struct PreparedLinear {
    private let job: FusedJob

    /// Packs `j`'s activations for the C kernel; nil where no C kernel covers the weight (no AVX-512, a partial last
    /// chunk, F16): the caller then uses `Ops.linear`. Call `release()` when done.
    public init?(_ j: LinearJob, precision: MatmulPrecision) {
        guard j.isLive, let f = FusedJob(j, precision: precision) else { return nil }
        job = f
    }

    /// Row ranges passed to `run` must start and end on multiples of this (the weight's interleaved group, or 4);
    /// the end may also be the weight's last row.
    public var unit: Int { job.unit }

    /// Computes output rows `rows` of every token on the calling thread.
    public func run(rows: Range<Int>) {
        precondition(rows.lowerBound % job.unit == 0 && (rows.upperBound % job.unit == 0 || rows.upperBound == job.rows)
                     && rows.upperBound <= job.rows, "PreparedLinear.run: rows \(rows) not on \(job.unit)-row units of \(job.rows)")
        if !rows.isEmpty { job.run(rows: rows) }
    }

    /// Frees the packed activations.
    public func release() { job.release() }
}
