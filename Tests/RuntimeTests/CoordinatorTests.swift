// Coordinator scheduling: descriptors round-trip, every request completes with the right count, lanes never
// exceed capacity, freed slots admit waiting prompts, and M = P micro-batches keep a P-stage pipeline busy.
import Runtime
import Testing

@Suite struct CoordinatorTests {
    @Test func descriptorRoundTrips() {
        let d = StepDescriptor(tick: 5, microBatch: 1,
                               entries: [StepEntry(sequence: 3, lane: 1, start: 7, tokens: [4, 5, 6], allLogits: true, step: 0),
                                         StepEntry(sequence: 9, lane: 0, start: 2, tokens: [1], allLogits: false, step: 4)],
                               released: [2, 8], stop: false)
        #expect(StepDescriptor.decode(d.encode()) == d)
        #expect(d.tokenCount(lane: 1) == 3)
        #expect(d.entries(lane: 0).map(\.sequence) == [9])
    }

    /// Drive the coordinator through a fake P-stage pipeline: a descriptor issued at tick t returns at t + P - 1.
    func simulate(requests: [GenerationRequest], lanes: Int, stages: Int, microBatches: Int, capacity: Int,
                  eos: Set<Int> = []) -> (Coordinator, ticks: Int, cost: Int, maxLoad: Int) {
        let c = Coordinator(requests: requests, lanes: lanes, microBatches: microBatches, maxSequencesPerLane: capacity,
                            eosTokens: eos, keepLogits: false)
        var inFlight: [(due: Int, d: StepDescriptor)] = []
        var tick = 0, maxLoad = 0
        var issued: [StepDescriptor] = []
        while true {
            let d = c.nextStep()
            if d.stop { break }
            issued.append(d)
            inFlight.append((tick + stages - 1, d))
            maxLoad = max(maxLoad, c.activeCount)
            for (i, f) in inFlight.enumerated().reversed() where f.due == tick {
                for e in f.d.entries { c.complete(e, token: (e.sequence * 7 + e.step) % 50) }
                inFlight.remove(at: i)
            }
            tick += 1
            precondition(tick < 10_000, "scheduler did not terminate")
        }
        // A tick lasts as long as its busiest stage; stage s works on the descriptor issued s ticks earlier.
        var cost = 0
        for t in 0..<(tick + stages) {
            cost += (0..<stages).map { s in t - s >= 0 && t - s < issued.count ? issued[t - s].tokenCount : 0 }.max()!
        }
        return (c, tick, cost, maxLoad)
    }

    @Test func everyRequestCompletesWithinCapacity() {
        let requests = (0..<11).map { GenerationRequest(prompt: Array(0..<($0 % 4 + 1)), maxNewTokens: $0 % 5 + 1) }
        let (c, _, _, maxLoad) = simulate(requests: requests, lanes: 2, stages: 3, microBatches: 3, capacity: 2)
        #expect(c.isFinished)
        #expect(maxLoad <= 4)
        for (i, r) in c.results.enumerated() {
            #expect(r.tokens.count == requests[i].maxNewTokens)
            #expect(r.tokens == (0..<requests[i].maxNewTokens).map { (i * 7 + $0) % 50 })
            #expect(r.finishReason == "length")
        }
    }

    @Test func eosStopsASequenceEarly() {
        // Sequence 1 samples (7 + step) % 50: token 9 at step 2 is eos.
        let requests = [GenerationRequest(prompt: [1], maxNewTokens: 6), GenerationRequest(prompt: [2], maxNewTokens: 6)]
        let (c, _, _, _) = simulate(requests: requests, lanes: 1, stages: 1, microBatches: 1, capacity: 4, eos: [9])
        #expect(c.results[1].tokens == [7, 8, 9])
        #expect(c.results[1].finishReason == "eos")
        #expect(c.results[0].tokens.count == 6)
    }

    @Test func enoughMicroBatchesKeepThePipelineFull() {
        let requests = (0..<8).map { _ in GenerationRequest(prompt: [1, 2], maxNewTokens: 10) }
        let one = simulate(requests: requests, lanes: 1, stages: 4, microBatches: 1, capacity: 8)
        let four = simulate(requests: requests, lanes: 1, stages: 4, microBatches: 4, capacity: 8)
        // One micro-batch leaves 3 of 4 stages idle every tick; four keep all stages working on a quarter each.
        #expect(Double(one.cost) / Double(four.cost) > 3, "cost one \(one.cost), four \(four.cost)")
    }
}
