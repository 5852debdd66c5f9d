// Random models for tests: a tiny DeepSeek-V3 config decoded through the real JSON path, seeded random weights in memory.
import Foundation
import Kernels
import Models
import Tensors

public struct SeededRandom {
    public var state: UInt64
    public init(_ seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func float(_ scale: Float = 1) -> Float { (Float(next() >> 40) / Float(1 << 24) * 2 - 1) * scale }
    public mutating func floats(_ n: Int, _ scale: Float = 1) -> [Float] { (0..<n).map { _ in float(scale) } }
}

/// Hidden 48 and latent 20 exercise the partial-chunk paths; 8 experts in 4 groups, top-3 of 2 groups.
public let tinyConfigJSON = """
{
  "model_type": "deepseek_v3",
  "architectures": ["DeepseekV3ForCausalLM"],
  "vocab_size": 97,
  "hidden_size": 48,
  "intermediate_size": 80,
  "moe_intermediate_size": 24,
  "num_hidden_layers": 3,
  "num_attention_heads": 4,
  "num_key_value_heads": 4,
  "q_lora_rank": 24,
  "kv_lora_rank": 20,
  "qk_nope_head_dim": 12,
  "qk_rope_head_dim": 8,
  "v_head_dim": 10,
  "n_routed_experts": 8,
  "num_experts_per_tok": 3,
  "n_shared_experts": 1,
  "n_group": 4,
  "topk_group": 2,
  "routed_scaling_factor": 2.5,
  "norm_topk_prob": true,
  "scoring_func": "sigmoid",
  "topk_method": "noaux_tc",
  "first_k_dense_replace": 1,
  "moe_layer_freq": 1,
  "hidden_act": "silu",
  "rms_norm_eps": 1e-5,
  "rope_theta": 10000,
  "rope_scaling": {"type": "yarn", "factor": 4.0, "beta_fast": 32, "beta_slow": 1, "mscale": 1.0,
                   "mscale_all_dim": 1.0, "original_max_position_embeddings": 32},
  "max_position_embeddings": 128,
  "attention_bias": false,
  "tie_word_embeddings": false,
  "bos_token_id": 0,
  "eos_token_id": 1
}
"""

public func tinyConfig(_ edit: (inout [String: Any]) -> Void = { _ in }) throws -> ModelConfig {
    var object = try JSONSerialization.jsonObject(with: Data(tinyConfigJSON.utf8)) as! [String: Any]
    edit(&object)
    let data = try JSONSerialization.data(withJSONObject: object)
    return try JSONDecoder().decode(ModelConfig.self, from: data)
}

public enum WeightFormat: Sendable { case f32, bf16, fp8 }

/// Random weights for every tensor the config names (HF checkpoint names).
public func randomSource(_ c: ModelConfig, seed: UInt64 = 1, format: WeightFormat = .f32) -> InMemoryTensorSource {
    var rng = SeededRandom(seed)
    var source = InMemoryTensorSource()
    func w(_ name: String, _ rows: Int, _ cols: Int, scale: Float? = nil) {
        let s = scale ?? 1 / Float(cols).squareRoot()
        let values = rng.floats(rows * cols, s * 1.7)
        switch format {
        case .f32: source.weights[name] = .f32(rows: rows, cols: cols, values)
        case .bf16: source.weights[name] = .bf16(rows: rows, cols: cols, values)
        case .fp8: source.weights[name] = .fp8(rows: rows, cols: cols, values)
        }
    }
    func norm(_ name: String, _ n: Int) { source.vectors[name] = (0..<n).map { _ in 1 + rng.float(0.2) } }
    let d = c.hiddenSize, h = c.numAttentionHeads
    w("model.embed_tokens.weight", c.vocabSize, d, scale: 1)
    w("lm_head.weight", c.vocabSize, d)
    norm("model.norm.weight", d)
    for l in 0..<c.numHiddenLayers {
        let p = "model.layers.\(l)."
        norm(p + "input_layernorm.weight", d)
        norm(p + "post_attention_layernorm.weight", d)
        if let rq = c.qLoraRank {
            w(p + "self_attn.q_a_proj.weight", rq, d)
            norm(p + "self_attn.q_a_layernorm.weight", rq)
            w(p + "self_attn.q_b_proj.weight", h * c.qkHeadDim, rq)
        } else {
            w(p + "self_attn.q_proj.weight", h * c.qkHeadDim, d)
        }
        w(p + "self_attn.kv_a_proj_with_mqa.weight", c.kvLoraRank + c.qkRopeHeadDim, d)
        norm(p + "self_attn.kv_a_layernorm.weight", c.kvLoraRank)
        w(p + "self_attn.kv_b_proj.weight", h * (c.qkNopeHeadDim + c.vHeadDim), c.kvLoraRank)
        w(p + "self_attn.o_proj.weight", d, h * c.vHeadDim)
        if c.isMoELayer(l) {
            w(p + "mlp.gate.weight", c.nRoutedExperts, d)
            source.vectors[p + "mlp.gate.e_score_correction_bias"] = rng.floats(c.nRoutedExperts, 0.1)
            for e in 0..<c.nRoutedExperts {
                w(p + "mlp.experts.\(e).gate_proj.weight", c.moeIntermediateSize, d)
                w(p + "mlp.experts.\(e).up_proj.weight", c.moeIntermediateSize, d)
                w(p + "mlp.experts.\(e).down_proj.weight", d, c.moeIntermediateSize)
            }
            let si = c.moeIntermediateSize * c.nSharedExperts
            w(p + "mlp.shared_experts.gate_proj.weight", si, d)
            w(p + "mlp.shared_experts.up_proj.weight", si, d)
            w(p + "mlp.shared_experts.down_proj.weight", d, si)
        } else {
            w(p + "mlp.gate_proj.weight", c.intermediateSize, d)
            w(p + "mlp.up_proj.weight", c.intermediateSize, d)
            w(p + "mlp.down_proj.weight", d, c.intermediateSize)
        }
    }
    return source
}

public func randomTokens(_ n: Int, vocab: Int, seed: UInt64) -> [Int] {
    var rng = SeededRandom(seed)
    return (0..<n).map { _ in Int(rng.next() % UInt64(vocab)) }
}

/// max |a - b| / (1 + max |b|)
public func relErr(_ a: Matrix, _ b: Matrix) -> Float {
    a.maxAbsDiff(b) / (1 + b.data.reduce(0) { max($0, abs($1)) })
}
