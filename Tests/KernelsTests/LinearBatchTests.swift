// linearBatch (several products in one parallel region) and the L2-tiled prefill loop give the same bits as
// separate `Ops.linear` calls / the portable Swift loops.
import Foundation
import Testing
@testable import Kernels
import Tensors

@Test(arguments: StorageKind.allCases)
func linearBatchEqualsSeparateProductsBitwise(kind: StorageKind) {
    // Native shapes (cols % 64 == 0), a fallback shape (cols 100), decode and prefill token counts.
    let shapes = [(36, 128, 1), (130, 256, 3), (9, 64, 30), (20, 100, 2), (4, 192, 1), (64, 128, 8)]
    let weights = shapes.enumerated().map { i, s in makeWeight(kind, rows: s.0, cols: s.1, seed: UInt64(900 + i)) }
    let inputs = shapes.enumerated().map { i, s in randomMatrix(s.2, s.1, seed: UInt64(1900 + i)) }
    let precisions: [MatmulPrecision] = kind == .bf16 ? [.fp32, .bf16] : [.fp32]
    for precision in precisions {
        let expected = zip(inputs, weights).map { Ops.linear($0, $1, pool: ComputePool(threads: 1, precision: precision)) }
        for threads in [1, 2, 3] {
            let pool = ComputePool(threads: threads, precision: precision)
            var outs = zip(inputs, weights).map { Matrix(rows: $0.rows, cols: $1.rows) }
            // Pointers stay valid for the call: every buffer is pinned by nested closures over a flat copy.
            let flatIn = inputs.flatMap(\.data)
            var flatOut = [Float](repeating: .nan, count: outs.reduce(0) { $0 + $1.data.count })
            flatIn.withUnsafeBufferPointer { xp in
                flatOut.withUnsafeMutableBufferPointer { op in
                    var xo = 0, oo = 0
                    var jobs: [LinearJob] = []
                    for (x, w) in zip(inputs, weights) {
                        jobs.append(LinearJob(x: xp.baseAddress! + xo, tokens: x.rows, weight: w, out: op.baseAddress! + oo))
                        xo += x.data.count
                        oo += x.rows * w.rows
                    }
                    Ops.linearBatch(jobs, pool: pool)
                }
            }
            var oo = 0
            for i in outs.indices {
                outs[i].data = Array(flatOut[oo..<(oo + outs[i].data.count)])
                oo += outs[i].data.count
                #expect(outs[i].bitwiseEqual(expected[i]), "\(kind) \(precision) threads \(threads) job \(i) \(shapes[i])")
            }
        }
    }
}

@Test(arguments: [StorageKind.f32, .bf16, .fp8])
func tiledPrefillProductMatchesPortableBitwise(kind: StorageKind) {
    // More tokens than one token block (24) and more rows than one L2 tile: the C kernel walks row tiles.
    for (rows, cols, tokens) in [(100, 1024, 40), (260, 1024, 50), (400, 512, 25)] {
        let w = makeWeight(kind, rows: rows, cols: cols, seed: UInt64(rows + cols))
        let x = randomMatrix(tokens, cols, seed: UInt64(tokens))
        let native = Ops.linear(x, w, pool: ComputePool(threads: 2))
        let portable = Ops.linear(x, w, backend: .portable)
        #expect(native.bitwiseEqual(portable), "\(kind) \(rows)x\(cols) T=\(tokens): max diff \(native.maxAbsDiff(portable))")
    }
}

@Test(arguments: StorageKind.allCases)
func productsOfOneInputEqualSeparateProductsBitwise(kind: StorageKind) {
    // q_a + kv_a and gate + up of one input: one shared region up to `sharedRegionRows` rows, separate products above.
    let weights = [makeWeight(kind, rows: 36, cols: 128, seed: 31), makeWeight(kind, rows: 20, cols: 128, seed: 32),
                   makeWeight(kind, rows: 4, cols: 128, seed: 33)]
    // Below `sharedRegionRows` the products also share one prepared (packed) copy of the input.
    let precisions: [MatmulPrecision] = kind == .bf16 ? [.fp32, .bf16] : [.fp32]
    for precision in precisions {
        for tokens in [1, 3, Ops.sharedRegionRows, Ops.sharedRegionRows + 5] {
            let x = randomMatrix(tokens, 128, seed: UInt64(40 + tokens))
            let expected = weights.map { Ops.linear(x, $0, pool: ComputePool(threads: 1, precision: precision)) }
            for threads in [1, 2, 3] {
                let outs = Ops.linear(x, weights, pool: ComputePool(threads: threads, precision: precision))
                #expect(outs.count == weights.count)
                for (o, e) in zip(outs, expected) {
                    #expect(o.rows == tokens && o.cols == e.cols && o.bitwiseEqual(e), "\(kind) \(precision) T=\(tokens) threads \(threads)")
                }
            }
        }
    }
}

@Test(arguments: StorageKind.allCases)
func transposedBatchEqualsSeparateProductsBitwise(kind: StorageKind) {
    // Absorbed attention's q_nope · W_UK of every head: one job per head, head-major operands.
    let heads = 5, k = 64, n = 256, tokens = 2
    let ws = (0..<heads).map { makeWeight(kind, rows: k, cols: n, seed: UInt64(70 + $0)) }
    let xs = (0..<heads).map { randomMatrix(tokens, k, seed: UInt64(80 + $0)) }
    let expected = zip(xs, ws).map { Ops.linearTransposed($0, $1) }
    for threads in [1, 2, 3] {
        let flatIn = xs.flatMap(\.data)
        var flatOut = [Float](repeating: .nan, count: heads * tokens * n)
        flatIn.withUnsafeBufferPointer { xp in
            flatOut.withUnsafeMutableBufferPointer { op in
                Ops.linearTransposedBatch((0..<heads).map { h in
                    LinearJob(x: xp.baseAddress! + h * tokens * k, tokens: tokens, weight: ws[h], out: op.baseAddress! + h * tokens * n)
                }, pool: ComputePool(threads: threads))
            }
        }
        for h in 0..<heads {
            let got = Matrix(rows: tokens, cols: n, data: Array(flatOut[(h * tokens * n)..<((h + 1) * tokens * n)]))
            #expect(got.bitwiseEqual(expected[h]), "\(kind) head \(h) threads \(threads)")
        }
    }
}

/// FP8 blocks lying in one 128-row scale block share one broadcast scale; a block straddling an edge (a thread's rows
/// may start at any multiple of 4) takes each row's own: both the same bits as the Swift loops, decode and batched.
@Test func fp8BlocksAcrossScaleBlockEdgesMatchSwiftBitwise() {
    guard CPUFeatures.avx512 else { return }  // the C kernels run only with AVX-512
    let w = makeWeight(.fp8, rows: 264, cols: 256, seed: 77)
    for tokens in [1, 3] {
        let x = randomMatrix(tokens, 256, seed: 78)
        let portable = Ops.linear(x, w, backend: .portable)
        for start in [4, 12, 124, 132] {
            var out = [Float](repeating: 0, count: tokens * w.rows)
            x.data.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { op in
                    let job = FusedJob(LinearJob(x: xp.baseAddress!, tokens: tokens, weight: w, out: op.baseAddress!), precision: .fp32)!
                    defer { job.release() }
                    job.run(rows: 0..<start)
                    job.run(rows: start..<w.rows)
                }
            }
            let same = Matrix(rows: tokens, cols: w.rows, data: out).bitwiseEqual(portable)
            #expect(same, "T=\(tokens) split at \(start)")
        }
    }
}

@Test(arguments: StorageKind.allCases)
func preparedProductInPiecesEqualsLinearBitwise(kind: StorageKind) {
    // One product packed once, its rows computed in unit-aligned pieces in any order (as the decode attention region
    // does per head): the same bits as `Ops.linear`, row-major and in the interleaved decode layout.
    let x = randomMatrix(1, 192, seed: 77)
    let plain = makeWeight(kind, rows: 96, cols: 192, seed: 78)
    for w in [plain, plain.interleavedForDecode()] {
        let expected = Ops.linear(x, w)
        var out = [Float](repeating: .nan, count: w.rows)
        let ran = x.data.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op -> Bool in
                guard let p = PreparedLinear(LinearJob(x: xp.baseAddress!, tokens: 1, weight: w, out: op.baseAddress!),
                                             precision: .fp32) else { return false }
                defer { p.release() }
                #expect(w.rows % p.unit == 0 && (w.group == 0 || p.unit == w.group))
                let pieces = stride(from: 0, to: w.rows, by: 2 * p.unit).map { $0..<min(w.rows, $0 + 2 * p.unit) }
                for r in pieces.reversed() { p.run(rows: r) }
                return true
            }
        }
        // No C kernel: only where the CPU lacks AVX-512 or for F16 weights; the caller then uses `Ops.linear`.
        #expect(ran == (CPUFeatures.avx512 && kind != .f16), "\(kind) group \(w.group)")
        if ran { #expect(Matrix(rows: 1, cols: w.rows, data: out).bitwiseEqual(expected), "\(kind) group \(w.group)") }
    }
}

@Test(arguments: [StorageKind.f32, .bf16, .fp8])
func linearBatchAppendingEqualsSeparateProductsBitwise(kind: StorageKind) {
    // Lead products start while the caller's prologue writes more (a fallback shape among them, sometimes none);
    // every output equals its own `Ops.linear`.
    let shapes = [(36, 128, 1), (64, 128, 1), (20, 100, 2), (130, 256, 3), (64, 128, 8)]
    let weights = shapes.enumerated().map { i, s in makeWeight(kind, rows: s.0, cols: s.1, seed: UInt64(700 + i)) }
    let inputs = shapes.enumerated().map { i, s in randomMatrix(s.2, s.1, seed: UInt64(1700 + i)) }
    let expected = zip(inputs, weights).map { Ops.linear($0, $1, pool: ComputePool(threads: 1)) }
    for threads in [1, 2, 3] {
        let pool = ComputePool(threads: threads)
        for leadCount in [0, 2, shapes.count] {
            let flatIn = inputs.flatMap(\.data)
            var flatOut = [Float](repeating: .nan, count: zip(inputs, weights).reduce(0) { $0 + $1.0.rows * $1.1.rows })
            flatIn.withUnsafeBufferPointer { xp in
                flatOut.withUnsafeMutableBufferPointer { op in
                    var xo = 0, oo = 0
                    let jobs = zip(inputs, weights).map { x, w in
                        defer { xo += x.data.count; oo += x.rows * w.rows }
                        return LinearJob(x: xp.baseAddress! + xo, tokens: x.rows, weight: w, out: op.baseAddress! + oo)
                    }
                    jobs[0..<leadCount].withUnsafeBufferPointer { lead in
                        Ops.linearBatch(lead, appending: shapes.count, pool: pool) { more in
                            for (k, j) in jobs[leadCount...].enumerated() { (more.baseAddress! + k).initialize(to: j) }
                            return shapes.count - leadCount
                        }
                    }
                }
            }
            var oo = 0
            for (i, e) in expected.enumerated() {
                let got = Matrix(rows: e.rows, cols: e.cols, data: Array(flatOut[oo..<(oo + e.data.count)]))
                oo += e.data.count
                #expect(got.bitwiseEqual(e), "\(kind) threads \(threads) lead \(leadCount) job \(i) \(shapes[i])")
            }
        }
    }
}
