// Comparison against the transformers float32 reference fixtures (Tests/Fixtures/<name>/: config.json,
// *.safetensors, reference.json). Uses a throwaway safetensors reader local to this test target until the
// Checkpoint reader is merged. Fixture directory: $MOERUN_FIXTURES, else <repo>/Tests/Fixtures; tests are
// disabled when it is absent.
import Foundation
import Testing
import Kernels
@testable import Models
import Tensors

let fixtureRoot: URL = {
    if let env = ProcessInfo.processInfo.environment["MOERUN_FIXTURES"] { return URL(fileURLWithPath: env) }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
}()

func fixtureExists(_ name: String) -> Bool {
    FileManager.default.fileExists(atPath: fixtureRoot.appendingPathComponent(name).appendingPathComponent("reference.json").path)
}

/// Minimal safetensors reader for tests: header length (u64 LE), JSON header, raw data; F32/BF16/F16/F8_E4M3.
enum TestSafetensors {
    struct Entry { let dtype: String; let shape: [Int]; let bytes: Data }

    static func read(_ url: URL) throws -> [String: Entry] {
        let data = try Data(contentsOf: url)
        let n = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + Int(n)))) as! [String: Any]
        var out: [String: Entry] = [:]
        for (name, value) in header where name != "__metadata__" {
            let info = value as! [String: Any]
            let offsets = (info["data_offsets"] as! [NSNumber]).map(\.intValue)
            let start = 8 + Int(n) + offsets[0], end = 8 + Int(n) + offsets[1]
            out[name] = Entry(dtype: info["dtype"] as! String, shape: (info["shape"] as! [NSNumber]).map(\.intValue),
                              bytes: data.subdata(in: start..<end))
        }
        return out
    }

    static func heapCopy(_ bytes: Data) -> HeapBlock {
        let block = HeapBlock(byteCount: bytes.count + 64)
        bytes.withUnsafeBytes { block.raw.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        return block
    }

    static func floats(_ e: Entry) -> [Float] {
        e.bytes.withUnsafeBytes { raw -> [Float] in
            switch e.dtype {
            case "F32": return Array(raw.bindMemory(to: Float.self))
            case "BF16": return raw.bindMemory(to: UInt16.self).map(bf16ToFloat)
            case "F16": return raw.bindMemory(to: UInt16.self).map(f16ToFloat)
            default: fatalError("vector dtype \(e.dtype)")
            }
        }
    }

    /// All *.safetensors files of a directory as an in-memory TensorSource (weights keep their stored dtype).
    static func source(_ dir: URL) throws -> InMemoryTensorSource {
        var entries: [String: Entry] = [:]
        for f in try FileManager.default.contentsOfDirectory(atPath: dir.path) where f.hasSuffix(".safetensors") {
            entries.merge(try read(dir.appendingPathComponent(f))) { a, _ in a }
        }
        var source = InMemoryTensorSource()
        for (name, e) in entries where !name.hasSuffix("_scale_inv") {
            if e.shape.count == 1 { source.vectors[name] = floats(e); continue }
            precondition(e.shape.count == 2, "\(name): rank \(e.shape.count)")
            let (rows, cols) = (e.shape[0], e.shape[1])
            let block = heapCopy(e.bytes)
            switch e.dtype {
            case "F32":
                source.weights[name] = Weight(rows: rows, cols: cols, storage: .f32(UnsafePointer(block.raw.assumingMemoryBound(to: Float.self))), owner: block)
            case "BF16":
                source.weights[name] = Weight(rows: rows, cols: cols, storage: .bf16(UnsafePointer(block.raw.assumingMemoryBound(to: UInt16.self))), owner: block)
            case "F16":
                source.weights[name] = Weight(rows: rows, cols: cols, storage: .f16(UnsafePointer(block.raw.assumingMemoryBound(to: UInt16.self))), owner: block)
            case "F8_E4M3":
                let s = entries[name + "_scale_inv"]!
                precondition(s.dtype == "F32" && s.shape == [ceilDiv(rows, 128), ceilDiv(cols, 128)], "\(name) scales \(s.shape)")
                let both = HeapBlock(byteCount: e.bytes.count + 64 + s.bytes.count)
                e.bytes.withUnsafeBytes { both.raw.copyMemory(from: $0.baseAddress!, byteCount: e.bytes.count) }
                let scaleOffset = (e.bytes.count + 63) / 64 * 64
                s.bytes.withUnsafeBytes { (both.raw + scaleOffset).copyMemory(from: $0.baseAddress!, byteCount: s.bytes.count) }
                source.weights[name] = Weight(rows: rows, cols: cols, storage: .fp8e4m3(
                    UnsafePointer(both.raw.assumingMemoryBound(to: UInt8.self)),
                    scales: UnsafePointer((both.raw + scaleOffset).assumingMemoryBound(to: Float.self))), owner: both)
            default:
                fatalError("\(name): dtype \(e.dtype)")
            }
        }
        return source
    }
}

struct Fixture {
    let config: ModelConfig
    let source: InMemoryTensorSource
    let reference: [String: Any]

    init(_ name: String) throws {
        let dir = fixtureRoot.appendingPathComponent(name)
        config = try JSONDecoder().decode(ModelConfig.self, from: Data(contentsOf: dir.appendingPathComponent("config.json")))
        source = try TestSafetensors.source(dir)
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
    let model = try DeepSeekModel(config: c, source: fx.source)
    var report = FixtureReport()
    let derived = fx.reference["derived"] as! [String: Any]
    #expect(abs(Double(model.softmaxScale) - (derived["softmax_scale"] as! Double)) < 1e-7, "\(name) softmax scale")
    let invFreq = (derived["rope_inv_freq"] as! [NSNumber]).map(\.floatValue)
    #expect(model.rope.invFreq == invFreq, "\(name) rope inv_freq \(model.rope.invFreq) vs \(invFreq)")
    for (ci, kase) in fx.cases.enumerated() {
        let prompt = (kase["prompt"] as! [NSNumber]).map(\.intValue)
        let greedyRef = (kase["greedy"] as! [NSNumber]).map(\.intValue)
        let cache = KVCache(config: c)
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
            _ = try model.forward(tokens: full, positions: Array(0..<full.count), cache: KVCache(config: c), mode: mode) { event in
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
            _ = try model.forward(tokens: prompt, positions: Array(0..<prompt.count), cache: KVCache(config: c), mode: mode) { event in
                if case .layerOutput(let layer, let h) = event { outs[layer] = h }
            }
            report.hidden.append(try model.embed(prompt).maxAbsDiff(Fixture.matrix(hs[0])))
            for l in 0..<c.numHiddenLayers { report.hidden.append(outs[l]!.maxAbsDiff(Fixture.matrix(hs[l + 1]))) }
        }
    }
    return report
}

let fixtureNames = ["dsv3-tiny-fp32", "dsv3-tiny-bf16", "dsv3-fp8", "dsv3-tiny-sharded", "kimi-k2-tiny-fp32"]

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
