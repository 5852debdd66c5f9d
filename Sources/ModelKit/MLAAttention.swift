// MLAAttention: the multi-head latent attention block (DeepSeek-V2/V3, Kimi K2): projections, RoPE, latent cache
// append, and the naive and absorbed forms (same math, different rounding points; both read the same latent cache).
import Foundation
import Kernels
import Tensors

/// MLA weights of one layer, with per-head views of kv_b_proj for the absorbed form.
public struct AttentionWeights: Sendable {
    public let qAProj: Weight?
    public let qALayernorm: [Float]?
    public let qBProj: Weight?
    public let qProj: Weight?
    public let kvAProjWithMqa: Weight
    public let kvALayernorm: [Float]
    public let kvBProj: Weight
    public let oProj: Weight
    /// W_UK[h]: rows h·(dn+dv) ..< h·(dn+dv)+dn of kv_b_proj, `[dn, kv_lora_rank]`.
    public let wUK: [Weight]
    /// W_UV[h]: rows h·(dn+dv)+dn ..< (h+1)·(dn+dv), `[dv, kv_lora_rank]` (in the decode layout when the model's
    /// weights are interleaved: only `Ops.linear` reads it).
    public let wUV: [Weight]

    public init(qAProj: Weight?, qALayernorm: [Float]?, qBProj: Weight?, qProj: Weight?, kvAProjWithMqa: Weight,
                kvALayernorm: [Float], kvBProj: Weight, oProj: Weight, wUK: [Weight], wUV: [Weight]) {
        self.qAProj = qAProj
        self.qALayernorm = qALayernorm
        self.qBProj = qBProj
        self.qProj = qProj
        self.kvAProjWithMqa = kvAProjWithMqa
        self.kvALayernorm = kvALayernorm
        self.kvBProj = kvBProj
        self.oProj = oProj
        self.wUK = wUK
        self.wUV = wUV
    }
}

/// cos / sin of every position of a forward call, `half` values per position (computed once per call).
public struct RopeTables {
    let cos: [Float]
    let sin: [Float]
    let half: Int

    public init(cos: [Float], sin: [Float], half: Int) {
        self.cos = cos
        self.sin = sin
        self.half = half
    }
}

/// One MLA mixer's dimensions and execution settings; each layer's weights come with the call.
public struct MLAAttention {
    public let heads: Int, nopeDim: Int, ropeDim: Int, vDim: Int, latentDim: Int
    public let softmaxScale: Float
    public let pool: ComputePool
    public let prefillMode: AttentionMode
    public let decodeMode: AttentionMode
    /// The lane's tensor-parallel group: `heads` are this rank's heads (its share of q_b, kv_b and the attention), and
    /// o_proj's weight holds this rank's share of the hidden outputs.
    public let tp: any TensorParallelGroup
    var qkDim: Int { nopeDim + ropeDim }

    /// `heads`: the heads this rank computes (all of them when `tp` is one rank).
    public init(heads: Int, nopeDim: Int, ropeDim: Int, vDim: Int, latentDim: Int, softmaxScale: Float, pool: ComputePool,
                prefillMode: AttentionMode, decodeMode: AttentionMode, tp: any TensorParallelGroup = SingleRank()) {
        self.tp = tp
        self.heads = heads
        self.nopeDim = nopeDim
        self.ropeDim = ropeDim
        self.vDim = vDim
        self.latentDim = latentDim
        self.softmaxScale = softmaxScale
        self.pool = pool
        self.prefillMode = prefillMode
        self.decodeMode = decodeMode
    }

    // MARK: attention (MLA)


    /// Layer `layer`'s attention over `xn` `[T, D]` (rows: the segments' tokens in order); appends each segment's
    /// latent rows to its cache. `forced` picks one form for every segment.
    public func callAsFunction(_ w: AttentionWeights, layer: Int, _ xn: Matrix, segments: [SequenceSegment], tables: RopeTables,
                               mode forced: AttentionMode?) throws -> Matrix {
        let t = xn.rows, h = heads, qk = qkDim, dn = nopeDim, dr = ropeDim, kvr = latentDim, dv = vDim
        // The two products of xn (q_a or q, and kv_a) share one parallel region in decode.
        let firsts = Ops.linear(xn, [w.qAProj ?? w.qProj!, w.kvAProjWithMqa], pool: pool)
        let cacheRows = latentRows(firsts[1], w, tables: tables)
        if let o = try attendTokenFused(w, layer: layer, firsts[0], cacheRows: cacheRows, segments: segments, tables: tables, mode: forced) {
            return try outputProjection(o, w)
        }
        // Queries [T, H*qk].
        var q: Matrix
        if let qNorm = w.qALayernorm, let qB = w.qBProj {
            q = Ops.linear(Ops.rmsNorm(firsts[0], weight: qNorm, eps: 1e-6), qB, pool: pool)
        } else {
            q = firsts[0]
        }
        // RoPE on every head's q_pe.
        q.data.withUnsafeMutableBufferPointer { qp in
            tables.cos.withUnsafeBufferPointer { cs in
                tables.sin.withUnsafeBufferPointer { sn in
                    for r in 0..<t {
                        for hh in 0..<h {
                            RotaryEmbedding.rotateInterleaved(qp.baseAddress! + r * h * qk + hh * qk + dn,
                                                              cos: cs.baseAddress! + r * tables.half,
                                                              sin: sn.baseAddress! + r * tables.half, half: tables.half)
                        }
                    }
                }
            }
        }
        // Append to caches, then attend per segment.
        var o = Matrix(rows: t, cols: h * dv)
        var row0 = 0
        for seg in segments {
            try checkCache(seg, layer: layer)
            if seg.count == 0 { continue }
            seg.cache.append(layer: layer, rows: Array(cacheRows[(row0 * (kvr + dr))..<((row0 + seg.count) * (kvr + dr))]))
            let mode = forced ?? (seg.count == 1 ? decodeMode : prefillMode)
            let qSeg = q.rows(row0..<(row0 + seg.count))
            let oSeg = seg.cache.withRows(layer: layer) { cache in
                switch mode {
                case .naive: return attendNaive(w, qSeg, cache: cache, start: seg.startPosition)
                case .absorbed: return attendAbsorbed(w, qSeg, cache: cache, start: seg.startPosition)
                }
            }
            o.data.replaceSubrange((row0 * h * dv)..<((row0 + seg.count) * h * dv), with: oSeg.data)
            row0 += seg.count
        }
        return try outputProjection(o, w)
    }

    /// o_proj of the heads' outputs `[T, heads·dv]`. Tensor parallel: gather every head's output, project onto this
    /// rank's hidden outputs over the full input, gather the hidden outputs (each value whole on one rank).
    func outputProjection(_ o: Matrix, _ w: AttentionWeights) throws -> Matrix {
        if tp.size == 1 { return Ops.linear(o, w.oProj, pool: pool) }
        let all = try tp.gatherColumns(o, columns: w.oProj.cols, unit: vDim)
        // kv_a reads the whole hidden state on every rank: its input width is the hidden size.
        return try tp.gatherColumns(Ops.linear(all, w.oProj, pool: pool), columns: w.kvAProjWithMqa.cols)
    }

    /// The latent cache rows `[T, kvr + dr]` of kv_a's output `[T, kvr + dr]`: RMSNorm(c_kv) (eps 1e-6), RoPE(k_pe).
    func latentRows(_ kvFull: Matrix, _ w: AttentionWeights, tables: RopeTables) -> [Float] {
        let t = kvFull.rows, dr = ropeDim, kvr = latentDim
        var rows = [Float](repeating: 0, count: t * (kvr + dr))
        kvFull.data.withUnsafeBufferPointer { kp in
            w.kvALayernorm.withUnsafeBufferPointer { np in
                rows.withUnsafeMutableBufferPointer { cp in
                    tables.cos.withUnsafeBufferPointer { cs in
                        tables.sin.withUnsafeBufferPointer { sn in
                            for r in 0..<t {
                                let src = kp.baseAddress! + r * (kvr + dr), dst = cp.baseAddress! + r * (kvr + dr)
                                Ops.rmsNormRow(src, np.baseAddress!, 1e-6, dst, kvr)
                                for i in 0..<dr { dst[kvr + i] = src[kvr + i] }
                                RotaryEmbedding.rotateInterleaved(dst + kvr, cos: cs.baseAddress! + r * tables.half,
                                                                  sin: sn.baseAddress! + r * tables.half, half: tables.half)
                            }
                        }
                    }
                }
            }
        }
        return rows
    }

    /// Throws unless `seg`'s cache holds exactly the tokens before the segment, in this model's row layout.
    func checkCache(_ seg: SequenceSegment, layer: Int) throws {
        let have = seg.cache.count(layer: layer)
        guard have == seg.startPosition else {
            throw ModelError(.cacheMismatch, "segment starts at position \(seg.startPosition) but the cache holds \(have) tokens for layer \(layer)",
                             subject: "layer \(layer)")
        }
        guard seg.cache.rowWidth == latentDim + ropeDim else {
            throw ModelError(.cacheMismatch, "cache rows of \(seg.cache.rowWidth) floats, this layer's latent + rotary key take \(latentDim)+\(ropeDim)", subject: "cache")
        }
    }

    /// Queries per causal block of the naive prefill attention.
    static let causalBlock = 64

    /// Scales, masks and softmaxes score rows in place: row r belongs to query `r / rowsPerQuery`, which sits at
    /// position `start + query` and sees keys 0 ... start + query; masked entries become exact zeros.
    func softmaxRows(_ scores: inout Matrix, rowsPerQuery: Int, start: Int) {
        let len = scores.cols
        scores.data.withUnsafeMutableBufferPointer { sp in
            for r in 0..<scores.rows {
                softmaxRow(sp.baseAddress! + r * len, count: len, visible: min(len, start + r / rowsPerQuery + 1))
            }
        }
    }

    /// One row of `softmaxRows`: the first `visible` of `count` scores scaled and softmaxed, the rest exact zeros.
    @inline(__always)
    func softmaxRow(_ row: UnsafeMutablePointer<Float>, count len: Int, visible: Int) {
        let scale = softmaxScale
        for u in 0..<visible { row[u] *= scale }
        Ops.softmaxInPlace(row, visible)
        for u in visible..<len { row[u] = 0 }
    }

    /// Naive MLA for one segment: k_nope / v expanded from every cached latent with kv_b_proj, then per head
    /// S = Q_h K_hᵀ (`Ops.linear`, fixed-order dots over the 192 dims), causal softmax, O_h = P V_h
    /// (`Ops.linearTransposed`, ascending keys). `q` `[n, H*qk]` (RoPE applied), `cache` `[len, kvr+dr]` with the
    /// segment's own rows at the end.
    func attendNaive(_ w: AttentionWeights, _ q: Matrix, cache: UnsafeBufferPointer<Float>, start: Int) -> Matrix {
        let n = q.rows, h = heads, qk = qkDim, dn = nopeDim, dr = ropeDim, kvr = latentDim, dv = vDim
        let width = kvr + dr, len = cache.count / width, qkPad = ceilDiv(qk, linearChunk) * linearChunk
        var latent = Matrix(rows: len, cols: kvr)
        for u in 0..<len { for c in 0..<kvr { latent.data[u * kvr + c] = cache[u * width + c] } }
        let kv = Ops.linear(latent, w.kvBProj, pool: pool)  // [len, H*(dn+dv)]
        var out = Matrix(rows: n, cols: h * dv)
        out.data.withUnsafeMutableBufferPointer { op in
            let ob = UnsafeTransfer(op.baseAddress!)
            pool.parallelFor(count: h) { headRange in
                for hh in headRange {
                    // q and k rows zero-padded to whole 64-column chunks: `Ops.linear` pads a partial last chunk with
                    // zeros anyway, so the bits are the same, but whole chunks take the fast path.
                    var k = [Float](repeating: 0, count: len * qkPad), v = [Float](repeating: 0, count: len * dv)
                    for u in 0..<len {
                        let src = u * h * (dn + dv) + hh * (dn + dv)
                        for c in 0..<dn { k[u * qkPad + c] = kv.data[src + c] }
                        for c in 0..<dr { k[u * qkPad + dn + c] = cache[u * width + kvr + c] }
                        for c in 0..<dv { v[u * dv + c] = kv.data[src + dn + c] }
                    }
                    var qh = Matrix(rows: n, cols: qkPad)
                    for i in 0..<n { for c in 0..<qk { qh.data[i * qkPad + c] = q.data[i * h * qk + hh * qk + c] } }
                    let kw = Weight.f32(rows: len, cols: qkPad, k), vw = Weight.f32(rows: len, cols: dv, v)
                    // Causal blocks of queries: block [i0, i1) scores only keys 0 ..< start + i1 (the rest are masked
                    // zeros, which add nothing in P·V), about half the square for a whole prompt; same bits.
                    var i0 = 0
                    while i0 < n {
                        let i1 = min(n, i0 + Self.causalBlock), visible = min(len, start + i1)
                        var scores = Ops.linear(qh.rows(i0..<i1), kw.rows(0..<visible))  // [i1-i0, visible]
                        softmaxRows(&scores, rowsPerQuery: 1, start: start + i0)
                        let o = Ops.linearTransposed(scores, vw.rows(0..<visible))  // [i1-i0, dv]
                        for i in i0..<i1 { for c in 0..<dv { ob.value[i * h * dv + hh * dv + c] = o.data[(i - i0) * dv + c] } }
                        i0 = i1
                    }
                }
            }
        }
        return out
    }

    /// Absorbed MLA for one segment (MQA over the latent cache): per head q_abs = q_nope · W_UK; the rows
    /// [q_abs | q_pe] of all heads score against the cache rows [c_kv | k_pe] in one `Ops.linear`; causal softmax;
    /// o_lat = P · c_kv (`Ops.linearTransposed`, ascending keys); o = W_UV · o_lat per head.
    func attendAbsorbed(_ w: AttentionWeights, _ q: Matrix, cache: UnsafeBufferPointer<Float>, start: Int) -> Matrix {
        let n = q.rows, h = heads, qk = qkDim, dn = nopeDim, dr = ropeDim, kvr = latentDim, dv = vDim
        let width = kvr + dr, len = cache.count / width
        let keys = Weight(rows: len, cols: width, storage: .f32(cache.baseAddress!), owner: nil)
        if n == 1 { return attendAbsorbedToken(w, q, keys: keys, start: start) }
        // Query rows r = i * H + head: [q_nope · W_UK (kvr) | q_pe (dr)]. Per-head operands are gathered head-major
        // ([H, n, dn] in, [H, n, kvr] out) so all heads run as one batch of products in one parallel region.
        // Gathers copy whole runs through pointers (element loops over arrays were ~1% of a decode step).
        let qNope = q.data.withUnsafeBufferPointer { qp in
            Matrix(rows: h * n, cols: dn) { dst in
                for hh in 0..<h {
                    for i in 0..<n { (dst + (hh * n + i) * dn).initialize(from: qp.baseAddress! + i * h * qk + hh * qk, count: dn) }
                }
            }
        }
        var qAbs = [Float](repeating: 0, count: h * n * kvr)
        qNope.data.withUnsafeBufferPointer { xp in
            qAbs.withUnsafeMutableBufferPointer { op in
                Ops.linearTransposedBatch((0..<h).map { hh in
                    LinearJob(x: xp.baseAddress! + hh * n * dn, tokens: n, weight: w.wUK[hh], out: op.baseAddress! + hh * n * kvr)
                }, pool: pool)
            }
        }
        let qcat = q.data.withUnsafeBufferPointer { qp in
            qAbs.withUnsafeBufferPointer { ap in
                Matrix(rows: n * h, cols: width) { dst in
                    for i in 0..<n {
                        for hh in 0..<h {
                            let row = dst + (i * h + hh) * width
                            row.initialize(from: ap.baseAddress! + (hh * n + i) * kvr, count: kvr)
                            (row + kvr).initialize(from: qp.baseAddress! + i * h * qk + hh * qk + dn, count: dr)
                        }
                    }
                }
            }
        }
        var scores = Ops.linear(qcat, keys, pool: pool)  // [n*H, len]
        softmaxRows(&scores, rowsPerQuery: h, start: start)
        let oLat = Ops.linearTransposed(scores, keys, columns: kvr, pool: pool)  // [n*H, kvr]: not the rope columns
        // o = W_UV · o_lat per head, all heads in one `linearBatch` (head-major operands as above).
        let lat = oLat.data.withUnsafeBufferPointer { lp in
            Matrix(rows: h * n, cols: kvr) { dst in
                for hh in 0..<h {
                    for i in 0..<n { (dst + (hh * n + i) * kvr).initialize(from: lp.baseAddress! + (i * h + hh) * kvr, count: kvr) }
                }
            }
        }
        var oh = [Float](repeating: 0, count: h * n * dv)
        lat.data.withUnsafeBufferPointer { xp in
            oh.withUnsafeMutableBufferPointer { op in
                Ops.linearBatch((0..<h).map { hh in
                    LinearJob(x: xp.baseAddress! + hh * n * kvr, tokens: n, weight: w.wUV[hh], out: op.baseAddress! + hh * n * dv)
                }, pool: pool)
            }
        }
        let out = oh.withUnsafeBufferPointer { op in
            Matrix(rows: n, cols: h * dv) { dst in
                for i in 0..<n {
                    for hh in 0..<h { (dst + i * h * dv + hh * dv).initialize(from: op.baseAddress! + (hh * n + i) * dv, count: dv) }
                }
            }
        }
        return out
    }

    /// `attendAbsorbed` for one query token (decode; here a token decoded next to other sequences, a lone one takes
    /// `attendTokenFused`): one region over heads (`attendHeads`), the same products in the same order.
    func attendAbsorbedToken(_ w: AttentionWeights, _ q: Matrix, keys: Weight, start: Int) -> Matrix {
        q.data.withUnsafeBufferPointer { attendHeads(w, q: $0.baseAddress!, keys: keys, visible: min(keys.rows, start + 1)) }
    }
}
