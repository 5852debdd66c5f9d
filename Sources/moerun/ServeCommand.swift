// `moerun serve`: every rank runs the engine loop on its main thread (the only thread that calls MPI); rank 0
// also runs the OpenAI-compatible HTTP server on other threads and feeds the loop through a ServeQueue.
import ArgumentParser
import Foundation
import MoerunServer
import Runtime
import Text

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a checkpoint over the launched ranks with an OpenAI-compatible HTTP API on rank 0.",
        discussion: """
            Example: mpirun -np 4 moerun serve --model DIR --plan pp=2,ep=2 --port 8000
            Then: curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
                    -d '{"model": "DIR-NAME", "messages": [{"role": "user", "content": "Hello"}]}'
            SIGTERM (or SIGINT) to rank 0 (its pid is printed at "ready:") drains: no new requests, running ones \
            finish, every rank exits 0. SIGTERM to mpirun ends the job: open requests get an error saying so.
            """)

    @Option(help: "Checkpoint directory (config.json + safetensors + tokenizer files).")
    var model: String
    @Option(help: "Parallel plan 'pp=P,ep=E' with P x E = launched ranks, or 'pp=P,dp=D,tp=T' (E = D x T; tensor parallel) (default: derived from the rank count).")
    var plan: String?
    @Option(help: "Address to bind (loopback by default; 0.0.0.0 opens it to the network).")
    var host = "127.0.0.1"
    @Option(help: "TCP port (0 picks a free one and prints it).")
    var port = 8000
    @Option(help: "Require 'Authorization: Bearer KEY' (default: $MOERUN_API_KEY; none when unset).")
    var apiKey: String?
    @Option(help: "The model name clients send (default: the checkpoint directory's name).")
    var servedModelName: String?
    @Option(help: "Sequences one lane holds at once.")
    var maxBatch = 16
    @Option(help: "Micro-batches in flight (default: one per pipeline stage).")
    var microBatches: Int?
    @Option(help: "Requests that may wait for a slot; beyond it requests get 429 with Retry-After.")
    var maxWaiting = 256
    @Option(help: "max_tokens when a request gives none (capped by the remaining context).")
    var defaultMaxTokens = 4096
    @Option(help: ArgumentHelp("Prompt tokens prefilled per tick, over all arriving prompts (running decodes go first), so a long prompt does not freeze the other streams: 'auto' sizes it from measured tick times so a tick with a prompt chunk lasts about twice a decode-only tick (at most 256 tokens, more when prompts pile up), N fixes it, 0 = whole prompts.", valueName: "auto|N"))
    var prefillChunk = "auto"

    @Option(help: "Finished sequences whose caches each lane keeps for prompts that start the same way (prefix caching; their prompt rows are copied instead of prefilled, same output bit for bit); 0 = off.")
    var prefixCacheSequences = 8
    @Option(help: "KV-cache tokens per lane, all its sequences together (each admitted request reserves prompt + max_tokens; default: 90% of the memory available to each rank after loading).")
    var kvCacheTokens: Int?
    @OptionGroup var compute: ComputeOptions
    @OptionGroup var mpi: MPIOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard prefixCacheSequences >= 0 else { throw ValidationError("--prefix-cache-sequences must be 0 (off) or more") }
        guard maxBatch >= 1, maxWaiting >= 1, defaultMaxTokens >= 1 else {
            throw ValidationError("--max-batch, --max-waiting and --default-max-tokens must be at least 1")
        }
        if let m = microBatches, m < 1 { throw ValidationError("--micro-batches must be at least 1") }
        if let k = kvCacheTokens, k < 2 { throw ValidationError("--kv-cache-tokens must be at least 2") }
        guard prefillChunk == "auto" || Int(prefillChunk).map({ $0 == 0 || $0 >= 2 }) == true else {
            throw ValidationError("--prefill-chunk must be 'auto', 0 (whole prompts) or a number of tokens of at least 2 (got '\(prefillChunk)')")
        }
    }

    func run() throws {
        withWorld(mpi) { world in try serve(world) }
    }

    private func serve(_ world: any Communicator) throws -> Int32 {
        let say = { (line: String) in if world.rank == 0 { emit(line) } }
        var tokenizer: Tokenizer?
        guard let (opened, parallelPlan) = openModelAndPlan(world, model: model, plan: plan, check: { _ in
            tokenizer = try Tokenizer.load(directory: model)
        }), let tokenizer else { return 2 }
        parallelPlan.summary.forEach(say)

        // Rank 0's HTTP server answers (/health 503) while the weights load.
        let pacer = prefillChunk == "auto" ? PrefillPacer() : nil
        let fixedChunk = pacer.map { $0.maximum } ?? Int(prefillChunk).flatMap { $0 == 0 ? nil : $0 }
        let queue = ServeQueue(maxWaiting: maxWaiting, pacer: pacer)
        let bridge = EngineBridge(queue: queue)
        var server: OpenAIServer?
        var serverTask: Task<Void, Never>?
        if world.rank == 0 {
            let name = servedModelName ?? URL(fileURLWithPath: model).standardizedFileURL.lastPathComponent
            let key = apiKey ?? ProcessInfo.processInfo.environment["MOERUN_API_KEY"]
            let configuration = ServerConfiguration(host: host, port: port, apiKey: key?.isEmpty == false ? key : nil,
                                                    servedModelName: name, modelRoot: model,
                                                    maxModelLength: opened.config.maxPositionEmbeddings,
                                                    vocabularySize: opened.config.vocabSize, defaultMaxTokens: defaultMaxTokens)
            let http = OpenAIServer(configuration: configuration, engine: bridge, tokenizer: tokenizer)
            server = http
            serverTask = Task.detached {
                do { try await http.run() } catch {
                    printError("moerun: error: the HTTP server stopped: \(error)")
                    queue.drain()
                }
            }
            let bound = Self.wait { await http.listeningPort() }
            guard let bound else {
                printError("moerun: error: cannot listen on \(host):\(port) (see the message above)")
                MPIEnvironment.abort(message: "moerun: error: the HTTP server did not start on rank 0", code: 1)
            }
            say("serving '\(name)' on http://\(host):\(bound)/v1 (\(key == nil ? "no API key" : "API key required"))")
        }
        let signals = Self.drainOnSignals(rank: world.rank, queue: queue)
        // A write to a peer or a client that is gone must come back as an error, not end the process.
        signal(SIGPIPE, SIG_IGN)
        if world.rank == 0 {
            // A watchdog timeout or a fatal error: open requests get the message before the job goes down.
            JobAbortHook.set { line in
                queue.fail(line)
                usleep(300_000)  // time for the HTTP threads to write the error chunks
            }
        }

        var options = EngineOptions()
        options.maxSequencesPerLane = maxBatch
        options.microBatches = microBatches
        compute.apply(to: &options, rank: world.rank)
        let engine = try startEngine(world, opened: opened, plan: parallelPlan, options: options, preload: true)
        try printMemory(engine, world: world, say: say)
        let kvBudget = try Self.kvTokensPerLane(engine, world: world, requested: kvCacheTokens)
        say("KV cache per lane: " + kvBudget.enumerated().map { "lane \($0.offset) \($0.element) tokens" }.joined(separator: ", ")
            + (kvCacheTokens == nil ? " (90% of the memory each rank has left; --kv-cache-tokens sets it)" : ""))
        queue.setMaxRequestTokens(kvBudget.max() ?? 0)
        bridge.markLoaded()
        say("ready: engine loop running (rank 0 pid \(getpid()); SIGTERM to this pid drains and exits; SIGTERM to mpirun ends the job at once)")

        let coordinator = world.rank == 0
            ? Coordinator(lanes: parallelPlan.dp, microBatches: microBatches ?? parallelPlan.pp, maxSequencesPerLane: maxBatch,
                          eosTokens: Set(tokenizer.config.eosTokenIDs), keepLogits: false, keepAlive: true,
                          prefillChunk: fixedChunk, kvTokensPerLane: kvBudget,
                          retainedPerLane: prefixCacheSequences)
            : nil
        let feed: ((Coordinator) -> Void)? = world.rank == 0 ? { queue.feed($0) } : nil
        do {
            try engine.serve(coordinator, feed: feed, onExpertLoad: world.rank == 0 ? { queue.recordExpertLoad($0) } : nil)
        } catch {
            queue.fail("\(error)")
            throw error
        }
        signals.forEach { $0.cancel() }
        if let server, let serverTask {
            // Every request has had its last event; idle keep-alive connections do not hold the exit up for long.
            server.shutdown()
            let closed = Self.wait(timeout: 10) { await serverTask.value }
            say("drained: every request finished; exiting" + (closed ? "" : " (idle client connections closed at exit)"))
        }
        return 0
    }

    /// Per lane group, the KV-cache tokens all of its ranks can hold: each rank's share of MemAvailable (90%, split over
    /// the ranks of its node) over its stage's bytes per cached token, the group's smallest rank deciding (every rank
    /// of a tensor-parallel group keeps the whole cache of the group's sequences).
    static func kvTokensPerLane(_ engine: Engine, world: any Communicator, requested: Int?) throws -> [Int] {
        let plan = engine.plan
        if let requested { return Array(repeating: requested, count: plan.dp) }
        let bytesPerToken = engine.shape.cacheFloatsPerToken(layers: plan.stageLayers[engine.stage]) * MemoryLayout<Float>.size
        let local = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? 1
        let available = Double(availableMemoryBytes()) * 0.9 / Double(max(local, 1))
        world.setContext("gathering KV-cache budgets")
        let perRank = try world.allGather([Int64(available / Double(max(bytesPerToken, 1)))])
        return (0..<plan.dp).map { group in
            (0..<plan.pp).flatMap { s in (0..<plan.tp).map { Int(perRank[plan.rank(stage: s, lane: group * plan.tp + $0).value]) } }.min() ?? 0
        }
    }

    /// Blocks the calling (main) thread until `body` finishes on the cooperative pool.
    static func wait<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let box = ResultBox<T>()
        _ = wait(timeout: nil) { box.value = await body() }
        return box.value!
    }

    /// As `wait`, giving up after `timeout` seconds; returns whether `body` finished.
    @discardableResult
    static func wait(timeout: Double?, _ body: @escaping @Sendable () async -> Void) -> Bool {
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            await body()
            done.signal()
        }
        guard let timeout else {
            done.wait()
            return true
        }
        return done.wait(timeout: .now() + timeout) == .success
    }

    /// SIGTERM / SIGINT to rank 0 drain (the loop then stops every rank, each exits 0). The other ranks ignore
    /// SIGINT; SIGTERM reaches them only when the launcher ends the job (mpirun signalled, or a rank lost): they
    /// say where they were and stop taking part. Rank 0 then sees its loop stop advancing and ends every open
    /// request with an error instead of leaving its clients a cut connection.
    static func drainOnSignals(rank: Int, queue: ServeQueue) -> [any DispatchSourceSignal] {
        if rank != 0 { LastWait.installStopReport() }
        return (rank == 0 ? [SIGTERM, SIGINT] : [SIGINT]).map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            if rank == 0 {
                source.setEventHandler {
                    printError("moerun: signal \(sig): draining (no new requests; running ones finish)")
                    // One watcher, however many signals arrive.
                    if queue.drain() { watchForStall(queue) }
                }
            }
            source.resume()
            return source
        }
    }

    /// While draining: when the loop makes no tick for 3x its longest recent tick (at least 0.3 s) with requests
    /// open, the job is being torn down (OpenMPI kills what is left 1 s after its SIGTERM): fail them now.
    static func watchForStall(_ queue: ServeQueue) {
        Thread.detachNewThread {
            var seen = queue.tickCount
            var advanced = Date()
            while queue.failureMessage == nil {
                usleep(20_000)
                let ticks = queue.tickCount
                if ticks != seen {
                    seen = ticks
                    advanced = Date()
                    continue
                }
                let quiet = Date().timeIntervalSince(advanced)
                if quiet > max(0.3, 3 * queue.longestRecentTick) && queue.openRequests > 0 {
                    let line = "the engine loop stopped after SIGTERM (no tick for \(String(format: "%.1f", quiet)) s): the launcher is "
                        + "ending the job (a rank exited or was killed, or mpirun itself was signalled); to drain instead, "
                        + "send SIGTERM to rank 0 alone (pid \(getpid()))"
                    printError("moerun: " + line)
                    queue.fail(line)
                }
            }
        }
    }
}

private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}

