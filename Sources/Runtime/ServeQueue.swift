// ServeQueue: the hand-over between request threads (HTTP) and rank 0's engine loop. Any thread submits and
// cancels; only the engine thread (the one that calls MPI) touches the coordinator, in `feed`, once per tick.
import Foundation

public final class ServeQueue: @unchecked Sendable {
    /// Why a submission was refused.
    public enum Refusal: Error, Sendable, Equatable {
        case queueFull(waiting: Int)
        case draining
        case failed(String)
        /// Prompt + max new tokens exceed the KV-cache budget of every lane: it could never be admitted.
        case tooLarge(need: Int, limit: Int)
    }

    /// Events of one request, called on the engine thread in order: tokens, then one `.finished`.
    public typealias Handler = @Sendable (CoordinatorEvent) -> Void

    public let maxWaiting: Int
    /// How long `feed` waits for work before letting an idle tick through (every rank's watchdog sees a
    /// broadcast at least this often).
    public let idleWait: Double

    // Shared state, under `lock`.
    private let lock = NSCondition()
    private var pending: [(id: UInt64, request: GenerationRequest, handler: Handler)] = []
    private var cancels: [UInt64] = []
    private var nextID: UInt64 = 1
    private var draining = false
    private var failure: String?
    private var lastTick = Date()
    private var ticks = 0
    /// Seconds the engine worked between the last feeds (idle waits excluded): the yardstick for "the loop has
    /// stopped".
    private var recentGaps: [Double] = []
    private var expertPairsPerRank: [Int] = []
    private var expertBalance: Double?
    private var lastExpertCount = Date()
    /// How often the loop asks every rank for its expert counts (one small all-reduce).
    public var expertCountInterval = 2.0
    private var running = 0
    private var queued = 0
    private var promptTokens = 0
    private var generatedTokens = 0
    private var busyTicks = 0
    private var busySeconds = 0.0

    // Engine-thread state: `feed` and the coordinator's callbacks (same thread) touch these; `fail` may come from
    // another thread while the engine thread is stuck in MPI, hence `handlerLock`.
    private let handlerLock = NSLock()
    private var handlers: [Int: Handler] = [:]
    private var external: [UInt64: Int] = [:]
    private var internalToExternal: [Int: UInt64] = [:]

    /// The largest prompt + max new tokens one lane's KV cache takes (nil: no limit; set once the budget is known).
    private var maxRequestTokens: Int?
    private var kvReserved: [Int] = []
    private var kvCapacity: [Int] = []
    private var prefixHits = 0
    private var prefixQueries = 0

    /// `--prefill-chunk auto`: the prompt budget of ticks that also decode, from measured tick times.
    public private(set) var pacer: PrefillPacer?
    /// What the last descriptors carried, newest last: in a pipeline, a tick's time is set by the busiest stage,
    /// and stage s works on the descriptor issued s ticks ago.
    private var inPipeline: [(promptTokens: Int, decodeRows: Int)] = []

    public init(maxWaiting: Int = 256, idleWait: Double = 0.5, maxRequestTokens: Int? = nil, pacer: PrefillPacer? = nil) {
        self.pacer = pacer
        self.maxWaiting = maxWaiting
        self.idleWait = idleWait
        self.maxRequestTokens = maxRequestTokens
    }

    /// Queues a request (any thread). Its handler is called from the engine thread.
    public func submit(_ request: GenerationRequest, handler: @escaping Handler) throws(Refusal) -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        if let failure { throw .failed(failure) }
        if draining { throw .draining }
        let need = request.prompt.count + request.maxNewTokens
        if let limit = maxRequestTokens, need > limit { throw .tooLarge(need: need, limit: limit) }
        guard pending.count + queued < maxWaiting else { throw .queueFull(waiting: pending.count + queued) }
        let id = nextID
        nextID += 1
        pending.append((id, request, handler))
        lock.signal()
        return id
    }

    /// The KV-cache budget of the largest lane: larger requests are refused at submission.
    public func setMaxRequestTokens(_ limit: Int) {
        lock.lock()
        maxRequestTokens = limit
        lock.unlock()
    }

    /// Ends a request (any thread); unknown or finished ids are ignored.
    public func cancel(_ id: UInt64) {
        lock.lock()
        cancels.append(id)
        lock.signal()
        lock.unlock()
    }

    /// No new requests; the loop stops once the running ones are done (SIGTERM).
    /// Returns whether this call started the drain (false when it was already draining).
    @discardableResult
    public func drain() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard !draining else { return false }
        draining = true
        lock.signal()
        return true
    }

    /// Seconds since the engine loop last came through `feed`.
    public var secondsSinceTick: Double {
        lock.lock()
        defer { lock.unlock() }
        return Date().timeIntervalSince(lastTick)
    }

    public var failureMessage: String? {
        lock.lock()
        defer { lock.unlock() }
        return failure
    }

    /// Ticks the engine loop has come through `feed`.
    public var tickCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return ticks
    }

    /// The longest of the last 64 ticks' engine work, idle waits excluded (0 before two ticks).
    public var longestRecentTick: Double {
        lock.lock()
        defer { lock.unlock() }
        return recentGaps.max() ?? 0
    }

    /// Requests submitted and not yet finished.
    public var openRequests: Int {
        handlerLock.withLock { handlers.count } + lock.withLock { pending.count }
    }

    /// What /metrics shows, as of the last tick.
    public struct Counters: Sendable, Equatable {
        public var running = 0, waiting = 0, promptTokens = 0, generatedTokens = 0
        /// Per lane: KV-cache tokens reserved by admitted requests, and the lane's budget.
        public var kvReserved: [Int] = [], kvCapacity: [Int] = []
        public var prefixHits = 0, prefixQueries = 0
        /// Per rank: expert pairs since the start; the load balance of the last counting window.
        public var expertPairsPerRank: [Int] = []
        public var expertBalance: Double?
        /// Ticks that carried work, and the seconds the engine spent on them (idle waits excluded).
        public var busyTicks = 0
        public var busySeconds = 0.0
    }

    public var counters: Counters {
        lock.lock()
        defer { lock.unlock() }
        return Counters(running: running, waiting: queued + pending.count, promptTokens: promptTokens, generatedTokens: generatedTokens,
                        kvReserved: kvReserved, kvCapacity: kvCapacity, prefixHits: prefixHits, prefixQueries: prefixQueries,
                        expertPairsPerRank: expertPairsPerRank, expertBalance: expertBalance, busyTicks: busyTicks,
                        busySeconds: busySeconds)
    }

    /// Engine thread: the expert counts the ranks sent for the last window (`Engine.serve`'s onExpertLoad).
    public func recordExpertLoad(_ load: ExpertLoad) {
        lock.lock()
        if expertPairsPerRank.count != load.rankLoad.count { expertPairsPerRank = Array(repeating: 0, count: load.rankLoad.count) }
        for (rank, pairs) in load.rankLoad.enumerated() { expertPairsPerRank[rank] += pairs }
        // A window in which no token was routed says nothing about balance: keep the last figure.
        if load.rankLoad.contains(where: { $0 > 0 }), !load.balance.isEmpty {
            expertBalance = load.balance.reduce(0, +) / Double(load.balance.count)
        }
        lock.unlock()
    }

    /// Engine thread, before each tick: hands submissions and cancellations to the coordinator; while there
    /// is nothing to do, waits up to `idleWait` for something to arrive.
    public func feed(_ coordinator: Coordinator) {
        if coordinator.onEvent == nil { coordinator.onEvent = { [unowned self] id, event in self.deliver(id, event) } }
        lock.lock()
        if ticks > 0 {
            let busy = Date().timeIntervalSince(lastTick)
            recentGaps.append(busy)
            if recentGaps.count > 64 { recentGaps.removeFirst() }
            if coordinator.lastStep.promptTokens + coordinator.lastStep.decodeRows > 0 {
                busyTicks += 1
                busySeconds += busy
            }
            inPipeline.append(coordinator.lastStep)
            if inPipeline.count > coordinator.microBatches { inPipeline.removeFirst() }
            pacer?.observe(seconds: busy, promptTokens: inPipeline.map(\.promptTokens).max() ?? 0,
                           decodeRows: inPipeline.map(\.decodeRows).max() ?? 0)
        }
        if pending.isEmpty && cancels.isEmpty && coordinator.isFinished && !draining {
            _ = lock.wait(until: Date().addingTimeInterval(idleWait))
        }
        let arrived = pending, cancelled = cancels, closing = draining
        pending = []
        cancels = []
        let now = Date()
        lastTick = now
        ticks += 1
        if now.timeIntervalSince(lastExpertCount) >= expertCountInterval {
            lastExpertCount = now
            coordinator.countExpertsNext = true
        }
        lock.unlock()

        for (id, request, handler) in arrived {
            let inner = coordinator.submit(request)
            handlerLock.withLock {
                handlers[inner] = handler
                external[id] = inner
                internalToExternal[inner] = id
            }
            lock.lock()
            promptTokens += request.prompt.count
            lock.unlock()
        }
        for id in cancelled {
            if let inner = handlerLock.withLock({ external[id] }) { coordinator.cancel(inner) }
        }
        if closing { coordinator.close() }
        if let pacer { coordinator.prefillBudget = pacer.budget(backlog: coordinator.prefillBacklog) }
        let reserved = coordinator.kvTokensReserved
        lock.lock()
        running = coordinator.activeCount
        queued = coordinator.waitingCount
        kvReserved = reserved
        kvCapacity = coordinator.kvTokensPerLane ?? []
        prefixHits = coordinator.prefixHitTokens
        prefixQueries = coordinator.prefixQueryTokens
        lock.unlock()
    }

    /// The loop ended or cannot go on (a lost rank, a watchdog abort, the launcher tearing the job down): every
    /// open request gets a finished event with the reason, later submissions are refused with it, and events the
    /// engine might still produce go nowhere. Any thread; the first message wins.
    public func fail(_ message: String) {
        lock.lock()
        if failure != nil {
            lock.unlock()
            return
        }
        failure = message
        let stranded = pending
        pending = []
        lock.unlock()
        var failed = GenerationResult(prompt: [])
        failed.finishReason = "failed: " + message
        handlerLock.withLock {
            for handler in handlers.values { handler(.finished(failed)) }
            handlers = [:]
            external = [:]
            internalToExternal = [:]
        }
        for p in stranded { p.handler(.finished(failed)) }
    }

    private func deliver(_ inner: Int, _ event: CoordinatorEvent) {
        handlerLock.withLock {
            guard let handler = handlers[inner] else { return }
            handler(event)
            switch event {
            case .admitted: break
            case .token:
                lock.lock()
                generatedTokens += 1
                lock.unlock()
            case .finished:
                handlers[inner] = nil
                if let id = internalToExternal.removeValue(forKey: inner) { external[id] = nil }
            }
        }
    }
}
