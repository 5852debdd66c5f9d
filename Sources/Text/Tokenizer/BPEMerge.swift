// BPE merging of one pre-tokenized piece: lowest merge rank first, leftmost on ties (HF word.rs and tiktoken agree).

/// The merge table and initial-symbol rules shared by tokenizer.json BPE and tiktoken.
final class BPEMerger: Sendable {
    let pairs: PairTable
    /// Whole-piece lookup done before merging (tokenizers' ignore_merges; always on in tiktoken). Keys are raw bytes.
    let whole: BytesTable?
    /// Byte-level models: the id of each byte's single-symbol token (-1 when absent).
    let byteSymbol: [Int32]

    init(pairs: PairTable, whole: BytesTable?, byteSymbol: [Int32]) {
        self.pairs = pairs
        self.whole = whole
        self.byteSymbol = byteSymbol
    }

    /// Encodes raw bytes of one piece (byte-level: each byte starts as its own symbol). Appends ids to `out`.
    func encodeBytes(_ piece: UnsafeBufferPointer<UInt8>, into out: inout [Int]) {
        let n = piece.count
        if n == 0 { return }
        if n == 1 { let id = byteSymbol[Int(piece[0])]; if id >= 0 { out.append(Int(id)) }; return }
        if let whole {
            let id = whole.lookup(piece)
            if id >= 0 { out.append(id); return }
        }
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: n) { sym in
            var m = 0
            for b in piece {
                let id = byteSymbol[Int(b)]
                // A byte without a symbol is dropped, as BPE without unk_token drops unknown characters.
                if id >= 0 { sym[m] = UInt32(id); m += 1 }
            }
            mergeSymbols(sym.baseAddress!, m, into: &out)
        }
    }

    /// Merges `n` initial symbols in place and appends the result.
    func mergeSymbols(_ sym: UnsafeMutablePointer<UInt32>, _ n: Int, into out: inout [Int]) {
        if n < 2 {
            if n == 1 { out.append(Int(sym[0])) }
        } else if n <= 64 {
            mergeSmall(sym, n, into: &out)
        } else {
            mergeHeap(sym, n, into: &out)
        }
    }

    /// O(n^2) over a tiny array: fastest for ordinary words.
    private func mergeSmall(_ sym: UnsafeMutablePointer<UInt32>, _ n0: Int, into out: inout [Int]) {
        var n = n0
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: max(n, 1)) { rk in
            for k in 0..<(n - 1) { rk[k] = pairs.lookup(sym[k], sym[k + 1]) }
            while n > 1 {
                var best = UInt64.max, bi = -1
                for k in 0..<(n - 1) where rk[k] >> 32 < best >> 32 { best = rk[k]; bi = k }
                if bi < 0 { break }
                sym[bi] = UInt32(truncatingIfNeeded: best)
                // Remove symbol bi+1 and pair bi+1.
                var k = bi + 1
                while k < n - 1 { sym[k] = sym[k + 1]; k += 1 }
                k = bi + 1
                while k < n - 2 { rk[k] = rk[k + 1]; k += 1 }
                n -= 1
                if bi > 0 { rk[bi - 1] = pairs.lookup(sym[bi - 1], sym[bi]) }
                if bi < n - 1 { rk[bi] = pairs.lookup(sym[bi], sym[bi + 1]) }
            }
        }
        for k in 0..<n { out.append(Int(sym[k])) }
    }

    /// Linked symbols plus a min-heap of (rank, position), as huggingface/tokenizers `models/bpe/word.rs`.
    private func mergeHeap(_ sym: UnsafeMutablePointer<UInt32>, _ n: Int, into out: inout [Int]) {
        var prev = [Int32](repeating: -1, count: n), next = [Int32](repeating: -1, count: n)
        var alive = [Bool](repeating: true, count: n)
        for k in 0..<n { prev[k] = Int32(k - 1); next[k] = k + 1 < n ? Int32(k + 1) : -1 }
        var heap = MinHeap()
        for k in 0..<(n - 1) {
            let v = pairs.lookup(sym[k], sym[k + 1])
            if v != .max { heap.push((v >> 32) << 32 | UInt64(k)) }
        }
        while let top = heap.pop() {
            let pos = Int(top & 0xFFFF_FFFF), rank = top >> 32
            guard alive[pos], next[pos] >= 0 else { continue }
            let right = Int(next[pos])
            let v = pairs.lookup(sym[pos], sym[right])
            guard v != .max, v >> 32 == rank else { continue }  // stale entry
            sym[pos] = UInt32(truncatingIfNeeded: v)
            alive[right] = false
            next[pos] = next[right]
            if next[right] >= 0 { prev[Int(next[right])] = Int32(pos) }
            if prev[pos] >= 0 {
                let p = Int(prev[pos])
                let w = pairs.lookup(sym[p], sym[pos])
                if w != .max { heap.push((w >> 32) << 32 | UInt64(p)) }
            }
            if next[pos] >= 0 {
                let w = pairs.lookup(sym[pos], sym[Int(next[pos])])
                if w != .max { heap.push((w >> 32) << 32 | UInt64(pos)) }
            }
        }
        for k in 0..<n where alive[k] { out.append(Int(sym[k])) }
    }
}

/// A binary min-heap of UInt64 keys (rank << 32 | position).
struct MinHeap {
    private var a: [UInt64] = []

    mutating func push(_ x: UInt64) {
        a.append(x)
        var i = a.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if a[p] <= a[i] { break }
            a.swapAt(p, i)
            i = p
        }
    }

    mutating func pop() -> UInt64? {
        guard let top = a.first else { return nil }
        let last = a.removeLast()
        if !a.isEmpty {
            a[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < a.count && a[l] < a[m] { m = l }
                if r < a.count && a[r] < a[m] { m = r }
                if m == i { break }
                a.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
