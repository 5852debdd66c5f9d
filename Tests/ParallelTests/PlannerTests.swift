// Real-size planning: DeepSeek-V3 and Kimi K2 at FP8 fit the shipped 16-node cluster with per-rank memory shown,
// the small cluster is rejected with the shortfall in GB, per-rank weights sum to the model plus replication,
// unequal nodes get proportionally more experts, and the launch lines name every rank.
import Foundation
import Models
import Parallel
import Testing

func realPlan(_ preset: ModelPreset, _ file: String, batch: Int = 32, context: Int = 8192, dtype: WeightDType = .fp8,
              pp: Int? = nil, ep: Int? = nil) throws -> ClusterPlanReport {
    try ClusterPlanner.plan(PlanRequest(model: preset.config.shape, specs: TensorTable(config: preset.config).mainSpecs, modelName: preset.rawValue, modelPath: "/models/\(preset.rawValue)",
                                        dtype: dtype, cluster: try loadCluster(file), workload: Workload(batch: batch, context: context),
                                        pp: pp, ep: ep))
}

@Suite struct RealSizePlans {
    @Test(arguments: ModelPreset.allCases)
    func fitsTheSixteenNodeCluster(preset: ModelPreset) throws {
        let r = try realPlan(preset, "cpu16-100g.yaml")
        #expect(r.fits && r.shortfallBytes == 0)
        #expect(r.ranks.count == 32 && r.nodes.count == 16)
        for n in r.nodes { #expect(n.neededBytes <= n.usableBytes) }
        for rank in r.ranks { #expect(rank.weightBytes > 0 && rank.kvCacheBytes > 0 && rank.workspaceBytes > 0) }
        let p = try #require(r.prediction)
        #expect(p.decode.aggregateTokensPerSecond > 0 && p.prefill.aggregateTokensPerSecond > 0)
        #expect(["memory", "compute", "network", "bubbles"].contains(p.decode.bottleneck))
        let text = r.render()
        #expect(text.contains("rank") && text.contains("KV cache") && text.contains("bottleneck") && text.contains("mpirun -np 32"))
        // JSON carries the same report.
        let json = try JSONEncoder().encode(r)
        let back = try JSONSerialization.jsonObject(with: json) as? [String: Any]
        #expect((back?["ranks"] as? [Any])?.count == 32 && back?["prediction"] != nil)
    }

    @Test func smallClusterIsRejectedWithTheShortfallInGB() throws {
        let r = try realPlan(.deepseekV3, "small2.yaml")
        #expect(!r.fits && r.prediction == nil)
        #expect(r.shortfallBytes > 100_000_000_000)
        let text = r.render()
        #expect(text.contains("DOES NOT FIT: short by") && text.contains(" GB"))
        #expect(r.suggestions.contains { $0.hasPrefix("more nodes:") })
        #expect(r.suggestions.first?.contains("GB") == true)
        // BF16 on the same cluster points at FP8 too only if FP8 would fit; it does not here.
        let bf16 = try realPlan(.deepseekV3, "small2.yaml", dtype: .bf16)
        #expect(!bf16.fits && !bf16.suggestions.contains { $0.hasPrefix("FP8") })
    }

    @Test func suggestionsNameWhatWouldFit() throws {
        // A cache of 4096 sequences x 8192 tokens (~4.7 TB) does not fit next to the weights; fewer or shorter ones do.
        let r = try realPlan(.deepseekV3, "cpu16-100g.yaml", batch: 4096, context: 8192)
        #expect(!r.fits)
        #expect(r.suggestions.contains { $0.hasPrefix("shorter context: --context") })
        #expect(r.suggestions.contains { $0.hasPrefix("smaller batch: --batch") })
        #expect(r.suggestions.contains { $0.hasPrefix("more nodes:") })
    }

    @Test(arguments: [(1, 32), (2, 16), (4, 8), (16, 2), (32, 1)])
    func perRankWeightsSumToModelPlusReplication(shape: (Int, Int)) throws {
        for preset in ModelPreset.allCases {
            let r = try realPlan(preset, "cpu16-100g.yaml", pp: shape.0, ep: shape.1)
            let summary = ModelSummary(config: preset.config)
            #expect(r.modelWeightBytes == summary.bytesFP8)
            let weights = WeightBreakdown(model: preset.config.shape, specs: TensorTable(config: preset.config).mainSpecs, dtype: .fp8)
            #expect(r.replicationBytes == (shape.1 - 1) * weights.replicatedBytes)
            #expect(r.ranks.reduce(0) { $0 + $1.weightBytes } == summary.bytesFP8 + r.replicationBytes)
        }
    }

    @Test func givenShapeIsCheckedAgainstTheCluster() throws {
        #expect(throws: PlanError.self) { try realPlan(.deepseekV3, "cpu16-100g.yaml", pp: 3, ep: 4) }
        let r = try realPlan(.deepseekV3, "cpu16-100g.yaml", ep: 2)
        #expect(r.plan.pp == 16 && r.plan.ep == 2 && !r.chosen && r.options.count == 1)
    }
}

@Suite struct UnequalNodes {
    @Test func lanesOnBiggerNodesHoldMoreExperts() throws {
        let r = try realPlan(.deepseekV3, "mixed4.yaml", pp: 1, ep: 8)
        let counts = r.plan.laneExperts.map(\.count)
        // Ranks 0-3 sit on the 1 TB nodes, 4-7 on the 512 GB ones.
        #expect(counts.reduce(0, +) == 256)
        #expect(counts[0...3].allSatisfy { $0 > counts[4] } && Set(counts[0...3]).count == 1 && Set(counts[4...7]).count == 1)
        #expect(r.planSpec.contains("experts="))
        #expect(r.fits)
    }

    @Test func stagesOnBiggerNodesHoldMoreLayers() throws {
        let r = try realPlan(.deepseekV3, "mixed4.yaml", pp: 4, ep: 2)
        #expect(r.plan.stageLayers[0].count + r.plan.stageLayers[1].count > r.plan.stageLayers[2].count + r.plan.stageLayers[3].count)
        #expect(r.planSpec.contains("layers="))
    }
}

@Suite struct LaunchLines {
    @Test func multiNodeUsesHostfileAndRankfile() throws {
        let r = try realPlan(.deepseekV3, "cpu16-100g.yaml")
        let rankfile = try #require(r.launch.files["rankfile"])
        #expect(rankfile.split(separator: "\n").count == 32)
        #expect(rankfile.hasPrefix("rank 0=node01 slot=0:0-31\nrank 1=node01 slot=1:0-31\n"))
        #expect(r.launch.files["hostfile"]?.hasPrefix("node01 slots=2\n") == true)
        let line = Launch.shellLine(r.launch.mpirun)
        #expect(line.contains("--rankfile plan/rankfile") && line.contains("--plan \(r.planSpec)") && line.contains("--threads 32"))
        #expect(r.launch.srun.contains("--ntasks=32") && r.launch.srun.contains("--ntasks-per-node=2"))
    }

    @Test func unequalRanksPerNodeUseArbitrarySlurmDistribution() throws {
        var cluster = try loadCluster("mixed4.yaml")
        cluster.nodes[0].ranks = 4
        let r = try ClusterPlanner.plan(PlanRequest(model: try tinyConfig().shape, specs: TensorTable(config: try tinyConfig()).mainSpecs, modelName: "tiny", modelPath: "M", dtype: .bf16,
                                                    cluster: cluster, workload: Workload(batch: 2, context: 64)))
        #expect(r.launch.srunEnvironment["SLURM_HOSTFILE"] == "plan/slurm-hosts")
        #expect(r.launch.files["slurm-hosts"]?.split(separator: "\n").count == 10)
    }

    @Test func localOversubscribedRunsUnbound() throws {
        var cluster = try loadCluster("local.yaml")
        cluster.nodes[0].ranks = cluster.nodes[0].cores * 2
        let r = try ClusterPlanner.plan(PlanRequest(model: try tinyConfig().shape, specs: TensorTable(config: try tinyConfig()).mainSpecs, modelName: "tiny", modelPath: "M", dtype: .bf16,
                                                    cluster: cluster, workload: Workload(batch: 2, context: 64)))
        #expect(r.launch.mpirun.contains("--oversubscribe") && r.launch.files["rankfile"] == nil)
        #expect(Launch.script(r.launch.mpirun, note: "x").contains("exec mpirun"))
    }
}
