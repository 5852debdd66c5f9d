// `moerun synth --preset NAME --size tiny|small|medium [overrides] --dtype bf16|fp8 --out DIR` (logic in Runtime.Synth).
import ArgumentParser
import Foundation
import Models
import Runtime

struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write a deterministic random-weight checkpoint in HF layout: a preset scaled down, no download needed.")

    @Option(help: ArgumentHelp("\(AnyPreset.names.joined(separator: " | ")) (the size options below apply to deepseek-v3 / kimi-k2; the other families take --size)")) var preset: String
    @Option(help: "tiny (few MB) | small (few hundred MB) | medium (few GB)") var size: String = "tiny"
    @Option(help: "bf16 | fp8 (linear weights F8_E4M3 with 128x128 block scales)") var dtype: String = "bf16"
    @Option(help: "Output directory.") var out: String
    @Option(help: "Random seed (same seed, same bytes).") var seed: UInt64 = 0
    @Option(help: "Number of safetensors shards (default: 3, or ~1 GB each).") var shards: Int?
    @Option var hidden: Int?
    @Option var layers: Int?
    @Option(help: "Dense-layer FFN width.") var intermediate: Int?
    @Option(help: "Per-expert FFN width.") var moeIntermediate: Int?
    @Option(help: "Routed experts.") var experts: Int?
    @Option(help: "Experts per token.") var topK: Int?
    @Option(help: "n_group") var groups: Int?
    @Option(help: "topk_group") var topkGroup: Int?
    @Option var sharedExperts: Int?
    @Option(help: "first_k_dense_replace") var firstDense: Int?
    @Option var heads: Int?
    @Option var qLora: Int?
    @Option var kvLora: Int?
    @Option var ropeDim: Int?
    @Option var nopeDim: Int?
    @Option var vDim: Int?
    @Option var vocab: Int?
    @Option(help: "MTP layers (num_nextn_predict_layers).") var mtp: Int?
    @Flag(help: "No progress lines.") var quiet = false

    func run() throws {
        try reportingErrors {
            guard let size = SynthSize(rawValue: size) else {
                throw ValidationError("--size must be one of \(SynthSize.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let dtype = SynthDType(rawValue: dtype) else {
                throw ValidationError("--dtype must be one of \(SynthDType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if let family = FamilyPreset(rawValue: preset.lowercased()) {
                let given = [("--hidden", hidden), ("--layers", layers), ("--intermediate", intermediate), ("--moe-intermediate", moeIntermediate),
                             ("--experts", experts), ("--top-k", topK), ("--groups", groups), ("--topk-group", topkGroup),
                             ("--shared-experts", sharedExperts), ("--first-dense", firstDense), ("--heads", heads), ("--q-lora", qLora),
                             ("--kv-lora", kvLora), ("--rope-dim", ropeDim), ("--nope-dim", nopeDim), ("--v-dim", vDim), ("--vocab", vocab),
                             ("--mtp", mtp)].filter { $0.1 != nil }.map(\.0)
                guard given.isEmpty else {
                    throw ValidationError("\(given.joined(separator: ", ")) apply to deepseek-v3 / kimi-k2; \(family.rawValue) takes --size tiny | small | medium")
                }
                let scaled = try Synth.config(preset: family, size: size, dtype: dtype)
                try synthFamily(scaled, name: family.rawValue, size: size, dtype: dtype)
                return
            }
            let preset = try ModelPreset.named(preset)
            var o = SynthOverrides()
            o.hidden = hidden; o.layers = layers; o.intermediate = intermediate; o.moeIntermediate = moeIntermediate
            o.experts = experts; o.topK = topK; o.groups = groups; o.topkGroup = topkGroup; o.sharedExperts = sharedExperts
            o.firstDense = firstDense; o.heads = heads; o.qLora = qLora; o.kvLora = kvLora; o.ropeDim = ropeDim
            o.nopeDim = nopeDim; o.vDim = vDim; o.vocab = vocab; o.mtp = mtp
            let config = try Synth.config(preset: preset, size: size, overrides: o, dtype: dtype)
            let summary = ModelSummary(config: config)
            print("synth: \(preset.rawValue) \(size.rawValue) \(dtype.rawValue): \(ModelSummary.count(summary.totalParameters + summary.mtpParameters)) parameters, \(summary.layerKinds)")
            var meter: ProgressMeter?
            let result = try Synth.write(config: config, dtype: dtype, seed: seed, directory: out, shards: shards) { p in
                if meter == nil { meter = ProgressMeter(label: "synth", total: p.total, enabled: !quiet) }
                meter?.update(p.written)
            }
            if !result.tokenizerFiles.isEmpty {
                print("synth: tokenizer: \(result.tokenizerFiles.joined(separator: ", ")) (byte-level BPE filling the \(result.config?.vocabSize ?? 0)-id vocabulary, the family's special tokens and chat template)")
            }
            print("synth: wrote \(result.tensors) tensors, \(ModelSummary.bytes(result.bytes)) in \(result.shards.count) shards + index to \(result.directory) (\(String(format: "%.1f", result.seconds)) s)")
        }
    }

    /// A GQA family's scaled preset, written with its tokenizer.
    private func synthFamily<C: ScalableFamilyConfig>(_ config: C, name: String, size: SynthSize, dtype: SynthDType) throws {
        let summary = ModelSummary(family: config)
        print("synth: \(name) \(size.rawValue) \(dtype.rawValue): \(ModelSummary.count(summary.totalParameters)) parameters, \(summary.layerKinds)")
        var meter: ProgressMeter?
        let (written, result) = try Synth.write(family: config, dtype: dtype, seed: seed, directory: out, shards: shards) { p in
            if meter == nil { meter = ProgressMeter(label: "synth", total: p.total, enabled: !quiet) }
            meter?.update(p.written)
        }
        print("synth: tokenizer: \(result.tokenizerFiles.joined(separator: ", ")) (byte-level BPE filling the \(written.vocabSize)-id vocabulary)")
        print("synth: wrote \(result.tensors) tensors, \(ModelSummary.bytes(result.bytes)) in \(result.shards.count) shards + index to \(result.directory) (\(String(format: "%.1f", result.seconds)) s)")
    }
}
