// The single-rank model against transformers 5.23 references: logits at every prompt position and the logits of
// every greedy step within tolerance, greedy continuations identical. Runs the real loading path (checkpoint
// directory -> config validation -> shard reads -> engine).
import Comm
import Kernels
import Models
import Parallel
import Runtime
import Testing
import TestSupport

func generate(_ fixture: String, cases: [FixtureCase], pp: Int = 1, ep: Int = 1) throws -> [GenerationResult] {
    let opened = try ModelLoading.open(Fixtures.path(fixture))
    let plan = try ParallelPlan.make(model: opened.config.shape, ranks: pp * ep, pp: pp, ep: ep)
    let requests = cases.map { GenerationRequest(prompt: $0.prompt, maxNewTokens: $0.greedy.count) }
    return try LocalCommunicator.run(ranks: pp * ep, timeout: 30) { comm -> [GenerationResult]? in
        var options = EngineOptions()
        options.keepLogits = true
        let engine = try Engine(world: comm, config: opened.config, source: opened.checkpoint, plan: plan, options: options)
        return try engine.generate(comm.rank == 0 ? requests : [], eosTokens: [])
    }[0]!
}

@Suite struct TransformersMatchTests {
    /// fp32 compute on the stored weights (F32, BF16 or FP8 blocks dequantized exactly) vs transformers in float32.
    @Test(arguments: Fixtures.all)
    func logitsAndGreedyMatchFloat32Reference(fixture: String) throws {
        let cases = try Fixtures.cases(fixture)
        let results = try generate(fixture, cases: cases)
        var worst: Float = 0
        for (c, r) in zip(cases, results) {
            #expect(r.tokens == c.greedy, "\(fixture) prompt \(c.prompt)")
            let diff = max(maxAbsDiff(r.promptLogits, c.logits), maxAbsDiff(r.stepLogits, c.stepLogits))
            worst = max(worst, diff)
            #expect(diff < 1e-4, "\(fixture) prompt \(c.prompt): max |diff| \(diff)")
        }
        print("\(fixture): max |diff| vs transformers float32 = \(worst)")
    }

    /// transformers' native bf16 run rounds every activation; the greedy tokens must still agree.
    @Test(arguments: ["dsv3-tiny-bf16", "dsv3-fp8"])
    func greedyMatchesNativeBF16Run(fixture: String) throws {
        let cases = try Fixtures.cases(fixture, key: "cases_bf16")
        let results = try generate(fixture, cases: cases)
        for (c, r) in zip(cases, results) {
            #expect(r.tokens == c.greedy, "\(fixture) prompt \(c.prompt)")
        }
    }

    @Test func absorbedAndNaiveAttentionAgreeOnFixture() throws {
        let opened = try ModelLoading.open(Fixtures.path("kimi-k2-tiny-fp32"))
        let config = try #require(opened.config as? ModelConfig)
        let prompt = try Fixtures.cases("kimi-k2-tiny-fp32")[2].prompt
        var logits: [AttentionMode: Matrix] = [:]
        for mode in AttentionMode.allCases {
            let model = try DeepSeekModel(config: config, source: opened.checkpoint)
            logits[mode] = try model.forward(tokens: prompt, positions: Array(prompt.indices), cache: KVCache(config: config), mode: mode)
        }
        #expect(logits[.naive]!.maxAbsDiff(logits[.absorbed]!) < 1e-4)
    }
}


/// Each rank reads only its own tensors from the original safetensors: with ep = 4 a rank touches its
/// replicated tensors and its 2 of 8 experts, never another rank's experts.
@Test func ranksReadOnlyTheirOwnTensors() throws {
    let path = Fixtures.path("dsv3-tiny-fp32")
    let config = try ModelLoading.open(path).config
    let plan = try ParallelPlan.make(model: config.shape, ranks: 4, pp: 1, ep: 4)
    let touched = try LocalCommunicator.run(ranks: 4) { comm -> (touched: Int, held: Int) in
        let opened = try ModelLoading.open(path)  // one reader per rank, as in separate processes
        let engine = try Engine(world: comm, config: opened.config, source: opened.checkpoint, plan: plan, options: EngineOptions())
        engine.preload { _, _ in }
        return (opened.checkpoint.touchedTensorBytes, engine.weightBytes)
    }
    let everything = try ModelLoading.open(path).checkpoint
    let total = try everything.allInfos().reduce(0) { $0 + $1.byteCount }
    for (rank, t) in touched.enumerated() {
        // Weights it holds plus its norm / bias vectors (a few KiB), far from the whole checkpoint.
        #expect(t.touched >= t.held && t.touched - t.held < 16 << 10, "rank \(rank): touched \(t.touched), holds \(t.held)")
        #expect(t.touched < total * 3 / 4, "rank \(rank) read \(t.touched) of \(total) bytes")
    }
}
