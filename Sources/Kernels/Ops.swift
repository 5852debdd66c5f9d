// Elementwise and row-wise ops on FP32 activations: RMSNorm, SwiGLU, softmax, add/scale, argmax, top-k.
// Every op here has a plain twin in `Reference` (Reference.swift) and a test comparing them.
import CKernels
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

    /// silu(z) = z / (1 + e^-z) (torch's formula), e^-z by `FastExp` (the portable twin of `mr_silu_mul`).
    @inline(__always)
    public static func silu(_ z: Float) -> Float { z / (1 + FastExp.exp(-z)) }

    /// SwiGLU combine: `silu(gate) ⊙ up`, elementwise, shapes equal: AVX-512 C (`mr_silu_mul`) where present, else
    /// `silu` per element; the same bits either way, whatever the split over `pool`. glibc's scalar `expf` per
    /// element cost ~11 µs per MoE layer of a decode step (4608 values, serial between two products); the vector
    /// polynomial ~1 µs.
    public static func siluMul(gate: Matrix, up: Matrix, pool: ComputePool = .serial) -> Matrix {
        siluMul(gate: gate, up: up, pool: pool, portable: false)
    }

    /// `siluMul` over `count` values in caller storage (`out` may not alias the inputs).
    public static func siluMul(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                               count: Int, pool: ComputePool = .serial) {
        siluMul(gate: gate, up: up, out: out, count: count, pool: pool, portable: false)
    }

    /// `siluMul` by the portable Swift loop (the twin the C kernel is tested against).
    public static func siluMulPortable(gate: Matrix, up: Matrix) -> Matrix {
        siluMul(gate: gate, up: up, pool: .serial, portable: true)
    }

    private static func siluMul(gate: Matrix, up: Matrix, pool: ComputePool, portable: Bool) -> Matrix {
        precondition(gate.rows == up.rows && gate.cols == up.cols, "siluMul: shape mismatch")
        if gate.data.isEmpty { return Matrix(rows: gate.rows, cols: gate.cols) }
        return gate.data.withUnsafeBufferPointer { g in
            up.data.withUnsafeBufferPointer { u in
                Matrix(rows: gate.rows, cols: gate.cols) { o in
                    siluMul(gate: g.baseAddress!, up: u.baseAddress!, out: o, count: gate.data.count, pool: pool, portable: portable)
                }
            }
        }
    }

    private static func siluMul(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                                count: Int, pool: ComputePool, portable: Bool) {
        let g = UnsafeTransfer(gate), u = UnsafeTransfer(up), o = UnsafeTransfer(out)
        // Decode-sized inputs (a few thousand values) run inline: a parallel region costs more than it saves.
        pool.parallelFor(count: count, granule: 16384) { range in siluMulRange(g.value, u.value, o.value, range, portable: portable) }
    }

    /// `o[i] = silu(g[i]) * u[i]` for i in `range`.
    private static func siluMulRange(_ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>,
                                     _ range: Range<Int>, portable: Bool) {
        if CPUFeatures.avx512 && !portable {
            mr_silu_mul(g + range.lowerBound, u + range.lowerBound, o + range.lowerBound, range.count)
        } else {
            for i in range { o[i] = silu(g[i]) * u[i] }
        }
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
        b.data.withUnsafeBufferPointer { bp in
            a.data.withUnsafeMutableBufferPointer { ap in
                for i in ap.indices { ap[i] += bp[i] }
            }
        }
    }

    /// Elementwise `a · s`.
    public static func scale(_ a: Matrix, _ s: Float) -> Matrix {
        var out = a
        for i in out.data.indices { out.data[i] *= s }
        return out
    }

    /// Scales each row `t` by `s[t]`.
    public static func scaleRows(_ a: Matrix, _ s: [Float]) -> Matrix {
        a.data.withUnsafeBufferPointer { scaleRows($0.baseAddress, rows: a.rows, cols: a.cols, s) }
    }

    /// `scaleRows` of `[rows, cols]` values in caller storage, into a new matrix (one pass: read, scale, write).
    public static func scaleRows(_ a: UnsafePointer<Float>?, rows: Int, cols n: Int, _ s: [Float]) -> Matrix {
        precondition(s.count == rows, "scaleRows: \(s.count) scales for \(rows) rows")
        return Matrix(rows: rows, cols: n) { out in
            for t in 0..<rows {
                let k = s[t]
                for c in 0..<n { out[t * n + c] = a![t * n + c] * k }
            }
        }
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
        if k == 0 { return [] }
        return [Int](unsafeUninitializedCapacity: k) { chosen, count in
            x.withUnsafeBufferPointer { topK($0, k, into: chosen.baseAddress!) }
            count = k
        }
    }

    /// `topK` into caller storage (`chosen` holds `k` indices, best first); its scratch lives on the stack, so the
    /// router's per-token selection allocates nothing.
    public static func topK(_ x: UnsafeBufferPointer<Float>, _ k: Int, into chosen: UnsafeMutablePointer<Int>) {
        precondition(k >= 0 && k <= x.count, "topK: k = \(k) of \(x.count)")
        withUnsafeTemporaryAllocation(of: Bool.self, capacity: x.count) { taken in
            taken.initialize(repeating: false)
            for j in 0..<k {
                var best = -1
                for i in 0..<x.count where !taken[i] {
                    if best < 0 || x[i] > x[best] || (x[best].isNaN && !x[i].isNaN) { best = i }
                }
                taken[best] = true
                chosen[j] = best
            }
        }
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

/// exp(x) in FP32 by range reduction and a polynomial, the scalar twin of CKernels' `exp16` (same operations in the
/// same order, so the same bits): n = round(x·log2 e), r = x − n·ln2 (split in two constants, fused multiply-adds),
/// e^r by the degree-6 Cephes `expf` polynomial, times 2^n. Within 2 ulp of `Foundation.exp` (a test checks it);
/// x is clamped to [-104, 89], outside of which FP32 gives 0 or +inf anyway.
public enum FastExp {
    @inline(__always)
    public static func exp(_ x: Float) -> Float {
        let x = Swift.max(Swift.min(x, 89), -104)
        let n = (x * 1.44269504088896341).rounded(.toNearestOrEven)
        var r = x.addingProduct(-n, 0.693359375)
        r = r.addingProduct(-n, -2.12194440e-4)
        var p: Float = 1.9875691500e-4
        p = (1.3981999507e-3 as Float).addingProduct(p, r)
        p = (8.3334519073e-3 as Float).addingProduct(p, r)
        p = (4.1665795894e-2 as Float).addingProduct(p, r)
        p = (1.6666665459e-1 as Float).addingProduct(p, r)
        p = (5.0000001201e-1 as Float).addingProduct(p, r)
        p = r.addingProduct(p, r * r)
        p = p + 1
        return Float(sign: .plus, exponent: Int(n), significand: p)
    }
}
