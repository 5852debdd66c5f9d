// Presets: the real hub config.json of DeepSeek-V3 and Kimi K2 Instruct, selectable by name (`--preset`).
// Source of truth: Sources/Models/Presets/*.json, embedded by scripts/gen-presets.sh into PresetData.swift.
import Foundation

/// A named real-model configuration.
public enum ModelPreset: String, CaseIterable, Sendable {
    case deepseekV3 = "deepseek-v3"
    case kimiK2 = "kimi-k2"

    /// Exact hub `config.json` text.
    public var json: String {
        switch self {
        case .deepseekV3: return PresetData.deepseekV3
        case .kimiK2: return PresetData.kimiK2
        }
    }

    /// Hub repository the values come from.
    public var hubRepository: String {
        switch self {
        case .deepseekV3: return "deepseek-ai/DeepSeek-V3"
        case .kimiK2: return "moonshotai/Kimi-K2-Instruct"
        }
    }

    /// Published headline figures (total parameters without MTP, active parameters per token).
    public var publishedFigures: (total: Double, active: Double) {
        switch self {
        case .deepseekV3: return (671e9, 37e9)
        case .kimiK2: return (1.04e12, 32e9)
        }
    }

    /// Decodes the preset through the same path as a checkpoint's config.json.
    public func decoded() throws(ConfigError) -> DecodedConfig {
        try ModelConfig.decode(Data(json.utf8), file: "preset \(rawValue)")
    }

    /// The preset's config (presets are tested to decode and validate).
    public var config: ModelConfig {
        // A failure here is a broken build (the JSON is compiled in and tested), not bad user input.
        do { return try decoded().config } catch { fatalError("preset \(rawValue) does not decode: \(error)") }
    }

    /// Looks a preset up by name, with an error listing the known names.
    public static func named(_ name: String) throws(ConfigError) -> ModelPreset {
        if let p = ModelPreset(rawValue: name.lowercased()) { return p }
        throw ConfigError(.unknownPreset, field: "--preset", "unknown preset '\(name)'",
                          hint: "known presets: \(allCases.map(\.rawValue).joined(separator: ", "))")
    }
}
