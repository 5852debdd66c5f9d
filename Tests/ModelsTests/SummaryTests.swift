// Inspect figures for the presets: published headline numbers, KV-cache bytes, component breakdown.
import Foundation
import Testing
@testable import Models

private func within(_ value: Int, _ target: Double, _ tolerance: Double) -> Bool {
    abs(Double(value) - target) / target <= tolerance
}

@Test func deepSeekV3FiguresMatchPublished() {
    let s = ModelSummary(config: ModelPreset.deepseekV3.config)
    #expect(within(s.totalParameters, 671e9, 0.01), "total \(s.totalParameters)")
    // 36.63B counting one embedding row per token: DeepSeek's README_WEIGHTS.md states 36.6B (incl. the output head),
    // which the headline rounds to "37B".
    #expect(within(s.activeParameters, 36.6e9, 0.001), "active \(s.activeParameters)")
    #expect(within(s.activeParameters, 37e9, 0.011), "active \(s.activeParameters)")
    #expect(ModelPreset.deepseekV3.publishedFigures.map(\.activeParameters) == [37e9, 36.6e9])
    #expect(within(s.mtpParameters, 13.5e9, 0.01), "mtp \(s.mtpParameters)")
    // Hub FP8 checkpoint is ~688.6 GB (main + MTP); weights + scales here must land within 1%.
    #expect(within(s.bytesFP8 + (s.mtp?.bytesFP8 ?? 0), 688.6e9, 0.01))
    #expect(s.kvCache.latentBytesPerToken == 70_272)
    #expect(s.kvCache.mhaBytesPerToken == 128 * (192 + 128) * 2 * 61)
    #expect(s.denseLayers == [0, 1, 2] && s.moeLayers.count == 58 && s.mtpLayers == [61])
}

@Test func kimiK2FiguresMatchPublished() {
    let s = ModelSummary(config: ModelPreset.kimiK2.config)
    // Exact count 1.026T, between the model card's "1T" (+2.6%) and the K2 report's "1.04T" (-1.3%).
    #expect(within(s.totalParameters, 1.04e12, 0.015), "total \(s.totalParameters)")
    #expect(within(s.totalParameters, 1e12, 0.03), "total \(s.totalParameters)")
    #expect(ModelPreset.kimiK2.publishedFigures.map(\.totalParameters) == [1e12, 1.04e12])
    #expect(within(s.activeParameters, 32e9, 0.01), "active \(s.activeParameters)")
    #expect(s.mtp == nil && s.mtpLayers.isEmpty)
    #expect(s.denseLayers == [0] && s.moeLayers.count == 60)
    #expect(s.kvCache.mhaBytesPerToken == 64 * 320 * 2 * 61)
}

@Test func componentsSumToTotalAndJSONRoundTrips() throws {
    let s = ModelSummary(config: ModelPreset.deepseekV3.config)
    #expect(s.components.reduce(0) { $0 + $1.parameters } == s.totalParameters)
    #expect(Set(s.components.map(\.component)) == Set(TensorComponent.allCases.map(\.rawValue)).subtracting(["mtp"]))
    let data = try JSONEncoder().encode(s)
    let back = try JSONDecoder().decode(ModelSummary.self, from: data)
    #expect(back.totalParameters == s.totalParameters && back.activeParameters == s.activeParameters)
}

@Test func rangesRender() {
    #expect(ModelSummary.ranges([0, 1, 2, 5, 7, 8]) == "0-2, 5, 7-8")
    #expect(ModelSummary.ranges([]) == "none")
}
