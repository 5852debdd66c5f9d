// Coordinator (rank 0's scheduler, pure logic): assigns prompts to lanes and micro-batch groups, issues one
// StepDescriptor per pipeline tick, takes sampled tokens back, stops sequences on eos / max tokens and
// admits waiting prompts into freed slots (continuous batching).

/// One prompt to complete.
public struct GenerationRequest: Sendable, Equatable {
    public var prompt: [Int]
    public var maxNewTokens: Int
    public init(prompt: [Int], maxNewTokens: Int) {
        self.prompt = prompt
        self.maxNewTokens = maxNewTokens
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
    public var finishReason: String = ""
}

public final class Coordinator {
    public let lanes: Int
    public let microBatches: Int
    public let maxSequencesPerLane: Int
    public let eosTokens: Set<Int>
    public let keepLogits: Bool
    public private(set) var results: [GenerationResult]

    private let requests: [GenerationRequest]
    private var waiting: [Int]
    private struct Active {
        var lane: Int
        var group: Int
        var inFlight: Bool
        var position: Int
        var lastToken: Int
    }
    private var active: [Int: Active] = [:]
    private var released: [Int] = []
    private var tick = 0

    public init(requests: [GenerationRequest], lanes: Int, microBatches: Int, maxSequencesPerLane: Int,
                eosTokens: Set<Int>, keepLogits: Bool) {
        precondition(lanes >= 1 && microBatches >= 1 && maxSequencesPerLane >= 1)
        self.requests = requests
        self.lanes = lanes
        self.microBatches = microBatches
        self.maxSequencesPerLane = maxSequencesPerLane
        self.eosTokens = eosTokens
        self.keepLogits = keepLogits
        self.waiting = Array(requests.indices)
        self.results = requests.map { GenerationResult(prompt: $0.prompt) }
    }

    /// No waiting prompt and no active sequence: every result is final.
    public var isFinished: Bool { waiting.isEmpty && active.isEmpty }

    /// Sequences currently holding a lane slot.
    public var activeCount: Int { active.count }

    /// The descriptor for the next tick. Micro-batch group `tick % microBatches` advances: its ready sequences
    /// decode one token; free slots admit waiting prompts into this group (prefill).
    public func nextStep() -> StepDescriptor {
        defer { tick += 1 }
        if isFinished {
            defer { released = [] }
            return StepDescriptor(tick: tick, microBatch: -1, entries: [], released: released, stop: true)
        }
        let group = tick % microBatches
        var entries: [StepEntry] = []
        for id in active.keys.sorted() {
            guard var s = active[id], s.group == group, !s.inFlight else { continue }
            entries.append(StepEntry(sequence: id, lane: s.lane, start: s.position, tokens: [s.lastToken],
                                     allLogits: false, step: results[id].tokens.count))
            s.inFlight = true
            active[id] = s
        }
        // Spread sequences evenly over the groups so every tick of a pipeline carries a similar load.
        // The target counts the sequences that will actually be in flight, so a large capacity does not pour
        // every waiting prompt into the first group.
        let inFlight = Swift.min(lanes * maxSequencesPerLane, active.count + waiting.count)
        let groupTarget = (inFlight + microBatches - 1) / microBatches
        var groupSize = active.values.filter { $0.group == group }.count
        while let id = waiting.first, groupSize < groupTarget, let lane = freeLane() {
            groupSize += 1
            waiting.removeFirst()
            let prompt = requests[id].prompt
            active[id] = Active(lane: lane, group: group, inFlight: true, position: 0, lastToken: -1)
            entries.append(StepEntry(sequence: id, lane: lane, start: 0, tokens: prompt, allLogits: keepLogits, step: 0))
        }
        defer { released = [] }
        return StepDescriptor(tick: tick, microBatch: group, entries: entries, released: released)
    }

    /// The lane with the fewest active sequences that still has room (lowest index on ties).
    private func freeLane() -> Int? {
        var load = [Int](repeating: 0, count: lanes)
        for s in active.values { load[s.lane] += 1 }
        let lane = load.indices.min { (load[$0], $0) < (load[$1], $1) }!
        return load[lane] < maxSequencesPerLane ? lane : nil
    }

    /// Record the token sampled for `entry` (and its logits when kept). Finished sequences free their slot.
    /// `stop` ends the sequence after this token with reason "stop" (a stop string matched on rank 0's text).
    public func complete(_ entry: StepEntry, token: Int, logits: [[Float]] = [], stop: Bool = false) {
        guard var s = active[entry.sequence] else { preconditionFailure("token for inactive sequence \(entry.sequence)") }
        let id = entry.sequence
        if keepLogits {
            if entry.allLogits {
                results[id].promptLogits = logits
                results[id].stepLogits.append(logits.last ?? [])
            } else {
                results[id].stepLogits.append(logits.last ?? [])
            }
        }
        results[id].tokens.append(token)
        s.position = entry.start + entry.tokens.count
        s.lastToken = token
        s.inFlight = false
        if eosTokens.contains(token) {
            results[id].finishReason = "eos"
        } else if stop {
            results[id].finishReason = "stop"
        } else if results[id].tokens.count >= requests[id].maxNewTokens {
            results[id].finishReason = "length"
        }
        if results[id].finishReason.isEmpty {
            active[id] = s
        } else {
            active[id] = nil
            released.append(id)
        }
    }
}
