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

    /// Published parameter counts (main model, MTP excluded) from the model's own documents, most precise last.
    /// The rounded headlines disagree with each other by more than the rounding (K2: "1T" on the model card,
    /// "1.04T" in the report), so every statement is listed and compared, none adjusted.
    public var publishedFigures: [PublishedFigure] {
        switch self {
        case .deepseekV3:
            return [PublishedFigure(source: "deepseek-ai/DeepSeek-V3 README and paper (headline, rounded)", totalParameters: 671e9, activeParameters: 37e9),
                    PublishedFigure(source: "deepseek-ai/DeepSeek-V3 README_WEIGHTS.md (active incl. the 0.9B output head)", totalParameters: 671e9, activeParameters: 36.6e9)]
        case .kimiK2:
            return [PublishedFigure(source: "moonshotai/Kimi-K2-Instruct model card (headline)", totalParameters: 1e12, activeParameters: 32e9),
                    PublishedFigure(source: "Kimi K2 technical report, arXiv 2507.20534", totalParameters: 1.04e12, activeParameters: 32e9)]
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

/// One published statement of a model's size.
public struct PublishedFigure: Sendable {
    public let source: String
    public let totalParameters: Double
    public let activeParameters: Double
}
