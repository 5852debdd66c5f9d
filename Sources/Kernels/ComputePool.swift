// ComputePool: splits independent work (output rows, heads) across threads.
// Results never depend on the thread count: every output element is computed by exactly one
// thread with a summation order that does not depend on how the work was split.
// Workers are persistent threads that spin briefly for the next job before parking: a decode step issues
// hundreds of ~50 µs products, and waking a parked thread per product (libdispatch) cost more than it saved.
import Foundation
import Synchronization
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
/// It also carries the run's matmul precision, since every product of the model is issued on its pool.
public final class ComputePool: @unchecked Sendable {
    public let threads: Int
    public let precision: MatmulPrecision
    private let workers: SpinWorkers?
    /// One word per thread for `parallelShares` (the remaining range of that thread's share), each on its own line.
    private let shareWords: [ShareWord]
    /// Set while a parallel loop runs: a nested or concurrent call runs inline instead (same results).
    private let busy = Atomic<Bool>(false)
    /// Nonzero while the caller of `parallelShares(prologue:)` has not yet published its share.
    private let prologuePending = ShareWord()

    public init(threads: Int, precision: MatmulPrecision = .fp32) {
        precondition(threads >= 1, "ComputePool needs at least one thread")
        self.threads = threads
        self.precision = precision
        self.workers = threads > 1 ? SpinWorkers(count: threads - 1) : nil
        self.shareWords = (0..<threads).map { _ in ShareWord() }
    }

    deinit { workers?.stop() }

    /// The single-threaded pool.
    public static let serial = ComputePool(threads: 1)

    /// Calls `body` on disjoint contiguous ranges covering `0..<count`; each range boundary is a multiple of
    /// `granule` (except the end). Ranges may run concurrently.
    public func parallelFor(count: Int, granule: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let units = ceilDiv(count, granule)
        let parts = Swift.min(threads, units)
        func range(_ w: Int) -> Range<Int> {
            Swift.min(count, (units * w / parts) * granule)..<Swift.min(count, (units * (w + 1) / parts) * granule)
        }
        let ran = onWorkers(parts) { w in let r = range(w); if !r.isEmpty { body(r) } }
        if !ran { body(0..<count) }
    }

    /// Runs `prepare()`, then `job(w)` for w in 0..<parts, w = 0 on the caller, the rest on workers; false (nothing
    /// run) when the pool has one thread, `parts` < 2, or a loop is already running (nested or concurrent use: the
    /// caller then runs its work inline).
    private func onWorkers(_ parts: Int, prepare: () -> Void = {}, _ job: (Int) -> Void) -> Bool {
        guard parts > 1, let workers,
              busy.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged else {
            return false
        }
        defer { busy.store(false, ordering: .sequentiallyConsistent) }
        prepare()
        withoutActuallyEscaping(job) { job in
            // A struct on the stack, not a wrapping closure: that closure's context was a heap allocation per region.
            var call = WorkerCall(parts: parts, body: job)
            withUnsafeMutablePointer(to: &call) { p in
                workers.run(UnsafeMutableRawPointer(p))
                job(0)
                workers.wait()
            }
        }
        return true
    }

    /// Calls `body` on disjoint ranges of `0..<cuts.last` that together cover it exactly once. Thread w starts on its
    /// share `cuts[w]..<cuts[w + 1]` (one contiguous run, good for streaming), taking from the front half of what is
    /// left (at least `minClaim` units) at a time; a thread whose share is done takes the back half of the largest
    /// share still holding two claims (work stealing). Static equal shares left one thread waiting for the other
    /// ~5% of a decode step (2 threads, perf: the worker spinning, the caller yielding) when the two ran at different
    /// speeds. `cuts` has `threads + 1` ascending entries from 0.
    public func parallelShares(cuts: [Int], minClaim: Int, _ body: (Range<Int>) -> Void) {
        cuts.withUnsafeBufferPointer { parallelShares(cuts: $0, minClaim: minClaim, body) }
    }

    /// `parallelShares` with the cut points in caller storage (no array per region).
    public func parallelShares(cuts: UnsafeBufferPointer<Int>, minClaim: Int, _ body: (Range<Int>) -> Void) {
        precondition(cuts.count == threads + 1 && cuts.first == 0, "parallelShares needs threads + 1 cuts from 0")
        let total = cuts[threads]
        precondition(total < 1 << 32, "parallelShares packs unit indices in 32 bits")
        if total <= 0 { return }
        let minClaim = Swift.max(1, minClaim)
        let words = shareWords
        // The words are set only once this loop owns the pool, before any worker starts: a nested or concurrent
        // call must not touch the shares of the loop already running, so it runs everything inline.
        let ran = onWorkers(threads, prepare: {
            for v in 0..<threads { words[v].word.store(ShareWord.pack(cuts[v], cuts[v + 1]), ordering: .releasing) }
        }) { w in ShareWord.work(words, me: w, minClaim: minClaim, body) }
        if !ran { body(0..<total) }
    }

    /// `parallelShares` whose calling thread first runs `prologue` while the workers start on their shares of `cuts`
    /// (the caller's own, `cuts[0]..<cuts[1]`, must be empty). `prologue` returns `end` >= `cuts.last`: units
    /// `cuts.last..<end` become the caller's share, open to stealing; workers that run out before it is published
    /// wait for it. For serial work that produces more of the region's work (routing and job setup of a decode
    /// step's MoE layer): the other threads stream the work already known instead of waiting for it.
    public func parallelShares(cuts: UnsafeBufferPointer<Int>, minClaim: Int, prologue: () -> Int,
                               _ body: (Range<Int>) -> Void) {
        precondition(cuts.count == threads + 1 && cuts.first == 0 && (threads == 1 || cuts[1] == 0),
                     "parallelShares(prologue:) needs threads + 1 cuts from 0, the caller's share empty")
        let total = cuts[threads]
        let minClaim = Swift.max(1, minClaim)
        let words = shareWords, pending = prologuePending
        let ran = onWorkers(threads, prepare: {
            for v in 0..<threads { words[v].word.store(ShareWord.pack(cuts[v], cuts[v + 1]), ordering: .releasing) }
            pending.word.store(1, ordering: .releasing)
        }) { w in
            if w == 0 {
                let end = prologue()
                precondition(end >= total && end < 1 << 32, "parallelShares(prologue:): end \(end) before \(total) or too large")
                // Own word first (empty until now, so no thief touched it), then the flag that releases waiting workers.
                words[0].word.store(ShareWord.pack(total, end), ordering: .releasing)
                pending.word.store(0, ordering: .releasing)
            }
            ShareWord.work(words, me: w, minClaim: minClaim, pending: w == 0 ? nil : pending, body)
        }
        if !ran {
            let end = prologue()
            if end > 0 { body(0..<end) }
        }
    }
}

/// The unclaimed range `next..<end` of one thread's share, packed in one word so owner claims (front) and thief
/// steals (back) are single compare-exchanges; padded to its own cache line.
final class ShareWord: @unchecked Sendable {
    let word = Atomic<UInt64>(0)
    private let padding: (Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0)

    static func pack(_ next: Int, _ end: Int) -> UInt64 { UInt64(next) << 32 | UInt64(end) }
    static func unpack(_ v: UInt64) -> (next: Int, end: Int) { (Int(v >> 32), Int(v & 0xFFFF_FFFF)) }

    /// Drains share `me`, then steals until no share has two claims left. A range is never handed out twice: the
    /// owner advances `next` and a thief lowers `end` of the same word by compare-exchange, and a thief installs
    /// what it took in its own (empty, so never stolen from) word.
    /// `pending` (nonzero: more work may still be published) keeps a thread that found nothing to steal waiting.
    static func work(_ words: [ShareWord], me: Int, minClaim: Int, pending: ShareWord? = nil, _ body: (Range<Int>) -> Void) {
        let mine = words[me]
        while true {
            var seen = mine.word.load(ordering: .acquiring)
            while true {
                let (n, e) = unpack(seen)
                if n >= e { break }
                let take = Swift.min(e - n, Swift.max(minClaim, (e - n) / 2))
                let (done, now) = mine.word.compareExchange(expected: seen, desired: pack(n + take, e), ordering: .acquiringAndReleasing)
                if done { body(n..<(n + take)); seen = mine.word.load(ordering: .acquiring) } else { seen = now }
            }
            var stolen = false, waits = 0
            while !stolen {
                // Read before the scan: once it reads 0, the scan sees the published share.
                let waiting = pending.map { $0.word.load(ordering: .acquiring) != 0 } ?? false
                var victim = -1, victimWord: UInt64 = 0, most = 2 * minClaim - 1
                for v in words.indices where v != me {
                    let value = words[v].word.load(ordering: .acquiring)
                    let (n, e) = unpack(value)
                    if e - n > most { most = e - n; victim = v; victimWord = value }
                }
                if victim < 0 {
                    if !waiting { return }
                    // A long prologue (an Alltoallv waiting for other ranks) must not hold a core other ranks need.
                    waits += 1
                    if waits > 2_000 { sched_yield() } else { for _ in 0..<8 { _ = mine.word.load(ordering: .relaxed) } }
                    continue
                }
                let (n, e) = unpack(victimWord)
                let mid = n + (e - n) / 2
                if words[victim].word.compareExchange(expected: victimWord, desired: pack(n, mid), ordering: .acquiringAndReleasing).exchanged {
                    mine.word.store(pack(mid, e), ordering: .releasing)
                    stolen = true
                }
            }
        }
    }
}

/// What workers run: `body(w)` for worker index w < `parts`.
struct WorkerCall {
    let parts: Int
    let body: (Int) -> Void
}

/// Persistent worker threads 1...count; a job is a pointer to a `WorkerCall`, called with the worker's index.
final class SpinWorkers: @unchecked Sendable {
    let count: Int
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private nonisolated(unsafe) var job: UnsafeMutableRawPointer?
    /// Spins (~0.5 ms) before parking: long enough to bridge the serial work between consecutive products of one
    /// step. With ~50 µs (20 000 spins) the worker parked in the longer gaps of a decode step (routing, dispatch):
    /// 10% of regions then started it 25-50 µs late (futex wake-up), ~3-6 µs per region on average.
    private let spinLimit = 200_000

    init(count: Int) {
        self.count = count
        for index in 1...count {
            let thread = Thread { self.loop(index) }  // strong: the object lives until its threads exit after stop()
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    func run(_ job: UnsafeMutableRawPointer) {
        self.job = job
        pending.store(count, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        let parked = sleepers.exchange(0, ordering: .sequentiallyConsistent)
        for _ in 0..<parked { wake.signal() }
    }

    func wait() {
        var spins = 0
        while pending.load(ordering: .sequentiallyConsistent) > 0 {
            spins += 1
            // A worker preempted by another process (a shared node) needs this core back: stop spinning hard.
            if spins > 2_000 { sched_yield() } else { spinHint() }
        }
        job = nil
    }

    func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        for _ in 0..<(count + sleepers.load(ordering: .sequentiallyConsistent)) { wake.signal() }
    }

    @inline(__always) private func spinHint() {
        #if arch(x86_64) || arch(arm64)
        // A short pause keeps the spinning core from starving its SMT sibling and the memory system.
        for _ in 0..<8 { _ = generation.load(ordering: .relaxed) }
        #endif
    }

    private func loop(_ index: Int) {
        var seen = 0
        while true {
            var spins = 0
            var now = generation.load(ordering: .sequentiallyConsistent)
            while now == seen {
                spins += 1
                if spins >= spinLimit {
                    // Park; the next `run` signals every registered sleeper (a stale registration only causes a
                    // spurious wake-up, which loops back here).
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    // Timed: a full-suite run once hung with both workers parked and a job pending (a lost wake-up
                    // not yet explained); re-checking every 2 ms bounds the cost of such a miss. A timeout keeps
                    // waiting under the same registration: re-spinning (and re-registering) every 2 ms cost an
                    // idle pool ~5% of a core, taken from whatever else runs there (another rank, a probe).
                    while generation.load(ordering: .sequentiallyConsistent) == seen {
                        if wake.wait(timeout: .now() + .milliseconds(2)) == .success { break }
                    }
                    spins = 0
                } else {
                    spinHint()
                }
                now = generation.load(ordering: .sequentiallyConsistent)
            }
            seen = now
            if stopping.load(ordering: .sequentiallyConsistent) { return }
            if let job {
                let call = job.assumingMemoryBound(to: WorkerCall.self)
                if index < call.pointee.parts { call.pointee.body(index) }
            }
            pending.subtract(1, ordering: .sequentiallyConsistent)
        }
    }
}
