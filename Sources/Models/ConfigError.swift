// ConfigError: the one error type of the Models room (config decoding/validation, presets, tensor-table checks).
// Every error names the field or tensor (and file) it is about, and says how to fix it.

/// A model configuration or a checkpoint's tensor set that the runtime cannot run.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable, Equatable {
        case malformedJSON        // config.json is not a JSON object
        case missingField         // required HF key absent or null
        case wrongType            // key present with the wrong JSON type
        case unsupportedModelType // model_type not deepseek_v3 / kimi_k2
        case unsupportedValue     // a value the runtime does not implement (scoring_func softmax, ...)
        case invalidValue         // out of range (non-positive sizes, ...)
        case inconsistent         // fields that contradict each other (n_routed_experts % n_group, ...)
        case unknownPreset        // --preset NAME not known
        case missingTensor        // checkpoint lacks a tensor the model needs
        case tensorShape          // tensor present with the wrong shape
        case tensorDType          // tensor present with a dtype the runtime does not accept there
    }

    public let code: Code
    /// HF key path (e.g. `rope_scaling.factor`).
    public let field: String?
    /// HF checkpoint tensor name.
    public let tensor: String?
    /// File the offender lives in (config.json, a shard name).
    public let file: String?
    public let message: String
    public let hint: String

    public init(_ code: Code, field: String? = nil, tensor: String? = nil, file: String? = nil, _ message: String, hint: String) {
        self.code = code
        self.field = field
        self.tensor = tensor
        self.file = file
        self.message = message
        self.hint = hint
    }

    /// The same error attributed to `file` (validation runs on values; the caller knows where they came from).
    public func inFile(_ file: String) -> ConfigError {
        ConfigError(code, field: field, tensor: tensor, file: self.file ?? file, message, hint: hint)
    }

    public var description: String {
        var parts: [String] = []
        if let file { parts.append("file '\(file)'") }
        if let field { parts.append("field '\(field)'") }
        if let tensor { parts.append("tensor '\(tensor)'") }
        let location = parts.isEmpty ? "" : parts.joined(separator: ", ") + ": "
        return "config error [\(code.rawValue)] \(location)\(message)\n  hint: \(hint)"
    }
}
