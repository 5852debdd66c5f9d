// Sampler: greedy ties, top-k / top-p support, reproducibility with a fixed seed.
import Foundation
import Runtime
import Testing

@Suite struct SamplerTests {
    @Test func greedyPicksLowestIdOnTies() {
        #expect(Sampler.argmax([0.5, 2, 2, -1]) == 1)
        #expect(Sampler.argmax([.nan, 1, 0]) == 1)
        #expect(Sampler.sample([3, 1, 3], parameters: .init(), sequence: 0, step: 0) == 0)
    }

    @Test func sameSeedSameTokensDifferentSeedDiffers() {
        let logits: [Float] = (0..<50).map { Float($0 % 7) * 0.3 }
        let p = SamplingParameters(temperature: 1.0, seed: 42)
        let a = (0..<40).map { Sampler.sample(logits, parameters: p, sequence: 3, step: $0) }
        let b = (0..<40).map { Sampler.sample(logits, parameters: p, sequence: 3, step: $0) }
        let c = (0..<40).map { Sampler.sample(logits, parameters: SamplingParameters(temperature: 1.0, seed: 43), sequence: 3, step: $0) }
        #expect(a == b)
        #expect(a != c)
    }

    @Test func topKAndTopPRestrictTheSupport() {
        let logits: [Float] = [5, 4, 3, 2, 1, 0]
        for step in 0..<200 {
            let k = Sampler.sample(logits, parameters: .init(temperature: 2, topK: 2, seed: 1), sequence: 0, step: step)
            #expect(k == 0 || k == 1)
            // Probabilities at T=1: 0.636, 0.234, 0.086, ...: top-p 0.8 keeps exactly the first two.
            let p = Sampler.sample(logits, parameters: .init(temperature: 1, topP: 0.8, seed: 1), sequence: 0, step: step)
            #expect(p == 0 || p == 1)
        }
    }

    @Test func samplingFollowsTheDistribution() {
        let logits: [Float] = [0, log(3)]  // probabilities 1/4, 3/4
        let draws = (0..<4000).map { Sampler.sample(logits, parameters: .init(temperature: 1, seed: 9), sequence: 1, step: $0) }
        let ones = Double(draws.filter { $0 == 1 }.count) / 4000
        #expect(abs(ones - 0.75) < 0.03)
    }

    @Test func fastSamplerEqualsItsPlainTwin() {
        var rng = SeededGenerator(seed: 7)
        for trial in 0..<300 {
            let n = 1 + Int(rng.next() % 3000)
            // Coarse logits make ties; a few NaNs; temperatures from cold to hot; every top-k / top-p mix.
            var logits = (0..<n).map { _ in Float(Int(rng.next() % 200)) / 10 - 10 }
            if trial % 7 == 0 { logits[Int(rng.next() % UInt64(n))] = .nan }
            let p = SamplingParameters(temperature: [0.2, 0.6, 1, 1.7][trial % 4], topK: [0, 1, 5, 50, 5000][trial % 5],
                                       topP: [1, 0.95, 0.5, 0.05][trial % 4 == 3 ? 0 : (trial / 4) % 4], seed: rng.next())
            for step in 0..<4 {
                #expect(Sampler.sample(logits, parameters: p, sequence: trial, step: step)
                        == Sampler.sampleReference(logits, parameters: p, sequence: trial, step: step), "trial \(trial) \(p)")
            }
        }
    }
}
