// Elementwise and row-wise ops on FP32 activations: RMSNorm, SwiGLU, softmax, add/scale, argmax, top-k.
// Every op here has a plain twin in `Reference` (Reference.swift) and a test comparing them.
import Foundation
import Tensors

/// Fast kernels. Shapes are `[T, N]` row-major FP32 unless stated.
public enum Ops {}

extension Ops {
    /// Sum of squares of `n` floats with 16 lane partial sums (fixed order), reduced with `sum()`.
    @inline(__always)
    static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = Vec16()
        var i = 0
        while i + 16 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: Vec16.self)
            acc.addProduct(v, v)
            i += 16
        }
        var s = acc.sum()
        while i < n { s = s.addingProduct(x[i], x[i]); i += 1 }
        return s
    }

    /// RMSNorm of one row in place-free form: `y = w ⊙ (x · 1/sqrt(mean(x²) + eps))`, FP32 statistics.
    @inline(__always)
    public static func rmsNormRow(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ eps: Float,
                                  _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let mean = sumOfSquares(x, n) / Float(n)
        let r = 1 / (mean + eps).squareRoot()
        for i in 0..<n { y[i] = w[i] * (x[i] * r) }
    }

    /// RMSNorm over each row of `x` `[T, N]` with `weight` `[N]` (HF `DeepseekV3RMSNorm` in FP32).
    public static func rmsNorm(_ x: Matrix, weight: [Float], eps: Float) -> Matrix {
        precondition(weight.count == x.cols, "rmsNorm: weight \(weight.count) != width \(x.cols)")
        var out = Matrix(rows: x.rows, cols: x.cols)
        let n = x.cols
        x.data.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { wp in
                out.data.withUnsafeMutableBufferPointer { op in
                    for t in 0..<x.rows {
                        rmsNormRow(xp.baseAddress! + t * n, wp.baseAddress!, eps, op.baseAddress! + t * n, n)
                    }
                }
            }
        }
        return out
    }

    /// silu(z) = z / (1 + e^-z) (torch's formula).
    @inline(__always)
    public static func silu(_ z: Float) -> Float { z / (1 + Foundation.exp(-z)) }

    /// SwiGLU combine: `silu(gate) ⊙ up`, elementwise, shapes equal. Elementwise, so any split over `pool` gives
    /// the same bits; worth it from a few thousand elements (one `exp` each: ~4 ns, ~3.5% of a 512-token prefill
    /// and ~16 µs per MoE layer of a decode step when run on one thread).
    public static func siluMul(gate: Matrix, up: Matrix, pool: ComputePool = .serial) -> Matrix {
        precondition(gate.rows == up.rows && gate.cols == up.cols, "siluMul: shape mismatch")
        var out = Matrix(rows: gate.rows, cols: gate.cols)
        if gate.data.isEmpty { return out }
        gate.data.withUnsafeBufferPointer { g in
            up.data.withUnsafeBufferPointer { u in
                out.data.withUnsafeMutableBufferPointer { o in
                    let g = g.baseAddress!, u = u.baseAddress!, o = o.baseAddress!
                    // Decode-sized inputs (a few thousand values) run inline: a parallel region costs more than it saves.
                    pool.parallelFor(count: gate.data.count, granule: 16384) { range in
                        for i in range { o[i] = silu(g[i]) * u[i] }
                    }
                }
            }
        }
        return out
    }

    /// sigmoid(z) = 1 / (1 + e^-z).
    @inline(__always)
    public static func sigmoid(_ z: Float) -> Float { 1 / (1 + Foundation.exp(-z)) }

    /// In-place max-subtracted softmax over `n` values (FP32). A row of all -inf yields all zeros.
    public static func softmaxInPlace(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        if n == 0 { return }
        var m = -Float.infinity
        for i in 0..<n { m = Swift.max(m, x[i]) }
        if m == -.infinity { for i in 0..<n { x[i] = 0 }; return }
        var s: Float = 0
        for i in 0..<n {
            let e = Foundation.exp(x[i] - m)
            x[i] = e
            s += e
        }
        let inv = s
        for i in 0..<n { x[i] /= inv }
    }

    /// Row-wise softmax of `[T, N]`.
    public static func softmax(_ x: Matrix) -> Matrix {
        var out = x
        out.data.withUnsafeMutableBufferPointer { p in
            for t in 0..<x.rows { softmaxInPlace(p.baseAddress! + t * x.cols, x.cols) }
        }
        return out
    }

    /// Elementwise `a + b`.
    public static func add(_ a: Matrix, _ b: Matrix) -> Matrix {
        precondition(a.rows == b.rows && a.cols == b.cols, "add: shape mismatch")
        var out = a
        for i in out.data.indices { out.data[i] += b.data[i] }
        return out
    }

    /// In-place `a += b`.
    public static func addInPlace(_ a: inout Matrix, _ b: Matrix) {
        precondition(a.rows == b.rows && a.cols == b.cols, "add: shape mismatch")
        for i in a.data.indices { a.data[i] += b.data[i] }
    }

    /// Elementwise `a · s`.
    public static func scale(_ a: Matrix, _ s: Float) -> Matrix {
        var out = a
        for i in out.data.indices { out.data[i] *= s }
        return out
    }

    /// Scales each row `t` by `s[t]`.
    public static func scaleRows(_ a: Matrix, _ s: [Float]) -> Matrix {
        precondition(s.count == a.rows, "scaleRows: \(s.count) scales for \(a.rows) rows")
        var out = a
        let n = a.cols
        out.data.withUnsafeMutableBufferPointer { op in
            for t in 0..<a.rows {
                let row = op.baseAddress! + t * n, k = s[t]
                for c in 0..<n { row[c] *= k }
            }
        }
        return out
    }

    /// Index of the largest value; ties go to the lowest index; NaN never wins.
    public static func argmax(_ x: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        var found = false
        for i in 0..<x.count where !x[i].isNaN {
            if !found || x[i] > bestValue { best = i; bestValue = x[i]; found = true }
        }
        return best
    }

    public static func argmax(_ x: [Float]) -> Int { x.withUnsafeBufferPointer { argmax($0) } }

    /// Indices of the `k` largest values, ordered by value descending; ties go to the lowest index.
    public static func topK(_ x: [Float], _ k: Int) -> [Int] {
        precondition(k >= 0 && k <= x.count, "topK: k = \(k) of \(x.count)")
        var chosen: [Int] = []
        chosen.reserveCapacity(k)
        var taken = [Bool](repeating: false, count: x.count)
        for _ in 0..<k {
            var best = -1
            for i in 0..<x.count where !taken[i] {
                if best < 0 || x[i] > x[best] || (x[best].isNaN && !x[i].isNaN) { best = i }
            }
            taken[best] = true
            chosen.append(best)
        }
        return chosen
    }

    /// Dot product of `n` floats: 16-lane FMA partial sums in ascending chunks, then `sum()`, then the tail
    /// with scalar FMA. Deterministic for given `n`.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = Vec16()
        var i = 0
        while i + 16 <= n {
            acc.addProduct(UnsafeRawPointer(a + i).loadUnaligned(as: Vec16.self),
                           UnsafeRawPointer(b + i).loadUnaligned(as: Vec16.self))
            i += 16
        }
        var s = acc.sum()
        while i < n { s = s.addingProduct(a[i], b[i]); i += 1 }
        return s
    }
}
