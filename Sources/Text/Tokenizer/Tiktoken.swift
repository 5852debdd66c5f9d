// tiktoken.model tokenizers (Kimi K2): rank-ordered byte BPE, special tokens, and Kimi's windowed encode.

/// Kimi K2's tiktoken encode path (moonshotai Kimi-K2 `tokenization_kimi.py` TikTokenTokenizer.encode). Immutable.
final class TiktokenPipeline: Sendable {
    let merger: BPEMerger
    let specials: AddedTokenMatcher
    let pattern: KnownPattern
    let cache = WordCache()

    /// tokenization_kimi.py: TIKTOKEN_MAX_ENCODE_CHARS and MAX_NO_WHITESPACES_CHARS.
    static let windowChars = 400_000
    static let maxRunChars = 25_000

    init(merger: BPEMerger, specials: [AddedToken], pattern: KnownPattern) {
        self.merger = merger
        self.specials = AddedTokenMatcher(specials)
        self.pattern = pattern
    }

    /// `allowSpecial: false` is tiktoken's `disallowed_special=()`: special-token strings are ordinary text.
    func encode(_ text: String, allowSpecial: Bool = true) -> [Int] {
        let t = ScalarText(bytes: Array(text.utf8))
        var out: [Int] = []
        out.reserveCapacity(t.bytes.count / 3 + 4)
        var w = 0
        while w < t.count {
            let we = min(w + Self.windowChars, t.count)
            splitRuns(t, w, we) { a, b in encodeSubstring(t, a, b, allowSpecial: allowSpecial, into: &out) }
            w = we
        }
        return out
    }

    /// `_split_whitespaces_or_nonwhitespaces`: cuts so that no piece has a run of more than 25,000 str.isspace()
    /// or non-space characters.
    private func splitRuns(_ t: ScalarText, _ lo: Int, _ hi: Int, _ body: (Int, Int) -> Void) {
        var runLength = 0
        var runIsSpace = t.classes[lo] & CB.PY != 0
        var sliceStart = lo
        for i in lo..<hi {
            let isSpace = t.classes[i] & CB.PY != 0
            if runIsSpace != isSpace {
                runLength = 1
                runIsSpace = isSpace
            } else {
                runLength += 1
                if runLength > Self.maxRunChars {
                    body(sliceStart, i)
                    sliceStart = i
                    runLength = 1
                }
            }
        }
        body(sliceStart, hi)
    }

    /// tiktoken `encode(piece, allowed_special="all")`: special tokens first, the regex on the text between them.
    private func encodeSubstring(_ t: ScalarText, _ a: Int, _ b: Int, allowSpecial: Bool, into out: inout [Int]) {
        t.bytes.withUnsafeBufferPointer { bytes in
            (allowSpecial ? specials : AddedTokenMatcher([])).split(bytes, Int(t.offsets[a]), Int(t.offsets[b]), onText: { lo, hi in
                let sa = scalarIndex(t, lo, a, b), sb = scalarIndex(t, hi, a, b)
                PreTokenizerRunner(steps: []).forEachMatch(pattern, t, sa, sb) { x, y, _ in
                    let piece = UnsafeBufferPointer(rebasing: bytes[Int(t.offsets[x])..<Int(t.offsets[y])])
                    if piece.count <= 2 || !cache.lookup(piece, into: &out) {
                        let start = out.count
                        merger.encodeBytes(piece, into: &out)
                        if piece.count > 2 { cache.insert(piece, out[start...]) }
                    }
                }
            }, onToken: { out.append($0) })
        }
    }

    /// The scalar index whose byte offset is `byte` (a scalar boundary) within scalars [a, b].
    private func scalarIndex(_ t: ScalarText, _ byte: Int, _ a: Int, _ b: Int) -> Int {
        var lo = a, hi = b
        while lo < hi {
            let mid = (lo + hi) / 2
            if Int(t.offsets[mid]) < byte { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

extension Tokenizer {
    /// Kimi K2 reserves 256 special ids right after the ranks (tokenization_kimi.py num_reserved_special_tokens).
    static let kimiReservedSpecials = 256

    convenience init(tiktokenModel bytes: [UInt8], file: String, config: TokenizerConfig) throws(TextError) {
        try requireUTF8(bytes, file: file)
        var ranks: [([UInt8], Int)] = []
        var lineNo = 0
        for line in bytes.split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNo += 1
            let l = line.last == 0x0D ? line.dropLast() : line[...]
            if l.isEmpty { continue }
            let parts = l.split(separator: 0x20)
            guard parts.count == 2, let raw = base64Decode(parts[0]),
                  let rank = Int(String(decoding: parts[1], as: UTF8.self)), rank >= 0, rank < 1 << 30 else {
                throw TextError(.badField, "\(file): line \(lineNo) must be 'base64 rank'")
            }
            ranks.append((raw, rank))
        }
        guard !ranks.isEmpty else { throw TextError(.badField, "\(file): no ranks") }
        let numBase = ranks.count
        let maxRank = ranks.map(\.1).max()!
        let table = BytesTable(ranks)
        var byteSymbol = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            let id = [UInt8(b)].withUnsafeBufferPointer { table.lookup($0) }
            guard id >= 0 else { throw TextError(.badField, "\(file): byte 0x\(String(b, radix: 16)) has no rank; tiktoken needs all 256") }
            byteSymbol[b] = Int32(id)
        }
        // tiktoken merges the adjacent pair whose concatenation has the lowest rank: every split of a token into
        // two tokens is such a pair, ranked and merged by the token itself.
        var pairs: [(UInt32, UInt32, UInt32, UInt32)] = []
        for (tok, rank) in ranks where tok.count >= 2 {
            tok.withUnsafeBufferPointer { p in
                for k in 1..<p.count {
                    let l = table.lookup(UnsafeBufferPointer(rebasing: p[..<k]))
                    if l < 0 { continue }
                    let r = table.lookup(UnsafeBufferPointer(rebasing: p[k...]))
                    if r >= 0 { pairs.append((UInt32(l), UInt32(r), UInt32(rank), UInt32(rank))) }
                }
            }
        }
        var named: [Int: AddedToken] = [:]
        for t in config.addedTokensDecoder { named[t.id] = t }
        var specials: [AddedToken] = []
        for id in numBase..<(numBase + Self.kimiReservedSpecials) {
            specials.append(AddedToken(content: named[id]?.content ?? "<|reserved_token_\(id)|>", id: id, special: true))
        }
        let size = max(maxRank + 1, numBase + Self.kimiReservedSpecials)
        var idToToken = [String?](repeating: nil, count: size)
        var tokenBytes = [[UInt8]?](repeating: nil, count: size)
        for (tok, rank) in ranks {
            idToToken[rank] = ByteLevelMap.encode(tok)
            tokenBytes[rank] = tok
        }
        var skippable = [Bool](repeating: false, count: size)
        for s in specials {
            idToToken[s.id] = s.content
            tokenBytes[s.id] = Array(s.content.utf8)
            // HF decode(skip_special_tokens=True) drops only the registered specials, not the reserved names.
            skippable[s.id] = named[s.id]?.special ?? false
        }
        var cfg = config
        cfg.kind = "tiktoken.model"
        let merger = BPEMerger(pairs: PairTable(pairs), whole: table, byteSymbol: byteSymbol)
        let pipeline = TiktokenPipeline(merger: merger, specials: specials, pattern: .kimi)
        self.init(config: cfg, engine: .tiktoken(pipeline), idToToken: idToToken,
                  overrides: specials.map { ($0.content, $0.id) }, tokenBytes: tokenBytes,
                  skippable: skippable, joinWithSpaces: false)
    }
}

/// Standard base64 (with or without padding); nil on a bad character.
func base64Decode(_ s: ArraySlice<UInt8>) -> [UInt8]? {
    var out: [UInt8] = []
    out.reserveCapacity(s.count * 3 / 4)
    var acc: UInt32 = 0, bits = 0
    for c in s {
        let v: UInt32
        switch c {
        case 0x41...0x5A: v = UInt32(c - 0x41)
        case 0x61...0x7A: v = UInt32(c - 0x61 + 26)
        case 0x30...0x39: v = UInt32(c - 0x30 + 52)
        case UInt8(ascii: "+"): v = 62
        case UInt8(ascii: "/"): v = 63
        case UInt8(ascii: "="): continue
        default: return nil
        }
        acc = acc << 6 | v
        bits += 6
        if bits >= 8 {
            bits -= 8
            out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
        }
    }
    return out
}
