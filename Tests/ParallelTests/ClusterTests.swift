// Cluster files: every file in clusters/ decodes and plans; bad files fail with the file, field and a hint;
// a cluster written by `yaml()` reads back equal; weighted expert / layer splits own everything exactly once.
import Foundation
import Models
import Parallel
import Testing

/// The repository's clusters/ folder, found from this file's path.
let clustersDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("clusters")

func loadCluster(_ name: String) throws -> Cluster {
    let url = clustersDirectory.appendingPathComponent(name)
    return try Cluster.decode(yaml: try String(contentsOf: url, encoding: .utf8), file: "clusters/" + name)
}

func clusterFiles() -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: clustersDirectory.path)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
}

/// A tiny DeepSeek-V3-shaped config, small enough to fit every cluster.
func tinyConfig() throws -> ModelConfig {
    let json = """
    {"model_type": "deepseek_v3", "vocab_size": 1024, "hidden_size": 128, "intermediate_size": 256,
     "moe_intermediate_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "q_lora_rank": 64,
     "kv_lora_rank": 32, "qk_nope_head_dim": 32, "qk_rope_head_dim": 16, "v_head_dim": 32,
     "n_routed_experts": 16, "num_experts_per_tok": 4, "n_shared_experts": 1, "n_group": 4, "topk_group": 2,
     "routed_scaling_factor": 2.5, "norm_topk_prob": true, "first_k_dense_replace": 1,
     "rms_norm_eps": 1e-6, "max_position_embeddings": 4096}
    """
    return try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8))
}

func decodeError(_ yaml: String) -> ClusterError? {
    do {
        _ = try Cluster.decode(yaml: yaml, file: "bad.yaml")
        return nil
    } catch {
        return error
    }
}

let goodNode = """
name: t
nodes:
  - host: a
    ranks: 2
    cores: 8
    memory_gb: 64
    memory_bandwidth_gbs: 50
    gemm_gflops_per_core: 20
"""

@Suite struct ClusterFiles {
    @Test func shippedFilesExist() {
        let files = clusterFiles()
        #expect(files.count >= 5, "clusters/ holds \(files)")
        for required in ["local.yaml", "cpu16-100g.yaml", "bigmem8.yaml", "mixed4.yaml", "small2.yaml"] { #expect(files.contains(required)) }
    }

    @Test(arguments: clusterFiles())
    func everyFileDecodesAndPlans(file: String) throws {
        let cluster = try loadCluster(file)
        #expect(cluster.rankCount >= 1 && !cluster.name.isEmpty)
        // A model that fits anywhere plans and fits; the real presets plan (fitting or with a shortfall and suggestions).
        let tiny = try ClusterPlanner.plan(PlanRequest(model: try tinyConfig().shape, specs: TensorTable(config: try tinyConfig()).mainSpecs, modelName: "tiny", modelPath: "M", dtype: .bf16,
                                                       cluster: cluster, workload: Workload(batch: 4, context: 256)))
        #expect(tiny.fits && tiny.prediction != nil && tiny.ranks.count == cluster.rankCount)
        for preset in ModelPreset.allCases {
            let r = try ClusterPlanner.plan(PlanRequest(model: preset.config.shape, specs: TensorTable(config: preset.config).mainSpecs, modelName: preset.rawValue, modelPath: "M", dtype: .fp8,
                                                        cluster: cluster, workload: Workload(batch: 8, context: 4096)))
            #expect(r.fits == (r.shortfallBytes == 0))
            #expect(r.fits || !r.suggestions.isEmpty)
            #expect(!r.render().isEmpty)
        }
    }

    @Test(arguments: clusterFiles())
    func writtenYAMLReadsBackEqual(file: String) throws {
        let cluster = try loadCluster(file)
        #expect(try Cluster.decode(yaml: cluster.yaml(), file: "roundtrip.yaml") == cluster)
    }
}

@Suite struct BadClusterFiles {
    @Test func missingMemoryNamesTheField() throws {
        let e = try #require(decodeError(goodNode.replacingOccurrences(of: "    memory_gb: 64\n", with: "")))
        #expect(e.code == .missingField && e.field.hasSuffix("memory_gb"))
        #expect(e.description.contains("bad.yaml") && e.description.contains("hint"))
    }

    @Test func zeroMemoryIsRejected() throws {
        let e = try #require(decodeError(goodNode.replacingOccurrences(of: "memory_gb: 64", with: "memory_gb: 0")))
        #expect(e.code == .badValue && e.field.hasSuffix("memory_gb") && e.message.contains("> 0"))
        #expect(e.line == 6)
    }

    @Test func moreRanksThanSlots() throws {
        let e = try #require(decodeError(goodNode.replacingOccurrences(of: "ranks: 2", with: "ranks: 4\n    slots: 2")))
        #expect(e.code == .tooManyRanks && e.field.hasSuffix("ranks") && e.message.contains("2 slots"))
        let cores = try #require(decodeError(goodNode.replacingOccurrences(of: "ranks: 2", with: "ranks: 9")))
        #expect(cores.code == .tooManyRanks)
    }

    @Test func unknownFieldAndTypos() throws {
        let e = try #require(decodeError(goodNode.replacingOccurrences(of: "memory_gb", with: "memory_gib")))
        #expect(e.code == .unknownField && e.field.hasSuffix("memory_gib") && e.hint.contains("memory_gb"))
    }

    @Test func otherProblems() throws {
        #expect(decodeError("name: x\nnodes: [\n")?.code == .syntax)
        #expect(decodeError("")?.code == .noNodes)
        #expect(decodeError("name: x\nnodes: []\n")?.code == .noNodes)
        #expect(decodeError(goodNode.replacingOccurrences(of: "name: t\n", with: ""))?.field == "name")
        #expect(decodeError(goodNode.replacingOccurrences(of: "memory_gb: 64", with: "memory_gb: lots"))?.code == .badValue)
        let twoNodes = "name: two\ndefaults: {ranks: 1, cores: 1, memory_gb: 1, memory_bandwidth_gbs: 1, gemm_gflops_per_core: 1}\nnodes: [a, b]\n"
        let noNetwork = try #require(decodeError(twoNodes))
        #expect(noNetwork.field == "network.inter_node" && noNetwork.code == .missingField)
        let dup = goodNode.replacingOccurrences(of: "  - host: a", with: "  - a\n  - host: a") + "\ndefaults: {ranks: 1, cores: 1, memory_gb: 1, memory_bandwidth_gbs: 1, gemm_gflops_per_core: 1}\nnetwork: {inter_node: {bandwidth_gbps: 1, latency_us: 1}}\n"
        #expect(decodeError(dup)?.code == .duplicateHost)
    }

    @Test func defaultsAndOverrides() throws {
        let c = try loadCluster("mixed4.yaml")
        #expect(c.nodes.map(\.memoryGB) == [1024, 1024, 512, 512])
        #expect(c.nodes.map(\.gemmGFlopsPerCore) == [25, 25, 15, 15])
        #expect(c.interNode.bandwidthGBs == 12.5)
    }
}

@Suite struct WeightedPartition {
    @Test func everyExpertOwnedExactlyOnce() {
        var seed: UInt64 = 7
        func next() -> Double { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return Double(seed >> 40) / Double(1 << 24) }
        for count in [1, 7, 16, 256, 384] {
            for parts in 1...min(count, 24) {
                let weights = (0..<parts).map { _ in 0.05 + next() }
                let ranges = Partition.weighted(count: count, weights: weights)
                #expect(ranges.count == parts && ranges.first?.lowerBound == 0 && ranges.last?.upperBound == count)
                for (a, b) in zip(ranges, ranges.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
                #expect(ranges.allSatisfy { !$0.isEmpty })
                // Within one item of the exact share (or the one-item floor).
                let total = weights.reduce(0, +)
                for (r, w) in zip(ranges, weights) { #expect(abs(Double(r.count) - Double(count) * w / total) < 1.0001 || r.count == 1) }
            }
        }
    }

    @Test func equalWeightsGiveTheDefaultBlocks() {
        for parts in 1...12 { #expect(Partition.weighted(count: 256, weights: Array(repeating: 3, count: parts)) == Partition.blocks(count: 256, parts: parts)) }
        #expect(Partition.weighted(count: 300, weights: [2, 1]).map(\.count) == [200, 100])
    }

    @Test func capacityWeightedStagesCoverEveryLayerOnce() throws {
        let config = ModelPreset.deepseekV3.config
        let plan = try ParallelPlan.make(model: config.shape, ranks: 4, pp: 4, ep: 1, stageWeights: [2, 2, 1, 1], laneWeights: [1])
        #expect(plan.stageLayers.first?.lowerBound == 0 && plan.stageLayers.last?.upperBound == 61)
        for (a, b) in zip(plan.stageLayers, plan.stageLayers.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
        #expect(plan.stageLayers[0].count > plan.stageLayers[3].count)
        #expect(try ParallelPlan.make(model: config.shape, ranks: 4, pp: 2, ep: 2, stageWeights: [1, 1], laneWeights: [1, 1])
                == ParallelPlan.make(model: config.shape, ranks: 4, pp: 2, ep: 2))
    }

    @Test func planSpecRoundTripsWeightedPlans() throws {
        let config = ModelPreset.kimiK2.config
        let plan = try ParallelPlan.make(model: config.shape, ranks: 6, pp: 2, ep: 3, stageWeights: [3, 1], laneWeights: [2, 1, 1])
        let spec = plan.spec(model: config.shape)
        #expect(spec.expertCounts == [192, 96, 96] && spec.layerCounts != nil)
        #expect(try ParallelPlan.make(model: config.shape, ranks: 6, spec: ParallelPlan.parseSpec(spec.text, ranks: 6)) == plan)
        // Default plans need no counts, and bad counts say what is expected.
        #expect(try ParallelPlan.make(model: config.shape, ranks: 4, pp: 2, ep: 2).spec(model: config.shape).text == "pp=2,ep=2")
        #expect(throws: PlanError.self) { try ParallelPlan.make(model: config.shape, ranks: 2, spec: ParallelPlan.parseSpec("ep=2,experts=100:100", ranks: 2)) }
    }
}

@Suite struct EngineTermsInTheCostModel {
    static let yaml = """
        name: t
        nodes:
          - host: a
            ranks: 1
            cores: 2
            memory_gb: 64
            memory_bandwidth_gbs: 30
            gemm_gflops_per_core: 80
            layer_overhead_us: 100
            layer_sync_us: 20
            elementwise_gbs: 4
        network: {intra_node: {bandwidth_gbs: 10, latency_us: 2}}
        """

    @Test func engineFieldsDecodeAndRoundTrip() throws {
        let c = try Cluster.decode(yaml: Self.yaml, file: "t.yaml")
        #expect(c.nodes[0].layerOverheadUS == 100 && c.nodes[0].layerSyncUS == 20 && c.nodes[0].elementwiseGBs == 4)
        #expect(try Cluster.decode(yaml: c.yaml(), file: "roundtrip.yaml") == c)
        let zero = Self.yaml.replacingOccurrences(of: "elementwise_gbs: 4", with: "elementwise_gbs: 0")
        #expect(throws: ClusterError.self) { try Cluster.decode(yaml: zero, file: "t.yaml") }
    }

    /// The engine term is per layer per step (plus sync with threads) and element-wise bytes over the rate.
    @Test func engineTimeFollowsLayersTokensAndThreads() throws {
        let config = try ModelPreset.deepseekV3.config.scaledForTests()
        let cluster = try Cluster.decode(yaml: Self.yaml, file: "t.yaml")
        let plan = try ParallelPlan.make(model: config.shape, ranks: 1, pp: 1, ep: 1)
        let weights = WeightBreakdown(model: config.shape, specs: TensorTable(config: config).mainSpecs, dtype: .bf16)
        func engine(threads: Int, batch: Int) -> Double {
            CostModel.predict(plan: plan, model: config.shape, weights: weights, workload: Workload(batch: batch, context: 64, prompt: 16),
                              cluster: cluster, threads: threads).decode.breakdown.engine
        }
        let layers = Double(config.numHiddenLayers)
        let bytes = (0..<config.numHiddenLayers).reduce(0.0) { $0 + CostModel.elementwiseBytes(model: config.shape, layer: $1) }
        let sampling = 12 * Double(config.vocabSize)
        #expect(abs(engine(threads: 1, batch: 1) - (layers * 100e-6 + (bytes + sampling) / 4e9)) < 1e-9)
        #expect(abs(engine(threads: 2, batch: 1) - (layers * 120e-6 + (bytes + sampling) / 4e9)) < 1e-9)
        #expect(abs(engine(threads: 1, batch: 4) - (layers * 100e-6 + 4 * (bytes + sampling) / 4e9)) < 1e-9)
    }
}

extension ModelConfig {
    /// DeepSeek-V3's structure at a few layers (cost-model arithmetic only; no weights).
    func scaledForTests() throws -> ModelConfig {
        var c = self
        c.numHiddenLayers = 4
        c.firstKDenseReplace = 1
        return c
    }
}
