// ComputePool.parallelShares: every unit handed out exactly once for any cuts, claim size and thread count, and a
// thread that finishes early takes work from a slower one.
import Foundation
import Synchronization
import Testing
import Kernels

/// Counts how often each unit was handed out, and by which thread.
final class UnitLedger: Sendable {
    let counts: Mutex<[Int]>
    let takenBy: Mutex<[pthread_t?]>
    init(units: Int) {
        counts = Mutex([Int](repeating: 0, count: units))
        takenBy = Mutex([pthread_t?](repeating: nil, count: units))
    }
    func record(_ range: Range<Int>) {
        let me = pthread_self()
        counts.withLock { c in for u in range { c[u] += 1 } }
        takenBy.withLock { t in for u in range { t[u] = me } }
    }
}

@Test func parallelSharesHandOutEveryUnitOnce() {
    var rng = SeededRandom(77)
    for threads in 1...4 {
        let pool = ComputePool(threads: threads)
        for _ in 0..<40 {
            let total = Int(rng.next() % 300)
            var cuts = (0..<(threads - 1)).map { _ in total == 0 ? 0 : Int(rng.next() % UInt64(total + 1)) }.sorted()
            cuts = [0] + cuts + [total]
            let minClaim = 1 + Int(rng.next() % 9)
            let ledger = UnitLedger(units: total)
            pool.parallelShares(cuts: cuts, minClaim: minClaim) { range in
                #expect(!range.isEmpty && range.lowerBound >= 0 && range.upperBound <= total)
                ledger.record(range)
            }
            let counts = ledger.counts.withLock { $0 }
            #expect(counts.allSatisfy { $0 == 1 }, "threads \(threads) cuts \(cuts) minClaim \(minClaim)")
        }
    }
}

@Test func parallelSharesMoveWorkFromASlowThread() {
    // The caller's share is 190 of 200 units and each of its claims takes 5 ms: the worker, done with its 10 units
    // at once, must take part of the caller's share.
    let pool = ComputePool(threads: 2)
    let ledger = UnitLedger(units: 200)
    let caller = pthread_self()
    pool.parallelShares(cuts: [0, 190, 200], minClaim: 1) { range in
        if pthread_equal(pthread_self(), caller) != 0 { usleep(5000) }
        ledger.record(range)
    }
    let takers = ledger.takenBy.withLock { $0 }
    #expect(ledger.counts.withLock { $0 }.allSatisfy { $0 == 1 })
    let movedToWorker = takers[0..<190].filter { $0 != nil && pthread_equal($0!, caller) == 0 }.count
    #expect(movedToWorker > 0, "no unit of the slow caller's share was taken by the worker")
}

@Test func parallelSharesNestedInAParallelLoopCoverEveryUnit() {
    // Inside a running loop the pool is busy: each nested call (two at once, one per thread) must run inline on its
    // own ranges without touching the shares of the other.
    let pool = ComputePool(threads: 2)
    let ledgers = (0..<2).map { _ in UnitLedger(units: 500) }
    for _ in 0..<20 {
        pool.parallelFor(count: 2) { outer in
            for o in outer {
                pool.parallelShares(cuts: [0, 250, 500], minClaim: 3) { range in ledgers[o].record(range) }
            }
        }
    }
    for (o, ledger) in ledgers.enumerated() {
        #expect(ledger.counts.withLock { $0 }.allSatisfy { $0 == 20 }, "nested call \(o)")
    }
}

@Test func parallelSharesWithPrologueHandOutEveryUnitOnce() {
    // The workers start on the first units while the caller's prologue runs; the prologue appends more units (none,
    // a few, many), which become the caller's share. Every unit exactly once, whoever ran it.
    var rng = SeededRandom(78)
    for threads in 1...4 {
        let pool = ComputePool(threads: threads)
        for _ in 0..<40 {
            let lead = Int(rng.next() % 200), more = [0, 1, 7, 300][Int(rng.next() % 4)]
            var cuts = (0..<max(threads - 2, 0)).map { _ in lead == 0 ? 0 : Int(rng.next() % UInt64(lead + 1)) }.sorted()
            cuts = threads == 1 ? [0, lead] : [0, 0] + cuts + [lead]
            let minClaim = 1 + Int(rng.next() % 9)
            let ledger = UnitLedger(units: lead + more)
            cuts.withUnsafeBufferPointer { cuts in
                pool.parallelShares(cuts: cuts, minClaim: minClaim, prologue: { lead + more }) { range in
                    #expect(!range.isEmpty && range.upperBound <= lead + more)
                    ledger.record(range)
                }
            }
            #expect(ledger.counts.withLock { $0 }.allSatisfy { $0 == 1 }, "threads \(threads) cuts \(cuts) more \(more)")
        }
    }
}

@Test func parallelSharesWorkersWaitForThePrologue() {
    // The lead units are done long before the prologue returns: the worker must not leave, and takes part of the
    // appended share (each caller claim is slow).
    let pool = ComputePool(threads: 2)
    let ledger = UnitLedger(units: 210)
    let caller = pthread_self()
    [0, 0, 10].withUnsafeBufferPointer { cuts in
        pool.parallelShares(cuts: cuts, minClaim: 1, prologue: { usleep(20_000); return 210 }) { range in
            if pthread_equal(pthread_self(), caller) != 0 { usleep(5000) }
            ledger.record(range)
        }
    }
    let takers = ledger.takenBy.withLock { $0 }
    #expect(ledger.counts.withLock { $0 }.allSatisfy { $0 == 1 })
    #expect(takers[0..<10].allSatisfy { $0 != nil && pthread_equal($0!, caller) == 0 }, "the lead units were not the worker's")
    #expect(takers[10...].contains { $0 != nil && pthread_equal($0!, caller) == 0 }, "the worker took none of the appended units")
}
