// Added tokens: leftmost-longest matching in text before pre-tokenization, as huggingface/tokenizers added_vocabulary.rs.

/// One entry of tokenizer.json's `added_tokens`.
struct AddedToken: Sendable, Equatable {
    var content: String
    var id: Int
    var special: Bool
    var singleWord = false
    var lstrip = false
    var rstrip = false
    var normalized = false
}

/// A byte trie over the contents of one class of added tokens (normalized or not), matched leftmost-longest.
struct AddedTokenMatcher: Sendable {
    private var first = [Bool](repeating: false, count: 256)
    // CSR trie: node n's edges are edgeBytes/edgeChild[edgeStart[n]..<edgeStart[n+1]].
    private var edgeStart: [Int32] = []
    private var edgeBytes: [UInt8] = []
    private var edgeChild: [Int32] = []
    private var terminal: [Int32] = []  // index into `tokens`, -1 if none
    let tokens: [AddedToken]

    var isEmpty: Bool { tokens.isEmpty }

    init(_ tokens: [AddedToken]) {
        self.tokens = tokens
        var children: [[UInt8: Int32]] = [[:]]
        var term: [Int32] = [-1]
        for (ti, t) in tokens.enumerated() where !t.content.isEmpty {
            var node = 0
            for b in t.content.utf8 {
                if let c = children[node][b] { node = Int(c); continue }
                children.append([:])
                term.append(-1)
                children[node][b] = Int32(children.count - 1)
                node = children.count - 1
            }
            term[node] = Int32(ti)
            first[Int(t.content.utf8.first!)] = true
        }
        for n in 0..<children.count {
            edgeStart.append(Int32(edgeBytes.count))
            for (b, c) in children[n].sorted(by: { $0.key < $1.key }) {
                edgeBytes.append(b)
                edgeChild.append(c)
            }
        }
        edgeStart.append(Int32(edgeBytes.count))
        terminal = term
    }

    /// The longest token starting at i: (token index, end) or nil.
    @inline(__always)
    private func longest(_ b: UnsafeBufferPointer<UInt8>, _ i: Int, _ hi: Int) -> (Int, Int)? {
        var node = 0, j = i
        var best: (Int, Int)? = nil
        while j < hi {
            let x = b[j]
            var next = -1
            var e = Int(edgeStart[node])
            let end = Int(edgeStart[node + 1])
            while e < end { if edgeBytes[e] == x { next = Int(edgeChild[e]); break }; e += 1 }
            if next < 0 { break }
            node = next
            j += 1
            if terminal[node] >= 0 { best = (Int(terminal[node]), j) }
        }
        return best
    }

    /// Splits b[lo..<hi] into text gaps and token matches (with single_word / lstrip / rstrip applied), in order.
    /// `onText(lo, hi)` for each non-empty gap, `onToken(id)` for each token.
    func split(_ b: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int,
               onText: (Int, Int) -> Void, onToken: (Int) -> Void) {
        if tokens.isEmpty { if lo < hi { onText(lo, hi) }; return }
        var startOffset = lo
        var i = lo
        while i < hi {
            guard first[Int(b[i])], let (ti, stop0) = longest(b, i, hi) else { i += 1; continue }
            let t = tokens[ti]
            var start = i, stop = stop0
            i = stop0  // the automaton resumes after this match even when the match is then rejected
            if t.singleWord {
                let startSpace = start == lo || !Self.isWord(Self.scalarBefore(b, start))
                let stopSpace = stop == hi || !Self.isWord(Self.scalarAt(b, stop))
                if !startSpace || !stopSpace { continue }
            }
            if t.lstrip {
                var s = start
                while s > lo {
                    let v = Self.scalarBefore(b, s)
                    if !Self.isSpace(v) { break }
                    s -= Self.utf8Length(v)
                }
                start = max(s, startOffset)
            }
            if t.rstrip {
                while stop < hi {
                    let v = Self.scalarAt(b, stop)
                    if !Self.isSpace(v) { break }
                    stop += Self.utf8Length(v)
                }
            }
            if startOffset < start { onText(startOffset, start) }
            onToken(t.id)
            startOffset = stop
        }
        if startOffset < hi { onText(startOffset, hi) }
    }

    static func utf8Length(_ v: UInt32) -> Int { v < 0x80 ? 1 : v < 0x800 ? 2 : v < 0x10000 ? 3 : 4 }

    static func scalarAt(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> UInt32 {
        let c0 = UInt32(b[i])
        if c0 < 0x80 { return c0 }
        if c0 < 0xE0 { return (c0 & 0x1F) << 6 | UInt32(b[i + 1] & 0x3F) }
        if c0 < 0xF0 { return (c0 & 0x0F) << 12 | UInt32(b[i + 1] & 0x3F) << 6 | UInt32(b[i + 2] & 0x3F) }
        return (c0 & 0x07) << 18 | UInt32(b[i + 1] & 0x3F) << 12 | UInt32(b[i + 2] & 0x3F) << 6 | UInt32(b[i + 3] & 0x3F)
    }

    static func scalarBefore(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> UInt32 {
        var j = i - 1
        while j > 0 && b[j] & 0xC0 == 0x80 { j -= 1 }
        return scalarAt(b, j)
    }

    /// Rust regex `\w` and `\s` (Unicode), used by added_vocabulary.rs's word and space checks.
    static func isWord(_ v: UInt32) -> Bool { UnicodeClassTable.shared.classOf(v).contains(.word) }
    static func isSpace(_ v: UInt32) -> Bool { UnicodeClassTable.shared.classOf(v).contains(.space) }
}
