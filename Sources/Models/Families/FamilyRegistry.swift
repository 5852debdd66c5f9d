// FamilyRegistry: model_type -> the family's config type. Decoding config.json picks the family here; every command
// that opens a checkpoint for running goes through it, and an unknown model_type lists the supported ones.
import Foundation

/// A decoded config of any supported family, plus what the decoder saw but does not use.
public struct DecodedFamilyConfig: Sendable {
    public let config: any FamilyConfiguration
    /// Keys neither decoded nor on the family's list of known inference-irrelevant keys (sorted; nested as `a.b`).
    public let unknownKeys: [String]
    public let ignoredKeys: [String]
}

public enum ModelFamilies {
    /// (model_type values, family) in the order `--help` and errors list them.
    static let families: [(types: [String], name: String, type: any (HFConfig & FamilyConfiguration).Type)] = [
        (ModelConfig.supportedModelTypes, "DeepSeek-V3 / Kimi K2", ModelConfig.self),
        (Qwen3MoeConfig.modelTypes, "Qwen3-MoE", Qwen3MoeConfig.self),
        (MixtralConfig.modelTypes, "Mixtral", MixtralConfig.self),
        (Glm4MoeConfig.modelTypes, "GLM-4.5", Glm4MoeConfig.self),
        (MinimaxM2Config.modelTypes, "MiniMax-M2", MinimaxM2Config.self),
    ]

    /// Every model_type moerun runs.
    public static var modelTypes: [String] { families.flatMap(\.types) }

    /// Decodes `config.json` bytes into the family its model_type names. `file` is only used in messages.
    public static func decode(_ data: Data, file: String = "config.json") throws(ConfigError) -> DecodedFamilyConfig {
        let top = try ConfigJSON.object(data, file: file)
        guard let modelType = top["model_type"] as? String else {
            throw ConfigError(.missingField, field: "model_type", file: file, "missing or not a string",
                              hint: "set model_type to one of: \(modelTypes.joined(separator: ", "))")
        }
        guard let family = families.first(where: { $0.types.contains(modelType) }) else {
            throw ConfigError(.unsupportedModelType, field: "model_type", file: file, "'\(modelType)' is not supported",
                              hint: "supported model_type values: " + families.map { "\($0.types.joined(separator: ", ")) (\($0.name))" }
                                .joined(separator: "; "))
        }
        return try decode(family.type, data, top: top, file: file)
    }

    static func decode<C: HFConfig & FamilyConfiguration>(_ type: C.Type, _ data: Data, top: [String: Any], file: String) throws(ConfigError)
        -> DecodedFamilyConfig {
        let r = try ConfigJSON.decode(C.self, data, top: top, file: file)
        return DecodedFamilyConfig(config: r.0, unknownKeys: r.unknown, ignoredKeys: r.ignored)
    }
}

/// HF keys of Llama-derived configs that do not change inference.
enum GQAConfigKeys {
    static let ignored: Set<String> = [
        "architectures", "attention_dropout", "initializer_range", "use_cache", "transformers_version", "pad_token_id",
        "_name_or_path", "output_router_logits", "router_aux_loss_coef", "return_dict", "output_hidden_states",
        "output_attentions", "use_return_dict", "is_encoder_decoder", "tie_encoder_decoder", "chunk_size_feed_forward",
    ]
}

/// Validation shared by the GQA families: collects problems in field order, throws the first.
struct GQAConfigCheck {
    var problems: [ConfigError] = []

    mutating func fail(_ code: ConfigError.Code, _ field: String, _ message: String, _ hint: String) {
        problems.append(ConfigError(code, field: field, message, hint: hint))
    }

    mutating func positive(_ values: [(String, Int)]) {
        for (field, value) in values where value <= 0 {
            fail(.invalidValue, field, "is \(value); must be positive", "use the value from the model's hub config.json")
        }
    }

    mutating func attention(heads: Int, kvHeads: Int, headDim: Int, bias: Bool) {
        if kvHeads > 0 && heads % kvHeads != 0 {
            fail(.inconsistent, "num_key_value_heads", "num_attention_heads \(heads) is not a multiple of \(kvHeads)",
                 "grouped-query attention shares each KV head among an equal number of query heads")
        }
        if headDim % 2 != 0 { fail(.invalidValue, "head_dim", "is \(headDim); RoPE rotates pairs, so it must be even", "use the hub value") }
        if bias { fail(.unsupportedValue, "attention_bias", "true is not implemented for this family", "released checkpoints set false") }
    }

    mutating func rotary(_ dims: Int, headDim: Int, field: String) {
        if dims <= 0 || dims > headDim || dims % 2 != 0 {
            fail(.invalidValue, field, "gives \(dims) rotary dims for head_dim \(headDim)", "RoPE needs an even number of dims, at most head_dim")
        }
    }

    mutating func groups(_ groups: Int, topK: Int, experts: Int, perToken: Int) {
        if groups > 0 && experts % groups != 0 {
            fail(.inconsistent, "n_group", "the \(experts) experts do not split into \(groups) groups", "pick n_group dividing the expert count")
        } else if topK > groups {
            fail(.inconsistent, "topk_group", "\(topK) exceeds n_group \(groups)", "topk_group is how many groups are kept")
        } else if groups > 0 && topK * (experts / groups) < perToken {
            fail(.inconsistent, "topk_group", "\(topK) groups of \(experts / groups) experts cannot supply \(perToken) per token",
                 "raise topk_group or lower num_experts_per_tok")
        }
    }

    mutating func topK(_ k: Int, of experts: Int, expertsField: String) {
        if k > experts && experts > 0 {
            fail(.inconsistent, "num_experts_per_tok", "\(k) exceeds \(expertsField) \(experts)", "top-k must not exceed the number of experts")
        }
    }

    mutating func common(hiddenAct: String?, rope: RopeScaling?, window: Int?, quantization: QuantizationConfig?) {
        if let act = hiddenAct, act != "silu" {
            fail(.unsupportedValue, "hidden_act", "'\(act)' is not implemented", "the released checkpoints use 'silu'")
        }
        if let rope, rope.kind != "default" {
            fail(.unsupportedValue, "rope_scaling", "RoPE type '\(rope.kind)' is not implemented for this family yet",
                 "remove rope_scaling (null) to run at the native context length")
        }
        if let window {
            fail(.unsupportedValue, "sliding_window", "\(window) is not implemented for this family yet",
                 "set sliding_window to null (the released configs do); prompts shorter than the window give the same result")
        }
        problems += quantization?.problems() ?? []
    }

    func throwFirst() throws(ConfigError) {
        if let first = problems.first { throw first }
    }
}
