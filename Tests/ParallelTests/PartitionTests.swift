// Property tests of the partition math: every layer and every expert owned exactly once, for 1...64 ranks,
// 61 layers x 256 / 384 experts; impossible plans fail with a message that says what would work.
import Foundation
import Models
import Parallel
import Testing

/// DeepSeek-V3 (256 experts, 3 dense) and Kimi K2 (384 experts, 1 dense) shapes, decoded through the real path.
func shapeConfig(experts: Int, dense: Int, heads: Int) throws -> ModelConfig {
    let json = """
    {"model_type": "deepseek_v3", "vocab_size": 129280, "hidden_size": 7168, "intermediate_size": 18432,
     "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_attention_heads": \(heads), "q_lora_rank": 1536,
     "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
     "n_routed_experts": \(experts), "num_experts_per_tok": 8, "n_shared_experts": 1, "n_group": 8, "topk_group": 4,
     "routed_scaling_factor": 2.5, "norm_topk_prob": true, "first_k_dense_replace": \(dense),
     "rms_norm_eps": 1e-6, "max_position_embeddings": 163840}
    """
    return try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8))
}

@Suite struct PartitionProperties {
    @Test(arguments: [256, 384])
    func everyLayerAndExpertOwnedExactlyOnceForEveryRankCount(experts: Int) throws {
        let config = try shapeConfig(experts: experts, dense: experts == 256 ? 3 : 1, heads: experts == 256 ? 128 : 64)
        for ranks in 1...64 {
            for pp in (1...ranks) where ranks % pp == 0 && pp <= 61 {
                let ep = ranks / pp
                let plan = try ParallelPlan.make(model: config.shape, ranks: ranks, pp: pp, ep: ep)
                // Layers: contiguous, non-empty, covering 0..<61 exactly once in order.
                #expect(plan.stageLayers.count == pp)
                #expect(plan.stageLayers.first?.lowerBound == 0 && plan.stageLayers.last?.upperBound == 61)
                for (a, b) in zip(plan.stageLayers, plan.stageLayers.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
                #expect(plan.stageLayers.allSatisfy { !$0.isEmpty })
                // Experts: each logical expert has exactly one slot; lanes hold disjoint blocks covering all.
                var owners = [Int](repeating: 0, count: experts)
                for lane in 0..<ep { for e in plan.localExperts(lane: lane) { owners[e.value] += 1 } }
                #expect(owners.allSatisfy { $0 == 1 }, "ranks \(ranks) pp \(pp) ep \(ep)")
                for e in 0..<experts {
                    let slots = plan.slots(of: ExpertID(e))
                    #expect(slots.count == 1)
                    #expect(plan.localExperts(lane: slots[0].lane)[slots[0].local] == ExpertID(e))
                }
                // Balance of experts: lane sizes differ by at most one.
                let sizes = plan.laneExperts.map(\.count)
                #expect(sizes.max()! - sizes.min()! <= 1)
                // Rank geometry round-trips.
                for r in 0..<ranks {
                    #expect(plan.rank(stage: plan.stage(of: Rank(r)), lane: plan.lane(of: Rank(r))) == Rank(r))
                }
            }
        }
    }

    @Test(arguments: [2, 3, 4, 5, 8])
    func unevenStageCountsBalanceCost(stages: Int) throws {
        let config = try shapeConfig(experts: 256, dense: 3, heads: 128)
        let plan = try ParallelPlan.make(model: config.shape, ranks: stages, pp: stages, ep: 1)
        let counts = plan.stageLayers.map(\.count)
        #expect(counts.reduce(0, +) == 61)
        // Balanced: no stage has more than twice the layers of another (embedding / head shift a few layers).
        #expect(counts.max()! <= 2 * counts.min()! + 1, "\(counts)")
    }

    @Test func expertsNeedNotDivideRanks() throws {
        let config = try shapeConfig(experts: 384, dense: 1, heads: 64)
        let plan = try ParallelPlan.make(model: config.shape, ranks: 5, pp: 1, ep: 5)
        #expect(plan.laneExperts.map(\.count) == [77, 77, 77, 77, 76])
    }

    @Test func partitionIsOptimalOnSmallCases() {
        // Exhaustive check: the DP's max part cost equals the best over all cut positions.
        let costs: [Double] = [5, 1, 1, 9, 2, 2, 7, 3]
        for parts in 1...costs.count {
            let ranges = Partition.contiguous(costs: costs, parts: parts)
            let got = ranges.map { r in r.map { costs[$0] }.reduce(0, +) }.max()!
            #expect(got == bruteForceBest(costs, parts), "parts \(parts)")
        }
    }

    func bruteForceBest(_ costs: [Double], _ parts: Int) -> Double {
        if parts == 1 { return costs.reduce(0, +) }
        var best = Double.infinity
        for first in 1...(costs.count - parts + 1) {
            let head = costs[0..<first].reduce(0, +)
            best = min(best, max(head, bruteForceBest(Array(costs[first...]), parts - 1)))
        }
        return best
    }

    @Test func impossiblePlansFailWithSuggestions() throws {
        let config = try shapeConfig(experts: 256, dense: 3, heads: 128)
        #expect(throws: PlanError.self) { try ParallelPlan.make(model: config.shape, ranks: 6, pp: 2, ep: 2) }
        do {
            _ = try ParallelPlan.make(model: config.shape, ranks: 6, pp: 2, ep: 2)
        } catch let error as PlanError {
            #expect(error.message.contains("needs 4 ranks but 6 were launched"))
            #expect(error.suggestion.contains("pp=2,ep=3"))
        }
        do {
            _ = try ParallelPlan.make(model: config.shape, ranks: 62, pp: 62, ep: 1)
            Issue.record("62 stages over 61 layers must fail")
        } catch let error as PlanError {
            #expect(error.message.contains("exceed the model's 61 layers"))
        }
        do {
            _ = try ParallelPlan.make(model: config.shape, ranks: 257, pp: 1, ep: 257)
            Issue.record("257 expert ranks over 256 experts must fail")
        } catch let error as PlanError {
            #expect(error.message.contains("exceed the model's 256 routed experts"))
        }
    }

    @Test func parsesPlanStrings() throws {
        #expect(try ParallelPlan.parse("pp=2,ep=2", ranks: 4) == (2, 2, 1))
        #expect(try ParallelPlan.parse("ep=4", ranks: 8) == (2, 4, 1))
        #expect(try ParallelPlan.parse("pp=3", ranks: 6) == (3, 2, 1))
        #expect(throws: PlanError.self) { try ParallelPlan.parse("pp=two", ranks: 4) }
        #expect(throws: PlanError.self) { try ParallelPlan.parse("sp=2", ranks: 4) }
        #expect(throws: PlanError.self) { try ParallelPlan.parse("ep=3", ranks: 4) }
    }
}

