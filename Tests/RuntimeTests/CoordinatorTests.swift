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
        var counting = d
        counting.countExperts = true
        #expect(StepDescriptor.decode(counting.encode()) == counting && StepDescriptor.decode(counting.encode()).countExperts)
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

/// The coordinator as a long-lived serving scheduler: submissions while it runs, cancellation at every stage of
/// a request's life (waiting, running, in the pipeline), idle ticks instead of stop, per-request sampling.
@Suite struct ServingCoordinatorTests {
    /// One pipeline stage: each descriptor's tokens come back before the next tick.
    func tickOnce(_ c: Coordinator, token: (StepEntry) -> Int = { ($0.sequence * 7 + $0.step) % 50 }) -> StepDescriptor {
        let d = c.nextStep()
        for e in d.entries { c.complete(e, token: token(e)) }
        return d
    }

    @Test func idleTicksUntilClosedAndRequestsJoinWhileRunning() {
        let c = Coordinator(lanes: 2, microBatches: 1, maxSequencesPerLane: 2, eosTokens: [], keepLogits: false, keepAlive: true)
        var events: [(Int, CoordinatorEvent)] = []
        c.onEvent = { events.append(($0, $1)) }
        let idle = c.nextStep()
        #expect(!idle.stop && idle.entries.isEmpty, "no work: an idle tick, not stop")
        let a = c.submit(GenerationRequest(prompt: [1, 2], maxNewTokens: 3))
        _ = tickOnce(c)
        let b = c.submit(GenerationRequest(prompt: [3], maxNewTokens: 2))
        let joined = tickOnce(c)
        #expect(joined.entries.map(\.sequence).sorted() == [a, b], "a new request joins the running batch at the next tick")
        while !c.isFinished { _ = tickOnce(c) }
        #expect(events.filter { if case .token = $0.1 { return $0.0 == a } else { return false } }.count == 3)
        #expect(events.contains { id, e in
            if id == b, case .finished(let r) = e { return r.prompt == [3] && r.tokens == [7, 8] && r.finishReason == "length" }
            return false
        })
        #expect(!c.nextStep().stop)
        c.close()
        #expect(c.nextStep().stop)
    }

    @Test func cancelWaitingRunningAndInFlight() {
        let c = Coordinator(lanes: 1, microBatches: 1, maxSequencesPerLane: 1, eosTokens: [], keepLogits: false, keepAlive: true)
        var finished: [Int: String] = [:]
        c.onEvent = { id, e in if case .finished(let r) = e { finished[id] = r.finishReason } }
        let running = c.submit(GenerationRequest(prompt: [1], maxNewTokens: 50))
        let queued = c.submit(GenerationRequest(prompt: [2], maxNewTokens: 50))
        _ = tickOnce(c)
        c.cancel(queued)
        #expect(finished[queued] == "cancelled" && c.waitingCount == 0)
        // In flight: the descriptor is out, its token not back yet. The cache may not be freed before it returns.
        let out = c.nextStep()
        #expect(out.entries.map(\.sequence) == [running])
        c.cancel(running)
        #expect(finished[running] == nil)
        #expect(!c.nextStep().released.contains(running), "not released while its micro-batch is in the pipeline")
        c.complete(out.entries[0], token: 5)
        #expect(finished[running] == "cancelled")
        #expect(c.nextStep().released == [running], "released at the next tick, on every rank")
        // Running and not in flight: released at the next tick.
        let other = c.submit(GenerationRequest(prompt: [4], maxNewTokens: 50))
        _ = tickOnce(c)
        c.cancel(other)
        #expect(finished[other] == "cancelled")
        #expect(c.nextStep().released == [other])
        c.cancel(12345)   // unknown ids are ignored
    }

    @Test func eachRequestCarriesItsOwnSamplingAndStreamKey() {
        let c = Coordinator(lanes: 1, microBatches: 1, maxSequencesPerLane: 4, eosTokens: [9], keepLogits: false,
                            defaultSampling: SamplingParameters(temperature: 0.5, seed: 1))
        let hot = SamplingParameters(temperature: 0.9, topK: 5, topP: 0.8, seed: 77)
        c.submit(GenerationRequest(prompt: [1], maxNewTokens: 2, sampling: hot, samplingKey: 0, stopTokens: [3]))
        c.submit(GenerationRequest(prompt: [2], maxNewTokens: 2))
        let d = c.nextStep()
        #expect(d.entries[0].sampling == hot && d.entries[0].samplingKey == 0)
        #expect(d.entries[1].sampling == SamplingParameters(temperature: 0.5, seed: 1) && d.entries[1].samplingKey == 1)
        #expect(StepDescriptor.decode(d.encode()) == d, "sampling parameters survive the broadcast bit for bit")
        c.complete(d.entries[0], token: 3)
        c.complete(d.entries[1], token: 9)
        #expect(c.results.map(\.finishReason) == ["eos", "eos"], "per-request stop tokens replace the default eos set")
    }
}

@Suite struct ChunkedPrefillTests {
    @Test func longPromptsArriveInChunksBesideRunningDecodes() {
        let c = Coordinator(lanes: 1, microBatches: 1, maxSequencesPerLane: 4, eosTokens: [], keepLogits: false, prefillChunk: 8)
        let short = c.submit(GenerationRequest(prompt: [1, 2, 3], maxNewTokens: 30))
        let long = c.submit(GenerationRequest(prompt: Array(0..<21), maxNewTokens: 2))
        var chunks: [[Int]] = []
        var decodesWhilePrefilling = 0
        while !c.isFinished {
            let d = c.nextStep()
            #expect(d.entries.filter { $0.tokens.count > 1 }.reduce(0) { $0 + $1.tokens.count } <= 8 + 1, "budget per tick")
            for e in d.entries {
                if e.sequence == long && e.step == 0 && e.tokens.count > 1 || e.sequence == long && !e.sample { chunks.append([e.start, e.tokens.count]) }
                if e.sequence == short && e.tokens.count == 1 && c.results[long].tokens.isEmpty { decodesWhilePrefilling += 1 }
                if e.sample { c.complete(e, token: 7) } else { c.advance(e) }
            }
        }
        // 21 tokens under a budget of 8 shared with the short prompt's 3: 5, then 8, then the last 8 (never a 1-token chunk).
        #expect(chunks.map { $0[0] } == [0, 5, 13], "\(chunks)")
        #expect(chunks.allSatisfy { $0[1] >= 2 })
        #expect(decodesWhilePrefilling >= 2, "the short request keeps decoding while the long one prefills")
        #expect(c.results[short].tokens.count == 30 && c.results[long].tokens.count == 2)
    }

    /// Serving's paced budget applies only to ticks that also decode; a tick of prompts alone takes the full chunk.
    /// `lastStep` reports what each descriptor carried, and the admission event comes before the first token.
    @Test func pacedBudgetAppliesBesideDecodesOnly() {
        let c = Coordinator(lanes: 1, microBatches: 1, maxSequencesPerLane: 4, eosTokens: [], keepLogits: false, prefillChunk: 64)
        var admitted: [Int] = []
        c.onEvent = { id, e in if case .admitted = e { admitted.append(id) } }
        c.prefillBudget = 4
        let first = c.submit(GenerationRequest(prompt: Array(0..<40), maxNewTokens: 20))
        let alone = c.nextStep()
        #expect(alone.entries.map(\.tokens.count) == [40], "nothing decodes yet: the whole chunk budget")
        #expect(c.lastStep.promptTokens == 40 && c.lastStep.decodeRows == 0)
        #expect(admitted == [first])
        for e in alone.entries { c.complete(e, token: 7) }
        let second = c.submit(GenerationRequest(prompt: Array(0..<40), maxNewTokens: 2))
        let beside = c.nextStep()
        #expect(beside.entries.map(\.tokens.count) == [1, 4], "a decode runs: the paced budget of 4 prompt tokens")
        #expect(c.lastStep.promptTokens == 4 && c.lastStep.decodeRows == 1)
        #expect(admitted == [first, second])
        #expect(c.prefillBacklog == 40, "a chunk counts as prefilled once it comes back")
        for e in beside.entries { if e.sample { c.complete(e, token: 7) } else { c.advance(e) } }
        #expect(c.prefillBacklog == 36)
    }

    @Test func chunkEntriesCrossTheBroadcastAndCancelWaitsForTheChunk() {
        let c = Coordinator(lanes: 1, microBatches: 1, maxSequencesPerLane: 2, eosTokens: [], keepLogits: false,
                            keepAlive: true, prefillChunk: 4)
        var finished: [Int: String] = [:]
        c.onEvent = { id, e in if case .finished(let r) = e { finished[id] = r.finishReason } }
        let id = c.submit(GenerationRequest(prompt: Array(0..<10), maxNewTokens: 3))
        let first = c.nextStep()
        #expect(first.entries.count == 1 && !first.entries[0].sample && first.entries[0].tokens.count == 4)
        #expect(StepDescriptor.decode(first.encode()) == first)
        c.cancel(id)
        #expect(finished[id] == nil, "its chunk is still in the pipeline")
        c.advance(first.entries[0])
        #expect(finished[id] == "cancelled")
        #expect(c.nextStep().released == [id])
    }
}

@Suite struct KVBudgetTests {
    @Test func admissionWaitsForKVBudgetAndFinishedRequestsReturnIt() {
        // One lane of 20 tokens: a request reserves prompt + max new tokens.
        let c = Coordinator(lanes: 1, microBatches: 1, maxSequencesPerLane: 8, eosTokens: [], keepLogits: false, kvTokensPerLane: [20])
        let a = c.submit(GenerationRequest(prompt: [1, 2, 3, 4], maxNewTokens: 8))   // 12
        let b = c.submit(GenerationRequest(prompt: [5, 6], maxNewTokens: 8))          // 10: does not fit beside a
        let first = c.nextStep()
        #expect(first.entries.map(\.sequence) == [a])
        #expect(c.kvTokensReserved == [12] && c.waitingCount == 1)
        var step = first
        while !c.isFinished {
            for e in step.entries { c.complete(e, token: 9) }
            if c.results[a].finishReason == "length" && c.kvTokensReserved == [0] { break }
            step = c.nextStep()
        }
        let next = c.nextStep()
        #expect(next.entries.map(\.sequence) == [b], "admitted once a's reservation is returned")
        #expect(c.kvTokensReserved == [10])
        #expect(c.admissible(need: 20) && !c.admissible(need: 21))
    }
}

@Suite struct PrefixCacheTests {
    @Test func aPromptStartingLikeAFinishedOneForksItsPromptRows() {
        let c = Coordinator(lanes: 2, microBatches: 1, maxSequencesPerLane: 4, eosTokens: [], keepLogits: false,
                            keepAlive: true, retainedPerLane: 1)
        let shared = Array(100..<130)
        let a = c.submit(GenerationRequest(prompt: shared + [1, 2], maxNewTokens: 2))
        var d = c.nextStep()
        while !c.isFinished {
            for e in d.entries { c.complete(e, token: 7) }
            d = c.nextStep()
            #expect(!d.released.contains(a), "a finished sequence with a full prompt is retained, not released")
        }
        // Shares 30 tokens with a's prompt (and a's generated tokens would not count): copies 30 rows.
        let b = c.submit(GenerationRequest(prompt: shared + [9, 9, 9], maxNewTokens: 1))
        let first = c.nextStep()
        let entry = try! #require(first.entries.first)
        #expect(entry.sequence == b && entry.forkFrom == a && entry.start == 30 && entry.tokens == [9, 9, 9])
        #expect(StepDescriptor.decode(first.encode()) == first)
        #expect(c.prefixHitTokens == 30 && c.prefixQueryTokens == 32 + 33)
        // A third finished prompt on that lane evicts the least recently used one (one retained per lane),
        // but never while a fork of it is in the pipeline.
        let other = c.submit(GenerationRequest(prompt: Array(500..<520), maxNewTokens: 1))
        let next = c.nextStep()
        #expect(!next.released.contains(a), "a is pinned by b's fork in flight")
        c.complete(entry, token: 3)
        for e in next.entries { c.complete(e, token: 3) }
        var freed: [Int] = []
        for _ in 0..<3 { freed += c.nextStep().released }
        #expect(Set(freed).isSubset(of: [a, b, other]))
        // A prompt that would leave a single token to prefill copies one row less (no 1-token prefill chunk).
        let c2 = Coordinator(lanes: 1, microBatches: 1, maxSequencesPerLane: 2, eosTokens: [], keepLogits: false,
                             keepAlive: true, retainedPerLane: 2)
        c2.submit(GenerationRequest(prompt: shared, maxNewTokens: 1))
        let s1 = c2.nextStep()
        for e in s1.entries { c2.complete(e, token: 1) }
        c2.submit(GenerationRequest(prompt: shared + [5], maxNewTokens: 1))
        let s2 = c2.nextStep()
        #expect(s2.entries.first?.start == 29 && s2.entries.first?.tokens.count == 2)
    }
}

@Suite struct PrefillPacerTests {
    /// Decode ticks of 10 ms and 1 ms per prompt token: at ratio 2 a chunk tick may add 10 ms, i.e. 10 tokens.
    @Test func budgetFollowsMeasuredTickTimes() {
        var p = PrefillPacer(ratio: 2, minimum: 2, maximum: 256)
        #expect(p.budget(backlog: 0) == PrefillPacer.initial, "nothing measured yet")
        for _ in 0..<50 {
            p.observe(seconds: 0.010, promptTokens: 0, decodeRows: 3)
            p.observe(seconds: 0.010 + 0.001 * 16, promptTokens: 16, decodeRows: 3)
        }
        #expect(p.budget(backlog: 0) == 10, "\(p)")
        // Cheap prompt tokens (a bandwidth-bound model): the budget is capped at the maximum.
        for _ in 0..<50 { p.observe(seconds: 0.010 + 0.00001 * 16, promptTokens: 16, decodeRows: 3) }
        #expect(p.budget(backlog: 0) == 256)
    }

    /// A pile of waiting prompt tokens raises the budget so prompts cannot queue without bound; never below 2.
    @Test func backlogRaisesTheBudgetAndTheMinimumHolds() {
        var p = PrefillPacer(ratio: 2, minimum: 2, maximum: 256)
        for _ in 0..<50 {
            p.observe(seconds: 0.001, promptTokens: 0, decodeRows: 1)
            p.observe(seconds: 0.101, promptTokens: 10, decodeRows: 1)
        }
        #expect(p.budget(backlog: 0) == 2, "10 ms per token against 1 ms decode ticks: the minimum")
        #expect(p.budget(backlog: 100 * PrefillPacer.backlogTicks) == 100)
        #expect(p.budget(backlog: 10_000 * PrefillPacer.backlogTicks) == 256)
        // Idle ticks and 1-token entries teach it nothing.
        let before = p
        p.observe(seconds: 0.5, promptTokens: 0, decodeRows: 0)
        p.observe(seconds: 0.5, promptTokens: 1, decodeRows: 1)
        #expect(p == before)
    }
}
