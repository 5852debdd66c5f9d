// ComputePool: splits independent work (output rows, heads) across threads.
// Results never depend on the thread count: every output element is computed by exactly one
// thread with a summation order that does not depend on how the work was split.
import Dispatch
import Tensors

/// A fixed-width thread pool. `threads == 1` runs inline on the caller.
/// Multi-threaded runs use libdispatch's persistent worker threads (`concurrentPerform`).
public final class ComputePool: Sendable {
    public let threads: Int

    public init(threads: Int) {
        precondition(threads >= 1, "ComputePool needs at least one thread")
        self.threads = threads
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
