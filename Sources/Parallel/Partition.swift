// Partition math (pure functions): contiguous layer ranges over pipeline stages balanced by cost, and
// routed experts over the ranks of an expert-parallel group. Every layer / expert is owned exactly once.
import ModelKit

public enum Partition {
    /// Split `costs.count` layers into `parts` contiguous non-empty ranges minimising the largest range cost
    /// (`fixed[p]` is added to part p: embedding on the first stage, norm + head on the last).
    /// `capacity[p]` (default 1) divides part p's cost: a part on a node with twice the memory or speed takes
    /// about twice the layers. Exact DP, O(parts x layers^2); ties prefer earlier cuts so results are deterministic.
    public static func contiguous(costs: [Double], parts: Int, fixed: [Double] = [], capacity: [Double] = []) -> [Range<Int>] {
        let n = costs.count
        precondition(parts >= 1 && parts <= n, "need 1 ... \(n) parts, got \(parts)")
        precondition(capacity.allSatisfy { $0 > 0 }, "capacities must be positive")
        let cap = (0..<parts).map { $0 < capacity.count ? capacity[$0] : 1 }
        let extra = (0..<parts).map { $0 < fixed.count ? fixed[$0] : 0 }
        var prefix = [Double](repeating: 0, count: n + 1)
        for i in 0..<n { prefix[i + 1] = prefix[i] + costs[i] }
        // best[p][i]: minimal max cost of splitting the first i layers into p+1 parts; cut[p][i]: start of the last part.
        var best = [[Double]](repeating: [Double](repeating: .infinity, count: n + 1), count: parts)
        var cut = [[Int]](repeating: [Int](repeating: 0, count: n + 1), count: parts)
        for i in 1...n { best[0][i] = (prefix[i] + extra[0]) / cap[0] }
        if parts > 1 {
            for p in 1..<parts {
                for i in (p + 1)...n {
                    for j in p..<i {
                        let candidate = max(best[p - 1][j], (prefix[i] - prefix[j] + extra[p]) / cap[p])
                        if candidate < best[p][i] - 1e-9 * max(1, candidate) {
                            best[p][i] = candidate
                            cut[p][i] = j
                        }
                    }
                }
            }
        }
        var ranges: [Range<Int>] = []
        var end = n
        for p in stride(from: parts - 1, through: 1, by: -1) {
            let start = cut[p][end]
            ranges.append(start..<end)
            end = start
        }
        ranges.append(0..<end)
        return ranges.reversed()
    }

    /// Contiguous blocks of `count` items over `parts` owners; the first `count % parts` owners get one more.
    /// E.g. 384 experts over 5 ranks -> 77, 77, 77, 77, 76.
    public static func blocks(count: Int, parts: Int) -> [Range<Int>] {
        precondition(parts >= 1, "need at least one part")
        return TensorSplit.blocks(count: count, parts: parts)
    }

    /// Contiguous blocks sized in proportion to `weights` (largest remainder; every part gets at least one item
    /// when count >= parts). Equal weights give exactly `blocks(count:parts:)`, so plans for equal nodes are unchanged.
    public static func weighted(count: Int, weights: [Double]) -> [Range<Int>] {
        let parts = weights.count
        precondition(parts >= 1 && weights.allSatisfy { $0 > 0 && $0.isFinite }, "need positive finite weights")
        if weights.allSatisfy({ $0 == weights[0] }) { return blocks(count: count, parts: parts) }
        let total = weights.reduce(0, +)
        let quota = weights.map { Double(count) * $0 / total }
        let floor = count >= parts ? 1 : 0
        var sizes = quota.map { max(floor, Int($0.rounded(.down))) }
        // Hand out the rest by largest remainder (lowest index on ties); take back from the smallest remainder.
        while sizes.reduce(0, +) < count {
            let i = sizes.indices.max { (quota[$0] - Double(sizes[$0]), -$0) < (quota[$1] - Double(sizes[$1]), -$1) }!
            sizes[i] += 1
        }
        while sizes.reduce(0, +) > count {
            let i = sizes.indices.filter { sizes[$0] > floor }.min { (quota[$0] - Double(sizes[$0]), $0) < (quota[$1] - Double(sizes[$1]), $1) }!
            sizes[i] -= 1
        }
        var ranges: [Range<Int>] = []
        var start = 0
        for size in sizes {
            ranges.append(start..<(start + size))
            start += size
        }
        return ranges
    }
}
