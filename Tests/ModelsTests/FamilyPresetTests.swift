// The other families' presets: hub configs that decode with no unknown key, embedded text equal to the JSON files,
// parameter counts within 2% of the publisher's figures, and a shape that agrees with the tensor table.
import Foundation
import Models
import Testing

@Suite struct FamilyPresetTests {
    @Test(arguments: FamilyPreset.allCases)
    func decodesValidatesAndMatchesItsJSONFile(_ p: FamilyPreset) throws {
        let d = try p.decoded()
        try d.config.validate()
        #expect(d.unknownKeys.isEmpty, "\(p): \(d.unknownKeys)")
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/Models/Presets")
        let file = try String(contentsOf: dir.appendingPathComponent("\(p.rawValue).json"), encoding: .utf8)
        #expect(file.trimmingCharacters(in: .whitespacesAndNewlines) == p.json.trimmingCharacters(in: .whitespacesAndNewlines),
                "run scripts/gen-presets.sh")
        #expect(try AnyPreset.named(p.rawValue.uppercased()).name == p.rawValue)
    }

    @Test(arguments: FamilyPreset.allCases)
    func parameterCountsAgreeWithThePublishedFigures(_ p: FamilyPreset) {
        let s = ModelSummary(family: p.config)
        for f in p.publishedFigures {
            let active = Double(s.active(f.counting))
            #expect(abs(Double(s.totalParameters) / f.totalParameters - 1) < 0.02, "\(p) total \(s.totalParameters) vs \(f.totalParameters)")
            #expect(abs(active / f.activeParameters - 1) < 0.02, "\(p) active \(active) vs \(f.activeParameters)")
        }
    }

    @Test(arguments: FamilyPreset.allCases)
    func shapeAgreesWithTheTensorTable(_ p: FamilyPreset) {
        let c = p.config, shape = c.shape, specs = c.mainTensorSpecs
        #expect(Set(specs.map(\.name)).count == specs.count, "a tensor name repeats")
        for (l, layer) in shape.layers.enumerated() {
            let mine = specs.filter { $0.layer == l }
            guard case .attention(let a) = layer.mixer else { Issue.record("layer \(l) is not GQA"); continue }
            let projections = mine.filter { $0.role == .attention }.reduce(0) { $0 + $1.parameterCount }
            #expect(Double(projections) == a.parameters(hidden: shape.hidden), "layer \(l)")
            if let moe = layer.moe {
                #expect(Set(mine.compactMap(\.expert)).count == moe.experts)
                #expect(mine.filter { $0.role == .routedExpert }.reduce(0) { $0 + $1.parameterCount } == 3 * shape.hidden * moe.width * moe.experts)
            } else {
                #expect(mine.filter { $0.role == .denseFFN }.reduce(0) { $0 + $1.parameterCount } == 3 * shape.hidden * (layer.denseWidth ?? 0))
            }
        }
    }
}

@Test func unknownPresetListsEveryFamilysPresets() {
    do { _ = try AnyPreset.named("llama-3") } catch {
        #expect(error.code == .unknownPreset && error.hint.contains("qwen3-235b-a22b") && error.hint.contains("deepseek-v3"))
    }
}
