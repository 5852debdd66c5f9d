// One list of tensor names: what the model loads, what the tensor table (and so synth, inspect and the planner's
// byte counts) lists, and what the tests' random checkpoints hold must be the same set, tensor for tensor.
import Foundation
import Kernels
import Models
import Synchronization
import Tensors
import Testing
import TestSupport

/// A source that records every name asked for.
final class RecordingSource: TensorSource, @unchecked Sendable {
    let inner: any TensorSource
    let asked = Mutex<[String]>([])
    init(_ inner: any TensorSource) { self.inner = inner }
    func weight(_ name: String) throws -> Weight {
        asked.withLock { $0.append(name) }
        return try inner.weight(name)
    }
    func vector(_ name: String) throws -> [Float] {
        asked.withLock { $0.append(name) }
        return try inner.vector(name)
    }
    func contains(_ name: String) -> Bool { inner.contains(name) }
}

@Suite struct NameTableTests {
    /// With and without q LoRA, with dense and MoE layers, the whole model and one stage with a share of the experts.
    @Test(arguments: [false, true])
    func theLoaderAsksForExactlyTheTablesTensors(qLoRA: Bool) throws {
        let c = try tinyConfig { if !qLoRA { $0["q_lora_rank"] = NSNull() } }
        let table = TensorTable(config: c).mainSpecs
        let random = randomSource(c)
        #expect(Set(random.weights.keys).union(random.vectors.keys) == Set(table.map(\.name)),
                "the random checkpoint and the table differ")

        let whole = RecordingSource(random)
        _ = try DeepSeekModel(config: c, source: whole)
        let asked = whole.asked.withLock { $0 }
        #expect(asked.count == Set(asked).count, "a tensor was loaded twice")
        let extra = Set(asked).subtracting(table.map(\.name)), missing = Set(table.map(\.name)).subtracting(asked)
        #expect(extra.isEmpty && missing.isEmpty, "loaded but not in the table: \(extra); in the table but not loaded: \(missing)")

        // One stage holding the last layer and half of the experts: exactly that stage's share of the table.
        let last = c.numHiddenLayers - 1, experts = Set(0..<(c.nRoutedExperts / 2))
        let stage = RecordingSource(random)
        _ = try DeepSeekModel(config: c, source: stage, layers: last..<(last + 1), experts: experts,
                              includeEmbedding: false, includeHead: true)
        let share = table.filter { s in
            guard let l = s.layer else { return s.component == .head || s.component == .norm }
            return l == last && (s.expert.map(experts.contains) ?? true)
        }
        #expect(Set(stage.asked.withLock { $0 }) == Set(share.map(\.name)))
    }
}
