// The forward pass against the transformers float32 fixtures (Tests/Fixtures/<name>/), at the Models level:
// per-layer hidden states of case 0, routing of every MoE layer, prompt + step logits and greedy tokens, for each
// attention form (naive, absorbed, default naive-prefill/absorbed-decode). The end-to-end engine comparison is
// FixtureTests/TransformersMatchTests.
import Checkpoint
import Foundation
import Testing
import TestSupport
import Kernels
@testable import Models
import Tensors

let fixtureRoot = Fixtures.root

func fixtureExists(_ name: String) -> Bool {
    FileManager.default.fileExists(atPath: fixtureRoot.appendingPathComponent(name).appendingPathComponent("reference.json").path)
}

struct Fixture {
    let config: any FamilyConfiguration
    let source: CheckpointDirectory
    let reference: [String: Any]

    init(_ name: String) throws {
        let dir = fixtureRoot.appendingPathComponent(name)
        config = try ModelFamilies.decode(Data(contentsOf: dir.appendingPathComponent("config.json"))).config
        source = try CheckpointDirectory(directory: dir.path)
        reference = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("reference.json"))) as! [String: Any]
    }

    var cases: [[String: Any]] { reference["cases"] as! [[String: Any]] }

    static func matrix(_ any: Any) -> Matrix {
        let rows = (any as! [[NSNumber]]).map { $0.map(\.floatValue) }
        return Matrix(rows: rows.count, cols: rows.first?.count ?? 0, data: rows.flatMap { $0 })
    }
}

struct FixtureReport: CustomStringConvertible {
    var promptLogits: Float = 0
    var stepLogits: Float = 0
    var hidden: [Float] = []
    var greedyMatches = true
    var routingMatches = true
    var description: String {
        "prompt logits max|diff| \(promptLogits), step logits \(stepLogits), hidden per layer \(hidden), greedy ok \(greedyMatches), routing ok \(routingMatches)"
    }
}

/// Runs every case of a fixture: prompt prefill, 8 greedy steps with the cache, routing of the full sequence,
/// per-layer hidden states of case 0.
func runFixture(_ name: String, mode: AttentionMode?) throws -> FixtureReport {
    let fx = try Fixture(name)
    let c = fx.config
    let model = try c.loadModel(source: fx.source, shard: ModelShard(), dispatcher: nil, pool: .serial, weightLayout: .checkpoint, progress: nil)
    var report = FixtureReport()
    let derived = fx.reference["derived"] as! [String: Any]
    let softmaxScale = (model as? DeepSeekModel)?.softmaxScale ?? model.stack.mixers.attention!.softmaxScale
    #expect(abs(Double(softmaxScale) - (derived["softmax_scale"] as! Double)) < 1e-7, "\(name) softmax scale")
    let invFreq = (derived["rope_inv_freq"] as! [NSNumber]).map(\.floatValue)
    #expect(model.rope.invFreq == invFreq, "\(name) rope inv_freq \(model.rope.invFreq) vs \(invFreq)")
    for (ci, kase) in fx.cases.enumerated() {
        let prompt = (kase["prompt"] as! [NSNumber]).map(\.intValue)
        let greedyRef = (kase["greedy"] as! [NSNumber]).map(\.intValue)
        let cache = model.makeCache()
        let logits = try model.forward(tokens: prompt, positions: Array(0..<prompt.count), cache: cache, mode: mode)
        report.promptLogits = max(report.promptLogits, logits.maxAbsDiff(Fixture.matrix(kase["logits"]!)))
        let steps = Fixture.matrix(kase["step_logits"]!)
        var cur = logits.row(prompt.count - 1)
        var greedy: [Int] = []
        for i in 0..<greedyRef.count {
            let refRow = steps.row(i)
            report.stepLogits = max(report.stepLogits, zip(cur, refRow).map { abs($0 - $1) }.max() ?? 0)
            let tok = Ops.argmax(cur)
            greedy.append(tok)
            if i + 1 < greedyRef.count {
                let pos = prompt.count + i
                cur = try model.forward(tokens: [tok], positions: [pos], cache: cache, mode: mode).row(0)
            }
        }
        if greedy != greedyRef { report.greedyMatches = false; print("\(name) case \(ci): greedy \(greedy) vs \(greedyRef)") }
        // Routing of the full sequence (prompt + greedy[:-1]), per MoE layer.
        if let routingRef = kase["routing"] as? [String: Any] {
            var got: [Int: [[Int]]] = [:]
            let full = prompt + greedyRef.dropLast()
            _ = try model.forward(tokens: full, positions: Array(0..<full.count), cache: model.makeCache(), mode: mode) { event in
                if case .routing(let layer, let r) = event {
                    got[layer] = (0..<r.tokens).map { Array(r.experts(ofToken: $0)) }
                }
            }
            for (layer, value) in routingRef {
                let ref = (value as! [[NSNumber]]).map { $0.map(\.intValue) }
                if got[Int(layer)!] != ref { report.routingMatches = false; print("\(name) case \(ci) layer \(layer): routing differs") }
            }
        }
        if ci == 0, let hs = fx.reference["hidden_states"] as? [Any] {
            var outs: [Int: Matrix] = [:]
            _ = try model.forward(tokens: prompt, positions: Array(0..<prompt.count), cache: model.makeCache(), mode: mode) { event in
                if case .layerOutput(let layer, let h) = event { outs[layer] = h }
            }
            report.hidden.append(try model.embed(prompt).maxAbsDiff(Fixture.matrix(hs[0])))
            for l in 0..<c.shape.layerCount { report.hidden.append(outs[l]!.maxAbsDiff(Fixture.matrix(hs[l + 1]))) }
        }
    }
    return report
}

let fixtureNames = Fixtures.all

@Test(.enabled(if: fixtureExists("dsv3-tiny-fp32"), "fixtures not present"),
      arguments: fixtureNames, [AttentionMode?.none, .naive, .absorbed])
func matchesTransformersFixture(name: String, mode: AttentionMode?) throws {
    guard fixtureExists(name) else { return }
    let report = try runFixture(name, mode: mode)
    print("FIXTURE \(name) mode \(mode.map(\.rawValue) ?? "default"): \(report)")
    #expect(report.promptLogits < 1e-4, "\(name): \(report)")
    #expect(report.stepLogits < 1e-4, "\(name): \(report)")
    #expect(report.greedyMatches && report.routingMatches, "\(name): \(report)")
}
