// Tensor-parallel plans: the split rule owns every head, column, hidden output and vocabulary row exactly once for
// uneven splits too; `pp=P,dp=D,tp=T` parses and builds groups of consecutive lanes; bad plans fail before loading
// and say what would work.
import Models
import Parallel
import Testing

@Suite struct TensorParallelPlanTests {
    /// 128 heads over 3, 18432 columns over 5, 129280 vocabulary rows over 7, and small uneven cases.
    @Test(arguments: [(128, 3), (18432, 5), (129280, 7), (7168, 3), (4, 3), (5, 5), (64, 8)])
    func everyUnitIsOwnedExactlyOnce(count: Int, parts: Int) {
        let blocks = TensorSplit.blocks(count: count, parts: parts)
        #expect(blocks.count == parts)
        #expect(blocks.first?.lowerBound == 0 && blocks.last?.upperBound == count)
        for (a, b) in zip(blocks, blocks.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
        let sizes = blocks.map(\.count)
        #expect(sizes.max()! - sizes.min()! <= 1 && sizes.min()! >= 1)
        for p in 0..<parts { #expect(TensorSplit.block(count: count, parts: parts, index: p) == blocks[p]) }
    }

    @Test func parsesTensorParallelShapes() throws {
        #expect(try ParallelPlan.parse("pp=2,dp=2,tp=2", ranks: 8) == (2, 4, 2))
        #expect(try ParallelPlan.parse("tp=2", ranks: 4) == (1, 4, 2))
        #expect(try ParallelPlan.parse("pp=2,tp=2", ranks: 4) == (2, 2, 2))
        #expect(try ParallelPlan.parse("dp=3", ranks: 6) == (2, 3, 1))
        #expect(throws: PlanError.self) { try ParallelPlan.parse("ep=2,tp=2", ranks: 4) }
    }

    @Test func groupsAreConsecutiveLanesAndExpertsSpanTheStage() throws {
        let shape = ModelPreset.deepseekV3.config.shape
        let plan = try ParallelPlan.make(model: shape, ranks: 8, spec: try ParallelPlan.parseSpec("pp=2,dp=2,tp=2", ranks: 8))
        #expect(plan.pp == 2 && plan.ep == 4 && plan.dp == 2 && plan.tp == 2)
        #expect((0..<4).map(plan.group(ofLane:)) == [0, 0, 1, 1] && (0..<4).map(plan.tpRank(ofLane:)) == [0, 1, 0, 1])
        #expect(plan.laneExperts.map(\.count) == [64, 64, 64, 64])
        #expect(plan.shapeText == "pp=2,dp=2,tp=2" && plan.spec(model: shape).text == "pp=2,dp=2,tp=2")
        #expect(plan.summary.contains { $0.contains("tensor-parallel groups of 2") })
    }

    @Test func badTensorParallelPlansSayWhatWouldWork() throws {
        let ds = ModelPreset.deepseekV3.config.shape
        do { _ = try ParallelPlan.make(model: ds, ranks: 6, pp: 1, ep: 6, tp: 4) } catch let e as PlanError {
            #expect(e.message.contains("tp=4 does not divide the 6 ranks per stage") && e.suggestion.contains("2, 3, 6"))
        }
        let tiny = ModelShape(hidden: 8, vocab: 16, layers: [LayerShape(mixer: .mla(MLAShape(heads: 2, qLoraRank: nil, kvLoraRank: 4,
            qkNopeHeadDim: 4, qkRopeHeadDim: 2, vHeadDim: 4)), ffn: .moe(MoEShape(experts: 8, topK: 2, width: 4, sharedWidth: 0)))])
        do { _ = try ParallelPlan.make(model: tiny, ranks: 3, pp: 1, ep: 3, tp: 3) } catch let e as PlanError {
            #expect(e.message.contains("exceeds the model's 2 attention heads") && e.suggestion.contains("tp <= 2"))
        }
        // Grouped-query attention splits by KV heads (Qwen3-30B-A3B has 4); MiniMax-M2's whole-projection norm not at all.
        let qwen = FamilyPreset.qwen3_30b.config.shape, minimax = FamilyPreset.minimaxM2.config.shape
        #expect(try ParallelPlan.make(model: qwen, ranks: 4, pp: 1, ep: 4, tp: 4).tp == 4)
        do { _ = try ParallelPlan.make(model: qwen, ranks: 8, pp: 1, ep: 8, tp: 8) } catch let e as PlanError {
            #expect(e.message.contains("exceeds the model's 4 attention heads (KV heads"))
        }
        do { _ = try ParallelPlan.make(model: minimax, ranks: 2, pp: 1, ep: 2, tp: 2) } catch let e as PlanError {
            #expect(e.message.contains("whole projection"))
        }
        #expect(throws: PlanError.self) { try ParallelPlan.make(model: ds, ranks: 6, pp: 1, ep: 6, tp: 4) }
        #expect(throws: PlanError.self) { try ParallelPlan.make(model: tiny, ranks: 3, pp: 1, ep: 3, tp: 3) }
        #expect(throws: PlanError.self) { try ParallelPlan.make(model: qwen, ranks: 8, pp: 1, ep: 8, tp: 8) }
        #expect(throws: PlanError.self) { try ParallelPlan.make(model: minimax, ranks: 2, pp: 1, ep: 2, tp: 2) }
    }
}

/// The planner with tensor parallelism: it weighs tp against pp / ep for an MLA model, holds each rank's share of the
/// split weights, counts the group's all-gathers, and leaves grouped-query models at tp = 1.
@Suite struct TensorParallelPlanning {
    func plan(_ config: any FamilyConfiguration, batch: Int = 1, pp: Int? = nil, ep: Int? = nil, tp: Int? = nil) throws -> ClusterPlanReport {
        try ClusterPlanner.plan(PlanRequest(model: config.shape, specs: config.mainTensorSpecs, modelName: config.modelType, modelPath: "/m",
                                            dtype: .fp8, cluster: try loadCluster("cpu16-100g.yaml"),
                                            workload: Workload(batch: batch, context: 4096), pp: pp, ep: ep, tp: tp))
    }

    @Test func batchOneDecodeOfDeepSeekV3ChoosesTensorParallelism() throws {
        let ds = ModelPreset.deepseekV3.config
        let without = try plan(ds, tp: 1), with = try plan(ds)
        #expect(with.plan.tp > 1 && with.chosen)
        #expect(with.options.contains { $0.tp == 1 } && with.options.contains { $0.tp == 8 })
        #expect(with.options.filter(\.fits).allSatisfy { $0.timeToFirstTokenSeconds != nil && $0.decodeTokensPerSecond != nil })
        #expect(with.render().contains("first token after"))
        let a = try #require(without.prediction), b = try #require(with.prediction)
        #expect(b.decode.perRequestTokensPerSecond > 2 * a.decode.perRequestTokensPerSecond)
        #expect(b.timeToFirstTokenSeconds < a.timeToFirstTokenSeconds)
        #expect(b.decode.breakdown.network > 0)
    }

    @Test func eachRankHoldsItsShareOfTheSplitWeights() throws {
        let ds = ModelPreset.deepseekV3.config
        let weights = WeightBreakdown(model: ds.shape, specs: ds.mainTensorSpecs, dtype: .fp8)
        for tp in [2, 4, 8] {
            let r = try plan(ds, pp: 2, ep: 16, tp: tp)
            #expect(r.plan.tp == tp)
            #expect(r.ranks.reduce(0) { $0 + $1.weightBytes } == weights.totalBytes + r.replicationBytes)
            // Layer 3 (MoE): attention, norms, router and shared expert as one rank of the group holds them.
            let split = weights.layerSplit[3].values.reduce(0) { $0 + $1.bytes }, whole = weights.layerReplicated[3].values.reduce(0) { $0 + $1.bytes }
            let held = weights.layerReplicated[3].keys.reduce(0) { $0 + weights.layerPart(3, $1, tp: tp)!.bytes }
            #expect(held >= whole - split + split / tp && held <= whole - split + split / tp + 8)
        }
        #expect(weights.layerSplit[3][.router] == nil && weights.layerSplit[3][.sharedExpert] == weights.layerReplicated[3][.sharedExpert])
    }

    @Test func groupedQueryModelsSplitByKVHeads() throws {
        let qwen = try plan(FamilyPreset.qwen3_235b.config)
        #expect(qwen.options.allSatisfy { $0.tp <= 4 } && qwen.options.contains { $0.tp == 4 })
        let minimax = try plan(FamilyPreset.minimaxM2.config)
        #expect(minimax.options.allSatisfy { $0.tp == 1 } && minimax.plan.tp == 1)
    }
}
