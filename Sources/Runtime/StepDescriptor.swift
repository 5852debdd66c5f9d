// StepDescriptor: what the coordinator broadcasts each pipeline tick — which sequences advance in the
// micro-batch entering stage 0, at which positions, with which tokens and sampling parameters, plus caches to
// free and the stop flag; an idle tick (a served model waiting for requests) carries nothing. Encoded as a flat
// [Int32] behind a version word so one broadcast carries it.

/// One sequence's share of a micro-batch.
public struct StepEntry: Sendable, Equatable {
    /// Coordinator-wide sequence id (index of the request).
    public var sequence: Int
    /// Lane (expert-parallel index) whose ranks hold this sequence's KV cache in every stage.
    public var lane: Int
    /// Position of the first token (= tokens already in the cache).
    public var start: Int
    /// Token ids to feed (the whole prompt for prefill, one token for decode).
    public var tokens: [Int]
    /// Return the logits of every fed position (prefill with --dump-logits), not only the last.
    public var allLogits: Bool
    /// Generation step of the token sampled from this entry (0 = first new token); seeds the sampler.
    public var step: Int
    /// This sequence's sampling parameters (each request has its own).
    public var sampling: SamplingParameters
    /// Stream of the sampler's generator together with (seed, step): the request index offline, 0 for a
    /// served request, so a seeded request samples the same tokens whatever else runs beside it.
    public var samplingKey: Int
    /// Whether the last stage samples a token for this entry (false for a prompt chunk before the last).
    public var sample: Bool
    /// Prefix caching: the first `start` cached tokens of this new sequence are a copy of sequence `forkFrom`'s
    /// (a retained cache on every rank of the lane); -1 = none.
    public var forkFrom: Int

    public init(sequence: Int, lane: Int, start: Int, tokens: [Int], allLogits: Bool, step: Int,
                sampling: SamplingParameters = SamplingParameters(), samplingKey: Int? = nil, sample: Bool = true,
                forkFrom: Int = -1) {
        self.sequence = sequence
        self.lane = lane
        self.start = start
        self.tokens = tokens
        self.allLogits = allLogits
        self.step = step
        self.sampling = sampling
        self.samplingKey = samplingKey ?? sequence
        self.sample = sample
        self.forkFrom = forkFrom
    }

    /// Rows of logits the last stage returns for this entry.
    public var logitRows: Int { sample ? (allLogits ? tokens.count : 1) : 0 }
}

public struct StepDescriptor: Sendable, Equatable {
    public var tick: Int
    public var microBatch: Int
    public var entries: [StepEntry]
    /// Sequences whose caches every rank frees before this tick's work.
    public var released: [Int]
    public var stop: Bool
    /// Every rank adds its routed-expert counts into rank 0's totals right after this broadcast (serving's
    /// expert-load metrics; a collective all ranks take at the same tick).
    public var countExperts: Bool
    /// Layout of the encoded words; a rank that reads another version fails instead of misreading them.
    public static let version: Int32 = 3

    public init(tick: Int, microBatch: Int, entries: [StepEntry], released: [Int] = [], stop: Bool = false,
                countExperts: Bool = false) {
        self.tick = tick
        self.microBatch = microBatch
        self.entries = entries
        self.released = released
        self.stop = stop
        self.countExperts = countExperts
    }

    /// Entries of one lane, in descriptor order (the row order of that lane's hidden states).
    public func entries(lane: Int) -> [StepEntry] { entries.filter { $0.lane == lane } }
    /// Tokens of one lane in this micro-batch.
    public func tokenCount(lane: Int) -> Int { entries.reduce(0) { $0 + ($1.lane == lane ? $1.tokens.count : 0) } }
    public var tokenCount: Int { entries.reduce(0) { $0 + $1.tokens.count } }

    public func encode() -> [Int32] {
        var out: [Int32] = [Self.version, Int32(tick), Int32(microBatch), (stop ? 1 : 0) | (countExperts ? 2 : 0), Int32(released.count)]
        out += released.map { Int32($0) }
        out.append(Int32(entries.count))
        for e in entries {
            let p = e.sampling
            out += [Int32(e.sequence), Int32(e.lane), Int32(e.start), (e.allLogits ? 1 : 0) | (e.sample ? 0 : 2), Int32(e.step),
                    Int32(bitPattern: p.temperature.bitPattern), Int32(p.topK), Int32(bitPattern: p.topP.bitPattern),
                    Int32(truncatingIfNeeded: p.seed), Int32(truncatingIfNeeded: p.seed >> 32), Int32(e.samplingKey),
                    Int32(e.forkFrom), Int32(e.tokens.count)]
            out += e.tokens.map { Int32($0) }
        }
        return out
    }

    public static func decode(_ words: [Int32]) -> StepDescriptor {
        precondition(words.first == version, "step descriptor version \(words.first.map(String.init) ?? "none"), expected \(version): every rank must run the same moerun build")
        var i = 1
        func next() -> Int {
            defer { i += 1 }
            return Int(words[i])
        }
        func word() -> UInt32 { UInt32(bitPattern: Int32(next())) }
        let tick = next(), microBatch = next(), flags = next()
        let released = (0..<next()).map { _ in next() }
        let count = next()
        var entries: [StepEntry] = []
        for _ in 0..<count {
            let sequence = next(), lane = next(), start = next(), flags = next(), step = next()
            let temperature = Float(bitPattern: word()), topK = next(), topP = Float(bitPattern: word())
            let seed = UInt64(word()) | UInt64(word()) << 32
            let key = next(), fork = next(), n = next()
            entries.append(StepEntry(sequence: sequence, lane: lane, start: start, tokens: (0..<n).map { _ in next() },
                                     allLogits: flags & 1 != 0, step: step,
                                     sampling: SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: seed),
                                     samplingKey: key, sample: flags & 2 == 0, forkFrom: fork))
        }
        return StepDescriptor(tick: tick, microBatch: microBatch, entries: entries, released: released, stop: flags & 1 != 0,
                              countExperts: flags & 2 != 0)
    }
}
