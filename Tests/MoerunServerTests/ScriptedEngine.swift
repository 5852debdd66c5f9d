// A test double of the ENGINE (not of the server): it answers each submitted request with tokens from a script,
// on its own task as the real engine thread would, and records submits and cancels for the HTTP-layer tests.
import Foundation
import MoerunServer
import Synchronization

final class ScriptedEngine: CompletionEngine {
    /// What the engine does with one request.
    struct Reply: Sendable {
        /// Tokens to deliver, in order (the generation stops earlier at maxTokens or a stop token id).
        var tokens: [Int]
        /// Pause before each token: lets tests disconnect mid-stream or shut down while streaming.
        var delay: Duration = .zero
        /// Never produce anything until cancelled (a request still waiting in the queue).
        var queued = false
        /// Fail after delivering the tokens instead of finishing.
        var failure: String?
    }

    private struct State {
        var nextID: UInt64 = 1
        var submitted: [EngineRequest] = []
        var cancelled: Set<UInt64> = []
        var health: EngineHealth = .ready
        var rejection: EngineRejection?
        var counters = EngineCounters()
    }

    private let state = Mutex(State())
    private let script: @Sendable (EngineRequest) -> Reply

    init(_ script: @escaping @Sendable (EngineRequest) -> Reply) {
        self.script = script
    }

    var submitted: [EngineRequest] { state.withLock { $0.submitted } }
    var cancelled: Set<UInt64> { state.withLock { $0.cancelled } }
    func setHealth(_ h: EngineHealth) { state.withLock { $0.health = h } }
    func reject(with r: EngineRejection?) { state.withLock { $0.rejection = r } }

    func submit(_ request: EngineRequest, onEvent: @escaping @Sendable (EngineEvent) -> Void) throws(EngineRejection) -> UInt64 {
        let result: Result<UInt64, EngineRejection> = state.withLock { s in
            if let r = s.rejection { return .failure(r) }
            defer { s.nextID += 1 }
            s.submitted.append(request)
            s.counters.promptTokens += request.promptTokens.count
            return .success(s.nextID)
        }
        let id = try result.get()
        let reply = script(request)
        Task.detached { [self] in await self.play(id, request, reply, onEvent) }
        return id
    }

    private func play(_ id: UInt64, _ request: EngineRequest, _ reply: Reply, _ onEvent: @Sendable (EngineEvent) -> Void) async {
        var sent = 0
        func isCancelled() -> Bool { state.withLock { $0.cancelled.contains(id) } }
        while reply.queued && !isCancelled() { try? await Task.sleep(for: .milliseconds(5)) }
        for token in reply.tokens {
            if reply.delay > .zero { try? await Task.sleep(for: reply.delay) }
            if isCancelled() { break }
            onEvent(.token(token))
            sent += 1
            state.withLock { $0.counters.generatedTokens += 1 }
            if request.stopTokenIDs.contains(token) {
                return onEvent(.finished(.stopToken, promptTokens: request.promptTokens.count, generatedTokens: sent))
            }
            if sent == request.maxTokens { break }
        }
        let reason: EngineFinish
        if isCancelled() { reason = .cancelled }
        else if let failure = reply.failure { reason = .failed(failure) }
        else { reason = .length }
        onEvent(.finished(reason, promptTokens: request.promptTokens.count, generatedTokens: sent))
    }

    func cancel(_ id: UInt64) { _ = state.withLock { $0.cancelled.insert(id) } }
    var health: EngineHealth { state.withLock { $0.health } }
    var counters: EngineCounters { state.withLock { $0.counters } }

    /// Polls until `condition` holds or `timeout` passes (cancels arrive from other threads).
    func wait(timeout: Duration = .seconds(5), until condition: (ScriptedEngine) -> Bool) async -> Bool {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            if condition(self) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition(self)
    }
}
