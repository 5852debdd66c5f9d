// ComputePool: splits independent work (output rows, heads) across threads.
// Results never depend on the thread count: every output element is computed by exactly one
// thread with a summation order that does not depend on how the work was split.
import Dispatch
import Tensors

/// How products against BF16 weights treat the FP32 activations.
public enum MatmulPrecision: String, Sendable, CaseIterable {
    /// Activations stay FP32; weights are widened in registers (the default: matches transformers' FP32 math).
    case fp32
    /// Activations are rounded to BF16 and multiplied with the bf16 dot-product instruction (`vdpbf16ps`, about
    /// 2x the FP32 FMA rate; needs AVX-512 BF16). Used for every token count, decode included, so results stay
    /// batch-, layout- and thread-invariant; they differ from `fp32` by BF16 rounding of the activations.
    case bf16
}

/// A fixed-width thread pool. `threads == 1` runs inline on the caller.
/// Multi-threaded runs use libdispatch's persistent worker threads (`concurrentPerform`).
/// It also carries the run's matmul precision, since every product of the model is issued on its pool.
public final class ComputePool: Sendable {
    public let threads: Int
    public let precision: MatmulPrecision

    public init(threads: Int, precision: MatmulPrecision = .fp32) {
        precondition(threads >= 1, "ComputePool needs at least one thread")
        self.threads = threads
        self.precision = precision
    }

    /// The single-threaded pool.
    public static let serial = ComputePool(threads: 1)

    /// Calls `body` on disjoint contiguous ranges covering `0..<count`; each range boundary is a multiple of
    /// `granule` (except the end). Ranges may run concurrently.
    public func parallelFor(count: Int, granule: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let units = ceilDiv(count, granule)
        let workers = Swift.min(threads, units)
        if workers <= 1 { body(0..<count); return }
        withoutActuallyEscaping(body) { body in
            let box = UnsafeTransfer(body)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let lo = Swift.min(count, (units * w / workers) * granule)
                let hi = Swift.min(count, (units * (w + 1) / workers) * granule)
                if lo < hi { box.value(lo..<hi) }
            }
        }
    }
}
