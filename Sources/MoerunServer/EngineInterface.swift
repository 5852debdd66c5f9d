// What the HTTP front end needs from the engine, and nothing more: submit token-level requests, receive their
// tokens as they are sampled, cancel them, read health and counters. The moerun executable connects this to
// the MPI engine loop on rank 0's main thread; HTTP never calls MPI and the engine never sees HTTP.

/// One generation request at the token level (the front end has tokenized and applied the chat template).
public struct EngineRequest: Sendable, Equatable {
    public var promptTokens: [Int]
    public var maxTokens: Int
    public var temperature: Float
    public var topP: Float
    /// 0 = no limit.
    public var topK: Int
    /// The sampler's stream depends on (seed, step) only, so a seeded request gets the same tokens whatever
    /// else the server runs.
    public var seed: UInt64
    /// Token ids that end the request (eos ids of the checkpoint, empty to ignore eos).
    public var stopTokenIDs: Set<Int>

    public init(promptTokens: [Int], maxTokens: Int, temperature: Float = 0, topP: Float = 1, topK: Int = 0,
                seed: UInt64 = 0, stopTokenIDs: Set<Int> = []) {
        self.promptTokens = promptTokens
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.topK = topK
        self.seed = seed
        self.stopTokenIDs = stopTokenIDs
    }
}

/// Why a request ended, as the engine sees it (stop strings are the front end's: it cancels on a match).
public enum EngineFinish: Sendable, Equatable {
    /// A stop token id was sampled (it is the last token delivered).
    case stopToken
    /// maxTokens were generated.
    case length
    /// `cancel` took effect.
    case cancelled
    /// The engine failed (a lost rank, a watchdog abort): the message says what happened.
    case failed(String)
}

/// Events of one request, delivered in order on an engine thread: at most one `admitted`, tokens, then exactly
/// one `finished`.
public enum EngineEvent: Sendable, Equatable {
    /// The request left the waiting queue for a lane slot after this many seconds (the queue-time metric).
    case admitted(queueSeconds: Double)
    case token(Int)
    case finished(EngineFinish, promptTokens: Int, generatedTokens: Int)
}

/// Why `submit` refused a request.
public enum EngineRejection: Error, Sendable, Equatable {
    /// The waiting queue is full: HTTP 429 with Retry-After.
    case queueFull(retryAfterSeconds: Int)
    /// SIGTERM received: no new requests (503).
    case draining
    /// The engine is loading or has failed (503).
    case unavailable(String)
    /// The request can never be admitted: prompt + max_tokens exceed what one lane's KV cache holds (400).
    case tooLarge(String)
}

public enum EngineHealth: Sendable, Equatable {
    case loading
    /// The engine loop completed a tick (or an idle wait) within the last few seconds.
    case ready
    /// The loop has not progressed for this many seconds.
    case stuck(seconds: Double)
    case failed(String)
}

/// Counters for /metrics, read at scrape time.
public struct EngineCounters: Sendable, Equatable {
    public var running = 0
    public var waiting = 0
    public var promptTokens = 0
    public var generatedTokens = 0
    /// Per lane: KV-cache tokens reserved by admitted requests (prompt + max_tokens each), and the lane's budget.
    public var kvTokensReserved: [Int] = []
    public var kvTokensCapacity: [Int] = []
    /// Prompt tokens copied from cached prefixes, and prompt tokens admitted (the prefix-cache hit rate).
    public var prefixHitTokens = 0
    public var prefixQueryTokens = 0
    /// Per rank: (token, expert) pairs its routed experts have processed since the engine started (empty until
    /// the first count arrives).
    public var expertPairsPerRank: [Int] = []
    /// Mean over MoE layers of (mean / max) lane load in the last counting window: 1 = perfectly even (nil: none yet).
    public var expertBalance: Double?
    /// Engine ticks that carried work and the seconds spent on them on rank 0 (their ratio: the mean step time).
    public var busyTicks = 0
    public var busySeconds = 0.0
    public init() {}
}

/// The engine as the front end sees it. Thread-safe: called from any HTTP thread.
public protocol CompletionEngine: Sendable {
    /// Queues a request; `onEvent` is called for each of its events, in order, from an engine thread.
    func submit(_ request: EngineRequest, onEvent: @escaping @Sendable (EngineEvent) -> Void) throws(EngineRejection) -> UInt64
    /// Ends a request early (client gone, stop string matched); its slot and caches are freed within a few ticks.
    /// Unknown or finished ids are ignored.
    func cancel(_ id: UInt64)
    var health: EngineHealth { get }
    var counters: EngineCounters { get }
}
