// Timing probe for one DeepSeek-V3-sized dense layer (BF16 random weights, ~1.2 GB). Release only, opt-in:
//   MOERUN_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter forwardLayerTiming
import Foundation
import Testing
import TestSupport
import Kernels
import Models
import Tensors

@Test(.enabled(if: ProcessInfo.processInfo.environment["MOERUN_BENCH"] == "1"))
func forwardLayerTiming() throws {
    let c = try tinyConfig {
        $0["vocab_size"] = 1000; $0["hidden_size"] = 7168; $0["intermediate_size"] = 18432
        $0["num_hidden_layers"] = 1; $0["num_attention_heads"] = 128; $0["num_key_value_heads"] = 128
        $0["q_lora_rank"] = 1536; $0["kv_lora_rank"] = 512; $0["qk_nope_head_dim"] = 128
        $0["qk_rope_head_dim"] = 64; $0["v_head_dim"] = 128; $0["max_position_embeddings"] = 163840
        $0["rope_scaling"] = ["type": "yarn", "factor": 40.0, "beta_fast": 32, "beta_slow": 1, "mscale": 1.0,
                              "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096]
    }
    let threads = Int(ProcessInfo.processInfo.environment["MOERUN_THREADS"] ?? "1")!
    let model = try DeepSeekModel(config: c, source: randomSource(c, format: .bf16), pool: ComputePool(threads: threads))
    func ms(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    }
    let attention = model.layers[0].mixer.products.reduce(0) { $0 + $1.byteCount }
    let bytes = attention + 3 * c.intermediateSize * c.hiddenSize * 2
    print("BENCH layer weights \(Double(bytes) / 1e9) GB, threads \(threads)")
    for prompt in [64, 512] {
        let cache = KVCache(config: c)
        let x = try model.embed(randomTokens(prompt, vocab: c.vocabSize, seed: 1))
        let tPrefill = try ms { _ = try model.forwardLayers(x, segments: [SequenceSegment(cache: cache, count: prompt, startPosition: 0)]) }
        print(String(format: "BENCH prefill T=%d (naive): %.1f ms", prompt, tPrefill))
        for mode in AttentionMode.allCases {
            let copy = KVCache(config: c)
            copy.append(layer: 0, rows: cache.rows(layer: 0))
            let one = try model.embed([5])
            var t = Double.infinity
            for _ in 0..<5 {
                t = min(t, try ms { _ = try model.forwardLayers(one, segments: [SequenceSegment(cache: copy, count: 1, startPosition: prompt)], mode: mode) })
                copy.truncate(to: prompt)
            }
            print(String(format: "BENCH decode at context %d (%@): %.1f ms (min of 5) (weights alone at 15 GB/s: %.1f ms)",
                         prompt, mode.rawValue, t, Double(bytes) / 15e6))
        }
    }
}
