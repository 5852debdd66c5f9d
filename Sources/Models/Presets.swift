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
    /// What the publisher counts as active (`ModelSummary.active(_:)` computes each).
    public var counting: ActiveCounting

    public init(source: String, totalParameters: Double, activeParameters: Double, counting: ActiveCounting = .oneEmbeddingRow) {
        self.source = source
        self.totalParameters = totalParameters
        self.activeParameters = activeParameters
        self.counting = counting
    }
}

/// Presets of the families other than DeepSeek-V3 / Kimi K2: the hub config.json of each released model.
public enum FamilyPreset: String, CaseIterable, Sendable {
    case qwen3_235b = "qwen3-235b-a22b"
    case qwen3_30b = "qwen3-30b-a3b"
    case mixtral8x7b = "mixtral-8x7b"
    case mixtral8x22b = "mixtral-8x22b"
    case glm45 = "glm-4.5"
    case glm45Air = "glm-4.5-air"
    case minimaxM2 = "minimax-m2"

    /// Hub `config.json` text of Qwen/Qwen3-235B-A22B, Qwen/Qwen3-30B-A3B, mistralai/Mixtral-8x7B-v0.1,
    /// mistralai/Mixtral-8x22B-v0.1, zai-org/GLM-4.5(-Air) and MiniMaxAI/MiniMax-M2, from public copies of those files
    /// (MiniMax-M2's bos / eos and max_position_embeddings are transformers' class defaults for it).
    public var json: String {
        switch self {
        case .qwen3_235b: return PresetData.qwen3235bA22b
        case .qwen3_30b: return PresetData.qwen330bA3b
        case .mixtral8x7b: return PresetData.mixtral8x7b
        case .mixtral8x22b: return PresetData.mixtral8x22b
        case .glm45: return PresetData.glm45
        case .glm45Air: return PresetData.glm45Air
        case .minimaxM2: return PresetData.minimaxM2
        }
    }

    /// Published parameter counts from the publisher's own pages.
    public var publishedFigures: [PublishedFigure] {
        switch self {
        case .qwen3_235b:
            return [PublishedFigure(source: "Qwen/Qwen3-235B-A22B model card (235B total, 22B activated)", totalParameters: 235e9, activeParameters: 22e9,
                                    counting: .wholeEmbeddingTable)]
        case .qwen3_30b:
            return [PublishedFigure(source: "Qwen/Qwen3-30B-A3B model card (30.5B total, 3.3B activated)", totalParameters: 30.5e9, activeParameters: 3.3e9,
                                    counting: .wholeEmbeddingTable)]
        case .mixtral8x7b:
            return [PublishedFigure(source: "Mistral AI, \"Mixtral of experts\" (46.7B total, 12.9B per token)", totalParameters: 46.7e9, activeParameters: 12.9e9)]
        case .mixtral8x22b:
            return [PublishedFigure(source: "Mistral AI, \"Cheaper, Better, Faster, Stronger\" (141B total, 39B active)", totalParameters: 141e9, activeParameters: 39e9)]
        case .glm45:
            return [PublishedFigure(source: "Z.ai GLM-4.5 announcement and model card (355B total, 32B active)", totalParameters: 355e9, activeParameters: 32e9,
                                    counting: .withoutEmbeddingAndHead)]
        case .glm45Air:
            return [PublishedFigure(source: "Z.ai GLM-4.5 announcement and model card (Air: 106B total, 12B active)", totalParameters: 106e9, activeParameters: 12e9,
                                    counting: .withoutEmbeddingAndHead)]
        case .minimaxM2:
            return [PublishedFigure(source: "MiniMaxAI/MiniMax-M2 model card (230B total, 10B active)", totalParameters: 230e9, activeParameters: 10e9,
                                    counting: .withoutEmbeddingAndHead)]
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
