// GQAAttention: grouped-query attention (Llama, Qwen3, Mixtral, GLM-4.5, MiniMax-M2, ...): q / k / v projections with
// optional biases, optional RMSNorm of q and k before RoPE (per head, or over the whole projection), rotate-half RoPE on
// the first `rotaryDim` dims of each head,
// causal softmax attention where query head h reads KV head h / (heads / kvHeads), then o_proj. Cache rows: every KV
// head's key after RoPE, then every KV head's value. Each output value comes from one loop over its own keys, the same
// whatever the batch, the thread count or how the cache was filled, so cached decode equals full prefill bit for bit.
import Foundation
import Kernels
import Tensors

/// One layer's attention weights (checkpoint layout: `[out, in]`).
public struct GQAWeights: Sendable {
    public let q: Weight, k: Weight, v: Weight, o: Weight
    public let qBias: [Float]?, kBias: [Float]?, vBias: [Float]?
    /// RMSNorm weights of q and k: over head_dim (one vector shared by the heads: Qwen3, GLM-4.5) or over the whole
    /// projection (H·head_dim and KV·head_dim: MiniMax-M2); nil: none.
    public let qNorm: [Float]?, kNorm: [Float]?

    public init(q: Weight, k: Weight, v: Weight, o: Weight, qBias: [Float]? = nil, kBias: [Float]? = nil, vBias: [Float]? = nil,
                qNorm: [Float]? = nil, kNorm: [Float]? = nil) {
        self.q = q
        self.k = k
        self.v = v
        self.o = o
        self.qBias = qBias
        self.kBias = kBias
        self.vBias = vBias
        self.qNorm = qNorm
        self.kNorm = kNorm
    }

    public var products: [Weight] { [q, k, v, o] }
}

/// Where the q / k RMSNorms apply (when the layer has them).
public enum QKNormPlacement: String, Sendable {
    /// Over each head's head_dim values, one weight vector for all heads (Qwen3, GLM-4.5).
    case perHead
    /// Over the whole projection before the head split (MiniMax-M2, OLMo 2).
    case wholeProjection
}

/// One GQA mixer's dimensions and settings; each layer's weights come with the call.
public struct GQAAttention {
    public let shape: GQAShape
    public let qkNorm: QKNormPlacement
    /// Leading dims of each head that RoPE rotates (the head dim unless the family uses partial rotary).
    public let rotaryDim: Int
    /// Epsilon of the per-head q / k norms.
    public let normEps: Float
    public let softmaxScale: Float
    public let pool: ComputePool
    /// The lane's tensor-parallel group: `shape` then counts this rank's KV heads and their query heads, o_proj's weight
    /// holds this rank's hidden outputs, and `totalKVHeads` is the model's.
    public let tp: any TensorParallelGroup
    public let totalKVHeads: Int

    public init(shape: GQAShape, qkNorm: QKNormPlacement = .perHead, rotaryDim: Int, normEps: Float, softmaxScale: Float, pool: ComputePool,
                tp: any TensorParallelGroup = SingleRank(), totalKVHeads: Int? = nil) {
        self.tp = tp
        self.totalKVHeads = totalKVHeads ?? shape.kvHeads
        self.qkNorm = qkNorm
        precondition(shape.heads % shape.kvHeads == 0, "heads \(shape.heads) not a multiple of kv heads \(shape.kvHeads)")
        precondition(rotaryDim % 2 == 0 && rotaryDim <= shape.headDim, "rotary dims \(rotaryDim) vs head dim \(shape.headDim)")
        self.shape = shape
        self.rotaryDim = rotaryDim
        self.normEps = normEps
        self.softmaxScale = softmaxScale
        self.pool = pool
    }

    /// Layer `layer`'s attention over `xn` `[T, D]` (rows: the segments' tokens in order); appends each segment's key
    /// and value rows to its cache.
    public func callAsFunction(_ w: GQAWeights, layer: Int, _ xn: Matrix, segments: [SequenceSegment], tables: RopeTables) throws -> Matrix {
        let t = xn.rows, h = shape.heads, kvh = shape.kvHeads, hd = shape.headDim
        precondition(tables.half * 2 == rotaryDim, "RoPE tables for \(tables.half * 2) dims, the layer rotates \(rotaryDim)")
        let proj = Ops.linear(xn, [w.q, w.k, w.v], pool: pool)
        var q = proj[0]
        let width = shape.cacheFloatsPerToken
        var rows = [Float](repeating: 0, count: t * width)
        q.data.withUnsafeMutableBufferPointer { qp in
            proj[1].data.withUnsafeBufferPointer { kp in
                proj[2].data.withUnsafeBufferPointer { vp in
                    rows.withUnsafeMutableBufferPointer { cp in
                        for r in 0..<t {
                            let qRow = qp.baseAddress! + r * h * hd, cacheRow = cp.baseAddress! + r * width
                            cacheRow.update(from: kp.baseAddress! + r * kvh * hd, count: kvh * hd)
                            (cacheRow + kvh * hd).update(from: vp.baseAddress! + r * kvh * hd, count: kvh * hd)
                            Self.addBias(w.qBias, qRow, h * hd)
                            Self.addBias(w.kBias, cacheRow, kvh * hd)
                            Self.addBias(w.vBias, cacheRow + kvh * hd, kvh * hd)
                            normWhole(qRow, w.qNorm, h * hd)
                            normWhole(cacheRow, w.kNorm, kvh * hd)
                            for head in 0..<h { prepare(qRow + head * hd, norm: w.qNorm, row: r, tables: tables) }
                            for head in 0..<kvh { prepare(cacheRow + head * hd, norm: w.kNorm, row: r, tables: tables) }
                        }
                    }
                }
            }
        }
        var o = Matrix(rows: t, cols: h * hd)
        var row0 = 0
        for seg in segments {
            let have = seg.cache.count(layer: layer)
            guard have == seg.startPosition else {
                throw ModelError(.cacheMismatch, "segment starts at position \(seg.startPosition) but the cache holds \(have) tokens for layer \(layer)",
                                 subject: "layer \(layer)")
            }
            guard seg.cache.rowWidth == width else {
                throw ModelError(.cacheMismatch, "cache rows of \(seg.cache.rowWidth) floats, this layer's keys and values take \(width)", subject: "cache")
            }
            if seg.count == 0 { continue }
            seg.cache.append(layer: layer, rows: Array(rows[(row0 * width)..<((row0 + seg.count) * width)]))
            seg.cache.withRows(layer: layer) { cache in
                q.data.withUnsafeBufferPointer { qp in
                    o.data.withUnsafeMutableBufferPointer { op in
                        attend(q: qp.baseAddress! + row0 * h * hd, cache: cache.baseAddress!, start: seg.startPosition, count: seg.count,
                               out: op.baseAddress! + row0 * h * hd)
                    }
                }
            }
            row0 += seg.count
        }
        return try outputProjection(o, w)
    }

    /// o_proj of the heads' outputs. Tensor parallel: gather every rank's heads (in KV-head groups), project onto this
    /// rank's hidden outputs over the full width, gather those.
    func outputProjection(_ o: Matrix, _ w: GQAWeights) throws -> Matrix {
        if tp.size == 1 { return Ops.linear(o, w.o, pool: pool) }
        let group = shape.heads / shape.kvHeads * shape.headDim
        let all = try tp.gatherColumns(o, columns: totalKVHeads * group, unit: group)
        return try tp.gatherColumns(Ops.linear(all, w.o, pool: pool), columns: w.q.cols)
    }

    @inline(__always)
    static func addBias(_ bias: [Float]?, _ x: UnsafeMutablePointer<Float>, _ n: Int) {
        guard let bias else { return }
        for i in 0..<n { x[i] += bias[i] }
    }

    /// RMSNorm over the whole projection of one token (`width` values) when the weight is that wide.
    @inline(__always)
    func normWhole(_ x: UnsafeMutablePointer<Float>, _ norm: [Float]?, _ width: Int) {
        guard qkNorm == .wholeProjection, let norm else { return }
        norm.withUnsafeBufferPointer { Ops.rmsNormRow(x, $0.baseAddress!, normEps, x, width) }
    }

    /// Per-head norm (when the weight is head_dim wide), then RoPE of the head's first `rotaryDim` values at row
    /// `row`'s position.
    @inline(__always)
    func prepare(_ x: UnsafeMutablePointer<Float>, norm: [Float]?, row: Int, tables: RopeTables) {
        if qkNorm == .perHead, let norm { norm.withUnsafeBufferPointer { Ops.rmsNormRow(x, $0.baseAddress!, normEps, x, shape.headDim) } }
        tables.cos.withUnsafeBufferPointer { cs in
            tables.sin.withUnsafeBufferPointer { sn in
                RotaryEmbedding.rotateHalf(x, cos: cs.baseAddress! + row * tables.half, sin: sn.baseAddress! + row * tables.half, half: tables.half)
            }
        }
    }

    /// Causal attention of `count` queries at positions `start ..< start + count` over the cache rows `0 ..< start + count`.
    /// One task per (query, head); each runs the same scalar loop over its keys.
    func attend(q: UnsafePointer<Float>, cache: UnsafePointer<Float>, start: Int, count: Int, out: UnsafeMutablePointer<Float>) {
        let h = shape.heads, kvh = shape.kvHeads, hd = shape.headDim, group = h / kvh, width = shape.cacheFloatsPerToken
        let scale = softmaxScale
        pool.parallelFor(count: count * h) { tasks in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: start + count) { scores in
                for task in tasks {
                    let i = task / h, head = task % h, g = head / group, keys = start + i + 1
                    let qRow = q + i * h * hd + head * hd
                    for u in 0..<keys { scores[u] = Ops.dot(qRow, cache + u * width + g * hd, hd) * scale }
                    Ops.softmaxInPlace(scores.baseAddress!, keys)
                    let o = out + i * h * hd + head * hd
                    for d in 0..<hd { o[d] = 0 }
                    for u in 0..<keys {
                        let p = scores[u], v = cache + u * width + kvh * hd + g * hd
                        for d in 0..<hd { o[d] = o[d].addingProduct(p, v[d]) }
                    }
                }
            }
        }
    }
}
