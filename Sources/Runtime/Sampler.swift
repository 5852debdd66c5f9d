// Sampler: greedy and stochastic next-token choice (temperature, top-k, top-p) with a seeded per-sequence
// generator, so a sequence's samples depend only on (seed, sequence id, step), never on batching or layout.
import Foundation

/// How the next token is chosen. `temperature == 0` means greedy (argmax, lowest id wins ties).
public struct SamplingParameters: Sendable, Codable, Equatable {
    public var temperature: Float
    /// Keep only the k most likely tokens (0 = no limit).
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability reaches p (1 = no limit).
    public var topP: Float
    public var seed: UInt64

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }

    public var isGreedy: Bool { temperature <= 0 }
}

/// xoshiro256** seeded through splitmix64: fast, reproducible on every platform.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var s = seed
        func splitmix() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = state.3 << 45 | state.3 >> 19
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }
}

public enum Sampler {
    /// Index of the largest value; the lowest index wins ties; NaNs never win.
    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for i in logits.indices where logits[i] > bestValue {
            best = i
            bestValue = logits[i]
        }
        return best
    }

    public static func argmax(_ logits: [Float]) -> Int { logits.withUnsafeBufferPointer { argmax($0) } }

    /// Choose the next token of sequence `sequence` at generation step `step`.
    ///
    /// Weights are exp((logit - max) / T) in Double, summed in ascending id order; top-k keeps the k largest
    /// logits (ties: lower id), top-p the shortest run of them in descending order (ties: lower id) whose weight
    /// reaches p of the total; the draw walks the kept tokens in that order (without top-p: in id order, which
    /// needs no sort). The same on every rank, batch and layout. A full vocabulary is sorted only when top-p
    /// needs most of it: the candidates are first cut to the tokens within a weight threshold that already holds
    /// the needed mass (`sampleReference` is the plain form, with a full sort; a test compares them).
    public static func sample(_ logits: [Float], parameters p: SamplingParameters, sequence: Int, step: Int) -> Int {
        if p.isGreedy { return argmax(logits) }
        var rng = generator(p, sequence: sequence, step: step)
        var maxLogit = -Float.infinity
        var count = 0
        for l in logits where !l.isNaN {
            count += 1
            if l > maxLogit { maxLogit = l }
        }
        guard count > 0 else { return 0 }
        let invT = 1 / Double(p.temperature), top = Double(maxLogit)
        // Candidates in ascending id order.
        var pool: [Int]
        if p.topK > 0 && p.topK < count {
            pool = topK(logits, p.topK).sorted()
        } else {
            pool = []
            pool.reserveCapacity(count)
            for i in logits.indices where !logits[i].isNaN { pool.append(i) }
        }
        var weights = pool.map { exp((Double(logits[$0]) - top) * invT) }
        var total = 0.0
        for w in weights { total += w }
        if p.topP < 1 {
            let target = Double(p.topP) * total
            // Tokens with weight >= t are a prefix of the descending order; shrink t until they hold the target.
            var t = 0.5
            var kept: [Int] = []
            while true {
                kept = pool.indices.filter { weights[$0] >= t || t == 0 }
                var mass = 0.0
                for k in kept { mass += weights[k] }
                if mass >= target || t == 0 { break }
                t = t > 1e-300 ? t / 16 : 0
            }
            kept.sort { logits[pool[$0]] != logits[pool[$1]] ? logits[pool[$0]] > logits[pool[$1]] : pool[$0] < pool[$1] }
            var cumulative = 0.0, end = kept.count
            for (n, k) in kept.enumerated() {
                cumulative += weights[k]
                if cumulative >= target { end = n + 1; break }
            }
            pool = kept[..<end].map { pool[$0] }
            weights = kept[..<end].map { weights[$0] }
            total = 0
            for w in weights { total += w }
        }
        let u = rng.nextUnit() * total
        var cumulative = 0.0
        for (n, w) in weights.enumerated() {
            cumulative += w
            if u < cumulative { return pool[n] }
        }
        return pool[pool.count - 1]
    }

    /// The plain form of `sample` (same semantics, one full sort, no threshold cut).
    public static func sampleReference(_ logits: [Float], parameters p: SamplingParameters, sequence: Int, step: Int) -> Int {
        if p.isGreedy { return argmax(logits) }
        var rng = generator(p, sequence: sequence, step: step)
        var order = logits.indices.filter { !logits[$0].isNaN }
        guard !order.isEmpty else { return 0 }
        order.sort { logits[$0] != logits[$1] ? logits[$0] > logits[$1] : $0 < $1 }
        if p.topK > 0 && p.topK < order.count { order.removeSubrange(p.topK...) }
        let top = Double(logits[order[0]]), invT = 1 / Double(p.temperature)
        var byID = order.sorted()
        var total = 0.0
        for i in byID { total += exp((Double(logits[i]) - top) * invT) }
        if p.topP < 1 {
            let target = Double(p.topP) * total
            var cumulative = 0.0, end = order.count
            for (n, i) in order.enumerated() {
                cumulative += exp((Double(logits[i]) - top) * invT)
                if cumulative >= target { end = n + 1; break }
            }
            byID = Array(order[..<end])
            total = 0
            for i in byID { total += exp((Double(logits[i]) - top) * invT) }
        }
        let u = rng.nextUnit() * total
        var cumulative = 0.0
        for i in byID {
            cumulative += exp((Double(logits[i]) - top) * invT)
            if u < cumulative { return i }
        }
        return byID[byID.count - 1]
    }

    /// One generator per (seed, sequence key, step): independent of batch composition and rank layout.
    static func generator(_ p: SamplingParameters, sequence: Int, step: Int) -> SeededGenerator {
        SeededGenerator(seed: p.seed ^ (UInt64(sequence) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(step) &* 0xD1B5_4A32_D192_ED03))
    }

    /// Ids of the k largest logits (ties: lower id), unordered; NaNs never count.
    static func topK(_ logits: [Float], _ k: Int) -> [Int] {
        // A min-heap of the best k by (logit, -id).
        var heap: [Int] = []
        heap.reserveCapacity(k)
        func worse(_ a: Int, _ b: Int) -> Bool { logits[a] != logits[b] ? logits[a] < logits[b] : a > b }
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && worse(heap[l], heap[m]) { m = l }
                if r < heap.count && worse(heap[r], heap[m]) { m = r }
                if m == i { return }
                heap.swapAt(i, m)
                i = m
            }
        }
        for i in logits.indices where !logits[i].isNaN {
            if heap.count < k {
                heap.append(i)
                var c = heap.count - 1
                while c > 0 && worse(heap[c], heap[(c - 1) / 2]) { heap.swapAt(c, (c - 1) / 2); c = (c - 1) / 2 }
            } else if worse(heap[0], i) {
                heap[0] = i
                siftDown(0)
            }
        }
        return heap
    }
}
