// ConfigValidation: `validate()` rejects configs the runtime cannot run, naming the field and the reason.

extension ModelConfig {
    /// Every problem found (empty when the config is runnable), in field order.
    public func problems() -> [ConfigError] {
        var out: [ConfigError] = []
        func bad(_ code: ConfigError.Code, _ field: String, _ message: String, _ hint: String) {
            out.append(ConfigError(code, field: field, message, hint: hint))
        }
        if !Self.supportedModelTypes.contains(modelType) { out.append(Self.unsupportedModelType(modelType, file: nil)) }

        let positives: [(String, Int)] = [
            ("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
            ("moe_intermediate_size", moeIntermediateSize), ("num_hidden_layers", numHiddenLayers),
            ("num_attention_heads", numAttentionHeads), ("kv_lora_rank", kvLoraRank),
            ("qk_nope_head_dim", qkNopeHeadDim), ("qk_rope_head_dim", qkRopeHeadDim), ("v_head_dim", vHeadDim),
            ("n_routed_experts", nRoutedExperts), ("num_experts_per_tok", numExpertsPerTok),
            ("n_group", nGroup), ("topk_group", topkGroup), ("max_position_embeddings", maxPositionEmbeddings),
        ]
        for (field, value) in positives where value <= 0 {
            bad(.invalidValue, field, "is \(value); must be positive", "use the value from the model's hub config.json")
        }
        if let q = qLoraRank, q <= 0 { bad(.invalidValue, "q_lora_rank", "is \(q); must be positive or null", "null selects the q_proj form") }
        if nSharedExperts < 0 { bad(.invalidValue, "n_shared_experts", "is \(nSharedExperts); must be >= 0", "DeepSeek-V3 and Kimi K2 use 1") }
        if qkRopeHeadDim > 0 && qkRopeHeadDim % 2 != 0 {
            bad(.invalidValue, "qk_rope_head_dim", "is \(qkRopeHeadDim); RoPE rotates pairs, so it must be even", "DeepSeek-V3 uses 64")
        }
        if numExpertsPerTok > nRoutedExperts && nRoutedExperts > 0 {
            bad(.inconsistent, "num_experts_per_tok", "\(numExpertsPerTok) exceeds n_routed_experts \(nRoutedExperts)",
                "top-k must not exceed the number of experts")
        }
        if nGroup > 0 && nRoutedExperts % nGroup != 0 {
            bad(.inconsistent, "n_group", "n_routed_experts \(nRoutedExperts) is not divisible by n_group \(nGroup)",
                "group-limited routing splits experts into equal groups; pick n_group dividing n_routed_experts")
        }
        if topkGroup > nGroup {
            bad(.inconsistent, "topk_group", "\(topkGroup) exceeds n_group \(nGroup)", "topk_group is how many of the n_group groups are kept")
        } else if nGroup > 0 && nRoutedExperts % nGroup == 0 && topkGroup > 0 && topkGroup * (nRoutedExperts / nGroup) < numExpertsPerTok {
            bad(.inconsistent, "topk_group",
                "\(topkGroup) groups of \(nRoutedExperts / nGroup) experts cannot supply num_experts_per_tok \(numExpertsPerTok)",
                "need topk_group x (n_routed_experts / n_group) >= num_experts_per_tok")
        }
        if let s = scoringFunc, s != "sigmoid" {
            bad(.unsupportedValue, "scoring_func", "'\(s)' is not supported (only 'sigmoid')",
                "DeepSeek-V3 / Kimi K2 route with sigmoid scores; softmax gating (DeepSeek-V2) is not implemented")
        }
        if let t = topkMethod, t != "noaux_tc" {
            bad(.unsupportedValue, "topk_method", "'\(t)' is not supported (only 'noaux_tc')",
                "noaux_tc = bias-corrected group-limited top-k, as in DeepSeek-V3 / Kimi K2")
        }
        if let act = hiddenAct, act != "silu" {
            bad(.unsupportedValue, "hidden_act", "'\(act)' is not supported (only 'silu')", "the experts are SwiGLU")
        }
        if firstKDenseReplace < 0 || firstKDenseReplace > numHiddenLayers {
            bad(.invalidValue, "first_k_dense_replace", "is \(firstKDenseReplace); must be in 0...num_hidden_layers (\(numHiddenLayers))",
                "it is the number of leading dense layers")
        }
        if let f = moeLayerFreq, f < 1 { bad(.invalidValue, "moe_layer_freq", "is \(f); must be >= 1", "1 means every layer after the dense ones is MoE") }
        if mtpLayerCount < 0 {
            bad(.invalidValue, "num_nextn_predict_layers", "is \(mtpLayerCount); must be >= 0", "0 = no MTP module")
        }
        if !(rmsNormEps > 0) { bad(.invalidValue, "rms_norm_eps", "is \(rmsNormEps); must be positive", "DeepSeek-V3 uses 1e-6") }
        if !(routedScalingFactor > 0) {
            bad(.invalidValue, "routed_scaling_factor", "is \(routedScalingFactor); must be positive", "DeepSeek-V3 uses 2.5, Kimi K2 2.827")
        }
        if !(effectiveRopeTheta > 0) { bad(.invalidValue, "rope_theta", "is \(effectiveRopeTheta); must be positive", "DeepSeek-V3 uses 10000") }
        if attentionBias == true {
            bad(.unsupportedValue, "attention_bias", "true is not supported", "DeepSeek-V3 / Kimi K2 attention has no bias")
        }
        if ropeInterleave == false {
            bad(.unsupportedValue, "rope_interleave", "false is not supported", "checkpoints store RoPE dims as interleaved pairs (the HF default)")
        }
        out += ropeProblems()
        out += quantizationProblems()
        return out
    }

    private func ropeProblems() -> [ConfigError] {
        let key = ropeParameters != nil ? "rope_parameters" : "rope_scaling"
        guard let rope = effectiveRopeScaling else { return [] }
        switch rope.kind {
        case "default", "none":
            return []
        case "yarn":
            var out: [ConfigError] = []
            if let f = rope.factor, !(f >= 1) {
                out.append(ConfigError(.invalidValue, field: "\(key).factor", "is \(f); YaRN needs factor >= 1",
                                       hint: "DeepSeek-V3 uses 40, Kimi K2 32"))
            }
            if rope.factor == nil && rope.originalMaxPositionEmbeddings == nil {
                out.append(ConfigError(.missingField, field: "\(key).factor", "YaRN without factor or original_max_position_embeddings",
                                       hint: "give factor (e.g. 40) and original_max_position_embeddings (e.g. 4096)"))
            }
            if let o = rope.originalMaxPositionEmbeddings, o <= 0 {
                out.append(ConfigError(.invalidValue, field: "\(key).original_max_position_embeddings", "is \(o); must be positive",
                                       hint: "DeepSeek-V3 / Kimi K2 use 4096"))
            }
            for (name, v) in [("beta_fast", rope.betaFast), ("beta_slow", rope.betaSlow)] {
                if let v, !(v >= 0) {
                    out.append(ConfigError(.invalidValue, field: "\(key).\(name)", "is \(v); must be >= 0", hint: "DeepSeek-V3 uses 32 / 1"))
                }
            }
            return out
        default:
            return [ConfigError(.unsupportedValue, field: "\(key).type", "RoPE type '\(rope.kind)' is not supported",
                                hint: "supported: yarn, default (none)")]
        }
    }

    private func quantizationProblems() -> [ConfigError] { quantizationConfig?.problems() ?? [] }

    /// Throws the first problem (all problems are available from `problems()`).
    public func validate() throws(ConfigError) {
        if let first = problems().first { throw first }
    }
}

extension QuantizationConfig {
    /// What the runtime cannot load: anything but FP8 e4m3 in 128x128 blocks with dynamic activation scales.
    public func problems() -> [ConfigError] {
        let q = self
        var out: [ConfigError] = []
        if q.quantMethod != "fp8" {
            out.append(ConfigError(.unsupportedValue, field: "quantization_config.quant_method",
                                   "'\(q.quantMethod ?? "null")' is not supported (only 'fp8')",
                                   hint: "INT4 compressed-tensors checkpoints (K2-Thinking) are not supported; use an FP8 or BF16 checkpoint"))
        }
        if let fmt = q.fmt, fmt != "e4m3", fmt != "float8_e4m3fn" {
            out.append(ConfigError(.unsupportedValue, field: "quantization_config.fmt", "'\(fmt)' is not supported (only 'e4m3' / 'float8_e4m3fn')",
                                   hint: "DeepSeek-V3 FP8 weights are float8_e4m3fn"))
        }
        if let block = q.weightBlockSize, block != [128, 128] {
            out.append(ConfigError(.unsupportedValue, field: "quantization_config.weight_block_size",
                                   "\(block) is not supported (only [128, 128])",
                                   hint: "the FP8 kernels assume 128x128 blocks, as in every DeepSeek / Kimi FP8 release"))
        }
        if let a = q.activationScheme, a != "dynamic" {
            out.append(ConfigError(.unsupportedValue, field: "quantization_config.activation_scheme",
                                   "'\(a)' is not supported (only 'dynamic')", hint: "static activation scales are not implemented"))
        }
        return out
    }
}
