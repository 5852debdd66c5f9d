// Partition math (pure functions): contiguous layer ranges over pipeline stages balanced by cost, and
// routed experts over the ranks of an expert-parallel group. Every layer / expert is owned exactly once.

public enum Partition {
    /// Split `costs.count` layers into `parts` contiguous non-empty ranges minimising the largest range cost
    /// (`fixed[p]` is added to part p: embedding on the first stage, norm + head on the last).
    /// Exact DP, O(parts x layers^2); ties prefer earlier cuts so results are deterministic.
    public static func contiguous(costs: [Double], parts: Int, fixed: [Double] = []) -> [Range<Int>] {
        let n = costs.count
        precondition(parts >= 1 && parts <= n, "need 1 ... \(n) parts, got \(parts)")
        let extra = (0..<parts).map { $0 < fixed.count ? fixed[$0] : 0 }
        var prefix = [Double](repeating: 0, count: n + 1)
        for i in 0..<n { prefix[i + 1] = prefix[i] + costs[i] }
        // best[p][i]: minimal max cost of splitting the first i layers into p+1 parts; cut[p][i]: start of the last part.
        var best = [[Double]](repeating: [Double](repeating: .infinity, count: n + 1), count: parts)
        var cut = [[Int]](repeating: [Int](repeating: 0, count: n + 1), count: parts)
        for i in 1...n { best[0][i] = prefix[i] + extra[0] }
        if parts > 1 {
            for p in 1..<parts {
                for i in (p + 1)...n {
                    for j in p..<i {
                        let candidate = max(best[p - 1][j], prefix[i] - prefix[j] + extra[p])
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
        let base = count / parts, remainder = count % parts
        var ranges: [Range<Int>] = []
        var start = 0
        for p in 0..<parts {
            let size = base + (p < remainder ? 1 : 0)
            ranges.append(start..<(start + size))
            start += size
        }
        return ranges
    }
}
