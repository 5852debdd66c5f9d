// `inspect --compare`: every preset side by side, with KV-cache bytes that follow from each architecture's own
// numbers (MLA: latent + rope per layer; GQA: K and V of every KV head per layer), and checkpoint directories too.
import Foundation
import Models
import Runtime
import Testing
import TestSupport

@Test func compareListsEveryPresetWithItsCacheBytes() throws {
    let c = try Inspector.compare(["all"], context: 1000)
    let byName = Dictionary(uniqueKeysWithValues: c.models.map { ($0.name, $0) })
    #expect(c.models.count == AnyPreset.names.count && c.models.count == 9)
    // BF16 bytes per token: DeepSeek-V3 (512 + 64) x 61 layers; Qwen3-235B 2 x 4 x 128 x 94; Mixtral 8x7B 2 x 8 x 128 x 32.
    #expect(byName["deepseek-v3"]?.kvBytesPerToken == 576 * 2 * 61)
    #expect(byName["qwen3-235b-a22b"]?.kvBytesPerToken == 2 * 4 * 128 * 2 * 94)
    #expect(byName["mixtral-8x7b"]?.kvBytesPerToken == 2 * 8 * 128 * 2 * 32)
    #expect(byName["mixtral-8x7b"]?.kvBytesAtContext == 2 * 8 * 128 * 2 * 32 * 1000)
    #expect(byName["kimi-k2"]?.releasedDType == "FP8" && byName["qwen3-30b-a3b"]?.releasedDType == "BF16")
    #expect(byName["qwen3-235b-a22b"]?.facts.norms.contains("QK-norm") == true)
    let text = Inspector.render(c)
    #expect(text.contains("KV cache at 1000") && text.contains("mixtral-8x22b:") && text.contains("MLA, 128 heads"))

    let svg = Inspector.svg(c)
    #expect(svg.components(separatedBy: "<circle").count - 1 == c.models.count)
    #expect(c.models.allSatisfy { svg.contains(">\($0.name)</text>") } && svg.hasSuffix("</svg>\n"))

    let dirs = try Inspector.compare([Fixtures.path("qwen3-moe-tiny-fp32"), "kimi-k2"], context: 10)
    #expect(dirs.models.map(\.modelType) == ["qwen3_moe", "kimi_k2"])
    #expect(throws: (any Error).self) { try Inspector.compare(["llama-9"], context: 10) }
}
