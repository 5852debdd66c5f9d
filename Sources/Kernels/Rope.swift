// Rotary position embedding for DeepSeek MLA: interleaved pairs (2i, 2i+1) rotate with frequency i,
// YaRN frequency correction (HF `_compute_yarn_parameters`), and the mscale softmax factor.
// As transformers' DeepSeek-V3 rotary embedding. All math FP32 (frequencies built with HF's fp32 op order).
import Foundation

/// YaRN / default RoPE frequencies for a rotary dimension `dim` (even).
public struct RotaryEmbedding: Sendable, Equatable {
    /// Rotary dimensions (64 for DeepSeek-V3).
    public let dim: Int
    /// ω_i for i in 0..<dim/2.
    public let invFreq: [Float]
    /// Multiplies cos and sin (YaRN attention factor; 1 for DeepSeek/Kimi and for default RoPE).
    public let attentionFactor: Float
    /// YaRN correction range (nil for default RoPE).
    public let correctionRange: (low: Double, high: Double)?

    public static func == (a: Self, b: Self) -> Bool {
        a.dim == b.dim && a.invFreq == b.invFreq && a.attentionFactor == b.attentionFactor
            && a.correctionRange?.low == b.correctionRange?.low && a.correctionRange?.high == b.correctionRange?.high
    }

    public init(dim: Int, invFreq: [Float], attentionFactor: Float, correctionRange: (low: Double, high: Double)? = nil) {
        precondition(dim % 2 == 0 && invFreq.count == dim / 2, "rope: dim must be even with dim/2 frequencies")
        self.dim = dim
        self.invFreq = invFreq
        self.attentionFactor = attentionFactor
        self.correctionRange = correctionRange
    }

    /// θ_i = base^(-2i/dim) computed as HF does: 1 / (base ** (fp32(2i) / dim)).
    static func posFreqs(dim: Int, base: Double) -> [Float] {
        (0..<(dim / 2)).map { i in Foundation.pow(Float(base), Float(2 * i) / Float(dim)) }
    }

    /// Plain RoPE: ω_i = 1 / base^(2i/dim).
    public static func standard(dim: Int, base: Double) -> RotaryEmbedding {
        RotaryEmbedding(dim: dim, invFreq: posFreqs(dim: dim, base: base).map { 1 / $0 }, attentionFactor: 1)
    }

    /// `get_mscale`/`yarn_get_mscale`: 1 if scale <= 1 else 0.1 · mscale · ln(scale) + 1.
    public static func yarnMscale(_ scale: Double, _ mscale: Double = 1) -> Double {
        scale <= 1 ? 1 : 0.1 * mscale * Foundation.log(scale) + 1
    }

    /// YaRN frequencies (§1.6): corr(r) = dim·ln(L/(2πr)) / (2 ln base); low = max(floor(corr(βf)), 0),
    /// high = min(ceil(corr(βs)), dim-1) (truncate = true); ramp_i = clamp((i-low)/(high-low), 0, 1);
    /// ω_i = θ_i((1 - ramp_i) + ramp_i/f) in HF's form `interp·(1-e) + extrap·e`, e = 1 - ramp.
    /// attention factor: explicit if given, else mscale(f, mscale)/mscale(f, mscaleAllDim) if both set,
    /// else mscale(f).
    public static func yarn(dim: Int, base: Double, factor: Double, originalMaxPositions: Int,
                            betaFast: Double = 32, betaSlow: Double = 1, mscale: Double? = nil,
                            mscaleAllDim: Double? = nil, attentionFactor: Double? = nil,
                            truncate: Bool = true) -> RotaryEmbedding {
        func corr(_ rotations: Double) -> Double {
            (Double(dim) * Foundation.log(Double(originalMaxPositions) / (rotations * 2 * Double.pi)))
                / (2 * Foundation.log(base))
        }
        var low = corr(betaFast), high = corr(betaSlow)
        if truncate { low = low.rounded(.down); high = high.rounded(.up) }
        low = Swift.max(low, 0)
        high = Swift.min(high, Double(dim - 1))
        var rampHigh = high
        if low == rampHigh { rampHigh += 0.001 }
        let pos = posFreqs(dim: dim, base: base)
        let f = Float(factor)
        var inv = [Float](repeating: 0, count: dim / 2)
        for i in 0..<(dim / 2) {
            let extrapolation = 1 / pos[i]
            let interpolation = 1 / (f * pos[i])
            var ramp = (Float(i) - Float(low)) / (Float(rampHigh) - Float(low))
            ramp = Swift.min(Swift.max(ramp, 0), 1)
            let e = 1 - ramp
            inv[i] = interpolation * (1 - e) + extrapolation * e
        }
        let af: Double
        if let attentionFactor {
            af = attentionFactor
        } else if let m = mscale, let mAll = mscaleAllDim, m != 0, mAll != 0 {
            af = yarnMscale(factor, m) / yarnMscale(factor, mAll)
        } else {
            af = yarnMscale(factor)
        }
        return RotaryEmbedding(dim: dim, invFreq: inv, attentionFactor: Float(af), correctionRange: (low, high))
    }

    /// cos/sin for one position: angle_i = fp32(position) · ω_i; both multiplied by the attention factor.
    public func cosSin(position: Int) -> (cos: [Float], sin: [Float]) {
        let p = Float(position)
        var c = [Float](repeating: 0, count: dim / 2), s = c
        for i in 0..<(dim / 2) {
            let angle = p * invFreq[i]
            c[i] = Foundation.cos(angle) * attentionFactor
            s[i] = Foundation.sin(angle) * attentionFactor
        }
        return (c, s)
    }

    /// Rotates `x[0..<dim]` in place, interleaved layout (official DeepSeek): pair i = (x[2i], x[2i+1]);
    /// x'[2i] = x[2i]·cos_i − x[2i+1]·sin_i, x'[2i+1] = x[2i+1]·cos_i + x[2i]·sin_i.
    @inline(__always)
    public static func rotateInterleaved(_ x: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>,
                                         sin: UnsafePointer<Float>, half: Int) {
        for i in 0..<half {
            let a = x[2 * i], b = x[2 * i + 1]
            x[2 * i] = a * cos[i] - b * sin[i]
            x[2 * i + 1] = b * cos[i] + a * sin[i]
        }
    }
}

extension RotaryEmbedding {
    /// Rotates `x[0..<2·half]` in place, rotate-half ("neox") layout (Llama, Qwen, Mixtral): pair i = (x[i], x[i+half]);
    /// x'[i] = x[i]·cos_i − x[i+half]·sin_i, x'[i+half] = x[i+half]·cos_i + x[i]·sin_i.
    @inline(__always)
    public static func rotateHalf(_ x: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, half: Int) {
        for i in 0..<half {
            let a = x[i], b = x[i + half]
            x[i] = a * cos[i] - b * sin[i]
            x[i + half] = b * cos[i] + a * sin[i]
        }
    }
}

/// Softmax scale of DeepSeek MLA: qk_head_dim^-0.5 · m², m = yarnMscale(factor, mscaleAllDim), applied only when
/// the RoPE type is not default and `mscaleAllDim` is set and non-zero (HF `DeepseekV3Attention.scaling`).
public func mlaSoftmaxScale(qkHeadDim: Int, ropeKind: String, factor: Double?, mscaleAllDim: Double?) -> Float {
    var scale = Foundation.pow(Double(qkHeadDim), -0.5)
    if ropeKind != "default", let f = factor, let mAll = mscaleAllDim, mAll != 0 {
        let m = RotaryEmbedding.yarnMscale(f, mAll)
        scale = scale * m * m
    }
    return Float(scale)
}
