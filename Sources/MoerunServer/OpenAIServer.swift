// The OpenAI-compatible HTTP server of `moerun serve`: routes, the completion handlers, and a run / shutdown pair
// that the command drives from its own threads while the main thread runs the engine loop.
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Text

/// Everything a route needs; immutable, so every HTTP thread shares it.
final class ServerState: Sendable {
    let configuration: ServerConfiguration
    let engine: any CompletionEngine
    let tokenizer: Tokenizer
    let parser: RequestParser
    let metrics = ServerMetrics()
    /// /v1/models `created`: when this server started.
    let started = Int(Date.now.timeIntervalSince1970)

    init(configuration: ServerConfiguration, engine: any CompletionEngine, tokenizer: Tokenizer) {
        self.configuration = configuration
        self.engine = engine
        self.tokenizer = tokenizer
        parser = RequestParser(configuration: configuration, tokenizer: tokenizer)
    }

    /// The body, refused with 413 past the limit. `request.body` itself is left unedited: the disconnect watch
    /// (`consumeWithInboundCloseHandler`) needs the original stream.
    func readBody(_ request: Request) async throws -> ByteBuffer {
        let limit = configuration.maxBodyBytes
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit { throw APIError.tooLarge }
        do {
            return try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge
        }
    }
}

/// Serves until `shutdown()`; then stops accepting connections and returns once open requests and streams finished.
public final class OpenAIServer: Sendable {
    let state: ServerState
    private let logger: Logger
    private let group = Mutex<ServiceGroup?>(nil)
    private let stopRequested = Atomic<Bool>(false)
    private let port = Mutex<(value: Int?, waiters: [CheckedContinuation<Int?, Never>])>((nil, []))

    public init(configuration: ServerConfiguration, engine: any CompletionEngine, tokenizer: Tokenizer, logger: Logger? = nil) {
        state = ServerState(configuration: configuration, engine: engine, tokenizer: tokenizer)
        self.logger = logger ?? Logger(label: configuration.serverName)
    }

    /// Binds and serves; returns after a graceful shutdown, throws when binding fails. Call it from a task that
    /// does not run on the main thread (e.g. `Task.detached`): NIO's event loops and Swift's cooperative pool do
    /// the work, the main thread stays with the engine.
    public func run() async throws {
        let c = state.configuration
        let app = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(c.host, port: c.port), serverName: c.serverName),
            onServerRunning: { [self] channel in resolvePort(channel.localAddress?.port) },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        self.group.withLock { $0 = group }
        // A shutdown asked for before the group existed still applies.
        if stopRequested.load(ordering: .relaxed) { await group.triggerGracefulShutdown() }
        defer { resolvePort(nil) }
        try await group.run()
    }

    /// Stop accepting, let running requests and streams finish, then `run()` returns. Callable from any thread.
    public func shutdown() {
        stopRequested.store(true, ordering: .relaxed)
        guard let group = group.withLock({ $0 }) else { return }
        Task { await group.triggerGracefulShutdown() }
    }

    /// The bound port once listening (useful with port 0), nil if the server stopped before it bound.
    public func listeningPort() async -> Int? {
        await withCheckedContinuation { (k: CheckedContinuation<Int?, Never>) in
            let ready: Int?? = port.withLock { p in
                if let v = p.value { return .some(v) }
                p.waiters.append(k)
                return .none
            }
            if let ready { k.resume(returning: ready) }
        }
    }

    private func resolvePort(_ value: Int?) {
        let waiters = port.withLock { p in
            if p.value == nil { p.value = value }
            defer { p.waiters = [] }
            return p.waiters
        }
        for w in waiters { w.resume(returning: value) }
    }

    func makeRouter() -> Router<ServerRequestContext> {
        let router = Router(context: ServerRequestContext.self)
        router.add(middleware: OpenAIErrorMiddleware())
        if let key = state.configuration.apiKey { router.add(middleware: APIKeyMiddleware(key: key)) }
        let state = self.state
        router.post("/v1/completions") { request, context in try await Self.generate(request, context, .completion, state) }
        router.post("/v1/chat/completions") { request, context in try await Self.generate(request, context, .chat, state) }
        router.get("/v1/models") { _, _ in state.models() }
        router.get("/health") { _, _ in state.health() }
        router.get("/metrics") { _, _ in state.metricsResponse() }
        router.post("/tokenize") { request, _ in try await state.tokenize(request) }
        router.post("/detokenize") { request, _ in try await state.detokenize(request) }
        return router
    }

    /// Both completion endpoints. A client that closes its connection (mid-stream, or while the request still
    /// waits in the engine's queue) cancels the engine request.
    static func generate(_ request: Request, _ context: ServerRequestContext, _ endpoint: Endpoint,
                         _ state: ServerState) async throws -> Response {
        let watcher = try await DisconnectWatcher.install(on: context.channel)
        let call: EngineCall, plan: GenerationPlan
        do {
            var reader = try RequestReader(try await state.readBody(request))
            plan = endpoint == .chat ? try state.parser.chat(&reader) : try state.parser.completion(&reader)
            // Nobody would read the answer: do not queue it.
            if watcher.isClosed { throw CancellationError() }
            call = try EngineCall.submit(plan.engineRequest, to: state.engine)
        } catch {
            watcher.remove()
            throw error
        }
        watcher.onClose { call.cancel() }
        let identity = ResponseIdentity(endpoint, model: state.configuration.servedModelName)
        if plan.stream {
            let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
            return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                defer { watcher.remove() }
                try await writeEventStream(call, plan: plan, identity: identity, state: state, writer: &writer)
                try await writer.finish(nil)
            })
        }
        defer { watcher.remove() }
        var output = AssembledOutput()
        let outcome = try await runGeneration(call, plan: plan, tokenizer: state.tokenizer, metrics: state.metrics) {
            for event in $0 { output.add(event) }
        }
        if let error = outcome.error { return error.response() }
        return jsonResponse(identity.full(output, splitting: plan.splitting, outcome))
    }
}
