// Whole-model batch and thread invariance with every projection on the C kernels (widths that are whole 64-column
// chunks, BF16 weights), for both matmul precisions: a token's logits do not depend on its batch companions, on
// the batch size, or on the thread count.
import Foundation
import Testing
import Kernels
import Models
import Tensors
import TestSupport

func chunkyConfig() throws -> ModelConfig {
    try tinyConfig { o in
        o["hidden_size"] = 128; o["intermediate_size"] = 192; o["moe_intermediate_size"] = 64
        o["q_lora_rank"] = 64; o["kv_lora_rank"] = 64; o["qk_nope_head_dim"] = 32; o["qk_rope_head_dim"] = 32
        o["v_head_dim"] = 64
    }
}

@Test(arguments: MatmulPrecision.allCases)
func chunkyModelIsBatchAndThreadInvariant(precision: MatmulPrecision) throws {
    if precision == .bf16 && !CPUFeatures.avx512bf16 { return }  // the mode is refused on such CPUs
    let c = try chunkyConfig()
    let source = randomSource(c, format: .bf16)
    let one = try DeepSeekModel(config: c, source: source, pool: ComputePool(threads: 1, precision: precision))
    let two = try DeepSeekModel(config: c, source: source, pool: ComputePool(threads: 2, precision: precision))
    let a = randomTokens(7, vocab: c.vocabSize, seed: 51), b = randomTokens(5, vocab: c.vocabSize, seed: 52)
    let cacheAlone = KVCache(config: c)
    let alone0 = try one.forward(batch: [(a, cacheAlone)])[0]
    let alone1 = try one.forward(batch: [([3], cacheAlone)])[0]
    let ca = KVCache(config: c), cb = KVCache(config: c)
    let batched0 = try two.forward(batch: [(b, cb), (a, ca)])[1]
    let batched1 = try two.forward(batch: [([4], cb), ([3], ca)])[1]
    #expect(batched0.bitwiseEqual(alone0), "\(precision) prefill")
    #expect(batched1.bitwiseEqual(alone1), "\(precision) decode")
}

@Test func bf16PrecisionStaysCloseToFP32() throws {
    guard CPUFeatures.avx512bf16 else { return }
    let c = try chunkyConfig()
    let source = randomSource(c, format: .bf16)
    let tokens = randomTokens(6, vocab: c.vocabSize, seed: 53)
    let exact = try DeepSeekModel(config: c, source: source).forward(tokens: tokens, positions: Array(0..<6), cache: KVCache(config: c))
    let rounded = try DeepSeekModel(config: c, source: source, pool: ComputePool(threads: 1, precision: .bf16))
        .forward(tokens: tokens, positions: Array(0..<6), cache: KVCache(config: c))
    #expect(!rounded.bitwiseEqual(exact))
    #expect(relErr(rounded, exact) < 3e-2, "bf16 activations: \(relErr(rounded, exact))")
}

/// The interleaved weight layout (the engine's default with AVX-512; BF16 weights only) changes where weights sit,
/// not the math: prefill and decode logits equal the checkpoint layout's bit for bit, with 1 or 2 threads (FP8
/// weights stay row-major there; their interleaved kernels are compared in InterleavedLayoutTests).
@Test(arguments: [WeightFormat.bf16, .fp8])
func interleavedLayoutGivesCheckpointLayoutBits(format: WeightFormat) throws {
    let c = try chunkyConfig()
    let source = randomSource(c, format: format)
    let tokens = randomTokens(6, vocab: c.vocabSize, seed: 54)
    let plain = try DeepSeekModel(config: c, source: source)
    let cp = KVCache(config: c)
    let expectedPrefill = try plain.forward(tokens: tokens, positions: Array(0..<6), cache: cp)
    let expectedDecode = try plain.forward(tokens: [5], positions: [6], cache: cp)
    for threads in [1, 2] {
        let packed = try DeepSeekModel(config: c, source: source, pool: ComputePool(threads: threads), weightLayout: .interleaved)
        if CPUFeatures.avx512, format == .bf16, case .moe(_, let experts, _) = packed.layers.last!.mlp {
            #expect(experts.values.first!.down.group > 0, "expert weights were not interleaved")
        }
        let cache = KVCache(config: c)
        #expect(try packed.forward(tokens: tokens, positions: Array(0..<6), cache: cache).bitwiseEqual(expectedPrefill), "\(format) prefill, \(threads) threads")
        #expect(try packed.forward(tokens: [5], positions: [6], cache: cache).bitwiseEqual(expectedDecode), "\(format) decode, \(threads) threads")
    }
}

/// A lone decode token runs attention after q_a / kv_a as one region over heads (`attendTokenFused`); the same token
/// next to another sequence takes the general path (separate products, then per-segment attention). Same bits, with
/// the interleaved layout and 2 threads (heads split between them), over several decode steps; with q LoRA (q_b runs
/// inside the region) and without (q_proj runs with kv_a before it).
@Test(arguments: [true, false])
func loneDecodeTokenRegionEqualsGeneralPath(qLora: Bool) throws {
    let c = try qLora ? chunkyConfig() : tinyConfig { o in
        o["hidden_size"] = 128; o["q_lora_rank"] = NSNull(); o["kv_lora_rank"] = 64; o["qk_nope_head_dim"] = 32
        o["qk_rope_head_dim"] = 32; o["v_head_dim"] = 64
    }
    #expect(c.numAttentionHeads >= 4 && (c.qLoraRank ?? 64) % 64 == 0, "the config must give the fused region whole heads to split")
    let model = try DeepSeekModel(config: c, source: randomSource(c, format: .bf16), pool: ComputePool(threads: 2),
                                  weightLayout: .interleaved)
    let a = randomTokens(5, vocab: c.vocabSize, seed: 55), b = randomTokens(3, vocab: c.vocabSize, seed: 56)
    let alone = KVCache(config: c), withA = KVCache(config: c), withB = KVCache(config: c)
    _ = try model.forward(batch: [(a, alone)])
    _ = try model.forward(batch: [(b, withB), (a, withA)])
    for (step, token) in [3, 9, 4].enumerated() {
        let lone = try model.forward(batch: [([token], alone)])[0]
        let paired = try model.forward(batch: [([token], withA), ([token + 1], withB)])[0]
        #expect(lone.bitwiseEqual(paired), "decode step \(step): max diff \(lone.maxAbsDiff(paired))")
    }
    #expect(alone.length == 8 && withA.length == 8)
}
