// KV cache of one sequence: per layer, per token, one row of floats whose layout the layer's mixer decides (MLA: the
// normed latent c_kv then k_pe after RoPE; grouped-query attention: every KV head's key after RoPE, then its value).

/// How MLA attention is evaluated (same math, different rounding points).
public enum AttentionMode: String, Sendable, CaseIterable {
    /// Expand k_nope / v from the latent cache with kv_b_proj (HF form).
    case naive
    /// Absorb W_UK into the query and W_UV after the latent-weighted sum (official DeepSeek decode form).
    case absorbed
}

/// The cache of one sequence. Reference type: the forward pass appends to it.
public final class KVCache: @unchecked Sendable {
    /// Floats per cached token per layer.
    public let rowWidth: Int
    var storage: [Int: [Float]] = [:]

    public init(rowWidth: Int) {
        self.rowWidth = rowWidth
    }

    /// Tokens cached for `layer`.
    public func count(layer: Int) -> Int { (storage[layer]?.count ?? 0) / rowWidth }

    /// Tokens cached in the lowest layer present (0 when empty). After a complete forward, all layers agree.
    public var length: Int { storage.keys.min().map { count(layer: $0) } ?? 0 }

    /// The rows of `layer` (`[count, rowWidth]`, row-major), copied.
    public func rows(layer: Int) -> [Float] { storage[layer] ?? [] }

    /// Read access to the rows of `layer` without a copy.
    public func withRows<R>(layer: Int, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        if let rows = storage[layer] { return try rows.withUnsafeBufferPointer(body) }
        return try body(UnsafeBufferPointer(start: nil, count: 0))
    }

    /// Appends rows for `layer`.
    public func append(layer: Int, rows: [Float]) {
        precondition(rows.count % rowWidth == 0, "cache append of \(rows.count) floats, row width \(rowWidth)")
        storage[layer, default: []].append(contentsOf: rows)
    }

    /// Drops every token at position >= `length` (all layers).
    public func truncate(to length: Int) {
        for k in storage.keys where count(layer: k) > length {
            storage[k]!.removeSubrange((length * rowWidth)...)
        }
    }

    /// A new cache holding a copy of this one's first `length` tokens in every layer (a shared prompt prefix).
    public func prefix(_ length: Int) -> KVCache {
        let copy = KVCache(rowWidth: rowWidth)
        for (layer, rows) in storage { copy.storage[layer] = Array(rows.prefix(length * rowWidth)) }
        return copy
    }

    /// Floats held in all layers.
    public var floatCount: Int { storage.values.reduce(0) { $0 + $1.count } }
}

/// A contiguous run of rows of a token batch that belongs to one sequence.
/// Its tokens sit at positions `startPosition ..< startPosition + count`, and `startPosition` must equal the
/// number of tokens the cache already holds for each layer processed.
public struct SequenceSegment: @unchecked Sendable {
    public var cache: KVCache
    public var count: Int
    public var startPosition: Int

    public init(cache: KVCache, count: Int, startPosition: Int) {
        self.cache = cache
        self.count = count
        self.startPosition = startPosition
    }
}
