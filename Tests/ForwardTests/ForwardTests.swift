// Forward-pass properties on a tiny random DeepSeek-V3: MLA forms agree, cached decode == prefill, sparse MoE ==
// dense reference, router rules, batch and thread invariance.
import TestSupport
import Foundation
import Testing
import Kernels
@testable import Models
import Tensors

@Test func absorbedMLAEqualsNaive() throws {
    let c = try tinyConfig()
    let model = try DeepSeekModel(config: c, source: randomSource(c))
    let tokens = randomTokens(9, vocab: c.vocabSize, seed: 5)
    let naive = try model.forward(tokens: tokens, positions: Array(0..<9), cache: KVCache(config: c), mode: .naive)
    let absorbed = try model.forward(tokens: tokens, positions: Array(0..<9), cache: KVCache(config: c), mode: .absorbed)
    #expect(relErr(absorbed, naive) < 1e-5, "absorbed vs naive \(relErr(absorbed, naive))")
}

@Test func absorbedMLAEqualsNaiveWithoutQLoraAndBF16() throws {
    let c = try tinyConfig { $0["q_lora_rank"] = NSNull() }
    #expect(c.qLoraRank == nil)
    let model = try DeepSeekModel(config: c, source: randomSource(c, seed: 3, format: .bf16))
    let tokens = randomTokens(7, vocab: c.vocabSize, seed: 6)
    let naive = try model.forward(tokens: tokens, positions: Array(0..<7), cache: KVCache(config: c), mode: .naive)
    let absorbed = try model.forward(tokens: tokens, positions: Array(0..<7), cache: KVCache(config: c), mode: .absorbed)
    #expect(relErr(absorbed, naive) < 1e-5)
}

@Test(arguments: AttentionMode.allCases)
func cachedDecodeEqualsPrefillBitwise(mode: AttentionMode) throws {
    let c = try tinyConfig()
    let model = try DeepSeekModel(config: c, source: randomSource(c))
    let tokens = randomTokens(8, vocab: c.vocabSize, seed: 11)
    let full = try model.forward(tokens: tokens, positions: Array(0..<8), cache: KVCache(config: c), mode: mode)
    // Prefill 3, then decode 5 one at a time, same attention form throughout: the same bits.
    let cache = KVCache(config: c)
    var rows = [try model.forward(tokens: Array(tokens[0..<3]), positions: [0, 1, 2], cache: cache, mode: mode)]
    for p in 3..<8 { rows.append(try model.forward(tokens: [tokens[p]], positions: [p], cache: cache, mode: mode)) }
    let stepped = Matrix.concatRows(rows, cols: c.vocabSize)
    #expect(stepped.bitwiseEqual(full), "\(mode): max diff \(stepped.maxAbsDiff(full))")
    #expect(cache.length == 8)
    #expect(cache.floatCount == 8 * 3 * (c.kvLoraRank + c.qkRopeHeadDim))
}

@Test func defaultModesNaivePrefillAbsorbedDecode() throws {
    let c = try tinyConfig()
    let model = try DeepSeekModel(config: c, source: randomSource(c))
    let tokens = randomTokens(8, vocab: c.vocabSize, seed: 12)
    let full = try model.forward(tokens: tokens, positions: Array(0..<8), cache: KVCache(config: c), mode: .naive)
    let cache = KVCache(config: c)
    var rows = [try model.forward(tokens: Array(tokens[0..<4]), positions: Array(0..<4), cache: cache)]
    for p in 4..<8 { rows.append(try model.forward(tokens: [tokens[p]], positions: [p], cache: cache)) }
    let stepped = Matrix.concatRows(rows, cols: c.vocabSize)
    #expect(relErr(stepped, full) < 1e-5)
}

@Test func sequenceIsBatchInvariant() throws {
    let c = try tinyConfig()
    let model = try DeepSeekModel(config: c, source: randomSource(c))
    let a = randomTokens(6, vocab: c.vocabSize, seed: 21)
    let b = randomTokens(3, vocab: c.vocabSize, seed: 22)
    let d = randomTokens(9, vocab: c.vocabSize, seed: 23)
    // Alone: prefill then two decode steps.
    let cacheAlone = KVCache(config: c)
    let alone0 = try model.forward(batch: [(a, cacheAlone)])[0]
    let alone1 = try model.forward(batch: [([5], cacheAlone)])[0]
    let alone2 = try model.forward(batch: [([7], cacheAlone)])[0]
    // Batched with other sequences of other lengths, in the middle of the batch.
    let ca = KVCache(config: c), cb = KVCache(config: c), cd = KVCache(config: c)
    let batched0 = try model.forward(batch: [(b, cb), (a, ca), (d, cd)])[1]
    let batched1 = try model.forward(batch: [([9], cd), ([5], ca)])[1]
    let batched2 = try model.forward(batch: [([7], ca), ([1], cb), ([2], cd)])[0]
    #expect(batched0.bitwiseEqual(alone0))
    #expect(batched1.bitwiseEqual(alone1))
    #expect(batched2.bitwiseEqual(alone2))
}

@Test func resultsDoNotDependOnThreadCount() throws {
    let c = try tinyConfig()
    let source = randomSource(c)
    let one = try DeepSeekModel(config: c, source: source)
    let two = try DeepSeekModel(config: c, source: source, pool: ComputePool(threads: 2))
    let tokens = randomTokens(7, vocab: c.vocabSize, seed: 31)
    for mode in AttentionMode.allCases {
        let x = try one.forward(tokens: tokens, positions: Array(0..<7), cache: KVCache(config: c), mode: mode)
        let y = try two.forward(tokens: tokens, positions: Array(0..<7), cache: KVCache(config: c), mode: mode)
        #expect(x.bitwiseEqual(y), "\(mode)")
    }
}

@Test func sparseMoEEqualsDenseReference() throws {
    let c = try tinyConfig()
    let model = try DeepSeekModel(config: c, source: randomSource(c))
    var rng = SeededRandom(41)
    let x = Matrix(rows: 10, cols: c.hiddenSize, data: rng.floats(10 * c.hiddenSize, 1.5))
    for layer in model.layers {
        guard case .moe(let router, let experts, let shared) = layer.mlp else { continue }
        let routing = router.route(x)
        let sparse = try model.runExperts(routing: routing, x: x, experts: experts, layer: layer.index)
        // Dense: every expert on every token, weight 0 when not selected, summed in ascending expert id.
        var dense = Matrix(rows: x.rows, cols: x.cols)
        for e in 0..<c.nRoutedExperts {
            let y = experts[e]!(x)
            for t in 0..<x.rows {
                let slot = routing.experts(ofToken: t).firstIndex(of: e)
                let w: Float = slot.map { routing.weights[$0] } ?? 0
                for j in 0..<x.cols { dense[t, j] += w * y[t, j] }
            }
        }
        #expect(relErr(sparse, dense) < 1e-5, "layer \(layer.index)")
        #expect(shared != nil)
        // Every token got exactly top-k distinct experts from at most topk_group groups.
        for t in 0..<x.rows {
            let chosen = Array(routing.experts(ofToken: t))
            #expect(chosen == chosen.sorted() && Set(chosen).count == c.numExpertsPerTok)
            #expect(Set(chosen.map { $0 / (c.nRoutedExperts / c.nGroup) }).count <= c.topkGroup)
        }
    }
}

@Test func layerRangeAndEmbeddingSplitComposes() throws {
    // Two "pipeline stages" over the same weights give the same logits as one model holding everything.
    let c = try tinyConfig()
    let source = randomSource(c)
    let whole = try DeepSeekModel(config: c, source: source)
    let first = try DeepSeekModel(config: c, source: source, layers: 0..<2)
    let second = try DeepSeekModel(config: c, source: source, layers: 2..<3)
    #expect(first.lmHead == nil && second.embedTokens == nil)
    let tokens = randomTokens(5, vocab: c.vocabSize, seed: 51)
    let cache = KVCache(config: c)
    let expected = try whole.forward(tokens: tokens, positions: Array(0..<5), cache: KVCache(config: c))
    let seg = [SequenceSegment(cache: cache, count: 5, startPosition: 0)]
    let h = try second.forwardLayers(try first.forwardLayers(try first.embed(tokens), segments: seg), segments: seg)
    #expect(try second.finalLogits(h).bitwiseEqual(expected))
}

@Test func expertShardRejectsForeignExperts() throws {
    let c = try tinyConfig()
    let shard = try DeepSeekModel(config: c, source: randomSource(c), experts: [0, 1, 2, 3])
    #expect(throws: ModelError.self) {
        _ = try shard.forward(tokens: randomTokens(6, vocab: c.vocabSize, seed: 1), positions: Array(0..<6), cache: KVCache(config: c))
    }
}

@Test func cacheMismatchIsReported() throws {
    let c = try tinyConfig()
    let model = try DeepSeekModel(config: c, source: randomSource(c))
    let cache = KVCache(config: c)
    _ = try model.forward(tokens: [1, 2], positions: [0, 1], cache: cache)
    #expect(throws: ModelError.self) { _ = try model.forward(tokens: [3], positions: [5], cache: cache) }
}

@Test func missingTensorNamesTheTensor() throws {
    let c = try tinyConfig()
    var source = randomSource(c)
    source.weights["model.layers.1.mlp.experts.3.up_proj.weight"] = nil
    do {
        _ = try DeepSeekModel(config: c, source: source)
        Issue.record("expected a missing tensor error")
    } catch let e as ModelError {
        #expect(e.code == .missingTensor && e.subject == "model.layers.1.mlp.experts.3.up_proj.weight")
    }
}

@Test func emptyBatchRunsEveryLayer() throws {
    // An expert-parallel rank with no tokens this step still runs every layer (it must join the collectives).
    let c = try tinyConfig()
    let model = try DeepSeekModel(config: c, source: randomSource(c))
    var routed = 0
    let h = try model.forwardLayers(Matrix(rows: 0, cols: c.hiddenSize), segments: []) { event in
        if case .routing(_, let r) = event { routed += 1; #expect(r.tokens == 0) }
    }
    #expect(h.rows == 0 && routed == 2)
    #expect(try model.finalLogits(h).rows == 0)
    // A zero-length segment leaves its cache alone.
    let cache = KVCache(config: c)
    _ = try model.forwardLayers(try model.embed([3]), segments: [SequenceSegment(cache: KVCache(config: c), count: 1, startPosition: 0),
                                                                 SequenceSegment(cache: cache, count: 0, startPosition: 0)])
    #expect(cache.length == 0)
}

@Test func unimplementedVariantsAreRefused() throws {
    for (key, value) in [("hidden_act", "gelu"), ("scoring_func", "softmax"), ("topk_method", "greedy")] {
        let c = try tinyConfig { $0[key] = value }
        do {
            _ = try DeepSeekModel(config: c, source: randomSource(c))
            Issue.record("\(key) = \(value) accepted")
        } catch let e as ModelError {
            #expect(e.code == .unsupportedConfig && e.subject == key)
        }
    }
}

@Test func batchedExpertsEqualOneCallPerExpertBitwise() {
    // Decode-sized batches (1-3 rows per expert) take the shared-region path; compare with one FFN call each.
    var items: [(x: Matrix, ffn: FeedForward)] = []
    for e in 0..<6 {
        let ffn = FeedForward(gate: makeTestWeight(rows: 64, cols: 128, seed: UInt64(10 * e + 1)),
                              up: makeTestWeight(rows: 64, cols: 128, seed: UInt64(10 * e + 2)),
                              down: makeTestWeight(rows: 128, cols: 64, seed: UInt64(10 * e + 3)))
        items.append((randomTestMatrix(1 + e % 3, 128, seed: UInt64(100 + e)), ffn))
    }
    let expected = items.map { $0.ffn($0.x) }
    for threads in [2, 3] {
        let got = FeedForward.batched(items, pool: ComputePool(threads: threads))
        #expect(got.count == expected.count)
        for (g, e) in zip(got, expected) { #expect(g.bitwiseEqual(e), "threads \(threads): max diff \(g.maxAbsDiff(e))") }
    }
}

@Test func causalBlocksMatchChunkedPrefillBitwise() throws {
    // 150 tokens span three 64-query causal blocks; a prefill split at 37 starts its blocks mid-sequence.
    let c = try tinyConfig()
    let model = try DeepSeekModel(config: c, source: randomSource(c))
    let tokens = randomTokens(150, vocab: c.vocabSize, seed: 41)
    let full = try model.forward(tokens: tokens, positions: Array(0..<150), cache: KVCache(config: c), mode: .naive)
    let cache = KVCache(config: c)
    let a = try model.forward(tokens: Array(tokens[0..<37]), positions: Array(0..<37), cache: cache, mode: .naive)
    let b = try model.forward(tokens: Array(tokens[37..<150]), positions: Array(37..<150), cache: cache, mode: .naive)
    let chunked = Matrix.concatRows([a, b], cols: c.vocabSize)
    #expect(chunked.bitwiseEqual(full), "max diff \(chunked.maxAbsDiff(full))")
    let absorbed = try model.forward(tokens: tokens, positions: Array(0..<150), cache: KVCache(config: c), mode: .absorbed)
    #expect(relErr(absorbed, full) < 1e-5)
}

private func makeTestWeight(rows: Int, cols: Int, seed: UInt64) -> Weight {
    .bf16(rows: rows, cols: cols, randomTestMatrix(rows, cols, seed: seed, scale: 0.2).data)
}

private func randomTestMatrix(_ rows: Int, _ cols: Int, seed: UInt64, scale: Float = 1) -> Matrix {
    var state = seed
    let data = (0..<(rows * cols)).map { _ -> Float in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
    }
    return Matrix(rows: rows, cols: cols, data: data)
}

@Test func moeBehindSharedExpertEqualsPlainPathBitwise() throws {
    // Decode-sized batches on 2-3 threads: the shared expert's products lead both regions while the caller routes
    // and packs the routed products. Same bits as routing, the routed experts and then the shared expert added.
    // Widths of whole 64-column chunks: the products run on the C kernels in shared regions.
    let c = try chunkyConfig()
    let source = randomSource(c, format: .bf16)
    for threads in [2, 3] {
        let model = try DeepSeekModel(config: c, source: source, pool: ComputePool(threads: threads), weightLayout: .interleaved)
        for rows in [1, 3, Ops.sharedRegionRows, 16] {
            var rng = SeededRandom(UInt64(60 + rows))
            let x = Matrix(rows: rows, cols: c.hiddenSize, data: rng.floats(rows * c.hiddenSize, 1.5))
            for layer in model.layers {
                guard case .moe(let router, let experts, let shared?) = layer.mlp else { continue }
                var routed: Routing?
                let got = try model.moeBehindShared(layer.index, router: router, experts: experts, shared: shared, x) {
                    if case .routing(_, let r) = $0 { routed = r }
                }
                let routing = router.route(x)
                var expected = try model.runExperts(routing: routing, x: x, experts: experts, layer: layer.index)
                Ops.addInPlace(&expected, shared(x))
                #expect(routed == routing, "threads \(threads) rows \(rows) layer \(layer.index): routing not reported")
                #expect(got.bitwiseEqual(expected), "threads \(threads) rows \(rows) layer \(layer.index): max diff \(got.maxAbsDiff(expected))")
            }
        }
    }
}

@Test func expertShardRejectsForeignExpertsInDecodeOnThreads() throws {
    // The routing runs inside the shared expert's region there: the error must come out of it (no hang, no trap).
    let c = try tinyConfig()
    let shard = try DeepSeekModel(config: c, source: randomSource(c), experts: [0, 1, 2, 3], pool: ComputePool(threads: 2))
    // Six one-token sequences (decode-sized: 6 rows, 18 expert slots) surely route to an expert not held here.
    let batch = (0..<6).map { (tokens: [3 + 5 * $0], cache: KVCache(config: c)) }
    #expect(throws: ModelError.self) { _ = try shard.forward(batch: batch) }
}
