// Reference twins: obviously-correct scalar loops for every fast op in `Ops`.
// They accumulate sequentially (no FMA, no lane splitting), so they agree with the fast ops to rounding,
// not bit for bit, except where the op has no summation (elementwise ops: bitwise).
import Foundation
import Tensors

public enum Reference {
    /// `out[t, o] = Σ_i x[t, i] · W[o, i]`, sequential FP32 sum, `Weight.element` dequantization.
    public static func linear(_ x: Matrix, _ w: Weight) -> Matrix {
        precondition(x.cols == w.cols, "linear: width mismatch")
        var out = Matrix(rows: x.rows, cols: w.rows)
        for t in 0..<x.rows {
            for o in 0..<w.rows {
                var s: Float = 0
                for i in 0..<w.cols { s += x[t, i] * w.element(o, i) }
                out[t, o] = s
            }
        }
        return out
    }

    /// `out[t, c] = Σ_i x[t, i] · W[i, c]`.
    public static func linearTransposed(_ x: Matrix, _ w: Weight) -> Matrix {
        precondition(x.cols == w.rows, "linearTransposed: width mismatch")
        var out = Matrix(rows: x.rows, cols: w.cols)
        for t in 0..<x.rows {
            for c in 0..<w.cols {
                var s: Float = 0
                for i in 0..<w.rows { s += x[t, i] * w.element(i, c) }
                out[t, c] = s
            }
        }
        return out
    }

    public static func rmsNorm(_ x: Matrix, weight: [Float], eps: Float) -> Matrix {
        var out = Matrix(rows: x.rows, cols: x.cols)
        for t in 0..<x.rows {
            var ss: Float = 0
            for i in 0..<x.cols { ss += x[t, i] * x[t, i] }
            let r = 1 / (ss / Float(x.cols) + eps).squareRoot()
            for i in 0..<x.cols { out[t, i] = weight[i] * (x[t, i] * r) }
        }
        return out
    }

    public static func siluMul(gate: Matrix, up: Matrix) -> Matrix {
        var out = Matrix(rows: gate.rows, cols: gate.cols)
        for i in out.data.indices {
            let g = gate.data[i]
            out.data[i] = g / (1 + Foundation.exp(-g)) * up.data[i]
        }
        return out
    }

    public static func softmax(_ x: Matrix) -> Matrix {
        var out = Matrix(rows: x.rows, cols: x.cols)
        for t in 0..<x.rows {
            let row = x.row(t)
            let m = row.max() ?? 0
            let e = row.map { Foundation.exp($0 - m) }
            let s = e.reduce(0, +)
            for i in 0..<x.cols { out[t, i] = e[i] / s }
        }
        return out
    }

    /// Interleaved RoPE by the complex-number definition: (x[2i] + j x[2i+1]) · (cos_i + j sin_i).
    public static func rotateInterleaved(_ x: [Float], cos: [Float], sin: [Float]) -> [Float] {
        var out = x
        for i in 0..<cos.count {
            let re = x[2 * i], im = x[2 * i + 1]
            out[2 * i] = re * cos[i] - im * sin[i]
            out[2 * i + 1] = im * cos[i] + re * sin[i]
        }
        return out
    }

    /// YaRN ω_i written directly from the §1.6 formula in Double: θ_i((1 - ramp_i) + ramp_i/f).
    public static func yarnInvFreq(dim: Int, base: Double, factor: Double, originalMaxPositions: Int,
                                   betaFast: Double, betaSlow: Double) -> [Double] {
        func corr(_ r: Double) -> Double { Double(dim) * log(Double(originalMaxPositions) / (2 * Double.pi * r)) / (2 * log(base)) }
        let low = max(floor(corr(betaFast)), 0)
        var high = min(ceil(corr(betaSlow)), Double(dim - 1))
        if low == high { high += 0.001 }
        return (0..<(dim / 2)).map { i in
            let theta = pow(base, -2 * Double(i) / Double(dim))
            let ramp = min(max((Double(i) - low) / (high - low), 0), 1)
            return theta * ((1 - ramp) + ramp / factor)
        }
    }

    /// Indices of the k largest values, ties to the lowest index (stable sort by value descending).
    public static func topK(_ x: [Float], _ k: Int) -> [Int] {
        Array(x.indices.sorted { a, b in x[a] != x[b] ? x[a] > x[b] : a < b }.prefix(k))
    }

    public static func argmax(_ x: [Float]) -> Int { topK(x, 1)[0] }
}

extension Reference {
    /// Twin of `MatmulPrecision.bf16` products: x rounded to BF16 (nearest even), then the sequential FP32 sum.
    public static func linearBF16Activations(_ x: Matrix, _ w: Weight) -> Matrix {
        linear(Matrix(rows: x.rows, cols: x.cols, data: x.data.map(roundToBF16)), w)
    }
}
