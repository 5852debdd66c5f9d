// Row dequantization and transposed products (x · W for a weight view `[k, n]`, absorbed MLA attention): the
// plain twins and the dispatch to the C transposed kernels; per output one fused multiply-add per row ascending.
import CKernels
import Foundation
import Tensors

extension Ops {
    /// Dequantize row `row` of `w` into `out` (`w.cols` floats), exactly (`Weight.element` semantics).
    public static func dequantizeRow(_ w: Weight, _ row: Int, into out: UnsafeMutablePointer<Float>) {
        let n = w.cols
        if w.group > 0 && row < w.packedRows {
            for c in 0..<n { out[c] = w.element(row, c) }  // interleaved groups: not on a hot path
            return
        }
        switch w.storage {
        case .f32(let p):
            out.update(from: p + row * n, count: n)
        case .bf16(let p):
            let src = p + row * n
            for i in 0..<n { out[i] = Float(bitPattern: UInt32(src[i]) << 16) }
        case .f16(let p):
            let src = p + row * n
            for i in 0..<n { out[i] = f16ToFloat(src[i]) }
        case .fp8e4m3(let p, let scales):
            let src = p + row * n
            let srow = scales + (row / fp8BlockSize) * w.scaleCols
            FP8Table.e4m3.withUnsafeBufferPointer { table in
                for i in 0..<n { out[i] = table[Int(src[i])] * srow[i / fp8BlockSize] }
            }
        }
    }

    /// One dequantized row as an array.
    public static func dequantizeRow(_ w: Weight, _ row: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: w.cols) { buf, n in
            dequantizeRow(w, row, into: buf.baseAddress!)
            n = w.cols
        }
    }

    /// Transposed product `out[t, c] = Σ_i x[t, i] · W[i, c]` (`x` `[T, W.rows]` -> `[T, W.cols]`), used by MLA
    /// (q_nope · W_UK, softmax(P) · V, P · c_kv). Every element accumulates over `i` ascending, one fused
    /// multiply-add per term, starting from +0: batch invariant, thread-count invariant, and unchanged by extra
    /// trailing rows whose x is zero (a causal mask's zero probabilities). F32 weights (activation views) use a
    /// register-blocked loop, BF16 / FP8 a C kernel (AVX-512, widths in multiples of 16); otherwise one row is
    /// dequantized at a time (same bits on every path). `columns`: only the first that many output columns
    /// (absorbed attention needs the latent part of the cache rows, not their rope columns); each is the same either way.
    public static func linearTransposed(_ x: Matrix, _ w: Weight, columns: Int? = nil, pool: ComputePool = .serial,
                                        backend: LinearBackend = .automatic) -> Matrix {
        precondition(x.cols == w.rows, "linearTransposed: input width \(x.cols) != weight rows \(w.rows)")
        let n = columns ?? w.cols
        precondition(n >= 0 && n <= w.cols, "linearTransposed: \(n) columns of a weight with \(w.cols)")
        if x.rows == 0 || n == 0 { return Matrix(rows: x.rows, cols: n) }
        // Every output element is written by the product: no zero-fill first.
        return x.data.withUnsafeBufferPointer { xp in
            Matrix(rows: x.rows, cols: n) { op in
                let xb = xp.baseAddress!, ob = UnsafeTransfer(op)
                pool.parallelFor(count: x.rows) { r in
                    linearTransposed(x: xb + r.lowerBound * w.rows, tokens: r.count, weight: w,
                                     out: ob.value + r.lowerBound * n, columns: n, backend: backend)
                }
            }
        }
    }

    /// Several transposed products (one per job: `out[t, c] = Σ_i x[t, i] · W[i, c]`, `x` `[tokens, W.rows]`,
    /// `out` `[tokens, W.cols]`) in one parallel region, whole jobs per thread (absorbed attention's per-head
    /// q_nope · W_UK: one region instead of one call and its buffers per head). Same bits as one call per job.
    public static func linearTransposedBatch(_ jobs: [LinearJob], pool: ComputePool) {
        jobs.withUnsafeBufferPointer { linearTransposedBatch($0, pool: pool) }
    }

    /// `linearTransposedBatch` over jobs in caller storage.
    public static func linearTransposedBatch(_ jobs: UnsafeBufferPointer<LinearJob>, pool: ComputePool) {
        pool.parallelFor(count: jobs.count) { range in
            for j in jobs[range] { linearTransposed(x: j.x, tokens: j.tokens, weight: j.weight, out: j.out) }
        }
    }

    /// `linearTransposed` on raw rows, on the calling thread: `x` `[tokens, w.rows]` -> `out` `[tokens, columns]`
    /// (the first `columns` output columns, all by default).
    public static func linearTransposed(x xb: UnsafePointer<Float>, tokens: Int, weight w: Weight,
                                        out ob: UnsafeMutablePointer<Float>, columns: Int? = nil,
                                        backend: LinearBackend = .automatic) {
        let n = columns ?? w.cols, k = w.rows, ldw = w.cols
        if tokens == 0 || n == 0 { return }
        if case .f32(let wp) = w.storage {
            // F32 (the latent cache in absorbed decode attention): the C twin when the width is whole 16-lane vectors.
            if backend == .automatic, CPUFeatures.avx512, n % 16 == 0, w.group == 0 {
                mr_linear_transposed_f32(wp, k, n, ldw, xb, tokens, ob)
                return
            }
            for t in 0..<tokens { transposedRowF32(xb + t * k, wp, k, n, ldw, ob + t * n) }
            return
        }
        // BF16 / FP8 views (absorbed attention's W_UK per head, every decode step): the C kernel keeps 64
        // columns in registers instead of dequantizing and re-reading `out` once per row (same bits).
        if backend == .automatic, CPUFeatures.avx512, n % 16 == 0, n == ldw, w.group == 0 {
            switch w.storage {
            case .bf16(let wp):
                mr_linear_transposed_bf16(wp, k, n, xb, tokens, ob)
                return
            case .fp8e4m3(let wp, let scales):
                mr_linear_transposed_fp8(wp, scales, w.scaleCols, k, n, xb, tokens, ob)
                return
            default: break
            }
        }
        ob.initialize(repeating: 0, count: tokens * n)
        let rowBuf = UnsafeMutablePointer<Float>.allocate(capacity: ldw)
        defer { rowBuf.deallocate() }
        for i in 0..<k {
            dequantizeRow(w, i, into: rowBuf)
            for t in 0..<tokens { axpy(xb[t * k + i], UnsafePointer(rowBuf), ob + t * n, n) }
        }
    }

    /// One output row of `linearTransposed` over an F32 matrix `[k, n]`: 64 columns held in registers while `i`
    /// walks the rows (same per-element fma sequence as the axpy path).
    @inline(__always)
    static func transposedRowF32(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ k: Int, _ n: Int, _ ldw: Int,
                                 _ out: UnsafeMutablePointer<Float>) {
        var c = 0
        while c + 64 <= n {
            var a0 = Vec16(), a1 = Vec16(), a2 = Vec16(), a3 = Vec16()
            for i in 0..<k {
                let xi = Vec16(repeating: x[i])
                let p = UnsafeRawPointer(w + i * ldw + c)
                a0.addProduct(xi, p.loadUnaligned(as: Vec16.self))
                a1.addProduct(xi, p.loadUnaligned(fromByteOffset: 64, as: Vec16.self))
                a2.addProduct(xi, p.loadUnaligned(fromByteOffset: 128, as: Vec16.self))
                a3.addProduct(xi, p.loadUnaligned(fromByteOffset: 192, as: Vec16.self))
            }
            let o = UnsafeMutableRawPointer(out + c)
            o.storeBytes(of: a0, as: Vec16.self)
            o.storeBytes(of: a1, toByteOffset: 64, as: Vec16.self)
            o.storeBytes(of: a2, toByteOffset: 128, as: Vec16.self)
            o.storeBytes(of: a3, toByteOffset: 192, as: Vec16.self)
            c += 64
        }
        while c + 16 <= n {
            var a = Vec16()
            for i in 0..<k { a.addProduct(Vec16(repeating: x[i]), UnsafeRawPointer(w + i * ldw + c).loadUnaligned(as: Vec16.self)) }
            UnsafeMutableRawPointer(out + c).storeBytes(of: a, as: Vec16.self)
            c += 16
        }
        while c < n {
            var a: Float = 0
            for i in 0..<k { a = a.addingProduct(x[i], w[i * ldw + c]) }
            out[c] = a
            c += 1
        }
    }

    /// `y[j] = fma(a, x[j], y[j])` for j in 0..<n (elementwise, order-free).
    @inline(__always)
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var j = 0
        let av = Vec16(repeating: a)
        while j + 16 <= n {
            var acc = UnsafeRawPointer(y + j).loadUnaligned(as: Vec16.self)
            acc.addProduct(av, UnsafeRawPointer(x + j).loadUnaligned(as: Vec16.self))
            UnsafeMutableRawPointer(y + j).storeBytes(of: acc, as: Vec16.self)
            j += 16
        }
        while j < n { y[j] = y[j].addingProduct(a, x[j]); j += 1 }
    }
}
