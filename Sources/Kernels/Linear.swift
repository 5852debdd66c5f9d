// linear: out[t, o] = sum_i x[t, i] * W[o, i]  (y = x W^T), FP32 accumulation, weights dequantized in registers.
//
// Summation order (the batch-invariance contract): every output element (t, o) is one SIMD16<Float>
// accumulator that walks the columns in 64-column chunks, ascending; inside a chunk it adds four
// 16-lane products with fused multiply-add, in a fixed dtype-specific lane layout (FP8: the chunk's four
// products are summed first and the sum is scaled into the accumulator, see FP8Decoder); the 16 lanes are
// then reduced with `sum()`. Nothing in that sequence depends on T, on which tokens share the batch,
// on how rows/tokens are tiled, or on the thread count - so out[t, o] is bit-identical in all cases.
// A partial last chunk is decoded from a zero-padded copy and follows the same sequence.
// F32 / BF16 / FP8 weights with whole chunks run the C twin of these loops (CKernels, AVX-512 with software prefetch)
// when the CPU has AVX-512; it performs the identical sequence, so both paths give the same bits.
import CKernels
import Foundation
import Tensors

// MARK: - micro-kernels (all follow the same per-(t, o) accumulation sequence)

@inline(__always)
func fmaChunk(_ acc: inout Vec16, _ w: Phases, _ x: Phases) {
    acc.addProduct(w.0, x.0)
    acc.addProduct(w.1, x.1)
    acc.addProduct(w.2, x.2)
    acc.addProduct(w.3, x.3)
}

@inline(__always)
func loadChunk(_ x: UnsafePointer<Float>) -> Phases {
    let p = UnsafeRawPointer(x)
    return (p.loadUnaligned(as: Vec16.self), p.loadUnaligned(fromByteOffset: 64, as: Vec16.self),
            p.loadUnaligned(fromByteOffset: 128, as: Vec16.self), p.loadUnaligned(fromByteOffset: 192, as: Vec16.self))
}

struct LinearShape {
    let rows: Int, cols: Int, tokens: Int
    let fullChunks: Int, tailValid: Int, stride: Int  // stride = packed floats per token
}

/// 1 row x 1 token.
@inline(__always)
func kernel1x1<D: ChunkDecoder>(_ d: D, _ s: LinearShape, row: Int, x: UnsafePointer<Float>) -> Float {
    var a = Vec16()
    for c in 0..<s.fullChunks { D.accumulate(&a, d.decode(row: row, chunk: c), loadChunk(x + c * linearChunk)) }
    if s.tailValid > 0 {
        let c = s.fullChunks
        D.accumulate(&a, d.decodeTail(row: row, chunk: c, valid: s.tailValid), loadChunk(x + c * linearChunk))
    }
    return a.sum()
}

/// 4 rows x 1 token: the activation chunk is loaded once for four weight rows (decode path).
@inline(__always)
func kernel4x1<D: ChunkDecoder>(_ d: D, _ s: LinearShape, row r: Int, x: UnsafePointer<Float>,
                                 out: UnsafeMutablePointer<Float>) {
    var a0 = Vec16(), a1 = Vec16(), a2 = Vec16(), a3 = Vec16()
    for c in 0..<s.fullChunks {
        let xv = loadChunk(x + c * linearChunk)
        D.accumulate(&a0, d.decode(row: r, chunk: c), xv)
        D.accumulate(&a1, d.decode(row: r + 1, chunk: c), xv)
        D.accumulate(&a2, d.decode(row: r + 2, chunk: c), xv)
        D.accumulate(&a3, d.decode(row: r + 3, chunk: c), xv)
    }
    if s.tailValid > 0 {
        let c = s.fullChunks
        let xv = loadChunk(x + c * linearChunk)
        D.accumulate(&a0, d.decodeTail(row: r, chunk: c, valid: s.tailValid), xv)
        D.accumulate(&a1, d.decodeTail(row: r + 1, chunk: c, valid: s.tailValid), xv)
        D.accumulate(&a2, d.decodeTail(row: r + 2, chunk: c, valid: s.tailValid), xv)
        D.accumulate(&a3, d.decodeTail(row: r + 3, chunk: c, valid: s.tailValid), xv)
    }
    out[0] = a0.sum(); out[1] = a1.sum(); out[2] = a2.sum(); out[3] = a3.sum()
}

/// 4 rows x 4 tokens: each decoded weight chunk feeds four tokens (prefill path).
@inline(__always)
func kernel4x4<D: ChunkDecoder>(_ d: D, _ s: LinearShape, row r: Int, x: UnsafePointer<Float>,
                                 out: UnsafeMutablePointer<Float>) {
    let x0 = x, x1 = x + s.stride, x2 = x + 2 * s.stride, x3 = x + 3 * s.stride
    var a00 = Vec16(), a01 = Vec16(), a02 = Vec16(), a03 = Vec16()
    var a10 = Vec16(), a11 = Vec16(), a12 = Vec16(), a13 = Vec16()
    var a20 = Vec16(), a21 = Vec16(), a22 = Vec16(), a23 = Vec16()
    var a30 = Vec16(), a31 = Vec16(), a32 = Vec16(), a33 = Vec16()
    @inline(__always) func step(_ w0: D.Chunk, _ w1: D.Chunk, _ w2: D.Chunk, _ w3: D.Chunk, _ o: Int) {
        let v0 = loadChunk(x0 + o), v1 = loadChunk(x1 + o), v2 = loadChunk(x2 + o), v3 = loadChunk(x3 + o)
        D.accumulate(&a00, w0, v0); D.accumulate(&a01, w0, v1); D.accumulate(&a02, w0, v2); D.accumulate(&a03, w0, v3)
        D.accumulate(&a10, w1, v0); D.accumulate(&a11, w1, v1); D.accumulate(&a12, w1, v2); D.accumulate(&a13, w1, v3)
        D.accumulate(&a20, w2, v0); D.accumulate(&a21, w2, v1); D.accumulate(&a22, w2, v2); D.accumulate(&a23, w2, v3)
        D.accumulate(&a30, w3, v0); D.accumulate(&a31, w3, v1); D.accumulate(&a32, w3, v2); D.accumulate(&a33, w3, v3)
    }
    for c in 0..<s.fullChunks {
        step(d.decode(row: r, chunk: c), d.decode(row: r + 1, chunk: c),
             d.decode(row: r + 2, chunk: c), d.decode(row: r + 3, chunk: c), c * linearChunk)
    }
    if s.tailValid > 0 {
        let c = s.fullChunks, v = s.tailValid
        step(d.decodeTail(row: r, chunk: c, valid: v), d.decodeTail(row: r + 1, chunk: c, valid: v),
             d.decodeTail(row: r + 2, chunk: c, valid: v), d.decodeTail(row: r + 3, chunk: c, valid: v), c * linearChunk)
    }
    let n = s.rows
    out[0] = a00.sum(); out[n] = a01.sum(); out[2 * n] = a02.sum(); out[3 * n] = a03.sum()
    out[1] = a10.sum(); out[n + 1] = a11.sum(); out[2 * n + 1] = a12.sum(); out[3 * n + 1] = a13.sum()
    out[2] = a20.sum(); out[n + 2] = a21.sum(); out[2 * n + 2] = a22.sum(); out[3 * n + 2] = a23.sum()
    out[3] = a30.sum(); out[n + 3] = a31.sum(); out[2 * n + 3] = a32.sum(); out[3 * n + 3] = a33.sum()
}

/// Tokens processed per outer block (bounds the activation working set while rows stream).
let tokenBlock = 32

@inline(__always)
func packActivations<D: ChunkDecoder>(_: D.Type, x: UnsafePointer<Float>, tokens: Int, cols: Int,
                                      stride: Int, into dst: UnsafeMutablePointer<Float>) {
    // Whole chunks: the lane layouts are fixed permutations (identity, even/odd halves, stride 4), done with SIMD
    // shuffles; the scalar loop below cost ~1 ns per element, serial before every product.
    if cols == stride {
        let n = tokens * cols
        var c = 0
        if D.self == F32Decoder.self {
            dst.update(from: x, count: n)
            return
        }
        if D.self == BF16Decoder.self || D.self == F16Decoder.self {
            while c < n {
                let a = UnsafeRawPointer(x + c).loadUnaligned(as: SIMD32<Float>.self)
                let b = UnsafeRawPointer(x + c + 32).loadUnaligned(as: SIMD32<Float>.self)
                let d = UnsafeMutableRawPointer(dst + c)
                d.storeBytes(of: a.evenHalf, as: Vec16.self)
                d.storeBytes(of: a.oddHalf, toByteOffset: 64, as: Vec16.self)
                d.storeBytes(of: b.evenHalf, toByteOffset: 128, as: Vec16.self)
                d.storeBytes(of: b.oddHalf, toByteOffset: 192, as: Vec16.self)
                c += linearChunk
            }
            return
        }
        if D.self == FP8Decoder.self {
            let f = Vec16(repeating: fp8ActivationScale)
            while c < n {
                // Phase k = columns 4j + k, from two 32-column halves with 16- and 8-lane shuffles (SIMD64 shuffles and
                // multiplies compile to scalar code: they took 12-27% of an FP8 decode step).
                let a = UnsafeRawPointer(x + c).loadUnaligned(as: SIMD32<Float>.self)
                let b = UnsafeRawPointer(x + c + 32).loadUnaligned(as: SIMD32<Float>.self)
                let ae = a.evenHalf, ao = a.oddHalf, be = b.evenHalf, bo = b.oddHalf
                let d = UnsafeMutableRawPointer(dst + c)
                d.storeBytes(of: Vec16(lowHalf: ae.evenHalf, highHalf: be.evenHalf) * f, as: Vec16.self)
                d.storeBytes(of: Vec16(lowHalf: ao.evenHalf, highHalf: bo.evenHalf) * f, toByteOffset: 64, as: Vec16.self)
                d.storeBytes(of: Vec16(lowHalf: ae.oddHalf, highHalf: be.oddHalf) * f, toByteOffset: 128, as: Vec16.self)
                d.storeBytes(of: Vec16(lowHalf: ao.oddHalf, highHalf: bo.oddHalf) * f, toByteOffset: 192, as: Vec16.self)
                c += linearChunk
            }
            return
        }
    }
    if D.self == F32Decoder.self {  // natural order: each token's values, then zeros up to the stride
        for t in 0..<tokens {
            (dst + t * stride).update(from: x + t * cols, count: cols)
            (dst + t * stride + cols).update(repeating: 0, count: stride - cols)
        }
        return
    }
    let chunks = stride / linearChunk
    let factor: Float = D.self == FP8Decoder.self ? fp8ActivationScale : 1
    for t in 0..<tokens {
        let src = x + t * cols
        let d = dst + t * stride
        for c in 0..<chunks {
            for k in 0..<4 {
                for j in 0..<16 {
                    let col = c * linearChunk + D.column(phase: k, lane: j)
                    d[c * linearChunk + k * 16 + j] = col < cols ? src[col] * factor : 0
                }
            }
        }
    }
}

/// CPU features the kernels dispatch on (detected once at run time).
public enum CPUFeatures {
    static let bits = Int(mr_cpu_features())
    /// AVX-512 F/BW/DQ usable: the C linear kernels run (`MOERUN_KERNELS=portable` forces the Swift loops, for
    /// A/B measurements).
    public static let avx512 = bits & 1 != 0 && ProcessInfo.processInfo.environment["MOERUN_KERNELS"] != "portable"
    /// AVX-512 BF16 (`vdpbf16ps`) usable.
    public static let avx512bf16 = bits & 2 != 0
}

/// Implementation choice for `Ops.linear` (tests pin one to compare them; both give the same bits).
public enum LinearBackend: Sendable {
    /// C kernels where the CPU and the shape allow, Swift otherwise.
    case automatic
    /// The portable Swift SIMD loops only.
    case portable
}

@inline(never)
func linearDriver<D: ChunkDecoder>(_ d: D, x: UnsafePointer<Float>, tokens: Int, rows: Int, cols: Int,
                                   out: UnsafeMutablePointer<Float>, pool: ComputePool) {
    let stride = ceilDiv(cols, linearChunk) * linearChunk
    let shape = LinearShape(rows: rows, cols: cols, tokens: tokens, fullChunks: cols / linearChunk,
                            tailValid: cols % linearChunk, stride: stride)
    let packedRaw = UnsafeMutableRawPointer.allocate(byteCount: max(tokens * stride, 1) * 4, alignment: 64)
    defer { packedRaw.deallocate() }
    let packed = packedRaw.bindMemory(to: Float.self, capacity: max(tokens * stride, 1))
    packActivations(D.self, x: x, tokens: tokens, cols: cols, stride: stride, into: packed)
    let xp = UnsafePointer(packed)
    pool.parallelFor(count: rows, granule: 4) { range in
        var tb = 0
        while tb < tokens {
            let te = min(tokens, tb + tokenBlock)
            var r = range.lowerBound
            while r + 4 <= range.upperBound {
                var t = tb
                while t + 4 <= te {
                    kernel4x4(d, shape, row: r, x: xp + t * stride, out: out + t * rows + r)
                    t += 4
                }
                while t < te {
                    kernel4x1(d, shape, row: r, x: xp + t * stride, out: out + t * rows + r)
                    t += 1
                }
                r += 4
            }
            while r < range.upperBound {
                for t in tb..<te { out[t * rows + r] = kernel1x1(d, shape, row: r, x: xp + t * stride) }
                r += 1
            }
            tb = te
        }
    }
}

extension Ops {
    /// `out[t, o] = Σ_i x[t, i] · W[o, i]` for `tokens` rows of `x` (`[tokens, W.cols]`, FP32, row-major) into
    /// `out` (`[tokens, W.rows]`). W may be F32, BF16, F16 or FP8 e4m3 (128x128 block scales); it is
    /// dequantized in registers. FP32 accumulation in a fixed order: out[t, o] is bit-identical for any
    /// `tokens`, any batch companions and any `pool` width.
    public static func linear(x: UnsafePointer<Float>, tokens: Int, weight w: Weight,
                              out: UnsafeMutablePointer<Float>, pool: ComputePool = .serial,
                              backend: LinearBackend = .automatic) {
        if tokens == 0 || w.rows == 0 { return }
        if w.cols == 0 { for i in 0..<(tokens * w.rows) { out[i] = 0 }; return }
        let rows = w.rows, cols = w.cols
        // The C kernels (AVX-512, whole chunks; bf16 dot products when the pool asks for them): one prepared job.
        if backend == .automatic, let job = FusedJob(LinearJob(x: x, tokens: tokens, weight: w, out: out), precision: pool.precision) {
            defer { job.release() }
            withUnsafePointer(to: job) { runShares(UnsafeBufferPointer(start: $0, count: 1), pool: pool) }
            return
        }
        switch w.storage {
        case .f32(let p):
            linearDriver(F32Decoder(base: p, layout: RowLayout(w)), x: x, tokens: tokens, rows: rows, cols: cols, out: out, pool: pool)
        case .bf16(let p):
            linearDriver(BF16Decoder(base: p, layout: RowLayout(w)), x: x, tokens: tokens, rows: rows, cols: cols, out: out, pool: pool)
        case .f16(let p):
            linearDriver(F16Decoder(base: p, layout: RowLayout(w)), x: x, tokens: tokens, rows: rows, cols: cols, out: out, pool: pool)
        case .fp8e4m3(let p, let scales):
            linearDriver(FP8Decoder(base: p, scales: scales, layout: RowLayout(w), scaleCols: w.scaleCols),
                         x: x, tokens: tokens, rows: rows, cols: cols, out: out, pool: pool)
        }
    }

    /// `x W^T` for a token matrix `x` `[T, W.cols]` -> `[T, W.rows]`. See `linear(x:tokens:weight:out:pool:)`.
    public static func linear(_ x: Matrix, _ w: Weight, pool: ComputePool = .serial,
                              backend: LinearBackend = .automatic) -> Matrix {
        precondition(x.cols == w.cols, "linear: input width \(x.cols) != weight cols \(w.cols)")
        // Every output element is written by the product: no zero-fill first.
        return x.data.withUnsafeBufferPointer { xp in
            Matrix(rows: x.rows, cols: w.rows) { op in
                linear(x: xp.baseAddress!, tokens: x.rows, weight: w, out: op, pool: pool, backend: backend)
            }
        }
    }
}
