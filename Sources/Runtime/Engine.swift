// Engine: runs generation over N = pp x ep ranks (N = 1 included: same code, local dispatch, no sends).
// Per tick: rank 0 broadcasts a StepDescriptor; stage s works on the micro-batch issued s ticks ago
// (receive hidden from the previous stage, run its layers with all-to-all MoE, send on or sample);
// sampled tokens return to rank 0. All sends are asynchronous, so stages never block each other.
import Checkpoint
import Comm
import Foundation
import Kernels
import Models
import Parallel
import Tensors

/// Re-exported for the CLI (which imports Runtime, not Kernels).
public typealias MatmulPrecision = Kernels.MatmulPrecision
public typealias WeightLayout = Tensors.WeightLayout

public struct EngineOptions: Sendable {
    /// Whether this CPU runs `MatmulPrecision.bf16` (AVX-512 BF16).
    public static var bf16DotAvailable: Bool { CPUFeatures.avx512bf16 }
    /// Micro-batch groups in flight (default: one per stage, which keeps every stage busy).
    public var microBatches: Int?
    /// Sequences one lane may hold at once (continuous batching refills freed slots).
    public var maxSequencesPerLane: Int = 16
    public var sampling = SamplingParameters()
    /// Keep full-vocabulary logits of every prompt position and every generated token (for --dump-logits).
    public var keepLogits = false
    public var threads = 1
    /// Activation precision of products with BF16 weights (`.bf16` needs AVX-512 BF16; see `MatmulPrecision`).
    public var matmulPrecision: MatmulPrecision = .fp32
    /// Projection weights as mapped from the checkpoint, or copied into the decode kernels' interleaved row groups
    /// (default where the AVX-512 kernels run: batch-1 decode streams one ascending run per block; same results).
    public var weightLayout: WeightLayout = CPUFeatures.avx512 ? .interleaved : .checkpoint
    /// Whether loading copies the projection weights (the interleaved layout where its kernels run).
    public var copiesWeights: Bool { weightLayout == .interleaved && CPUFeatures.avx512 }
    public var trace = false
    public var attention: AttentionMode?
    /// Test-only fault: this rank kills itself (SIGKILL) at this tick.
    public var killAt: (rank: Int, tick: Int)?

    public init() {}
}

/// Timing of one `generate` call, measured on rank 0.
public struct GenerationStats: Sendable, Codable {
    public var seconds: Double = 0
    /// Until the first sampled token reached the coordinator.
    public var firstTokenSeconds: Double = 0
    public var promptTokens = 0
    public var generatedTokens = 0
    public var sequences = 0
    public var ticks = 0

    /// Prompt tokens per second up to the first token (prefill-dominated).
    public var prefillTokensPerSecond: Double { firstTokenSeconds > 0 ? Double(promptTokens) / firstTokenSeconds : 0 }
    /// Tokens generated after the first ones, per second of the remaining time (decode).
    public var decodeTokensPerSecond: Double {
        let rest = seconds - firstTokenSeconds
        return rest > 0 ? Double(generatedTokens - sequences) / rest : 0
    }
}

/// What a rank measured about itself after loading.
public struct RankMemory: Sendable, Codable {
    public var rank: Int
    public var stage: Int
    public var lane: Int
    public var layers: String
    public var experts: String
    public var routedExpertBytes: Int
    public var otherWeightBytes: Int
    public var residentBytes: Int
}

/// A broken invariant of the engine loop, named with its tick and sequence (ends the job on every rank).
public struct EngineError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public final class Engine {
    public let world: any Communicator
    public let stageComm: any Communicator
    public let plan: ParallelPlan
    public let config: any FamilyConfiguration
    /// The family-free facts of `config` (sizes, MoE layers, cache widths) the loop and the bookkeeping read.
    public let shape: ModelShape
    public let model: DecoderModel
    public let tracer: Tracer
    public private(set) var options: EngineOptions
    public let stage: Int
    /// This rank's lane: its block of routed experts in the stage.
    public let lane: Int
    /// The lane group that serves this rank's sequences (the lane itself without tensor parallelism).
    public let group: Int
    /// This rank's place in its tensor-parallel group (0 without tensor parallelism).
    public let tpRank: Int
    private let allToAll: AllToAllDispatcher?
    private var caches: [Int: KVCache] = [:]
    private let moeLayers: [Int]
    /// (token, expert) pairs routed from this rank's tokens, flat [layer * n_routed_experts + expert].
    private var expertCounts: [Int64]
    /// Timing of the last `generate` (rank 0).
    public private(set) var lastStats = GenerationStats()

    static let hiddenTag = 21
    static let tokenTag = 22
    static let logitTag = 23

    /// Build this rank's shard: split the stage communicator, pick the dispatcher, load only this rank's tensors.
    /// `progress`: (layers done, layers) of this rank's stage while they are prepared (see `FamilyConfiguration.loadModel`).
    public init(world: any Communicator, config: any FamilyConfiguration, source: any TensorSource, plan: ParallelPlan,
                options: EngineOptions, progress: ((Int, Int) -> Void)? = nil) throws {
        precondition(plan.rankCount == world.size, "plan for \(plan.rankCount) ranks on a world of \(world.size)")
        self.world = world
        self.plan = plan
        self.config = config
        shape = config.shape
        self.options = options
        self.expertCounts = [Int64](repeating: 0, count: shape.layerCount * shape.routedExperts)
        let me = Rank(world.rank)
        stage = plan.stage(of: me)
        lane = plan.lane(of: me)
        group = plan.group(ofLane: lane)
        tpRank = plan.tpRank(ofLane: lane)
        tracer = Tracer(enabled: options.trace, rank: world.rank, stage: stage)
        world.setContext("creating stage communicators")
        guard let sub = try world.split(color: stage, key: lane) else {
            throw CommError(.invalidArgument, call: "split", message: "no stage communicator", rank: world.rank)
        }
        stageComm = sub
        let tensorParallel: any TensorParallelGroup
        if plan.tp > 1 {
            world.setContext("creating tensor-parallel groups")
            guard let tpComm = try stageComm.split(color: group, key: tpRank) else {
                throw CommError(.invalidArgument, call: "split", message: "no tensor-parallel communicator", rank: world.rank)
            }
            tensorParallel = TensorParallelComm(comm: tpComm, tracer: tracer)
        } else {
            tensorParallel = SingleRank()
        }
        let layers = plan.stageLayers[stage]
        let shape = shape
        moeLayers = layers.filter { shape.isMoE($0) }
        let dispatcher: any ExpertDispatcher
        if plan.ep > 1 {
            let a2a = AllToAllDispatcher(comm: stageComm, plan: plan, lane: lane, tracer: tracer)
            allToAll = a2a
            dispatcher = a2a
        } else {
            allToAll = nil
            dispatcher = LocalDispatcher(experts: Set(plan.laneExperts[lane]))
        }
        let loadStart = tracer.begin()
        let shard = ModelShard(layers: layers, experts: Set(plan.laneExperts[lane]), includeEmbedding: stage == 0,
                               includeHead: stage == plan.pp - 1, tp: tensorParallel)
        model = try config.loadModel(source: source, shard: shard, dispatcher: dispatcher,
                                     pool: ComputePool(threads: options.threads, precision: options.matmulPrecision),
                                     weightLayout: options.weightLayout, progress: progress)
        model.phaseObserver = tracer  // records only while tracer.isEnabled
        if let mode = options.attention {
            model.prefillMode = mode
            model.decodeMode = mode
        }
        tracer.end(loadStart, .loading)
    }

    /// Collective: the expert load accumulated since the engine started (or the last reset), on rank 0.
    public func expertLoad(reset: Bool = false) throws -> ExpertLoad? {
        var totals = expertCounts
        world.setContext("gathering expert load")
        try world.allReduce(&totals, op: .sum)
        if reset { expertCounts = [Int64](repeating: 0, count: expertCounts.count) }
        return world.rank == 0 ? ExpertLoad(plan: plan, model: shape, flatCounts: totals) : nil
    }

    private var allWeights: [Weight] {
        let groups = model.weightInventory
        return groups.other + groups.routed
    }

    /// Bytes of all weights this rank holds (incl. block scales).
    public var weightBytes: Int { allWeights.reduce(0) { $0 + $1.byteCount } }

    /// Read every page of this rank's weights now (mapped checkpoints are otherwise read on first use, which
    /// would land in the first token's latency). `progress` gets (bytes done, bytes total).
    public func preload(progress: (Int, Int) -> Void) {
        let weights = allWeights
        let total = weights.reduce(0) { $0 + $1.byteCount }
        var done = 0
        var sink: UInt8 = 0
        for w in weights {
            let (base, count) = w.storageBytes
            var offset = 0
            while offset < count {
                sink &+= base.load(fromByteOffset: offset, as: UInt8.self)
                offset += 4096
            }
            done += w.byteCount
            progress(done, total)
        }
        if sink == 1 && total < 0 { print("") }  // keep the reads
    }

    /// Change the number of micro-batches in flight for later `generate` calls (nil = one per stage).
    public func setMicroBatches(_ count: Int?) { options.microBatches = count }

    /// Bytes of weights this rank holds, split into routed experts and everything else.
    public func memory() -> RankMemory {
        let (routedWeights, otherWeights) = model.weightInventory
        let routed = routedWeights.reduce(0) { $0 + $1.byteCount }, other = otherWeights.reduce(0) { $0 + $1.byteCount }
        let layers = plan.stageLayers[stage]
        let experts = plan.laneExperts[lane]
        return RankMemory(rank: world.rank, stage: stage, lane: lane, layers: "\(layers.lowerBound)..<\(layers.upperBound)",
                          experts: "\(experts.lowerBound)..<\(experts.upperBound)", routedExpertBytes: routed,
                          otherWeightBytes: other, residentBytes: ProcessMemory.residentBytes() ?? 0)
    }

    /// Generate for `requests` (rank 0's are used; other ranks may pass []). Returns results on rank 0, nil elsewhere.
    /// `onToken(request, token)` runs on rank 0 as each token arrives (streaming); returning true ends that request
    /// after this token with finish reason "stop".
    public func generate(_ requests: [GenerationRequest], eosTokens: Set<Int>,
                         onToken: ((_ request: Int, _ token: Int) -> Bool)? = nil) throws -> [GenerationResult]? {
        let coordinator = world.rank == 0
            ? Coordinator(requests: requests, lanes: plan.dp, microBatches: options.microBatches ?? plan.pp,
                          maxSequencesPerLane: options.maxSequencesPerLane, eosTokens: eosTokens, keepLogits: options.keepLogits,
                          defaultSampling: options.sampling)
            : nil
        var stats = GenerationStats()
        stats.promptTokens = requests.reduce(0) { $0 + $1.prompt.count }
        stats.sequences = requests.count
        try run(coordinator, stats: &stats, feed: nil, onToken: onToken)
        lastStats = stats
        return coordinator?.results
    }

    /// Serve requests until the feed closes the coordinator: every rank calls this; rank 0 passes the
    /// coordinator (made with `keepAlive`) and `feed`, which it calls before each tick to hand over submissions
    /// and cancellations (and to wait, briefly, while there is no work).
    public func serve(_ coordinator: Coordinator?, feed: ((Coordinator) -> Void)?,
                      onExpertLoad: ((ExpertLoad) -> Void)? = nil) throws {
        var stats = GenerationStats()
        try run(coordinator, stats: &stats, feed: feed, onToken: nil, onExpertLoad: onExpertLoad)
    }

    /// The tick loop shared by offline generation and serving.
    private func run(_ coordinator: Coordinator?, stats: inout GenerationStats, feed: ((Coordinator) -> Void)?,
                     onToken: ((_ request: Int, _ token: Int) -> Bool)?, onExpertLoad: ((ExpertLoad) -> Void)? = nil) throws {
        var history: [Int: StepDescriptor] = [:]
        var pending: [any PendingSend] = []
        var localResults: (tokens: [Int32], logits: [Float])? = nil
        let d = shape.hidden, vocab = shape.vocab
        var tick = 0
        let experts = shape.routedExperts
        let startTime = Tracer.now
        while true {
            if let coordinator, let feed { feed(coordinator) }
            // 1. The coordinator's descriptor for this tick reaches every rank.
            world.setContext("tick \(tick) step broadcast")
            let t0 = tracer.begin()
            var words = coordinator?.nextStep().encode() ?? []
            var count = [Int64(words.count)]
            try world.broadcast(&count, root: 0)
            if world.rank != 0 { words = [Int32](repeating: 0, count: Int(count[0])) }
            try world.broadcast(&words, root: 0)
            tracer.end(t0, .stepBroadcast, bytes: words.count * 4)
            let descriptor = StepDescriptor.decode(words)
            if descriptor.stop { break }
            if descriptor.countExperts, let load = try expertLoad(reset: true) { onExpertLoad?(load) }
            for id in descriptor.released { caches[id] = nil }
            history[descriptor.tick] = descriptor
            for p in pending { try p.wait() }
            pending.removeAll()

            if let fault = options.killAt, fault.rank == world.rank, fault.tick == tick {
                FileHandle.standardError.write("rank \(world.rank): injected fault: killing myself at tick \(tick)\n".data(using: .utf8)!)
                kill(getpid(), SIGKILL)
            }

            // 2. This stage's micro-batch: the one issued `stage` ticks ago.
            if let work = history[tick - stage], work.tokenCount > 0 {
                let label = "tick \(tick) micro-batch \(work.microBatch)"
                let entries = work.entries(lane: group)
                let rows = work.tokenCount(lane: group)
                var hidden: Matrix
                if stage == 0 {
                    hidden = try tracer.measure(.embedding) { try model.embed(entries.flatMap(\.tokens)) }
                } else if rows > 0 {
                    world.setContext("\(label) receive hidden from stage \(stage - 1)")
                    let start = tracer.begin()
                    let from = plan.rank(stage: stage - 1, lane: lane).value
                    let data: [Float] = try world.recv(count: rows * d, from: from, tag: Engine.hiddenTag)
                    tracer.end(start, .pipelineRecv, bytes: rows * d * 4)
                    hidden = Matrix(rows: rows, cols: d, data: data)
                } else {
                    hidden = Matrix(rows: 0, cols: d)
                }
                let segments = try entries.map { e -> SequenceSegment in
                    if e.forkFrom >= 0 && caches[e.sequence] == nil {
                        // Prefix cache hit: the shared prompt rows come from a retained sequence of this lane.
                        guard let base = caches[e.forkFrom] else {
                            throw EngineError("\(label): sequence \(e.sequence) forks the cache of sequence \(e.forkFrom), which rank \(world.rank) does not hold")
                        }
                        caches[e.sequence] = base.prefix(e.start)
                    } else if e.start == 0 || caches[e.sequence] == nil {
                        caches[e.sequence] = model.makeCache()
                    }
                    return SequenceSegment(cache: caches[e.sequence]!, count: e.tokens.count, startPosition: e.start)
                }
                world.setContext("\(label) layers \(plan.stageLayers[stage])")
                allToAll?.beginForward(moeLayers: moeLayers, step: label)
                hidden = try model.forwardLayers(hidden, segments: segments) { event in
                    if case .routing(let layer, let routing) = event {
                        for e in routing.experts { self.expertCounts[layer * experts + e] += 1 }
                    }
                }
                if stage < plan.pp - 1 {
                    if rows > 0 {
                        let start = tracer.begin()
                        pending.append(try world.sendAsync(hidden.data, to: plan.rank(stage: stage + 1, lane: lane).value, tag: Engine.hiddenTag))
                        tracer.end(start, .pipelineSend, bytes: rows * d * 4)
                    }
                } else if rows > 0 && entries.contains(where: \.sample) {
                    // Every rank of a tensor-parallel group takes part in the head's gather; the first one reports.
                    let (tokens, logits) = try tracer.measure(.head) { try sample(entries, hidden) }
                    if tpRank != 0 {
                        // Its group's first rank sends the same tokens.
                    } else if world.rank == 0 {
                        localResults = (tokens, logits)
                    } else {
                        pending.append(try world.sendAsync(tokens, to: 0, tag: Engine.tokenTag))
                        if options.keepLogits { pending.append(try world.sendAsync(logits, to: 0, tag: Engine.logitTag)) }
                    }
                }
            }

            // 3. Rank 0 collects the tokens of the micro-batch that left the last stage this tick.
            if let coordinator, let done = history[tick - (plan.pp - 1)], done.tokenCount > 0 {
                world.setContext("tick \(tick) collecting sampled tokens")
                for l in 0..<plan.dp {
                    let entries = done.entries(lane: l)
                    guard !entries.isEmpty else { continue }
                    let source = plan.rank(stage: plan.pp - 1, lane: l * plan.tp).value
                    let sampled = entries.filter(\.sample).count
                    var tokens: [Int32] = [], logits: [Float] = []
                    if sampled == 0 {
                        // Only prompt chunks before their last: nothing comes back.
                    } else if source == 0 {
                        (tokens, logits) = localResults!
                        localResults = nil
                    } else {
                        let start = tracer.begin()
                        tokens = try world.recv(count: sampled, from: source, tag: Engine.tokenTag)
                        let rows = entries.reduce(0) { $0 + $1.logitRows }
                        logits = options.keepLogits ? try world.recv(count: rows * vocab, from: source, tag: Engine.logitTag) : []
                        tracer.end(start, .tokensReturn, bytes: tokens.count * 4 + logits.count * 4)
                    }
                    var row = 0, i = 0
                    for e in entries {
                        guard e.sample else {
                            coordinator.advance(e)
                            continue
                        }
                        defer { i += 1 }
                        var kept: [[Float]] = []
                        if options.keepLogits {
                            for r in 0..<e.logitRows { kept.append(Array(logits[((row + r) * vocab)..<((row + r + 1) * vocab)])) }
                            row += e.logitRows
                        }
                        let stop = onToken?(e.sequence, Int(tokens[i])) ?? false
                        coordinator.complete(e, token: Int(tokens[i]), logits: kept, stop: stop)
                        stats.generatedTokens += 1
                        if stats.firstTokenSeconds == 0 { stats.firstTokenSeconds = Double(Tracer.now - startTime) / 1e9 }
                    }
                }
            }
            history = history.filter { $0.key > tick - plan.pp }
            tick += 1
        }
        for p in pending { try p.wait() }
        stats.seconds = Double(Tracer.now - startTime) / 1e9
        stats.ticks = tick
    }

    /// Last stage: logits for the rows each entry needs (last position, or all with keepLogits), then sample.
    private func sample(_ entries: [StepEntry], _ hidden: Matrix) throws -> (tokens: [Int32], logits: [Float]) {
        var rowsNeeded: [Int] = []
        var row = 0
        for e in entries {
            let n = e.tokens.count
            if e.sample { rowsNeeded += e.allLogits ? Array(row..<(row + n)) : [row + n - 1] }
            row += n
        }
        let logits = try model.finalLogits(hidden.gatherRows(rowsNeeded))
        var tokens: [Int32] = []
        var r = 0
        for e in entries where e.sample {
            let last = r + e.logitRows - 1
            let sampled = Sampler.sample(logits.row(last), parameters: e.sampling, sequence: e.samplingKey, step: e.step)
            tokens.append(Int32(sampled))
            r += e.logitRows
        }
        return (tokens, options.keepLogits ? logits.data : [])
    }
}
