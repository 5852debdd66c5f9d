// Config decoding: bytes of an HF config.json -> ModelConfig (strict types, HF keys), unknown keys listed,
// DecodingError mapped to ConfigError naming the field. No file IO here: callers pass the bytes.
import Foundation

/// A decoded config plus what the decoder saw but does not use.
public struct DecodedConfig: Sendable {
    public let config: ModelConfig
    /// Keys neither decoded nor on the list of known inference-irrelevant HF keys (sorted; nested as `a.b`).
    public let unknownKeys: [String]
    /// Known HF keys that have no effect on inference (training knobs, remote-code plumbing).
    public let ignoredKeys: [String]
}

extension ModelConfig {
    /// model_type values this runtime runs. `kimi_k2` is the same architecture with other values.
    public static let supportedModelTypes = ["deepseek_v3", "kimi_k2"]

    /// HF keys that appear in real DeepSeek-V3 / Kimi K2 / transformers-5 configs and do not change the forward pass.
    public static let ignoredKnownKeys: Set<String> = [
        "auto_map", "aux_loss_alpha", "ep_size", "initializer_range", "pretraining_tp", "seq_aux", "use_cache",
        "attention_dropout", "transformers_version", "pad_token_id", "head_dim", "_name_or_path",
        "output_router_logits", "router_aux_loss_coef", "return_dict", "output_hidden_states", "output_attentions",
        "use_return_dict", "is_encoder_decoder", "tie_encoder_decoder", "chunk_size_feed_forward",
        "qk_head_dim",  // derived (nope + rope); transformers 5 writes it
    ]

    /// Decodes `config.json` bytes of a DeepSeek-V3 / Kimi K2 checkpoint. `file` is only used in messages.
    public static func decode(_ data: Data, file: String = "config.json") throws(ConfigError) -> DecodedConfig {
        let top = try ConfigJSON.object(data, file: file)
        guard let modelType = top["model_type"] as? String else {
            throw ConfigError(.missingField, field: "model_type", file: file, "missing or not a string",
                              hint: "set model_type to one of: \(supportedModelTypes.joined(separator: ", "))")
        }
        guard supportedModelTypes.contains(modelType) else { throw unsupportedModelType(modelType, file: file) }
        let (config, unknown, ignored) = try ConfigJSON.decode(ModelConfig.self, data, top: top, file: file)
        return DecodedConfig(config: config, unknownKeys: unknown, ignoredKeys: ignored)
    }

    static func unsupportedModelType(_ value: String, file: String?) -> ConfigError {
        ConfigError(.unsupportedModelType, field: "model_type", file: file,
                    "'\(value)' is not supported",
                    hint: "supported model_type values: \(supportedModelTypes.joined(separator: ", ")) (DeepSeek-V3 architecture)")
    }

    /// Encodes back to HF JSON (sorted keys, pretty), as `synth` writes it.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

/// Decoding shared by every family's config: the JSON object, strict typed decoding with errors that name the field,
/// and the keys the type does not know.
public protocol HFConfig: Decodable {
    /// Every HF key the type decodes.
    static var knownKeys: Set<String> { get }
    /// HF keys that appear in real configs of the family and do not change the forward pass.
    static var ignoredKnownKeys: Set<String> { get }
    /// Nested objects whose keys are checked too (`rope_scaling` -> its known keys).
    static var nestedKnownKeys: [String: Set<String>] { get }
}

enum ConfigJSON {
    static func object(_ data: Data, file: String) throws(ConfigError) -> [String: Any] {
        do {
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ConfigError(.malformedJSON, file: file, "top level is not a JSON object",
                                  hint: "config.json must be an object of HF config keys")
            }
            return object
        } catch let e as ConfigError {
            throw e
        } catch {
            throw ConfigError(.malformedJSON, file: file, "not valid JSON (\(error.localizedDescription))",
                              hint: "fix the JSON syntax (trailing commas, quotes) or re-download config.json")
        }
    }

    /// Decodes `data` (whose top object is `top`) as `C`; returns it with the unknown and the ignored keys, sorted.
    static func decode<C: HFConfig>(_ type: C.Type, _ data: Data, top: [String: Any], file: String) throws(ConfigError)
        -> (C, unknown: [String], ignored: [String]) {
        let config: C
        do {
            config = try JSONDecoder().decode(C.self, from: data)
        } catch let error as DecodingError {
            throw map(error, file: file)
        } catch {
            throw ConfigError(.malformedJSON, file: file, "\(error)", hint: "re-download config.json")
        }
        var unknown: [String] = []
        var ignored: [String] = []
        for key in top.keys {
            if C.knownKeys.contains(key) { continue }
            if C.ignoredKnownKeys.contains(key) { ignored.append(key) } else { unknown.append(key) }
        }
        for (key, known) in C.nestedKnownKeys {
            if let nested = top[key] as? [String: Any] {
                unknown += nested.keys.filter { !known.contains($0) }.map { "\(key).\($0)" }
            }
        }
        return (config, unknown.sorted(), ignored.sorted())
    }

    static func path(_ context: DecodingError.Context, _ key: CodingKey? = nil) -> String {
        var keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
        if let key { keys.append(key.stringValue) }
        return keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
    }

    static func map(_ error: DecodingError, file: String) -> ConfigError {
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context, key)
            return ConfigError(.missingField, field: field, file: file, "required key is missing",
                               hint: "add \"\(field)\" to config.json (the model's hub config.json has it)")
        case .valueNotFound(let type, let context):
            let field = path(context)
            return ConfigError(.missingField, field: field, file: file, "is null but a \(type) is required",
                               hint: "give \"\(field)\" a value")
        case .typeMismatch(let type, let context):
            let field = path(context)
            return ConfigError(.wrongType, field: field, file: file, "has the wrong JSON type (expected \(type))",
                               hint: "HF configs use numbers for sizes, strings for names, objects for rope_scaling")
        case .dataCorrupted(let context):
            let field = path(context)
            return ConfigError(.wrongType, field: field.isEmpty ? nil : field, file: file, context.debugDescription,
                               hint: "check the value's type and range")
        @unknown default:
            return ConfigError(.malformedJSON, file: file, "\(error)", hint: "re-download config.json")
        }
    }
}

extension ModelConfig: HFConfig {
    public static var nestedKnownKeys: [String: Set<String>] {
        ["rope_scaling": RopeScaling.knownKeys, "rope_parameters": RopeScaling.knownKeys, "quantization_config": QuantizationConfig.knownKeys]
    }
}
