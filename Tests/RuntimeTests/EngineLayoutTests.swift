// Layout invariance of the engine in-process (LocalCommunicator ranks as threads): every pp x ep layout
// produces the same greedy tokens and bit-identical logits as one rank. The same engine runs under mpirun
// in IntegrationTests.
import Comm
import Models
import Parallel
import Runtime
import Testing
import TestSupport

@Suite struct EngineLayoutTests {
    static let requests = [
        GenerationRequest(prompt: [5, 17, 42], maxNewTokens: 5),
        GenerationRequest(prompt: [3], maxNewTokens: 4),
        GenerationRequest(prompt: [9, 8, 7, 6, 5, 4, 3], maxNewTokens: 6),
        GenerationRequest(prompt: [60, 61], maxNewTokens: 3),
        GenerationRequest(prompt: [11, 12, 13, 14], maxNewTokens: 5),
    ]

    func run(pp: Int, ep: Int, capacity: Int = 2, microBatches: Int? = nil, tp: Int = 1, format: WeightFormat = .f32,
             threads: Int = 1) throws -> [GenerationResult] {
        let config = try tinyConfig()
        let source = randomSource(config, seed: 7, format: format)
        let plan = try ParallelPlan.make(model: config.shape, ranks: pp * ep, pp: pp, ep: ep, tp: tp)
        let perRank = try LocalCommunicator.run(ranks: pp * ep, timeout: 20) { comm -> [GenerationResult]? in
            var options = EngineOptions()
            options.threads = threads
            options.keepLogits = true
            options.maxSequencesPerLane = capacity
            options.microBatches = microBatches
            let engine = try Engine(world: comm, config: config, source: source, plan: plan, options: options)
            return try engine.generate(comm.rank == 0 ? Self.requests : [], eosTokens: [])
        }
        return perRank[0]!
    }

    @Test(arguments: [(1, 2), (2, 1), (1, 4), (2, 2), (3, 2), (1, 3), (3, 1)])
    func layoutMatchesOneRankBitwise(pp: Int, ep: Int) throws {
        let reference = try run(pp: 1, ep: 1)
        let sharded = try run(pp: pp, ep: ep)
        #expect(reference.count == Self.requests.count)
        for (a, b) in zip(reference, sharded) {
            #expect(a.tokens == b.tokens)
            #expect(a.promptLogits == b.promptLogits, "prompt logits differ for pp=\(pp) ep=\(ep)")
            #expect(a.stepLogits == b.stepLogits, "step logits differ for pp=\(pp) ep=\(ep)")
        }
    }

    /// Tensor parallelism (heads, FFN columns, hidden outputs and vocabulary split by output features, gathered):
    /// tp = 2 and 3 (4 heads over 3 ranks), with stages and with two groups, in F32 and BF16, on one and two threads.
    @Test(arguments: [(1, 1, 2), (1, 1, 3), (2, 1, 2), (1, 2, 2), (2, 2, 2)], [(WeightFormat.f32, 1), (.bf16, 2)])
    func tensorParallelLayoutMatchesOneRankBitwise(layout: (pp: Int, dp: Int, tp: Int), weights: (format: WeightFormat, threads: Int)) throws {
        let reference = try run(pp: 1, ep: 1, format: weights.format, threads: weights.threads)
        let split = try run(pp: layout.pp, ep: layout.dp * layout.tp, tp: layout.tp, format: weights.format, threads: weights.threads)
        let name = "pp=\(layout.pp),dp=\(layout.dp),tp=\(layout.tp) \(weights.format)"
        for (a, b) in zip(reference, split) {
            #expect(a.tokens == b.tokens, "\(name)")
            #expect(a.promptLogits == b.promptLogits && a.stepLogits == b.stepLogits, "logits differ for \(name)")
        }
    }

    /// FP8 blocks: shares that start on 128-row blocks are views and bit-exact (a config whose every split is aligned);
    /// a split inside a block is refused, naming the tensor, before anything runs.
    @Test func tensorParallelFP8SplitsOnBlocksOrFailsByName() throws {
        let aligned = try tinyConfig {
            $0["hidden_size"] = 256; $0["intermediate_size"] = 256; $0["moe_intermediate_size"] = 256; $0["vocab_size"] = 256
            $0["q_lora_rank"] = 128; $0["kv_lora_rank"] = 64; $0["qk_nope_head_dim"] = 48; $0["qk_rope_head_dim"] = 16
            $0["v_head_dim"] = 16; $0["n_routed_experts"] = 4; $0["num_experts_per_tok"] = 2; $0["n_group"] = 1; $0["topk_group"] = 1
            $0["num_hidden_layers"] = 2
        }
        let source = randomSource(aligned, seed: 3, format: .fp8)
        func run(tp: Int) throws -> [GenerationResult] {
            let plan = try ParallelPlan.make(model: aligned.shape, ranks: tp, pp: 1, ep: tp, tp: tp)
            return try LocalCommunicator.run(ranks: tp, timeout: 30) { comm -> [GenerationResult]? in
                var options = EngineOptions()
                options.keepLogits = true
                let engine = try Engine(world: comm, config: aligned, source: source, plan: plan, options: options)
                return try engine.generate(comm.rank == 0 ? Array(Self.requests.prefix(2)) : [], eosTokens: [])
            }[0]!
        }
        let one = try run(tp: 1), two = try run(tp: 2)
        for (a, b) in zip(one, two) { #expect(a.tokens == b.tokens && a.promptLogits == b.promptLogits && a.stepLogits == b.stepLogits) }

        let config = try tinyConfig()
        let plan = try ParallelPlan.make(model: config.shape, ranks: 2, pp: 1, ep: 2, tp: 2)
        #expect {
            try LocalCommunicator.run(ranks: 2, timeout: 20) { comm -> Int in
                _ = try Engine(world: comm, config: config, source: randomSource(config, seed: 7, format: .fp8), plan: plan, options: EngineOptions())
                return 0
            }
        } throws: { error in
            "\(error)".contains("128-row FP8 block") && "\(error)".contains("model.layers.0.self_attn.q_b_proj.weight")
        }
    }

    @Test func resultsMatchPlainForwardAndCounts() throws {
        let config = try tinyConfig()
        let model = try DeepSeekModel(config: config, source: randomSource(config, seed: 7))
        let results = try run(pp: 1, ep: 1, capacity: 1)
        for (request, result) in zip(Self.requests, results) {
            #expect(result.tokens.count == request.maxNewTokens)
            #expect(result.promptLogits.count == request.prompt.count)
            #expect(result.stepLogits.count == request.maxNewTokens)
            // Greedy continuation recomputed with one full forward over prompt + generated tokens.
            let all = request.prompt + result.tokens
            let logits = try model.forward(tokens: all, positions: Array(0..<all.count), cache: KVCache(config: config))
            for (i, token) in result.tokens.enumerated() {
                let row = logits.row(request.prompt.count - 1 + i)
                #expect(Sampler.argmax(row) == token)
            }
        }
    }

    @Test func microBatchCountDoesNotChangeResults() throws {
        let a = try run(pp: 3, ep: 1, microBatches: 1)
        let b = try run(pp: 3, ep: 1, microBatches: 3)
        #expect(a.map(\.tokens) == b.map(\.tokens))
        #expect(a.map(\.stepLogits) == b.map(\.stepLogits))
    }
}

@Suite struct ShardMemoryTests {
    /// With ep = E every rank of a stage holds 1/E of the stage's routed-expert bytes (8 experts: 2 per rank)
    /// and the same replicated bytes; with pp = 2 the stages split the layers.
    @Test(arguments: [(1, 4), (2, 2), (1, 2)])
    func eachRankHoldsItsShareOfRoutedExperts(pp: Int, ep: Int) throws {
        let config = try tinyConfig()
        let source = randomSource(config, seed: 2)
        let full = try LocalCommunicator.run(ranks: 1) { comm in
            try Engine(world: comm, config: config, source: source, plan: ParallelPlan.make(model: config.shape, ranks: 1, pp: 1, ep: 1),
                       options: EngineOptions()).memory()
        }[0]
        let plan = try ParallelPlan.make(model: config.shape, ranks: pp * ep, pp: pp, ep: ep)
        let shards = try LocalCommunicator.run(ranks: pp * ep) { comm in
            try Engine(world: comm, config: config, source: source, plan: plan, options: EngineOptions()).memory()
        }
        #expect(shards.reduce(0) { $0 + $1.routedExpertBytes } == full.routedExpertBytes)
        for stage in 0..<pp {
            let members = shards.filter { $0.stage == stage }
            let stageRouted = members.reduce(0) { $0 + $1.routedExpertBytes }
            for m in members {
                #expect(m.routedExpertBytes * ep == stageRouted, "rank \(m.rank)")
                #expect(m.otherWeightBytes == members[0].otherWeightBytes, "replicated tensors are the same on every lane")
            }
        }
    }
}
