// Synth: deterministic bytes, HF layout read back with every tensor accounted for, valid FP8 blocks, sane magnitudes.
import Checkpoint
import Foundation
import Comm
import Models
import Parallel
import Tensors
import Testing
@testable import Runtime

private func tempDir(_ tag: String) -> String {
    NSTemporaryDirectory() + "moerun-synth-\(tag)-\(UUID().uuidString.prefix(8))"
}

@Test func synthConfigsKeepThePresetStructure() throws {
    let ds = try Synth.config(preset: .deepseekV3, size: .medium)
    #expect(ds.hiddenSize == 2048 && ds.numHiddenLayers == 12 && ds.firstKDenseReplace == 1 && ds.intermediateSize == 5632)
    #expect(ds.nRoutedExperts == 64 && ds.moeIntermediateSize == 512 && ds.numExpertsPerTok == 8 && ds.nGroup == 8 && ds.topkGroup == 4)
    #expect(ds.numAttentionHeads == 16 && ds.qLoraRank == 384 && ds.kvLoraRank == 256 && ds.qkRopeHeadDim == 32)
    #expect(ds.qkNopeHeadDim == 64 && ds.vHeadDim == 64 && ds.vocabSize == 32000 && ds.nSharedExperts == 1 && ds.mtpLayerCount == 1)
    #expect(ds.quantizationConfig == nil && ds.effectiveRopeScaling?.kind == "yarn")
    let k2 = try Synth.config(preset: .kimiK2, size: .small, dtype: .fp8)
    #expect(k2.modelType == "kimi_k2" && k2.nGroup == 1 && k2.topkGroup == 1 && k2.mtpLayerCount == 0 && k2.isFP8)
    #expect(k2.bosTokenId! < k2.vocabSize && k2.eosIDs.allSatisfy { $0 < k2.vocabSize })
    // Sizes: small is a few hundred MB, medium a few GB (BF16).
    let small = ModelSummary(config: try Synth.config(preset: .deepseekV3, size: .small))
    #expect((100_000_000...900_000_000).contains(small.bytesBF16 + (small.mtp?.bytesBF16 ?? 0)))
    let medium = ModelSummary(config: ds)
    #expect((2_000_000_000...9_000_000_000).contains(medium.bytesBF16))
    var o = SynthOverrides()
    o.experts = 12
    o.groups = 5
    #expect(throws: ConfigError.self) { try Synth.config(preset: .deepseekV3, size: .tiny, overrides: o) }
}

@Test func synthIsDeterministicAndReadsBackCompletely() throws {
    let a = tempDir("a"), b = tempDir("b"), c = tempDir("c")
    defer { for d in [a, b, c] { try? FileManager.default.removeItem(atPath: d) } }
    let config = try Synth.config(preset: .deepseekV3, size: .tiny)
    let r = try Synth.write(config: config, dtype: .bf16, seed: 7, directory: a)
    _ = try Synth.write(config: config, dtype: .bf16, seed: 7, directory: b, shards: 5)
    _ = try Synth.write(config: config, dtype: .bf16, seed: 8, directory: c)
    #expect(r.shards.count == 3)
    let report = try Inspector.inspect(directory: a, requireMTP: true)
    #expect(report.checkpoint?.accounting.unexpected == [] && report.checkpoint?.accounting.mtpPresent == true)
    #expect(report.config == config)
    // Same seed, different sharding: identical tensor bytes. Different seed: different bytes.
    let ca = try CheckpointDirectory(directory: a), cb = try CheckpointDirectory(directory: b), cc = try CheckpointDirectory(directory: c)
    #expect(cb.shardNames.count == 5)
    for name in ["model.layers.2.mlp.experts.3.down_proj.weight", "model.norm.weight", "model.layers.1.mlp.gate.e_score_correction_bias"] {
        let x = Array(try ca.raw(name).bytes), y = Array(try cb.raw(name).bytes), z = Array(try cc.raw(name).bytes)
        #expect(x == y && x != z, "\(name)")
    }
}

@Test func synthFP8WeightsHaveValidBlocksAndSaneMagnitudes() throws {
    let dir = tempDir("fp8")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var o = SynthOverrides()
    o.hidden = 200   // partial 128-blocks on every hidden-sized edge
    let config = try Synth.config(preset: .kimiK2, size: .tiny, overrides: o, dtype: .fp8)
    _ = try Synth.write(config: config, dtype: .fp8, seed: 1, directory: dir)
    let report = try Inspector.inspect(directory: dir)
    #expect(report.checkpoint!.accounting.scales == TensorTable(config: config).specs.filter(\.quantizable).count)
    let ck = try CheckpointDirectory(directory: dir)
    for spec in TensorTable(config: config).specs where spec.shape.count == 2 {
        let w = try ck.weight(spec.name)   // validates scale grid shape, finiteness, non-zero
        #expect(w.dtype == (spec.quantizable ? .f8e4m3 : .bf16), "\(spec.name)")
        // Row RMS ~ amplitude/sqrt(3) * sqrt(cols): a unit-RMS input gives O(1) outputs (O(1/sqrt(2L)) for residual writers).
        var sumSq: Double = 0
        var row = [Float](repeating: 0, count: w.cols)
        for r in stride(from: 0, to: w.rows, by: max(1, w.rows / 16)) {
            row.withUnsafeMutableBufferPointer { w.dequantizeRow(r, into: $0.baseAddress!) }
            #expect(row.allSatisfy { $0.isFinite })
            sumSq += row.reduce(0) { $0 + Double($1 * $1) }
        }
        let rowsSeen = (w.rows + max(1, w.rows / 16) - 1) / max(1, w.rows / 16)
        let gain = (sumSq / Double(rowsSeen)).squareRoot()   // |row|: output magnitude for a unit-RMS input
        if spec.role == .embedding {
            #expect(gain > 5, "\(spec.name) \(gain)")
        } else {
            #expect(gain > 0.05 && gain < 2.5, "\(spec.name) gain \(gain)")
        }
    }
    for spec in TensorTable(config: config).specs where spec.shape.count == 1 {
        let v = try ck.vector(spec.name)
        if spec.role == .norm { #expect(v.allSatisfy { $0 > 0.85 && $0 < 1.15 }) } else { #expect(v.allSatisfy { abs($0) < 0.02 }) }
    }
}

@Test func fastFP8EncoderMatchesTheReference() {
    var values: [Float] = [0, -0, 448, -448, 449, 464, 480, 1e9, -1e9, 0x1p-6, 0x1p-7, 0x1p-9, 0x1p-10, 0x1.1p-10, 3e-3]
    for code in 0..<127 {
        let a = fp8E4M3ToFloat(UInt8(code)), b = fp8E4M3ToFloat(UInt8(code + 1))
        values += [a, -a, (a + b) / 2, -(a + b) / 2, a.nextUp, a.nextDown, ((a + b) / 2).nextUp, ((a + b) / 2).nextDown]
    }
    var s: UInt64 = 1
    for _ in 0..<200_000 {
        s = s &* 6364136223846793005 &+ 1442695040888963407
        values.append(Float(bitPattern: UInt32(truncatingIfNeeded: s >> 32) & 0xC3FF_FFFF))   // |x| < 512, all exponents
    }
    for v in values where !v.isNaN {
        if fastFloatToFP8E4M3(v) != floatToFP8E4M3(v) { Issue.record("\(v): \(fastFloatToFP8E4M3(v)) != \(floatToFP8E4M3(v))"); return }
    }
}

/// `synth --preset` of the other families: the written checkpoint decodes as the same family, every tensor is the
/// family's table, and it runs the same under one rank and two expert-parallel ranks.
@Test(arguments: FamilyPreset.allCases)
func familySynthIsAccountedForAndRunsSharded(_ preset: FamilyPreset) throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("moerun-synth-\(preset.rawValue)-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let base = preset.config
    let scaled = try Synth.config(preset: preset, size: .tiny)
    let written = try write(scaled, dir)
    let report = try Inspector.inspect(directory: dir)
    #expect(report.summary.modelType == base.modelType && report.summary.layers == 4)
    let accounting = try #require(report.checkpoint?.accounting)
    #expect(accounting.unexpected.isEmpty && accounting.matched == accounting.total)
    let opened = try ModelLoading.open(dir)
    #expect(opened.config.shape == written.shape)
    func run(ep: Int) throws -> [GenerationResult] {
        let plan = try ParallelPlan.make(model: opened.config.shape, ranks: ep, pp: 1, ep: ep)
        return try LocalCommunicator.run(ranks: ep, timeout: 30) { comm -> [GenerationResult]? in
            var options = EngineOptions()
            options.keepLogits = true
            let engine = try Engine(world: comm, config: opened.config, source: try ModelLoading.open(dir).checkpoint, plan: plan, options: options)
            return try engine.generate(comm.rank == 0 ? [GenerationRequest(prompt: [5, 6, 7, 8], maxNewTokens: 3)] : [], eosTokens: [])
        }[0]!
    }
    let one = try run(ep: 1), two = try run(ep: 2)
    #expect(one.map(\.tokens) == two.map(\.tokens) && one.map(\.stepLogits) == two.map(\.stepLogits))
}

private func write<C: ScalableFamilyConfig>(_ config: C, _ dir: String) throws -> any FamilyConfiguration {
    try Synth.write(family: config, dtype: .bf16, seed: 1, directory: dir).config
}
