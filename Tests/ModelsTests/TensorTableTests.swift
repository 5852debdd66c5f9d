// Tensor table: names/shapes per the DeepSeek-V3 checkpoint table, MTP tensors, and the checkpoint check's errors.
import Foundation
import Testing
import Tensors
@testable import Models

@Test func deepSeekV3TableMatchesTheCheckpointNames() {
    let t = TensorTable(config: ModelPreset.deepseekV3.config)
    #expect(t["model.embed_tokens.weight"]?.shape == [129280, 7168])
    let kva = t["model.layers.0.self_attn.kv_a_proj_with_mqa.weight"]!
    #expect(kva.shape == [576, 7168] && kva.scaleShape == [5, 56] && kva.quantizable)
    #expect(t["model.layers.0.self_attn.q_b_proj.weight"]?.scaleShape == [192, 12])
    #expect(t["model.layers.1.mlp.down_proj.weight"]?.shape == [7168, 18432])
    #expect(t["model.layers.3.mlp.gate_proj.weight"] == nil)
    let expert = t["model.layers.3.mlp.experts.255.down_proj.weight"]!
    #expect(expert.shape == [7168, 2048] && expert.component == .routedExpert && expert.layer == 3 && expert.expert == 255)
    #expect(t["model.layers.3.mlp.gate.e_score_correction_bias"]?.dtypes.first == .f32)
    #expect(t["model.layers.60.mlp.shared_experts.up_proj.weight"]?.component == .sharedExpert)
    let eh = t["model.layers.61.eh_proj.weight"]!
    #expect(eh.shape == [7168, 14336] && eh.component == .mtp && eh.role == .mtp)
    let mtpExpert = t["model.layers.61.mlp.experts.0.gate_proj.weight"]!
    #expect(mtpExpert.component == .mtp && mtpExpert.role == .routedExpert && mtpExpert.expert == 0)
    #expect(t["model.layers.61.shared_head.head.weight"]?.optional == true)
    #expect(t["lm_head.weight"]?.component == .head)
    #expect(t["model.layers.62.enorm.weight"] == nil)
    let k2 = TensorTable(config: ModelPreset.kimiK2.config)
    #expect(k2["model.layers.1.self_attn.q_b_proj.weight"]?.shape == [12288, 1536])
    #expect(k2["model.layers.1.self_attn.kv_b_proj.weight"]?.shape == [16384, 512])
    #expect(k2["model.layers.1.self_attn.o_proj.weight"]?.shape == [7168, 8192])
    #expect(k2["model.layers.1.mlp.experts.383.up_proj.weight"] != nil && k2["model.layers.61.eh_proj.weight"] == nil)
}

/// The tiny config's tensors as a checkpoint would list them (BF16, or FP8 with scales for quantizable ones).
func tinyCatalog(_ config: ModelConfig, fp8: Bool = false, mtp: Bool = true) -> [CheckpointTensor] {
    var out: [CheckpointTensor] = []
    for s in TensorTable(config: config).specs where !(s.isMTP && !mtp) {
        let dtype: DType = s.quantizable && fp8 ? .f8e4m3 : (s.dtypes.first == .f32 ? .f32 : .bf16)
        out.append(CheckpointTensor(name: s.name, dtype: dtype, shape: s.shape, file: "model-00001-of-00002.safetensors"))
        if dtype == .f8e4m3 {
            out.append(CheckpointTensor(name: s.scaleName, dtype: .f32, shape: s.scaleShape, file: "model-00002-of-00002.safetensors"))
        }
    }
    return out
}

@Test func checkAccountsForEveryTensor() throws {
    let c = try ModelConfig.decode(tinyConfigJSON()).config
    let table = TensorTable(config: c)
    var r = try table.check(tinyCatalog(c))
    #expect(r.unexpected.isEmpty && r.mtpPresent && r.matched == table.specs.count && r.scales == 0)
    r = try table.check(tinyCatalog(c, fp8: true))
    #expect(r.unexpected.isEmpty && r.scales == table.specs.filter(\.quantizable).count)
    r = try table.check(tinyCatalog(c, mtp: false))
    #expect(!r.mtpPresent && r.matched == table.mainSpecs.count)
    #expect(throws: ConfigError.self) { try table.check(tinyCatalog(c, mtp: false), requireMTP: true) }
    r = try table.check(tinyCatalog(c) + [CheckpointTensor(name: "extra.bias", dtype: .f32, shape: [3], file: "x")])
    #expect(r.unexpected == ["extra.bias"])
}

private func checkError(_ config: ModelConfig, _ edit: (inout [CheckpointTensor]) -> Void) -> ConfigError? {
    var cat = tinyCatalog(config, fp8: true)
    edit(&cat)
    do { _ = try TensorTable(config: config).check(cat, checkpointName: "/ckpt") } catch { return error }
    return nil
}

@Test func checkErrorsNameTensorAndFile() throws {
    let c = try ModelConfig.decode(tinyConfigJSON()).config
    let victim = "model.layers.2.mlp.experts.5.up_proj.weight"
    var e = checkError(c) { $0.removeAll { $0.name == victim } }
    #expect(e?.code == .missingTensor && e?.tensor == victim && e?.file == "/ckpt")
    e = checkError(c) { cat in
        let i = cat.firstIndex { $0.name == victim }!
        cat[i] = CheckpointTensor(name: victim, dtype: .f8e4m3, shape: [31, 64], file: "model-00001-of-00002.safetensors")
    }
    #expect(e?.code == .tensorShape && e?.tensor == victim && e?.file == "model-00001-of-00002.safetensors")
    e = checkError(c) { cat in
        let i = cat.firstIndex { $0.name == "model.norm.weight" }!
        cat[i] = CheckpointTensor(name: "model.norm.weight", dtype: .f8e4m3, shape: [64], file: "model-00001-of-00002.safetensors")
    }
    #expect(e?.code == .tensorDType && e?.tensor == "model.norm.weight")
    e = checkError(c) { $0.removeAll { $0.name == victim + "_scale_inv" } }
    #expect(e?.code == .missingTensor && e?.tensor == victim + "_scale_inv")
    e = checkError(c) { cat in
        let i = cat.firstIndex { $0.name == victim + "_scale_inv" }!
        cat[i] = CheckpointTensor(name: victim + "_scale_inv", dtype: .f32, shape: [2, 2], file: "model-00002-of-00002.safetensors")
    }
    #expect(e?.code == .tensorShape && e?.tensor == victim + "_scale_inv" && e?.file == "model-00002-of-00002.safetensors")
}
