// Fast kernels vs their reference twins, plus the batch-invariance contract of `Ops.linear`.
import Foundation
import Testing
import Kernels
import Tensors

/// Deterministic pseudo-random numbers (SplitMix64) so failures reproduce.
struct SeededRandom {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-scale, scale).
    mutating func float(_ scale: Float = 1) -> Float {
        (Float(next() >> 40) / Float(1 << 24) * 2 - 1) * scale
    }
    mutating func floats(_ n: Int, _ scale: Float = 1) -> [Float] { (0..<n).map { _ in float(scale) } }
}

enum StorageKind: CaseIterable { case f32, bf16, f16, fp8 }

func makeWeight(_ kind: StorageKind, rows: Int, cols: Int, seed: UInt64) -> Weight {
    var rng = SeededRandom(seed)
    let values = rng.floats(rows * cols, 0.5)
    switch kind {
    case .f32: return .f32(rows: rows, cols: cols, values)
    case .bf16: return .bf16(rows: rows, cols: cols, values)
    case .fp8: return .fp8(rows: rows, cols: cols, values)
    case .f16:
        let block = HeapBlock(byteCount: values.count * 2)
        let p = block.raw.bindMemory(to: UInt16.self, capacity: values.count)
        for i in values.indices { p[i] = Float16(values[i]).bitPattern }
        return Weight(rows: rows, cols: cols, storage: .f16(UnsafePointer(p)), owner: block)
    }
}

func randomMatrix(_ rows: Int, _ cols: Int, seed: UInt64, scale: Float = 1) -> Matrix {
    var rng = SeededRandom(seed)
    return Matrix(rows: rows, cols: cols, data: rng.floats(rows * cols, scale))
}

/// max |a-b| / (1 + max|b|)
func relErr(_ a: Matrix, _ b: Matrix) -> Float {
    let m = b.data.reduce(0) { max($0, abs($1)) }
    return a.maxAbsDiff(b) / (1 + m)
}

@Test(arguments: StorageKind.allCases)
func linearMatchesReference(kind: StorageKind) {
    // Shapes with partial chunks / partial FP8 blocks / row counts that are not multiples of 4.
    for (rows, cols, tokens) in [(1, 1, 1), (5, 17, 3), (11, 100, 7), (9, 130, 5), (130, 257, 6), (8, 64, 9)] {
        let w = makeWeight(kind, rows: rows, cols: cols, seed: UInt64(rows * 1000 + cols))
        let x = randomMatrix(tokens, cols, seed: UInt64(tokens * 77 + cols))
        let fast = Ops.linear(x, w)
        let ref = Reference.linear(x, w)
        #expect(relErr(fast, ref) < 2e-6, "\(kind) \(rows)x\(cols) T=\(tokens): \(relErr(fast, ref))")
    }
}

@Test(arguments: StorageKind.allCases)
func linearDecodesEveryElementExactly(kind: StorageKind) {
    // One-hot inputs make each output exactly one weight element: checks the in-register dequantization bit for bit.
    let rows = 9, cols = 131
    let w = makeWeight(kind, rows: rows, cols: cols, seed: 42)
    var x = Matrix(rows: cols, cols: cols)
    for i in 0..<cols { x[i, i] = 1 }
    let y = Ops.linear(x, w)
    for i in 0..<cols {
        for o in 0..<rows {
            #expect(y[i, o].bitPattern == w.element(o, i).bitPattern || (y[i, o] == 0 && w.element(o, i) == 0),
                    "\(kind) [\(o), \(i)]")
        }
    }
    for o in 0..<rows {
        let row = Ops.dequantizeRow(w, o)
        for i in 0..<cols { #expect(row[i].bitPattern == w.element(o, i).bitPattern) }
    }
}

@Test func f16DecodesSpecialValues() {
    let specials: [UInt16] = [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00, 0xBC00, 0x7C00, 0xFC00, 0x3555]
    // One special per row (a row holding inf would turn 0 * inf into NaN), in the pair layout's odd and even slots.
    let n = specials.count
    for cols in [1, 2, 66] {
        let block = HeapBlock(byteCount: n * cols * 2)
        let p = block.raw.bindMemory(to: UInt16.self, capacity: n * cols)
        for r in 0..<n { for c in 0..<cols { p[r * cols + c] = c == cols - 1 ? specials[r] : 0x3C00 } }
        let w = Weight(rows: n, cols: cols, storage: .f16(UnsafePointer(p)), owner: block)
        var x = Matrix(rows: 1, cols: cols)
        x[0, cols - 1] = 1
        let y = Ops.linear(x, w)
        for r in 0..<n {
            #expect(y[0, r].bitPattern == f16ToFloat(specials[r]).bitPattern || (y[0, r] == 0 && specials[r] & 0x7FFF == 0),
                    "f16 0x\(String(specials[r], radix: 16)) cols \(cols)")
        }
    }
}

@Test(arguments: StorageKind.allCases)
func linearIsBatchInvariant(kind: StorageKind) {
    let rows = 37, cols = 200
    let w = makeWeight(kind, rows: rows, cols: cols, seed: 7)
    let batch = randomMatrix(7, cols, seed: 99)
    let together = Ops.linear(batch, w)
    for t in 0..<7 {
        let alone = Ops.linear(batch.rows(t..<(t + 1)), w)
        #expect(alone.bitwiseEqual(together.rows(t..<(t + 1))), "\(kind) token \(t) alone vs batch of 7")
    }
    // Different companions: token 0 of the batch with 3 unrelated tokens placed before it.
    let other = randomMatrix(3, cols, seed: 123)
    let mixed = Ops.linear(Matrix.concatRows([other, batch.rows(0..<1)], cols: cols), w)
    #expect(mixed.rows(3..<4).bitwiseEqual(together.rows(0..<1)))
    // Thread count.
    for threads in [2, 3] {
        let threaded = Ops.linear(batch, w, pool: ComputePool(threads: threads))
        #expect(threaded.bitwiseEqual(together), "\(kind) \(threads) threads vs 1")
    }
    // Larger batch crossing the 32-token outer block.
    let big = randomMatrix(41, cols, seed: 5)
    let bigOut = Ops.linear(big, w, pool: ComputePool(threads: 2))
    for t in [0, 31, 32, 40] {
        #expect(Ops.linear(big.rows(t..<(t + 1)), w).bitwiseEqual(bigOut.rows(t..<(t + 1))))
    }
}

@Test(arguments: [StorageKind.f32, .bf16, .fp8])
func linearTransposedMatchesReference(kind: StorageKind) {
    for cols in [40, 150, 64] {
        let w = makeWeight(kind, rows: 24, cols: cols, seed: 3)
        let x = randomMatrix(5, 24, seed: 4)
        let fast = Ops.linearTransposed(x, w)
        #expect(relErr(fast, Reference.linearTransposed(x, w)) < 2e-6)
        for t in 0..<5 {
            #expect(Ops.linearTransposed(x.rows(t..<(t + 1)), w).bitwiseEqual(fast.rows(t..<(t + 1))))
        }
        #expect(Ops.linearTransposed(x, w, pool: ComputePool(threads: 2)).bitwiseEqual(fast))
    }
}

/// The C transposed kernel (BF16 / FP8 views, F32 such as the latent cache) against the portable loops (dequantize and
/// axpy; `transposedRowF32`): same bits, including FP8 views whose rows and columns cross 128-element scale blocks,
/// widths that are not multiples of 64 (288: MLA's kv_lora 256 + rope 32), and a row slice.
@Test(arguments: [StorageKind.bf16, .fp8, .f32])
func linearTransposedKernelMatchesPortableBitwise(kind: StorageKind) {
    for (k, n) in [(64, 256), (150, 144), (300, 80), (7, 16), (40, 528), (73, 288)] {
        let w = makeWeight(kind, rows: k, cols: n, seed: UInt64(k * n))
        let x = randomMatrix(3, k, seed: 21, scale: 2)
        let fast = Ops.linearTransposed(x, w)
        #expect(fast.bitwiseEqual(Ops.linearTransposed(x, w, backend: .portable)), "\(kind) \(k)x\(n)")
        #expect(relErr(fast, Reference.linearTransposed(x, w)) < 2e-6)
        // The first columns only (rows still `n` apart): each the same as in the full product.
        for columns in [16, n - 16, 0] where columns >= 0 {
            let part = Ops.linearTransposed(x, w, columns: columns)
            let same = (0..<3).allSatisfy { t in (0..<columns).allSatisfy { part[t, $0].bitPattern == fast[t, $0].bitPattern } }
            #expect(part.cols == columns && same, "\(kind) \(k)x\(n) first \(columns)")
            #expect(Ops.linearTransposed(x, w, columns: columns, backend: .portable).bitwiseEqual(part))
        }
    }
    let big = makeWeight(kind, rows: 256, cols: 128, seed: 5)
    let view = big.rows(128..<192)  // FP8: starts on a 128-row scale block, as real W_UK heads do
    let x = randomMatrix(2, 64, seed: 6)
    #expect(Ops.linearTransposed(x, view).bitwiseEqual(Ops.linearTransposed(x, view, backend: .portable)))
}

@Test func linearTransposedPathsAgreeBitwise() {
    // BF16-representable values stored as F32 (register-blocked path) and as BF16 (row-dequant path): same bits.
    var rng = SeededRandom(8)
    let values = rng.floats(30 * 150).map(roundToBF16)
    let asF32 = Weight.f32(rows: 30, cols: 150, values), asBF16 = Weight.bf16(rows: 30, cols: 150, values)
    let x = randomMatrix(6, 30, seed: 9)
    #expect(Ops.linearTransposed(x, asF32).bitwiseEqual(Ops.linearTransposed(x, asBF16)))
    // Trailing rows with zero weight in x (masked probabilities) do not change the result.
    var padded = Matrix(rows: 6, cols: 40)
    for t in 0..<6 { for i in 0..<30 { padded[t, i] = x[t, i] } }
    let more = Weight.f32(rows: 40, cols: 150, values + rng.floats(10 * 150))
    #expect(Ops.linearTransposed(padded, more).bitwiseEqual(Ops.linearTransposed(x, asF32)))
}

@Test func rmsNormMatchesReference() {
    let x = randomMatrix(3, 70, seed: 11, scale: 3)
    var rng = SeededRandom(12)
    let w = rng.floats(70)
    for eps: Float in [1e-6, 1e-5] {
        #expect(relErr(Ops.rmsNorm(x, weight: w, eps: eps), Reference.rmsNorm(x, weight: w, eps: eps)) < 1e-6)
    }
}

@Test func siluMulAndSoftmaxMatchReference() {
    let g = randomMatrix(4, 33, seed: 1, scale: 6), u = randomMatrix(4, 33, seed: 2)
    // The C kernel (masked partial last vector here) and its Swift twin: the same bits; both within a few ulp of
    // the plain reference (glibc's expf).
    #expect(Ops.siluMul(gate: g, up: u).bitwiseEqual(Ops.siluMulPortable(gate: g, up: u)))
    #expect(relErr(Ops.siluMul(gate: g, up: u), Reference.siluMul(gate: g, up: u)) < 1e-6)
    // Split over threads (several 16384-element granules, a partial last one): the same bits.
    let gl = randomMatrix(3, 13001, seed: 4, scale: 6), ul = randomMatrix(3, 13001, seed: 5)
    let portable = Ops.siluMulPortable(gate: gl, up: ul)
    for threads in [1, 2, 3] {
        #expect(Ops.siluMul(gate: gl, up: ul, pool: ComputePool(threads: threads)).bitwiseEqual(portable))
    }
    #expect(relErr(portable, Reference.siluMul(gate: gl, up: ul)) < 1e-6)
    // Extremes: exp overflows (large negative gate: silu -> -0 or a tiny negative), underflows, subnormal results.
    let edges: [Float] = [-200, -104, -103.9, -100, -89, -88.8, -87.5, -30, -1e-30, 0, 1e-30, 20, 87, 88.7, 89, 100, 104, 200]
    let ge = Matrix(rows: 1, cols: edges.count, data: edges), ue = Matrix(rows: 1, cols: edges.count, data: edges.map { _ in 1.5 })
    #expect(Ops.siluMul(gate: ge, up: ue).bitwiseEqual(Ops.siluMulPortable(gate: ge, up: ue)))
    #expect(Ops.siluMul(gate: ge, up: ue).maxAbsDiff(Reference.siluMul(gate: ge, up: ue)) <= 1e-4)
    #expect(Ops.siluMul(gate: Matrix(rows: 0, cols: 5), up: Matrix(rows: 0, cols: 5)).data.isEmpty)
    let s = randomMatrix(3, 29, seed: 3, scale: 20)
    #expect(relErr(Ops.softmax(s), Reference.softmax(s)) < 1e-6)
    // All -inf (fully masked) row gives zeros rather than NaN.
    var masked: [Float] = [-.infinity, -.infinity]
    masked.withUnsafeMutableBufferPointer { Ops.softmaxInPlace($0.baseAddress!, 2) }
    #expect(masked == [0, 0])
}

@Test func topKBreaksTiesByLowestIndex() {
    let x: [Float] = [0.5, 0.9, 0.9, 0.1, 0.9, 0.7]
    #expect(Ops.topK(x, 3) == [1, 2, 4])
    #expect(Ops.topK(x, 4) == [1, 2, 4, 5])
    #expect(Ops.argmax(x) == 1)
    var rng = SeededRandom(9)
    for _ in 0..<20 {
        let v = (0..<40).map { _ in Float(rng.next() % 7) }
        #expect(Ops.topK(v, 8) == Reference.topK(v, 8))
    }
}

@Test func ropeRotationMatchesComplexReference() {
    let rope = RotaryEmbedding.yarn(dim: 16, base: 10000, factor: 40, originalMaxPositions: 4096,
                                    betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDim: 1)
    var rng = SeededRandom(21)
    let x = rng.floats(16)
    for pos in [0, 1, 17, 1000] {
        let (c, s) = rope.cosSin(position: pos)
        var y = x
        y.withUnsafeMutableBufferPointer { yp in
            RotaryEmbedding.rotateInterleaved(yp.baseAddress!, cos: c, sin: s, half: 8)
        }
        #expect(y == Reference.rotateInterleaved(x, cos: c, sin: s))
    }
    // Position 0 is the identity.
    let (c0, s0) = rope.cosSin(position: 0)
    #expect(Reference.rotateInterleaved(x, cos: c0, sin: s0) == x)
}

@Test func yarnMatchesSpecTable() {
    // DeepSeek-V3: low 10, high 23, attention factor 1, softmax scale 0.135233779.
    let ds = RotaryEmbedding.yarn(dim: 64, base: 10000, factor: 40, originalMaxPositions: 4096,
                                  betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDim: 1)
    #expect(ds.correctionRange?.low == 10 && ds.correctionRange?.high == 23)
    #expect(ds.attentionFactor == 1)
    let ref = Reference.yarnInvFreq(dim: 64, base: 10000, factor: 40, originalMaxPositions: 4096, betaFast: 32, betaSlow: 1)
    for i in 0..<32 { #expect(abs(Double(ds.invFreq[i]) - ref[i]) <= 2e-6 * ref[i], "ω_\(i)") }
    // i <= low: pure extrapolation; i >= high: θ/f.
    #expect(abs(Double(ds.invFreq[5]) - pow(10000, -10.0 / 64)) < 1e-6)
    #expect(abs(Double(ds.invFreq[30]) - pow(10000, -60.0 / 64) / 40) < 1e-9)
    let scale = mlaSoftmaxScale(qkHeadDim: 192, ropeKind: "yarn", factor: 40, mscaleAllDim: 1)
    #expect(abs(scale - 0.135233779) < 1e-7)
    // Kimi K2 (base 50000, f 32, βf = βs = 1): low 19, high 20.
    let k2 = RotaryEmbedding.yarn(dim: 64, base: 50000, factor: 32, originalMaxPositions: 4096,
                                  betaFast: 1, betaSlow: 1, mscale: 1, mscaleAllDim: 1)
    #expect(k2.correctionRange?.low == 19 && k2.correctionRange?.high == 20)
    #expect(abs(mlaSoftmaxScale(qkHeadDim: 192, ropeKind: "yarn", factor: 32, mscaleAllDim: 1) - 0.130860800) < 1e-7)
    #expect(abs(mlaSoftmaxScale(qkHeadDim: 192, ropeKind: "yarn", factor: 64, mscaleAllDim: 1) - 0.144679626) < 1e-7)
    // Default RoPE: plain 192^-0.5.
    #expect(mlaSoftmaxScale(qkHeadDim: 192, ropeKind: "default", factor: nil, mscaleAllDim: nil) == Float(pow(192.0, -0.5)))
    // Attention factor with mscale != mscaleAllDim.
    let af = RotaryEmbedding.yarn(dim: 64, base: 10000, factor: 4, originalMaxPositions: 4096, mscale: 0.707, mscaleAllDim: 1)
    let expected = (0.1 * 0.707 * log(4.0) + 1) / (0.1 * log(4.0) + 1)
    #expect(abs(Double(af.attentionFactor) - expected) < 1e-6)
}

@Test func fp8DecodesEveryCodeWithAnyScale() {
    // All 256 codes (NaN codes excluded) in one row, with ordinary, tiny, power-of-two and huge (>= 2^8) scales.
    for scale: Float in [1, 0.0123, 3e-7, 0x1p-20, 0x1p8, 1000] {
        let cols = 256
        let block = HeapBlock(byteCount: cols + 64 + 8)
        let codes = block.raw.bindMemory(to: UInt8.self, capacity: cols)
        for i in 0..<cols { codes[i] = UInt8(i) == 0x7F || UInt8(i) == 0xFF ? 0 : UInt8(i) }
        let scalesPtr = (block.raw + cols + 32).bindMemory(to: Float.self, capacity: 2)
        scalesPtr[0] = scale
        scalesPtr[1] = scale
        let w = Weight(rows: 1, cols: cols, storage: .fp8e4m3(UnsafePointer(codes), scales: UnsafePointer(scalesPtr)), owner: block)
        var x = Matrix(rows: cols, cols: cols)
        for i in 0..<cols { x[i, i] = 1 }
        let y = Ops.linear(x, w)
        for i in 0..<cols {
            #expect(y[i, 0] == w.element(0, i) && y[i, 0].sign == w.element(0, i).sign || (y[i, 0] == 0 && w.element(0, i) == 0),
                    "code \(i) scale \(scale): \(y[i, 0]) vs \(w.element(0, i))")
        }
    }
}

/// The one-token (decode) blocks decode every code in each of the four byte positions of a 32-bit word (the FP8
/// phases, two decoded per 16-bit shift): row 4c + p holds code c alone at column p, so an all-ones token reads it
/// alone; 1024 rows span eight 128-row scale blocks.
@Test func fp8DecodeBlocksDecodeEveryCodeInEveryPhase() {
    let rows = 1024, cols = 64
    for scale: Float in [1, 0.0123, 0x1p-20, 1000] {
        let block = HeapBlock(byteCount: rows * cols + 64 + 8 * 4)
        let codes = block.raw.bindMemory(to: UInt8.self, capacity: rows * cols)
        for i in 0..<(rows * cols) { codes[i] = 0 }
        for c in 0..<256 where c != 0x7F && c != 0xFF {
            for p in 0..<4 { codes[(4 * c + p) * cols + p] = UInt8(c) }
        }
        let scalesPtr = (block.raw + rows * cols + 64).bindMemory(to: Float.self, capacity: 8)
        for b in 0..<8 { scalesPtr[b] = scale * Float(b + 1) }
        let w = Weight(rows: rows, cols: cols, storage: .fp8e4m3(UnsafePointer(codes), scales: UnsafePointer(scalesPtr)), owner: block)
        let x = Matrix(rows: 1, cols: cols, data: [Float](repeating: 1, count: cols))
        for pool in [ComputePool.serial, ComputePool(threads: 2)] {
            let y = Ops.linear(x, w, pool: pool)
            for r in 0..<rows {
                let e = w.element(r, r % 4)
                #expect(y[0, r].bitPattern == e.bitPattern || (y[0, r] == 0 && e == 0), "row \(r) scale \(scale): \(y[0, r]) vs \(e)")
            }
        }
    }
}

@Test(arguments: [StorageKind.f32, .bf16, .fp8])
func nativeLinearMatchesSwiftBitwise(kind: StorageKind) {
    // The C kernels (AVX-512) must reproduce the Swift loops bit for bit: same per-output summation order.
    // Row counts not multiples of 4 / 8, FP8 block edges inside 8-row blocks, token counts across the 6-token
    // micro-block and the 48-token outer block. F32 (attention over the latent cache) also with a partial last
    // chunk (288 = MLA's kv_lora 256 + rope 32; fewer columns than one chunk), read masked by the C kernel.
    let partial = kind == .f32 ? [(37, 288), (20, 40), (19, 100), (16, 1)] : []
    for (rows, cols) in [(1, 64), (13, 128), (133, 256), (260, 192)] + partial {
        let w = makeWeight(kind, rows: rows, cols: cols, seed: UInt64(rows + cols))
        for tokens in [1, 2, 5, 6, 7, 13, 49] {
            let x = randomMatrix(tokens, cols, seed: UInt64(tokens))
            let native = Ops.linear(x, w, backend: .automatic)
            let portable = Ops.linear(x, w, backend: .portable)
            #expect(native.bitwiseEqual(portable), "\(kind) \(rows)x\(cols) T=\(tokens) (avx512: \(CPUFeatures.avx512))")
            #expect(Ops.linear(x, w, pool: ComputePool(threads: 2)).bitwiseEqual(portable))
        }
    }
}

@Test func bf16PrecisionMatchesReferenceAndIsInvariant() throws {
    try #require(CPUFeatures.avx512bf16, "no AVX-512 BF16 on this CPU: the bf16 precision mode is refused there")
    let pool1 = ComputePool(threads: 1, precision: .bf16), pool2 = ComputePool(threads: 2, precision: .bf16)
    for (rows, cols) in [(13, 128), (133, 256), (260, 192), (8, 64)] {
        let w = makeWeight(.bf16, rows: rows, cols: cols, seed: UInt64(rows * 3 + cols))
        let x = randomMatrix(49, cols, seed: 17)
        let all = Ops.linear(x, w, pool: pool1)
        #expect(relErr(all, Reference.linearBF16Activations(x, w)) < 2e-6, "\(rows)x\(cols)")
        // Differs from the FP32-activation path (the mode really rounds).
        #expect(!all.bitwiseEqual(Ops.linear(x, w)))
        #expect(Ops.linear(x, w, pool: pool2).bitwiseEqual(all), "threads \(rows)x\(cols)")
        for t in [0, 5, 23, 24, 48] {
            #expect(Ops.linear(x.rows(t..<(t + 1)), w, pool: pool1).bitwiseEqual(all.rows(t..<(t + 1))), "token \(t) alone")
        }
        #expect(Ops.linear(x.rows(3..<10), w, pool: pool1).bitwiseEqual(all.rows(3..<10)))
    }
}

@Test func nativeFP8LargeScalesMatchSwiftBitwise() {
    // Blocks with scales >= 2^8 mixed with small-scale blocks in one 8-row block (and across 128-column blocks).
    var rng = SeededRandom(77)
    let rows = 136, cols = 256
    let values = (0..<(rows * cols)).map { i in rng.float(0.5) * ((i / cols) >= 128 || (i % cols) >= 128 ? 4e6 : 1) }
    let w = Weight.fp8(rows: rows, cols: cols, values)
    for tokens in [1, 3, 9] {
        let x = randomMatrix(tokens, cols, seed: 5)
        #expect(Ops.linear(x, w).bitwiseEqual(Ops.linear(x, w, backend: .portable)), "T=\(tokens)")
    }
}

@Test func readBandwidthProbeGivesAFiniteRate() {
    for threads in [1, 2] {
        let gbs = MachineProbe.readBandwidth(bytes: 8 << 20, threads: threads)
        #expect(gbs.isFinite && gbs > 0.1, "\(threads) threads: \(gbs) GB/s")
    }
}

/// `FastExp` (the polynomial behind siluMul) against glibc's expf over the whole finite range, subnormal results
/// included: within 2 ulp of the result (or of the smallest normal, for subnormal results).
@Test func fastExpIsWithinTwoUlpOfFoundation() {
    var worst: Float = 0, at: Float = 0
    var x: Float = -103.9
    while x < 88.7 {
        let fast = FastExp.exp(x), slow = Foundation.exp(x)
        let ulps = abs(fast - slow) / max(slow, Float.leastNormalMagnitude).ulp
        if ulps > worst { worst = ulps; at = x }
        x += 0.000731
    }
    #expect(worst <= 2, "FastExp is \(worst) ulp off at x = \(at)")
    #expect(FastExp.exp(0) == 1 && FastExp.exp(-200) == 0 && FastExp.exp(200) == .infinity)
}
