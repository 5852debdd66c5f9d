// Hand-written matchers for the known pre-tokenization regexes; each returns the end of the regex match at i.

/// A pre-tokenization pattern moerun recognises by its exact text and matches with a hand-written scanner.
/// Each scanner reproduces leftmost-first backtracking semantics of the reference engine (Oniguruma for
/// tokenizers, fancy-regex for tiktoken) over Unicode scalars; `hi` is the end of the haystack (lookahead stops there).
enum KnownPattern: Sendable, Equatable {
    case digits3          // \p{N}{1,3}
    case deepseekCJK      // [一-龥\u3040-ゟ゠-ヿ]+
    case deepseekWords    // DeepSeek-V3's word/punctuation/space pattern
    case gpt2             // GPT-2's pattern (ByteLevel use_regex)
    case kimi             // Kimi K2's tiktoken pattern
    case literal([UInt32]) // Split { String } or a regex that is a plain literal
    case numericChar      // one char with Rust's char::is_numeric: the Digits pre-tokenizer

    /// The regex texts recognised, exactly as they appear in tokenizer.json / tokenization_kimi.py.
    static let deepseekWordsText =
        ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##
    static let gpt2Text = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let kimiText = [
        #"[\p{Han}]+"#,
        #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"#,
        #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"#,
        #"\p{N}{1,3}"#,
        #" ?[^\s\p{L}\p{N}]+[\r\n]*"#,
        #"\s*[\r\n]+"#,
        #"\s+(?!\S)"#,
        #"\s+"#,
    ].joined(separator: "|")

    /// Recognises a regex text; nil when it is not one of the known patterns.
    static func recognise(regex raw: String) -> KnownPattern? {
        // A literal CR / LF in a regex means the same as its escape (tokenizer.json files carry either form).
        var regex = ""
        for u in raw.unicodeScalars {
            switch u {
            case "\r": regex += #"\r"#
            case "\n": regex += #"\n"#
            default: regex.unicodeScalars.append(u)
            }
        }
        switch regex {
        case #"\p{N}{1,3}"#: return .digits3
        // JSON may carry the hiragana bound as the character U+3040 or as the regex escape \u3040.
        case "[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+", #"[一-龥\u3040-ゟ゠-ヿ]+"#: return .deepseekCJK
        case deepseekWordsText: return .deepseekWords
        case gpt2Text: return .gpt2
        case kimiText: return .kimi
        default: break
        }
        // A regex without metacharacters is a literal.
        let meta = Set(#"\^$.|?*+()[]{}"#.unicodeScalars)
        if !raw.isEmpty && !raw.unicodeScalars.contains(where: { meta.contains($0) }) {
            return .literal(raw.unicodeScalars.map(\.value))
        }
        return nil
    }

    /// End of the match starting exactly at i, or -1.
    @inline(__always)
    func matchEnd(_ s: UnsafePointer<UInt32>, _ c: UnsafePointer<UInt16>, _ i: Int, _ hi: Int) -> Int {
        switch self {
        case .digits3: return Scan.digits3(c, i, hi)
        case .deepseekCJK: return Scan.deepseekCJK(s, i, hi)
        case .deepseekWords: return Scan.deepseekWords(s, c, i, hi)
        case .gpt2: return Scan.gpt2(s, c, i, hi)
        case .kimi: return Scan.kimi(s, c, i, hi)
        case .literal(let lit): return Scan.literal(lit, s, i, hi)
        case .numericChar: return c[i] & CB.NUM != 0 ? i + 1 : -1
        }
    }
}

/// The scanners. `s` scalars, `c` class bits (CB), `i` start, `hi` haystack end.
enum Scan {
    @inline(__always) static func run(_ c: UnsafePointer<UInt16>, _ from: Int, _ hi: Int, _ bits: UInt16) -> Int {
        var j = from
        while j < hi && c[j] & bits != 0 { j += 1 }
        return j
    }

    @inline(__always) static func isCRLF(_ v: UInt32) -> Bool { v == 0x0D || v == 0x0A }

    static func digits3(_ c: UnsafePointer<UInt16>, _ i: Int, _ hi: Int) -> Int {
        var j = i
        while j < hi && j < i + 3 && c[j] & CB.N != 0 { j += 1 }
        return j > i ? j : -1
    }

    @inline(__always) static func isDeepseekCJK(_ v: UInt32) -> Bool {
        (v >= 0x4E00 && v <= 0x9FA5) || (v >= 0x3040 && v <= 0x30FF)
    }

    static func deepseekCJK(_ s: UnsafePointer<UInt32>, _ i: Int, _ hi: Int) -> Int {
        var j = i
        while j < hi && isDeepseekCJK(s[j]) { j += 1 }
        return j > i ? j : -1
    }

    static func literal(_ lit: [UInt32], _ s: UnsafePointer<UInt32>, _ i: Int, _ hi: Int) -> Int {
        if i + lit.count > hi { return -1 }
        for k in 0..<lit.count where s[i + k] != lit[k] { return -1 }
        return i + lit.count
    }

    /// `\s*[\r\n]+`: ends after the last CR/LF of the whitespace run at i.
    @inline(__always) static func spacesThenNewlines(_ s: UnsafePointer<UInt32>, _ c: UnsafePointer<UInt16>,
                                                     _ i: Int, _ hi: Int, _ wsEnd: Int) -> Int {
        var k = wsEnd - 1
        while k >= i {
            if isCRLF(s[k]) { return k + 1 }
            k -= 1
        }
        return -1
    }

    /// `\s+(?!\S)|\s+` given the whitespace run [i, wsEnd) (non-empty).
    @inline(__always) static func spaceTail(_ i: Int, _ hi: Int, _ wsEnd: Int) -> Int {
        if wsEnd == hi { return wsEnd }
        return wsEnd - 1 > i ? wsEnd - 1 : wsEnd
    }

    /// `\s*[\r\n]+|\s+(?!\S)|\s+` at i, which is whitespace: how DeepSeek-V3's and Kimi's patterns both end.
    @inline(__always) static func whitespace(_ s: UnsafePointer<UInt32>, _ c: UnsafePointer<UInt16>, _ i: Int, _ hi: Int) -> Int {
        let ws = run(c, i + 1, hi, CB.WS)
        let nl = spacesThenNewlines(s, c, i, hi, ws)
        return nl >= 0 ? nl : spaceTail(i, hi, ws)
    }

    /// `[\r\n]*` from j: the tail of both patterns' punctuation alternative.
    @inline(__always) static func newlines(_ s: UnsafePointer<UInt32>, _ j: Int, _ hi: Int) -> Int {
        var j = j
        while j < hi && isCRLF(s[j]) { j += 1 }
        return j
    }

    static let asciiPunct: [Bool] = (0..<128).map { v in
        (v >= 0x21 && v <= 0x2F) || (v >= 0x3A && v <= 0x40) || (v >= 0x5B && v <= 0x60) || (v >= 0x7B && v <= 0x7E)
    }
    @inline(__always) static func isASCIILetter(_ v: UInt32) -> Bool { (v | 0x20) >= 0x61 && (v | 0x20) <= 0x7A }

    static func deepseekWords(_ s: UnsafePointer<UInt32>, _ c: UnsafePointer<UInt16>, _ i: Int, _ hi: Int) -> Int {
        let v = s[i], ci = c[i]
        // [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+
        if v < 128 && asciiPunct[Int(v)] && i + 1 < hi && isASCIILetter(s[i + 1]) {
            var j = i + 2
            while j < hi && isASCIILetter(s[j]) { j += 1 }
            return j
        }
        // [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
        if ci & (CB.L | CB.P | CB.S) == 0 && !isCRLF(v) && i + 1 < hi && c[i + 1] & (CB.L | CB.M) != 0 {
            return run(c, i + 2, hi, CB.L | CB.M)
        }
        if ci & (CB.L | CB.M) != 0 { return run(c, i + 1, hi, CB.L | CB.M) }
        // ` ?[\p{P}\p{S}]+[\r\n]*`
        var p = -1
        if v == 0x20 && i + 1 < hi && c[i + 1] & (CB.P | CB.S) != 0 { p = i + 1 } else if ci & (CB.P | CB.S) != 0 { p = i }
        if p >= 0 { return newlines(s, run(c, p + 1, hi, CB.P | CB.S), hi) }
        return ci & CB.WS != 0 ? whitespace(s, c, i, hi) : -1
    }

    static func gpt2(_ s: UnsafePointer<UInt32>, _ c: UnsafePointer<UInt16>, _ i: Int, _ hi: Int) -> Int {
        let v = s[i]
        // 's|'t|'re|'ve|'m|'ll|'d
        if v == 0x27 && i + 1 < hi {
            let a = s[i + 1]
            if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return i + 2 }        // s t m d
            if i + 2 < hi {
                let b = s[i + 2]
                if (a == 0x72 || a == 0x76) && b == 0x65 { return i + 3 }               // re ve
                if a == 0x6C && b == 0x6C { return i + 3 }                               // ll
            }
        }
        let p = (v == 0x20 && i + 1 < hi) ? i + 1 : i
        let cp = c[p]
        if cp & CB.L != 0 { return run(c, p + 1, hi, CB.L) }
        if cp & CB.N != 0 { return run(c, p + 1, hi, CB.N) }
        if cp & (CB.WS | CB.L | CB.N) == 0 {
            var j = p + 1
            while j < hi && c[j] & (CB.WS | CB.L | CB.N) == 0 { j += 1 }
            return j
        }
        // ` ?X` failed with the space; the space alone can still start \s+.
        if c[i] & CB.WS != 0 { return spaceTail(i, hi, run(c, i + 1, hi, CB.WS)) }
        return -1
    }

    /// Kimi's optional `(?i:'s|'t|'re|'ve|'m|'ll|'d)` at j (case-insensitive; ſ U+017F folds to s).
    @inline(__always) static func contraction(_ s: UnsafePointer<UInt32>, _ j: Int, _ hi: Int) -> Int {
        guard j + 1 < hi, s[j] == 0x27 else { return j }
        let a = s[j + 1] | (s[j + 1] < 128 ? 0x20 : 0)
        if a == 0x73 || a == 0x17F || a == 0x74 || a == 0x6D || a == 0x64 { return j + 2 }
        if j + 2 < hi {
            let b = s[j + 2] | (s[j + 2] < 128 ? 0x20 : 0)
            if (a == 0x72 || a == 0x76) && b == 0x65 { return j + 3 }
            if a == 0x6C && b == 0x6C { return j + 3 }
        }
        return j
    }

    /// `UP* LO+` from p: greedy UP* backtracks to the last position whose scalar can start LO+; -1 if none.
    @inline(__always) static func kimiUpperLower(_ c: UnsafePointer<UInt16>, _ p: Int, _ hi: Int) -> Int {
        let q = run(c, p, hi, CB.KU)
        var k = q
        while k >= p && !(k < hi && c[k] & CB.KL != 0) { k -= 1 }
        return k >= p ? run(c, k + 1, hi, CB.KL) : -1
    }

    static func kimi(_ s: UnsafePointer<UInt32>, _ c: UnsafePointer<UInt16>, _ i: Int, _ hi: Int) -> Int {
        let v = s[i], ci = c[i]
        // [\p{Han}]+
        if ci & CB.HAN != 0 { return run(c, i + 1, hi, CB.HAN) }
        let prefixOK = ci & (CB.L | CB.N) == 0 && !isCRLF(v)
        // Alternative 2: X? UP* LO+ C?  (the optional prefix is tried first, then without it)
        let withPrefix = prefixOK && i + 1 < hi
        if withPrefix, case let e = kimiUpperLower(c, i + 1, hi), e >= 0 { return contraction(s, e, hi) }
        if case let e = kimiUpperLower(c, i, hi), e >= 0 { return contraction(s, e, hi) }
        // Alternative 3: X? UP+ LO* C?
        if withPrefix && c[i + 1] & CB.KU != 0 { return contraction(s, run(c, run(c, i + 2, hi, CB.KU), hi, CB.KL), hi) }
        if ci & CB.KU != 0 { return contraction(s, run(c, run(c, i + 1, hi, CB.KU), hi, CB.KL), hi) }
        // \p{N}{1,3}
        if ci & CB.N != 0 { return digits3(c, i, hi) }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var p = -1
        if v == 0x20 && i + 1 < hi && c[i + 1] & (CB.WS | CB.L | CB.N) == 0 { p = i + 1 }
        else if ci & (CB.WS | CB.L | CB.N) == 0 { p = i }
        if p >= 0 {
            var j = p + 1
            while j < hi && c[j] & (CB.WS | CB.L | CB.N) == 0 { j += 1 }
            return newlines(s, j, hi)
        }
        return ci & CB.WS != 0 ? whitespace(s, c, i, hi) : -1
    }
}
