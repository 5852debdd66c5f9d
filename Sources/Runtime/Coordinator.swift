// Coordinator (rank 0's scheduler, pure logic): assigns prompts to lanes and micro-batch groups, issues one
// StepDescriptor per pipeline tick, takes sampled tokens back, stops sequences on eos / max tokens and
// admits waiting prompts into freed slots (continuous batching). Offline it is given a fixed list; serving,
// requests are submitted and cancelled while it runs, and it idles instead of stopping when there is no work.

/// One prompt to complete.
public struct GenerationRequest: Sendable, Equatable {
    public var prompt: [Int]
    public var maxNewTokens: Int
    /// Sampling of this request (nil: the coordinator's default).
    public var sampling: SamplingParameters?
    /// The sampler's stream key (nil: the request id, as offline runs have always used).
    public var samplingKey: Int?
    /// Token ids that end this request (nil: the coordinator's eos set).
    public var stopTokens: Set<Int>?

    public init(prompt: [Int], maxNewTokens: Int, sampling: SamplingParameters? = nil, samplingKey: Int? = nil,
                stopTokens: Set<Int>? = nil) {
        self.prompt = prompt
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.samplingKey = samplingKey
        self.stopTokens = stopTokens
    }
}

/// The outcome of one request.
public struct GenerationResult: Sendable, Equatable {
    public var prompt: [Int]
    public var tokens: [Int] = []
    /// Logits of every prompt position (only when requested).
    public var promptLogits: [[Float]] = []
    /// Logits that produced each generated token (only when requested).
    public var stepLogits: [[Float]] = []
    /// "eos", "length", "stop" (the token observer asked) or "cancelled".
    public var finishReason: String = ""
}

/// What happened to a request, reported as it happens (serving streams these).
public enum CoordinatorEvent: Sendable, Equatable {
    /// The request left the waiting queue for a lane slot (its prefill starts this tick).
    case admitted
    case token(Int)
    /// The last event of a request; `result` holds its tokens and reason.
    case finished(GenerationResult)
}

public final class Coordinator {
    public let lanes: Int
    public let microBatches: Int
    public let maxSequencesPerLane: Int
    public let eosTokens: Set<Int>
    public let keepLogits: Bool
    public let defaultSampling: SamplingParameters
    /// Serving: idle ticks instead of stop when there is no work, until `close()`.
    public let keepAlive: Bool
    /// Prompt tokens per tick (all prompts of the tick together; running decodes always go first), so a long
    /// prompt is prefilled over several ticks instead of freezing every stream; nil = whole prompts. Chunks hold
    /// at least 2 tokens (a 1-token segment would take the decode attention form), so one may exceed it by 1.
    /// Ignored with keepLogits (the prompt's logits come from one segment).
    public let prefillChunk: Int?
    /// Serving: prompt tokens per tick while some sequence of the tick decodes (`PrefillPacer`'s choice, at most
    /// `prefillChunk`); ticks without a decode take `prefillChunk`. nil = `prefillChunk` always.
    public var prefillBudget: Int?
    /// What the last descriptor carried: prompt tokens and decoding sequences (the pacer's measurements).
    public private(set) var lastStep: (promptTokens: Int, decodeRows: Int) = (0, 0)
    /// Prompt tokens not yet prefilled, of waiting and running requests.
    public var prefillBacklog: Int {
        waiting.reduce(0) { $0 + requests[$1]!.prompt.count }
            + active.reduce(0) { $0 + max(requests[$1.key]!.prompt.count - $1.value.prefilled, 0) }
    }
    /// Per lane: KV-cache tokens its ranks can hold for all its sequences together; an admitted request reserves
    /// prompt + max new tokens, so a lane never runs out mid-generation. nil = only `maxSequencesPerLane` limits.
    public let kvTokensPerLane: [Int]?
    /// Prefix caching: finished sequences' caches stay on their lane's ranks (at most this many per lane, least
    /// recently used evicted first), and a new prompt that starts with one's prompt tokens copies those rows
    /// instead of prefilling them. Only prompt rows are shared: they were computed by prefill, exactly as the
    /// new prompt's own prefill would compute them, so the output does not change by a bit. 0 = off.
    public let retainedPerLane: Int
    /// Shortest shared prefix worth a copy.
    public static let minimumPrefix = 16
    /// Prompt tokens that were copied from retained caches / prompt tokens admitted (prefix-cache hit rate).
    public private(set) var prefixHitTokens = 0
    public private(set) var prefixQueryTokens = 0
    /// Serving: the next descriptor asks every rank for its expert counts (set by the caller, cleared once sent).
    public var countExpertsNext = false
    /// Called for every admission, token and finish, in order.
    public var onEvent: ((Int, CoordinatorEvent) -> Void)?

    private var requests: [Int: GenerationRequest] = [:]
    /// Results of finished and running requests; serving drops a result once its finish was reported.
    private var outcome: [Int: GenerationResult] = [:]
    private var nextID = 0
    private var waiting: [Int] = []
    private struct Active {
        var lane: Int
        var group: Int
        var inFlight: Bool
        var position: Int
        var lastToken: Int
        /// Prompt tokens sent so far (== prompt length once prefill is complete).
        var prefilled: Int
        /// KV-cache tokens held for this sequence in its lane (prompt + max new tokens).
        var reserved: Int
        /// Cancelled while its micro-batch is in the pipeline: finished when that entry comes back, so no stage
        /// frees a cache it still works on.
        var cancelled = false
    }
    private var active: [Int: Active] = [:]
    private var released: [Int] = []
    /// A finished sequence whose cache every rank of its lane keeps for prefix reuse.
    private struct Retained {
        var lane: Int
        var prompt: [Int]
        /// Rows its cache holds (prompt + generated), counted against the lane's KV budget.
        var rows: Int
        var lastUse: Int
        /// Forks of it still in the pipeline: it may not be released before they come back.
        var pins = 0
    }
    private var retained: [Int: Retained] = [:]
    private var tick = 0
    private var closed = false

    public init(requests: [GenerationRequest] = [], lanes: Int, microBatches: Int, maxSequencesPerLane: Int,
                eosTokens: Set<Int>, keepLogits: Bool, defaultSampling: SamplingParameters = SamplingParameters(),
                keepAlive: Bool = false, prefillChunk: Int? = nil, kvTokensPerLane: [Int]? = nil, retainedPerLane: Int = 0) {
        precondition(lanes >= 1 && microBatches >= 1 && maxSequencesPerLane >= 1 && (prefillChunk ?? 2) >= 2)
        self.prefillChunk = keepLogits ? nil : prefillChunk
        precondition(kvTokensPerLane.map { $0.count == lanes } ?? true)
        self.kvTokensPerLane = kvTokensPerLane
        self.retainedPerLane = retainedPerLane
        self.lanes = lanes
        self.microBatches = microBatches
        self.maxSequencesPerLane = maxSequencesPerLane
        self.eosTokens = eosTokens
        self.keepLogits = keepLogits
        self.defaultSampling = defaultSampling
        self.keepAlive = keepAlive
        for r in requests { submit(r) }
    }

    /// Queues a request; returns its id (ids count up from 0 in submission order).
    @discardableResult
    public func submit(_ request: GenerationRequest) -> Int {
        let id = nextID
        nextID += 1
        requests[id] = request
        outcome[id] = GenerationResult(prompt: request.prompt)
        waiting.append(id)
        return id
    }

    /// Ends a request: a waiting one at once, a running one at its next tick (or, when its micro-batch is in the
    /// pipeline, when that comes back). Unknown and finished ids are ignored.
    public func cancel(_ id: Int) {
        if let w = waiting.firstIndex(of: id) {
            waiting.remove(at: w)
            finish(id, reason: "cancelled")
        } else if var s = active[id] {
            if s.inFlight {
                s.cancelled = true
                active[id] = s
            } else {
                retire(id, s)
                finish(id, reason: "cancelled")
            }
        }
    }

    /// Serving: no new work will come; `nextStep` stops once the running requests are done.
    public func close() { closed = true }

    /// Results in id order (offline: the order of the requests given).
    public var results: [GenerationResult] { outcome.keys.sorted().map { outcome[$0]! } }

    /// Requests queued and not yet admitted.
    public var waitingCount: Int { waiting.count }

    /// No waiting prompt and no active sequence: every result is final.
    public var isFinished: Bool { waiting.isEmpty && active.isEmpty }

    /// Sequences currently holding a lane slot.
    public var activeCount: Int { active.count }

    /// The descriptor for the next tick. Micro-batch group `tick % microBatches` advances: its ready sequences
    /// decode one token; free slots admit waiting prompts into this group (prefill).
    public func nextStep() -> StepDescriptor {
        var step = plannedStep()
        if countExpertsNext && !step.stop { step.countExperts = true }
        countExpertsNext = false
        return step
    }

    private func plannedStep() -> StepDescriptor {
        defer { tick += 1 }
        if isFinished {
            defer { released = [] }
            // Serving and still open: an idle tick keeps every rank in step (and its watchdog satisfied).
            lastStep = (0, 0)
            return StepDescriptor(tick: tick, microBatch: -1, entries: [], released: released, stop: !keepAlive || closed)
        }
        let group = tick % microBatches
        var entries: [StepEntry] = []
        let decoding = active.contains { id, s in s.group == group && !s.inFlight && s.prefilled >= requests[id]!.prompt.count }
        var budget = prefillChunk ?? Int.max
        if decoding, let paced = prefillBudget { budget = min(budget, paced) }
        for id in active.keys.sorted() {
            guard var s = active[id], s.group == group, !s.inFlight else { continue }
            let request = requests[id]!
            if s.prefilled < request.prompt.count {
                // A prompt part-way through its prefill takes its next chunk, as the budget allows.
                guard let entry = chunk(id, request, from: s.prefilled, lane: s.lane, budget: &budget) else { continue }
                entries.append(entry)
            } else {
                entries.append(StepEntry(sequence: id, lane: s.lane, start: s.position, tokens: [s.lastToken],
                                         allLogits: false, step: outcome[id]!.tokens.count,
                                         sampling: request.sampling ?? defaultSampling, samplingKey: request.samplingKey))
            }
            s.inFlight = true
            active[id] = s
        }
        // Spread sequences evenly over the groups so every tick of a pipeline carries a similar load.
        // The target counts the sequences that will actually be in flight, so a large capacity does not pour
        // every waiting prompt into the first group.
        let inFlight = Swift.min(lanes * maxSequencesPerLane, active.count + waiting.count)
        let groupTarget = (inFlight + microBatches - 1) / microBatches
        var groupSize = active.values.filter { $0.group == group }.count
        while let id = waiting.first, groupSize < groupTarget,
              let (lane, hit) = admissionLane(requests[id]!) {
            let request = requests[id]!
            let from = hit?.length ?? 0
            guard var entry = chunk(id, request, from: from, lane: lane, budget: &budget) else { break }
            if let hit {
                entry.forkFrom = hit.id
                retained[hit.id]!.pins += 1
                retained[hit.id]!.lastUse = tick
                prefixHitTokens += hit.length
            }
            prefixQueryTokens += request.prompt.count
            groupSize += 1
            waiting.removeFirst()
            active[id] = Active(lane: lane, group: group, inFlight: true, position: from, lastToken: -1, prefilled: from,
                                reserved: request.prompt.count + request.maxNewTokens)
            entries.append(entry)
            onEvent?(id, .admitted)
        }
        defer { released = [] }
        let prompts = entries.filter { $0.start < requests[$0.sequence]!.prompt.count }
        lastStep = (prompts.reduce(0) { $0 + $1.tokens.count }, entries.count - prompts.count)
        return StepDescriptor(tick: tick, microBatch: group, entries: entries, released: released)
    }

    /// The next prefill entry of `id` from prompt position `from` within `budget` prompt tokens (nil when the
    /// budget has no room for a chunk); the last chunk samples the first token.
    private func chunk(_ id: Int, _ request: GenerationRequest, from: Int, lane: Int, budget: inout Int) -> StepEntry? {
        // (A fork's first chunk starts at the copied length; the copy itself costs no prefill.)
        let remaining = request.prompt.count - from
        let take: Int
        if remaining <= budget || (remaining <= budget + 1 && budget >= 2) || remaining == 1 && budget >= 1 {
            take = remaining
        } else if budget >= 2 {
            take = budget
        } else {
            return nil
        }
        budget = Swift.max(budget - take, 0)
        let last = from + take == request.prompt.count
        return StepEntry(sequence: id, lane: lane, start: from, tokens: Array(request.prompt[from..<(from + take)]),
                         allLogits: keepLogits, step: 0, sampling: request.sampling ?? defaultSampling,
                         samplingKey: request.samplingKey, sample: last)
    }

    /// Where a waiting request goes: the lane holding its longest cached prefix when that lane has room, else
    /// the least loaded lane with room (evicting retained caches of that lane when the KV budget needs it).
    private func admissionLane(_ request: GenerationRequest) -> (lane: Int, hit: (id: Int, length: Int)?)? {
        let need = request.prompt.count + request.maxNewTokens
        if retainedPerLane > 0 {
            let hits = (0..<lanes).compactMap { l in bestPrefix(request.prompt, lane: l).map { (lane: l, hit: $0) } }
                .sorted { ($0.hit.length, -$0.lane) > ($1.hit.length, -$1.lane) }
            for h in hits {
                evict(lane: h.lane, keeping: retainedPerLane, need: need)
                if retained[h.hit.id] != nil, freeLane(need: need, only: h.lane) != nil { return (h.lane, h.hit) }
            }
            for l in 0..<lanes { evict(lane: l, keeping: retainedPerLane, need: need) }
        }
        return freeLane(need: need).map { ($0, nil) }
    }

    /// The lane with the fewest active sequences that has a slot and `need` KV-cache tokens free (lowest index
    /// on ties).
    private func freeLane(need: Int, only: Int? = nil) -> Int? {
        var load = [Int](repeating: 0, count: lanes)
        for s in active.values { load[s.lane] += 1 }
        let reserved = kvTokensReserved
        let open = (0..<lanes).filter { l in
            (only == nil || only == l) && load[l] < maxSequencesPerLane && (kvTokensPerLane.map { reserved[l] + need <= $0[l] } ?? true)
        }
        return open.min { (load[$0], $0) < (load[$1], $1) }
    }

    /// KV-cache tokens reserved per lane by the admitted sequences.
    public var kvTokensReserved: [Int] {
        var r = [Int](repeating: 0, count: lanes)
        for s in active.values { r[s.lane] += s.reserved }
        for k in retained.values { r[k.lane] += k.rows }
        return r
    }

    /// Whether a request of `need` tokens (prompt + max new tokens) fits an empty lane at all.
    public func admissible(need: Int) -> Bool { kvTokensPerLane.map { need <= ($0.max() ?? 0) } ?? true }

    /// A prompt chunk that samples nothing came back from the pipeline: the next chunk may go.
    public func advance(_ entry: StepEntry) {
        guard var s = active[entry.sequence] else { preconditionFailure("chunk for inactive sequence \(entry.sequence)") }
        unpin(entry)
        if s.cancelled {
            retire(entry.sequence, s)
            finish(entry.sequence, reason: "cancelled")
            return
        }
        s.prefilled = entry.start + entry.tokens.count
        s.position = s.prefilled
        s.inFlight = false
        active[entry.sequence] = s
    }

    /// Record the token sampled for `entry` (and its logits when kept). Finished sequences free their slot.
    /// `stop` ends the sequence after this token with reason "stop" (a stop string matched on rank 0's text).
    public func complete(_ entry: StepEntry, token: Int, logits: [[Float]] = [], stop: Bool = false) {
        guard var s = active[entry.sequence] else { preconditionFailure("token for inactive sequence \(entry.sequence)") }
        let id = entry.sequence
        unpin(entry)
        if s.cancelled {
            retire(id, s)
            finish(id, reason: "cancelled")
            return
        }
        if keepLogits {
            if entry.allLogits { outcome[id]!.promptLogits = logits }
            outcome[id]!.stepLogits.append(logits.last ?? [])
        }
        outcome[id]!.tokens.append(token)
        onEvent?(id, .token(token))
        s.position = entry.start + entry.tokens.count
        s.prefilled = requests[id]!.prompt.count
        s.lastToken = token
        s.inFlight = false
        let reason: String?
        if (requests[id]!.stopTokens ?? eosTokens).contains(token) {
            reason = "eos"
        } else if stop {
            reason = "stop"
        } else if outcome[id]!.tokens.count >= requests[id]!.maxNewTokens {
            reason = "length"
        } else {
            reason = nil
        }
        if let reason {
            retire(id, s)
            finish(id, reason: reason)
        } else {
            active[id] = s
        }
    }

    /// A sequence leaves its slot: its cache is released on every rank, or, with prefix caching and a complete
    /// prompt, retained for later prompts that start the same way.
    private func retire(_ id: Int, _ s: Active) {
        active[id] = nil
        let prompt = requests[id]!.prompt
        guard retainedPerLane > 0, s.prefilled >= prompt.count, prompt.count >= Self.minimumPrefix else {
            released.append(id)
            return
        }
        retained[id] = Retained(lane: s.lane, prompt: prompt, rows: s.position, lastUse: tick)
        evict(lane: s.lane, keeping: retainedPerLane, need: 0)
    }

    /// Releases least recently used retained caches of `lane` (never one with a fork in the pipeline) until at
    /// most `keeping` remain and `need` more KV tokens fit the lane's budget.
    private func evict(lane: Int, keeping: Int, need: Int) {
        while true {
            let mine = retained.filter { $0.value.lane == lane }
            let over = mine.count > keeping
            let short = kvTokensPerLane.map { kvTokensReserved[lane] + need > $0[lane] } ?? false
            guard over || short, let victim = mine.filter({ $0.value.pins == 0 })
                    .min(by: { ($0.value.lastUse, $0.key) < ($1.value.lastUse, $1.key) })?.key else { return }
            retained[victim] = nil
            released.append(victim)
        }
    }

    private func unpin(_ entry: StepEntry) {
        if entry.forkFrom >= 0 { retained[entry.forkFrom]?.pins -= 1 }
    }

    /// The retained cache of `lane` sharing the longest prompt prefix with `prompt`, and the rows to copy
    /// (at least `minimumPrefix`, and at least 2 prompt tokens left to prefill: a 1-token chunk would take the
    /// decode attention form).
    private func bestPrefix(_ prompt: [Int], lane: Int) -> (id: Int, length: Int)? {
        var best: (id: Int, length: Int)?
        for (id, r) in retained where r.lane == lane && r.pins >= 0 {
            var m = 0
            let limit = Swift.min(r.prompt.count, prompt.count - 2)
            while m < limit && r.prompt[m] == prompt[m] { m += 1 }
            if m >= Self.minimumPrefix && (best == nil || m > best!.length || (m == best!.length && id < best!.id)) { best = (id, m) }
        }
        return best
    }

    private func finish(_ id: Int, reason: String) {
        outcome[id]!.finishReason = reason
        onEvent?(id, .finished(outcome[id]!))
        requests[id] = nil
        // A served request's result lives in its events; offline callers read `results` at the end.
        if keepAlive { outcome[id] = nil }
    }
}
