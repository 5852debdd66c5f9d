// Config decoding and validation through the real JSON path: presets, transformers-5 spellings, every rejection.
import Foundation
import Testing
@testable import Models

/// A tiny DeepSeek-V3 config (architectures.md §5) as JSON, with fields overridable per test.
func tinyConfigJSON(_ overrides: [String: Any] = [:], removing: [String] = []) -> Data {
    var dict: [String: Any] = [
        "model_type": "deepseek_v3", "vocab_size": 256, "hidden_size": 64, "intermediate_size": 128,
        "moe_intermediate_size": 32, "num_hidden_layers": 4, "num_nextn_predict_layers": 1,
        "num_attention_heads": 4, "num_key_value_heads": 4, "q_lora_rank": 32, "kv_lora_rank": 16,
        "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16, "n_routed_experts": 8,
        "num_experts_per_tok": 2, "n_shared_experts": 1, "n_group": 2, "topk_group": 1,
        "routed_scaling_factor": 2.5, "norm_topk_prob": true, "scoring_func": "sigmoid", "topk_method": "noaux_tc",
        "first_k_dense_replace": 1, "moe_layer_freq": 1, "hidden_act": "silu", "rms_norm_eps": 1e-6,
        "rope_theta": 10000,
        "rope_scaling": ["type": "yarn", "factor": 40, "beta_fast": 32, "beta_slow": 1, "mscale": 1.0,
                         "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096],
        "max_position_embeddings": 163840, "tie_word_embeddings": false, "bos_token_id": 0, "eos_token_id": 1,
    ]
    for (k, v) in overrides { dict[k] = v }
    for k in removing { dict.removeValue(forKey: k) }
    return try! JSONSerialization.data(withJSONObject: dict, options: [.sortedKeys])
}

func decodeError(_ data: Data) -> ConfigError? {
    do { _ = try ModelConfig.decode(data) } catch { return error }
    return nil
}

func validationError(_ data: Data) throws -> ConfigError? {
    let c = try ModelConfig.decode(data).config
    do { try c.validate() } catch { return error }
    return nil
}

@Test func presetsDecodeValidateAndListIgnoredKeys() throws {
    for p in ModelPreset.allCases {
        let d = try p.decoded()
        try d.config.validate()
        #expect(d.unknownKeys.isEmpty, "\(p): \(d.unknownKeys)")
        #expect(d.ignoredKeys.contains("auto_map"))
        #expect(d.config.isFP8 && d.config.quantizationConfig?.weightBlockSize == [128, 128])
        #expect(d.config.effectiveRopeScaling?.kind == "yarn")
    }
    let ds = ModelPreset.deepseekV3.config, k2 = ModelPreset.kimiK2.config
    #expect(ds.modelType == "deepseek_v3" && ds.mtpLayerCount == 1 && ds.nGroup == 8 && ds.topkGroup == 4)
    #expect(k2.modelType == "kimi_k2" && k2.numAttentionHeads == 64 && k2.nRoutedExperts == 384)
    #expect(k2.firstKDenseReplace == 1 && k2.routedScalingFactor == 2.827 && k2.effectiveRopeTheta == 50000)
    #expect(k2.effectiveRopeScaling?.factor == 32 && k2.effectiveRopeScaling?.betaFast == 1)
    #expect(k2.vocabSize == 163840 && k2.bosTokenId == 163584 && k2.eosIDs == [163585] && k2.mtpLayerCount == 0)
}

@Test func presetDataMatchesJSONFiles() throws {
    // The JSON files are the source of truth; PresetData.swift must be regenerated when they change.
    let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources/Models/Presets")
    for p in ModelPreset.allCases {
        let file = try String(contentsOf: dir.appendingPathComponent("\(p.rawValue).json"), encoding: .utf8)
        #expect(file.trimmingCharacters(in: .whitespacesAndNewlines) == p.json.trimmingCharacters(in: .whitespacesAndNewlines),
                "run scripts/gen-presets.sh")
    }
}

@Test func presetLookupNamesKnownPresets() {
    #expect(throws: ConfigError.self) { try ModelPreset.named("llama") }
    do { _ = try ModelPreset.named("llama") } catch {
        #expect(error.code == .unknownPreset && error.hint.contains("deepseek-v3") && error.hint.contains("kimi-k2"))
    }
    #expect((try? ModelPreset.named("Kimi-K2")) == .kimiK2)
}

@Test func transformers5SpellingsDecode() throws {
    // transformers 5 folds rope_theta into rope_parameters and writes dtype / num_mtp_layers / rope_interleave.
    let data = tinyConfigJSON([
        "rope_parameters": ["rope_type": "yarn", "rope_theta": 10000, "factor": 40, "beta_fast": 32, "beta_slow": 1,
                            "mscale": 1.0, "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096, "truncate": true],
        "dtype": "float32", "rope_interleave": true, "num_mtp_layers": 0, "head_dim": 8, "some_new_knob": 3,
    ], removing: ["rope_theta", "rope_scaling", "num_nextn_predict_layers"])
    let d = try ModelConfig.decode(data)
    try d.config.validate()
    #expect(d.config.effectiveRopeTheta == 10000 && d.config.effectiveRopeScaling?.kind == "yarn")
    #expect(d.config.mtpLayerCount == 0)
    #expect(d.unknownKeys == ["rope_parameters.truncate", "some_new_knob"])
    #expect(d.ignoredKeys == ["head_dim"])
}

@Test func kimiK2IsAnAliasOfTheSameType() throws {
    let d = try ModelConfig.decode(tinyConfigJSON(["model_type": "kimi_k2", "n_group": 1, "topk_group": 1]))
    try d.config.validate()
    let ds = try ModelConfig.decode(tinyConfigJSON()).config
    #expect(TensorTable(config: d.config).specs.map(\.name) == TensorTable(config: ds).specs.map(\.name))
}

@Test func ropeScalingNoneIsAccepted() throws {
    var d = try ModelConfig.decode(tinyConfigJSON(["rope_scaling": NSNull()])).config
    try d.validate()
    #expect(d.effectiveRopeScaling == nil)
    d = try ModelConfig.decode(tinyConfigJSON(removing: ["rope_scaling"])).config
    try d.validate()
}

@Test func decodingErrorsNameTheField() throws {
    var e = decodeError(Data("{\"model_type\": \"deepseek_v3\",".utf8))
    #expect(e?.code == .malformedJSON && e?.file == "config.json")
    e = decodeError(Data("[1, 2]".utf8))
    #expect(e?.code == .malformedJSON)
    e = decodeError(tinyConfigJSON(["model_type": "llama"]))
    #expect(e?.code == .unsupportedModelType && e?.field == "model_type")
    #expect(e?.hint.contains("deepseek_v3") == true && e?.hint.contains("kimi_k2") == true)
    e = decodeError(tinyConfigJSON(removing: ["model_type"]))
    #expect(e?.code == .missingField && e?.field == "model_type")
    e = decodeError(tinyConfigJSON(removing: ["kv_lora_rank"]))
    #expect(e?.code == .missingField && e?.field == "kv_lora_rank")
    e = decodeError(tinyConfigJSON(["hidden_size": "big"]))
    #expect(e?.code == .wrongType && e?.field == "hidden_size")
    e = decodeError(tinyConfigJSON(["rope_scaling": ["type": "yarn", "factor": "forty"]]))
    #expect(e?.code == .wrongType && e?.field == "rope_scaling.factor")
    e = decodeError(tinyConfigJSON(["n_group": NSNull()]))
    #expect(e?.code == .missingField && e?.field == "n_group")
    #expect(e?.description.contains("hint:") == true)
}

@Test func validationRejectsWhatTheRuntimeCannotRun() throws {
    let cases: [([String: Any], String, ConfigError.Code)] = [
        (["scoring_func": "softmax"], "scoring_func", .unsupportedValue),
        (["topk_method": "greedy"], "topk_method", .unsupportedValue),
        (["n_group": 3], "n_group", .inconsistent),
        (["topk_group": 3], "topk_group", .inconsistent),
        (["num_experts_per_tok": 6, "topk_group": 1], "topk_group", .inconsistent),
        (["num_experts_per_tok": 9], "num_experts_per_tok", .inconsistent),
        (["hidden_size": 0], "hidden_size", .invalidValue),
        (["qk_rope_head_dim": 7], "qk_rope_head_dim", .invalidValue),
        (["first_k_dense_replace": 9], "first_k_dense_replace", .invalidValue),
        (["moe_layer_freq": 0], "moe_layer_freq", .invalidValue),
        (["hidden_act": "gelu"], "hidden_act", .unsupportedValue),
        (["rms_norm_eps": 0], "rms_norm_eps", .invalidValue),
        (["attention_bias": true], "attention_bias", .unsupportedValue),
        (["rope_interleave": false], "rope_interleave", .unsupportedValue),
        (["rope_scaling": ["type": "linear", "factor": 2]], "rope_scaling.type", .unsupportedValue),
        (["rope_scaling": ["type": "yarn", "factor": 0.5, "original_max_position_embeddings": 4096]], "rope_scaling.factor", .invalidValue),
        (["quantization_config": ["quant_method": "fp8", "weight_block_size": [64, 64]]], "quantization_config.weight_block_size", .unsupportedValue),
        (["quantization_config": ["quant_method": "compressed-tensors"]], "quantization_config.quant_method", .unsupportedValue),
        (["quantization_config": ["quant_method": "fp8", "fmt": "e5m2"]], "quantization_config.fmt", .unsupportedValue),
    ]
    for (override, field, code) in cases {
        let e = try validationError(tinyConfigJSON(override))
        #expect(e?.field == field && e?.code == code, "\(override) -> \(String(describing: e))")
    }
    #expect(try validationError(tinyConfigJSON()) == nil)
}

@Test func encodedConfigDecodesToTheSameValue() throws {
    let c = ModelPreset.deepseekV3.config
    let back = try ModelConfig.decode(try c.jsonData()).config
    #expect(back == c)
}
