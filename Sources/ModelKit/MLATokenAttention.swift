// Absorbed MLA attention of one decode token as one parallel region over heads (`attendHeads`): per head q_nope · W_UK,
// scores over the latent cache, softmax, P · c_kv and W_UV; for a lone decode token its q_b rows and RoPE join the
// region too (`attendTokenFused`). The products and order of the multi-token form, so the same bits (the
// decode-vs-prefill, batch and thread invariance tests compare them).
//
// Dimensions: H heads, qk = dn + dr query width per head, kvr latent rank, dv value width, len cached tokens
// (this one included), width = kvr + dr (one cache row).
import Foundation
import Kernels
import Tensors

extension MLAAttention {
    /// `attention`'s work after q_a / kv_a for a batch of one decode token in the absorbed form: appends `cacheRows`
    /// to the segment's cache and returns o `[1, H*dv]` (before o_proj). Nil, with nothing done, for every other
    /// case (several tokens or segments, the naive form, no C kernel for q_b): `attention` then runs its general path.
    /// Why one region: as separate regions q_b, W_UK and W_UV each paid a start and a join, and the scores, softmax
    /// and P · c_kv between them ran on one core while the other idled; the heads are independent end to end.
    func attendTokenFused(_ w: AttentionWeights, layer: Int, _ qIn: Matrix, cacheRows: [Float], segments: [SequenceSegment],
                          tables: RopeTables, mode forced: AttentionMode?) throws -> Matrix? {
        guard qIn.rows == 1, segments.count == 1, segments[0].count == 1, (forced ?? decodeMode) == .absorbed else { return nil }
        let seg = segments[0]
        let h = heads, qk = qkDim, dn = nopeDim, width = latentDim + ropeDim
        // q_b's input (q LoRA: the normed q_a row), or the queries themselves (no q LoRA: q_proj ran with kv_a).
        let qa = w.qALayernorm.map { Ops.rmsNorm(qIn, weight: $0, eps: 1e-6) } ?? qIn
        let q = UnsafeMutablePointer<Float>.allocate(capacity: h * qk)
        defer { q.deallocate() }
        return try qa.data.withUnsafeBufferPointer { xp -> Matrix? in
            var qB: PreparedLinear? = nil
            if let qBProj = w.qBProj {
                // Heads are whole row units of q_b's kernel (its interleaved groups), or the general path runs.
                guard let p = PreparedLinear(LinearJob(x: xp.baseAddress!, tokens: 1, weight: qBProj, out: q), precision: pool.precision)
                else { return nil }
                guard qk % p.unit == 0 else { p.release(); return nil }
                qB = p
            } else {
                q.initialize(from: xp.baseAddress!, count: h * qk)
            }
            defer { qB?.release() }
            try checkCache(seg, layer: layer)
            seg.cache.append(layer: layer, rows: cacheRows)
            return seg.cache.withRows(layer: layer) { cache in
                tables.cos.withUnsafeBufferPointer { cs in
                    tables.sin.withUnsafeBufferPointer { sn in
                        let keys = Weight(rows: cache.count / width, cols: width, storage: .f32(cache.baseAddress!), owner: nil)
                        let cos = cs.baseAddress!, sin = sn.baseAddress!
                        return attendHeads(w, q: q, keys: keys, visible: min(keys.rows, seg.startPosition + 1)) { range in
                            qB?.run(rows: (range.lowerBound * qk)..<(range.upperBound * qk))
                            for hh in range {
                                RotaryEmbedding.rotateInterleaved(q + hh * qk + dn, cos: cos, sin: sin, half: tables.half)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Absorbed attention of one query token over `keys` (its segment's cache rows `[len, kvr + dr]`, this token's
    /// included) as one parallel region over heads; returns o `[1, H*dv]`. Each thread takes a claim of heads: first
    /// `prepare(heads)` readies those heads' rows of `q` `[H, qk]` (RoPE applied: a lone decode token's q_b rows and
    /// RoPE; nothing where the caller has them), then per head q_nope · W_UK, scores, softmax over the first `visible`
    /// keys, P · c_kv, W_UV: the products and order of the separate-region form, so the same bits.
    func attendHeads(_ w: AttentionWeights, q: UnsafePointer<Float>, keys: Weight, visible: Int,
                     prepare: (Range<Int>) -> Void = { _ in }) -> Matrix {
        let h = heads, qk = qkDim, dn = nopeDim, dr = ropeDim, kvr = latentDim, dv = vDim, width = kvr + dr, len = keys.rows
        // Head-major scratch: [q_abs | q_pe] rows (width), score rows (len), o_lat rows (kvr).
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: h * (width + len + kvr))
        defer { scratch.deallocate() }
        let qcat = scratch, scores = qcat + h * width, oLat = scores + h * len
        // Claims of at least a quarter of a thread's heads: the score and P · c_kv products of a claim's heads run as
        // one multi-row product (one pass over the cache for up to four heads).
        let minClaim = max(1, h / (4 * pool.threads))
        return Matrix(rows: 1, cols: h * dv) { out in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: pool.threads + 1) { cuts in
                for p in 0...pool.threads { cuts[p] = h * p / pool.threads }
                pool.parallelShares(cuts: UnsafeBufferPointer(cuts), minClaim: minClaim) { range in
                    let a = range.lowerBound, n = range.count
                    prepare(range)
                    for hh in range {
                        let qh = q + hh * qk, row = qcat + hh * width
                        Ops.linearTransposed(x: qh, tokens: 1, weight: w.wUK[hh], out: row)
                        (row + kvr).update(from: qh + dn, count: dr)
                    }
                    Ops.linear(x: qcat + a * width, tokens: n, weight: keys, out: scores + a * len)
                    for hh in range { softmaxRow(scores + hh * len, count: len, visible: visible) }
                    Ops.linearTransposed(x: scores + a * len, tokens: n, weight: keys, out: oLat + a * kvr, columns: kvr)
                    // `pool` inside its own region runs inline on this thread, with the run's matmul precision.
                    for hh in range {
                        Ops.linear(x: oLat + hh * kvr, tokens: 1, weight: w.wUV[hh], out: out + hh * dv, pool: pool)
                    }
                }
            }
        }
    }
}
