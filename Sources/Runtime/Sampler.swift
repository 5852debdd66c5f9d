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
    public static func sample(_ logits: [Float], parameters p: SamplingParameters, sequence: Int, step: Int) -> Int {
        if p.isGreedy { return argmax(logits) }
        // One generator per (seed, sequence, step): independent of batch composition and rank layout.
        var rng = SeededGenerator(seed: p.seed ^ (UInt64(sequence) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(step) &* 0xD1B5_4A32_D192_ED03))
        var order = logits.indices.filter { !logits[$0].isNaN }
        // Sort by logit descending, ties by lower id (deterministic).
        order.sort { logits[$0] != logits[$1] ? logits[$0] > logits[$1] : $0 < $1 }
        if p.topK > 0 && p.topK < order.count { order.removeSubrange(p.topK...) }
        let maxLogit = Double(logits[order[0]])
        var probabilities = order.map { exp((Double(logits[$0]) - maxLogit) / Double(p.temperature)) }
        let total = probabilities.reduce(0, +)
        for i in probabilities.indices { probabilities[i] /= total }
        if p.topP < 1 {
            var cumulative = 0.0
            var keep = probabilities.count
            for (i, q) in probabilities.enumerated() {
                cumulative += q
                if cumulative >= Double(p.topP) {
                    keep = i + 1
                    break
                }
            }
            order.removeSubrange(keep...)
            probabilities.removeSubrange(keep...)
            let kept = probabilities.reduce(0, +)
            for i in probabilities.indices { probabilities[i] /= kept }
        }
        let u = rng.nextUnit()
        var cumulative = 0.0
        for (i, q) in probabilities.enumerated() {
            cumulative += q
            if u < cumulative { return order[i] }
        }
        return order[order.count - 1]
    }
}
