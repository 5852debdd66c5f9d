// A bounded, thread-safe cache of piece bytes -> token ids (tokenizers keeps a similar per-thread cache).
import Synchronization

/// Caches BPE results for pieces up to 64 bytes. When full it is emptied: simple, bounded, and the hot words of
/// a text come back within a few hundred pieces. A busy lock is skipped rather than waited for.
final class WordCache: Sendable {
    private struct State {
        var slots = [Int32](repeating: -1, count: WordCache.capacity * 2)
        var hashes: [UInt64] = []
        var keyStart: [Int32] = [0]
        var keys: [UInt8] = []
        var valStart: [Int32] = [0]
        var vals: [Int32] = []
    }

    static let capacity = 1 << 15
    static let maxKey = 64
    private let state = Mutex(State())

    @inline(__always) private static func hash(_ b: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for x in b { h = (h ^ UInt64(x)) &* 0x1000_0000_01B3 }
        return h ^ (h >> 31)
    }

    /// Appends the cached ids of `key` to `out`; false when absent (or the cache is busy).
    func lookup(_ key: UnsafeBufferPointer<UInt8>, into out: inout [Int]) -> Bool {
        if key.count > Self.maxKey { return false }
        let h = Self.hash(key)
        return state.withLockIfAvailable { s -> Bool in
            let mask = s.slots.count - 1
            var i = Int(truncatingIfNeeded: h) & mask
            while true {
                let e = Int(s.slots[i])
                if e < 0 { return false }
                if s.hashes[e] == h {
                    let ks = Int(s.keyStart[e]), ke = Int(s.keyStart[e + 1])
                    if ke - ks == key.count && s.keys.withUnsafeBufferPointer({ k in
                        memcmpEqual(k.baseAddress! + ks, key.baseAddress!, key.count) }) {
                        for v in s.vals[Int(s.valStart[e])..<Int(s.valStart[e + 1])] { out.append(Int(v)) }
                        return true
                    }
                }
                i = (i + 1) & mask
            }
        } ?? false
    }

    func insert(_ key: UnsafeBufferPointer<UInt8>, _ ids: ArraySlice<Int>) {
        if key.count > Self.maxKey { return }
        let h = Self.hash(key)
        state.withLockIfAvailable { s in
            if s.hashes.count >= Self.capacity { s = State() }
            let mask = s.slots.count - 1
            var i = Int(truncatingIfNeeded: h) & mask
            while s.slots[i] >= 0 { i = (i + 1) & mask }
            s.slots[i] = Int32(s.hashes.count)
            s.hashes.append(h)
            s.keys.append(contentsOf: key)
            s.keyStart.append(Int32(s.keys.count))
            for v in ids { s.vals.append(Int32(v)) }
            s.valStart.append(Int32(s.vals.count))
        }
    }
}

@inline(__always) func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    for i in 0..<n where a[i] != b[i] { return false }
    return true
}
