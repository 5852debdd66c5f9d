// The GQA families (Qwen3-MoE, Mixtral) at the Models level: the registry picks them by model_type, the loader asks
// for exactly their tensor table, a missing or mis-shaped family tensor is named, cached decode equals prefill bit
// for bit, and batch and thread count do not change the bits.
import Checkpoint
import Foundation
import Kernels
import Models
import Tensors
import Testing
import TestSupport

/// A fixture's config and an in-memory copy of its tensors (editable).
func familyFixture(_ name: String) throws -> (config: any FamilyConfiguration, source: InMemoryTensorSource) {
    let dir = Fixtures.path(name)
    let checkpoint = try CheckpointDirectory(directory: dir)
    let config = try ModelFamilies.decode(Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))).config
    var source = InMemoryTensorSource()
    for spec in config.mainTensorSpecs {
        if spec.shape.count == 2 { source.weights[spec.name] = try checkpoint.weight(spec.name) } else { source.vectors[spec.name] = try checkpoint.vector(spec.name) }
    }
    return (config, source)
}

func load(_ c: any FamilyConfiguration, _ source: any TensorSource, shard: ModelShard = ModelShard(), threads: Int = 1) throws -> DecoderModel {
    try c.loadModel(source: source, shard: shard, dispatcher: nil, pool: ComputePool(threads: threads), weightLayout: .checkpoint, progress: nil)
}

@Suite struct FamilyTests {
    @Test func unsupportedModelTypeListsEverySupportedOne() throws {
        #expect {
            _ = try ModelFamilies.decode(Data(#"{"model_type": "llama4_text"}"#.utf8), file: "x/config.json")
        } throws: { error in
            let e = error as! ConfigError
            return e.code == .unsupportedModelType && e.field == "model_type" && e.file == "x/config.json"
                && ["deepseek_v3", "kimi_k2", "qwen3_moe", "mixtral"].allSatisfy { e.hint.contains($0) }
        }
    }

    @Test(arguments: Fixtures.families)
    func theLoaderAsksForExactlyTheTablesTensors(fixture: String) throws {
        let (c, source) = try familyFixture(fixture)
        let table = c.mainTensorSpecs.map(\.name)
        let checkpoint = try CheckpointDirectory(directory: Fixtures.path(fixture))
        #expect(Set(try checkpoint.allInfos().map(\.name)) == Set(table), "the checkpoint's tensors and the table differ")
        let whole = RecordingSource(source)
        _ = try load(c, whole)
        let asked = whole.asked.withLock { $0 }
        #expect(asked.count == Set(asked).count, "a tensor was loaded twice")
        #expect(Set(asked) == Set(table))
        // The last layer with half of the experts and the head.
        let last = c.shape.layerCount - 1, experts = Set(0..<(c.shape.routedExperts / 2))
        let stage = RecordingSource(source)
        _ = try load(c, stage, shard: ModelShard(layers: last..<(last + 1), experts: experts, includeEmbedding: false, includeHead: true))
        let share = c.mainTensorSpecs.filter { s in
            guard let l = s.layer else { return s.component == .head || s.component == .norm }
            return l == last && (s.expert.map(experts.contains) ?? true)
        }
        #expect(Set(stage.asked.withLock { $0 }) == Set(share.map(\.name)))
    }

    /// The tensors only these families have: Qwen3's per-head q / k norms and softmax router, Mixtral's w1 / w2 / w3,
    /// GLM-4.5's q / k / v biases, correction bias and shared expert, MiniMax-M2's whole-projection k norm and its
    /// correction bias held by the MoE block.
    @Test(arguments: [("qwen3-moe-tiny-fp32", "model.layers.1.self_attn.k_norm.weight"),
                      ("qwen3-moe-tiny-fp32", "model.layers.2.mlp.gate.weight"),
                      ("mixtral-tiny-fp32", "model.layers.1.block_sparse_moe.experts.4.w3.weight"),
                      ("glm4-moe-tiny-fp32", "model.layers.2.self_attn.v_proj.bias"),
                      ("glm4-moe-tiny-fp32", "model.layers.3.mlp.gate.e_score_correction_bias"),
                      ("glm4-moe-tiny-fp32", "model.layers.1.mlp.shared_experts.down_proj.weight"),
                      ("minimax-m2-tiny-fp32", "model.layers.0.self_attn.k_norm.weight"),
                      ("minimax-m2-tiny-fp32", "model.layers.2.block_sparse_moe.e_score_correction_bias")])
    func aMissingOrMisShapedFamilyTensorIsNamed(fixture: String, tensor: String) throws {
        let (c, source) = try familyFixture(fixture)
        var missing = source
        missing.weights[tensor] = nil
        missing.vectors[tensor] = nil
        #expect { _ = try load(c, missing) } throws: { e in
            (e as? ModelError)?.code == .missingTensor && (e as? ModelError)?.subject == tensor
        }
        var misShaped = source
        if let w = source.weights[tensor] {
            misShaped.weights[tensor] = .f32(rows: w.rows - 1, cols: w.cols, [Float](repeating: 0, count: (w.rows - 1) * w.cols))
        } else {
            misShaped.vectors[tensor] = [1, 2, 3]
        }
        #expect { _ = try load(c, misShaped) } throws: { e in
            (e as? ModelError)?.code == .shapeMismatch && (e as? ModelError)?.subject == tensor
        }
    }

    /// Prefill of the whole sequence, token-by-token decode, and one batch of two sequences on 2 threads: same bits.
    @Test(arguments: Fixtures.families)
    func cachedDecodeBatchAndThreadsKeepTheBits(fixture: String) throws {
        let (c, source) = try familyFixture(fixture)
        let one = try load(c, source), two = try load(c, source, threads: 2)
        let tokens = randomTokens(9, vocab: c.vocabSize, seed: 3), other = randomTokens(5, vocab: c.vocabSize, seed: 4)
        let full = try one.forward(tokens: tokens, positions: Array(0..<9), cache: one.makeCache())
        let cache = one.makeCache()
        var rows = try one.forward(tokens: Array(tokens[0..<4]), positions: Array(0..<4), cache: cache).data
        for p in 4..<9 { rows += try one.forward(tokens: [tokens[p]], positions: [p], cache: cache).data }
        #expect(rows == full.data, "cached decode differs from prefill")
        let batch = try two.forward(batch: [(other, two.makeCache()), (tokens, two.makeCache())])
        #expect(batch[1].data == full.data, "batched with another sequence on 2 threads differs")
    }
}
