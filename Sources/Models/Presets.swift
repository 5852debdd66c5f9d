// Presets: the real hub config.json of DeepSeek-V3, Kimi K2 Instruct and the other families' released models,
// selectable by name (`--preset`).
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
                          hint: "known presets: \(AnyPreset.names.joined(separator: ", "))")
    }
}

/// One published statement of a model's size.
public struct PublishedFigure: Sendable {
    public let source: String
    public let totalParameters: Double
    public let activeParameters: Double
    /// The publisher's active count includes the whole embedding table (Qwen's do: 3.3B for Qwen3-30B-A3B is only
    /// reached that way), so it is compared with `activeParametersWithEmbeddingTable`.
    public var countsEmbeddingTable = false

    public init(source: String, totalParameters: Double, activeParameters: Double, countsEmbeddingTable: Bool = false) {
        self.source = source
        self.totalParameters = totalParameters
        self.activeParameters = activeParameters
        self.countsEmbeddingTable = countsEmbeddingTable
    }
}

/// Presets of the families other than DeepSeek-V3 / Kimi K2: the hub config.json of each released model.
public enum FamilyPreset: String, CaseIterable, Sendable {
    case qwen3_235b = "qwen3-235b-a22b"
    case qwen3_30b = "qwen3-30b-a3b"
    case mixtral8x7b = "mixtral-8x7b"
    case mixtral8x22b = "mixtral-8x22b"

    /// Exact hub `config.json` text (Qwen/Qwen3-235B-A22B, Qwen/Qwen3-30B-A3B, mistralai/Mixtral-8x7B-v0.1,
    /// mistralai/Mixtral-8x22B-v0.1).
    public var json: String {
        switch self {
        case .qwen3_235b: return PresetData.qwen3235bA22b
        case .qwen3_30b: return PresetData.qwen330bA3b
        case .mixtral8x7b: return PresetData.mixtral8x7b
        case .mixtral8x22b: return PresetData.mixtral8x22b
        }
    }

    /// Published parameter counts from the publisher's own pages.
    public var publishedFigures: [PublishedFigure] {
        switch self {
        case .qwen3_235b:
            return [PublishedFigure(source: "Qwen/Qwen3-235B-A22B model card (235B total, 22B activated)", totalParameters: 235e9, activeParameters: 22e9,
                                    countsEmbeddingTable: true)]
        case .qwen3_30b:
            return [PublishedFigure(source: "Qwen/Qwen3-30B-A3B model card (30.5B total, 3.3B activated)", totalParameters: 30.5e9, activeParameters: 3.3e9,
                                    countsEmbeddingTable: true)]
        case .mixtral8x7b:
            return [PublishedFigure(source: "Mistral AI, \"Mixtral of experts\" (46.7B total, 12.9B per token)", totalParameters: 46.7e9, activeParameters: 12.9e9)]
        case .mixtral8x22b:
            return [PublishedFigure(source: "Mistral AI, \"Cheaper, Better, Faster, Stronger\" (141B total, 39B active)", totalParameters: 141e9, activeParameters: 39e9)]
        }
    }

    /// Decodes the preset through the same path as a checkpoint's config.json.
    public func decoded() throws(ConfigError) -> DecodedFamilyConfig {
        try ModelFamilies.decode(Data(json.utf8), file: "preset \(rawValue)")
    }

    public var config: any FamilyConfiguration {
        do { return try decoded().config } catch { fatalError("preset \(rawValue) does not decode: \(error)") }
    }
}

/// Any preset by name, whatever its family.
public enum AnyPreset {
    public static var names: [String] { ModelPreset.allCases.map(\.rawValue) + FamilyPreset.allCases.map(\.rawValue) }

    /// (name, decoded config, published figures); unknown names list the known ones.
    public static func named(_ name: String) throws(ConfigError) -> (name: String, decoded: DecodedFamilyConfig, published: [PublishedFigure]) {
        if let p = FamilyPreset(rawValue: name.lowercased()) { return (p.rawValue, try p.decoded(), p.publishedFigures) }
        let p = try ModelPreset.named(name)
        let d = try p.decoded()
        return (p.rawValue, DecodedFamilyConfig(config: d.config, unknownKeys: d.unknownKeys, ignoredKeys: d.ignoredKeys), p.publishedFigures)
    }
}
