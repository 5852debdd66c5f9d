// Interleaved weight layout (`Weight.interleaved`): same elements as the row-major source, and every product over it
// (C kernels, portable loops, batched, bf16 precision, threads, row views) gives the bits of the row-major weight.
import Foundation
import Testing
import Kernels
import Tensors

@Test(arguments: [StorageKind.bf16, .fp8])
func interleavedWeightKeepsEveryElement(kind: StorageKind) {
    // 16-row groups with a row-major tail of 7 rows; 8-row groups (4 KB BF16 rows); FP8 scale blocks crossed.
    for (rows, cols, group) in [(39, 128, 16), (136, 2048, 8), (260, 192, 16)] {
        let w = makeWeight(kind, rows: rows, cols: cols, seed: UInt64(rows * cols))
        let v = w.interleaved(group: group)
        #expect(v.group == group && v.packedRows == rows / group * group && v.dtype == w.dtype)
        for r in 0..<rows {
            for c in 0..<cols { #expect(v.element(r, c).bitPattern == w.element(r, c).bitPattern, "\(kind) [\(r), \(c)]") }
            #expect(Ops.dequantizeRow(v, r) == Ops.dequantizeRow(w, r))
        }
        // Group-aligned row views keep the layout and the elements.
        if kind == .bf16 {
            let view = v.rows(group..<rows), plain = w.rows(group..<rows)
            for r in [0, view.rows - 1] { #expect(Ops.dequantizeRow(view, r) == Ops.dequantizeRow(plain, r)) }
        }
    }
    // Not applicable: F32, partial chunks, fewer rows than a group -> the same weight back.
    #expect(makeWeight(.f32, rows: 32, cols: 64, seed: 1).interleaved(group: 16).group == 0)
    #expect(makeWeight(kind, rows: 32, cols: 100, seed: 1).interleaved(group: 16).group == 0)
    #expect(makeWeight(kind, rows: 12, cols: 64, seed: 1).interleaved(group: 16).group == 0)
}

@Test func interleaveCopiesAgree() {
    // The C copy (`interleavedForDecode`) and the reference Swift copy produce the same bytes, also when the copy
    // is split over threads (~1 MB of groups per part: the larger shapes give 2-3 parts, the last with a row tail).
    for (rows, cols) in [(40, 512), (100, 2048), (525, 2048), (1100, 512), (1630, 2048)] {
        let w = makeWeight(.bf16, rows: rows, cols: cols, seed: 9)
        let g = 8  // `mr_interleave_group`: BF16 decode blocks read 8-row groups, two groups at a time
        let swift = w.interleaved(group: g)
        for threads in [1, 2, 3] {
            let native = w.interleavedForDecode(pool: ComputePool(threads: threads))
            if CPUFeatures.avx512 { #expect(native.group == g) }
            #expect((0..<rows).allSatisfy { Ops.dequantizeRow(swift, $0) == Ops.dequantizeRow(native, $0) })
        }
    }
}

@Test(arguments: [StorageKind.bf16, .fp8])
func interleavedProductsMatchRowMajorBitwise(kind: StorageKind) {
    // Decode (1 token: whole-group blocks), small batches (4-row blocks inside groups), prefill across the 24-token
    // block and the L2 row tiles; ranges that start inside a group (3 threads over 39 rows) and the row-major tail.
    // 8-row groups of BF16 decode run two at a time (the range's halves as two runs): even and odd group counts.
    for (rows, cols, group) in [(39, 128, 16), (136, 2048, 8), (260, 1024, 16), (48, 64, 16), (268, 512, 8), (24, 256, 8)] {
        let w = makeWeight(kind, rows: rows, cols: cols, seed: UInt64(rows + cols))
        let v = w.interleaved(group: group)
        for tokens in [1, 2, 5, 30] {
            let x = randomMatrix(tokens, cols, seed: UInt64(tokens * 7 + rows))
            let expected = Ops.linear(x, w)
            #expect(Ops.linear(x, v).bitwiseEqual(expected), "\(kind) \(rows)x\(cols) g\(group) T=\(tokens)")
            #expect(Ops.linear(x, v, backend: .portable).bitwiseEqual(expected), "portable \(kind) \(rows)x\(cols) T=\(tokens)")
            for threads in [2, 3] {
                #expect(Ops.linear(x, v, pool: ComputePool(threads: threads)).bitwiseEqual(expected), "\(threads) threads")
            }
            if kind == .bf16 && CPUFeatures.avx512bf16 {
                let pool = ComputePool(threads: 1, precision: .bf16)
                #expect(Ops.linear(x, v, pool: pool).bitwiseEqual(Ops.linear(x, w, pool: pool)), "bf16 precision T=\(tokens)")
            }
        }
        // A group-aligned view (as a row split would make) and the transposed product's fallback path.
        let x = randomMatrix(1, cols, seed: 3)
        if kind == .bf16 { #expect(Ops.linear(x, v.rows(group..<rows)).bitwiseEqual(Ops.linear(x, w.rows(group..<rows)))) }
        let xt = randomMatrix(2, rows, seed: 4)
        #expect(Ops.linearTransposed(xt, v).bitwiseEqual(Ops.linearTransposed(xt, w)))
    }
}

@Test func interleavedBatchedJobsMatchRowMajorBitwise() {
    // linearBatch splits interleaved jobs in whole groups across threads: same bits as row-major jobs.
    let shapes = [(512, 2048), (2048, 512), (40, 256)]
    let plain = shapes.enumerated().map { i, s in makeWeight(.bf16, rows: s.0, cols: s.1, seed: UInt64(i + 50)) }
    let packed = plain.map { $0.interleavedForDecode() }
    let inputs = shapes.enumerated().map { i, s in randomMatrix(1, s.1, seed: UInt64(i + 60)) }
    func run(_ weights: [Weight], threads: Int) -> [Float] {
        let flatIn = inputs.flatMap(\.data)
        var out = [Float](repeating: .nan, count: weights.reduce(0) { $0 + $1.rows })
        flatIn.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                var xo = 0, oo = 0, jobs: [LinearJob] = []
                for (x, w) in zip(inputs, weights) {
                    jobs.append(LinearJob(x: xp.baseAddress! + xo, tokens: 1, weight: w, out: op.baseAddress! + oo))
                    xo += x.cols
                    oo += w.rows
                }
                Ops.linearBatch(jobs, pool: ComputePool(threads: threads))
            }
        }
        return out
    }
    let expected = run(plain, threads: 1)
    for threads in [1, 2, 3] {
        #expect(run(packed, threads: threads).map(\.bitPattern) == expected.map(\.bitPattern), "\(threads) threads")
    }
}
