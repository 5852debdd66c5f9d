// Immutable open-addressing hash tables for the BPE hot path: (left, right) pairs and byte-string keys.

/// (leftID, rightID) -> (rank, mergedID). Built once at load; read-only afterwards.
final class PairTable: @unchecked Sendable {  // immutable after init
    private let keys: UnsafeMutablePointer<UInt64>
    private let vals: UnsafeMutablePointer<UInt64>
    private let mask: Int
    static let empty: UInt64 = .max

    /// `entries` are (left, right, rank, merged); a later entry for the same pair replaces an earlier one,
    /// as collecting merges into a map does in huggingface/tokenizers `models/bpe/model.rs`.
    init(_ entries: [(UInt32, UInt32, UInt32, UInt32)]) {
        var cap = 16
        while cap < entries.count * 2 { cap <<= 1 }
        mask = cap - 1
        keys = .allocate(capacity: cap)
        keys.initialize(repeating: Self.empty, count: cap)
        vals = .allocate(capacity: cap)
        vals.initialize(repeating: 0, count: cap)
        for (l, r, rank, merged) in entries {
            let k = UInt64(l) << 32 | UInt64(r)
            var h = Self.hash(k) & mask
            while keys[h] != Self.empty && keys[h] != k { h = (h + 1) & mask }
            keys[h] = k
            vals[h] = UInt64(rank) << 32 | UInt64(merged)
        }
    }

    deinit {
        keys.deallocate()
        vals.deallocate()
    }

    @inline(__always) static func hash(_ k: UInt64) -> Int {
        Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> 29)
    }

    /// rank << 32 | merged, or UInt64.max when the pair does not merge.
    @inline(__always) func lookup(_ l: UInt32, _ r: UInt32) -> UInt64 {
        let k = UInt64(l) << 32 | UInt64(r)
        var h = Self.hash(k) & mask
        while true {
            let kk = keys[h]
            if kk == k { return vals[h] }
            if kk == Self.empty { return .max }
            h = (h + 1) & mask
        }
    }
}

/// Byte string -> Int32 id. Keys live in one arena.
final class BytesTable: @unchecked Sendable {  // immutable after init
    private let arena: [UInt8]
    private let starts: [Int32]
    private let lengths: [Int32]
    private let ids: [Int32]
    private let slots: [Int32]  // index into starts/lengths/ids, -1 empty
    private let mask: Int

    /// Later duplicates replace earlier ones.
    init(_ entries: [([UInt8], Int)]) {
        var arena: [UInt8] = [], starts: [Int32] = [], lengths: [Int32] = [], ids: [Int32] = []
        var cap = 16
        while cap < entries.count * 2 { cap <<= 1 }
        var slots = [Int32](repeating: -1, count: cap)
        mask = cap - 1
        for (key, id) in entries {
            var h = key.withUnsafeBufferPointer(Self.hash) & mask
            var replaced = false
            while slots[h] >= 0 {
                let e = Int(slots[h])
                if Int(lengths[e]) == key.count && arena[Int(starts[e])..<Int(starts[e]) + key.count].elementsEqual(key) {
                    ids[e] = Int32(id)
                    replaced = true
                    break
                }
                h = (h + 1) & mask
            }
            if replaced { continue }
            slots[h] = Int32(starts.count)
            starts.append(Int32(arena.count))
            lengths.append(Int32(key.count))
            ids.append(Int32(id))
            arena.append(contentsOf: key)
        }
        self.arena = arena
        self.starts = starts
        self.lengths = lengths
        self.ids = ids
        self.slots = slots
    }

    @inline(__always) static func hash(_ b: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for x in b { h = (h ^ UInt64(x)) &* 0x1000_0000_01B3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// The id of `key`, or -1.
    func lookup(_ key: UnsafeBufferPointer<UInt8>) -> Int {
        var h = Self.hash(key) & mask
        return arena.withUnsafeBufferPointer { a in
            while true {
                let e = Int(slots[h])
                if e < 0 { return -1 }
                if Int(lengths[e]) == key.count {
                    let s = Int(starts[e])
                    var same = true
                    for i in 0..<key.count where a[s + i] != key[i] { same = false; break }
                    if same { return Int(ids[e]) }
                }
                h = (h + 1) & mask
            }
        }
    }
}
