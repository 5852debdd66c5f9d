// Per-scalar class bits (\p{L}, \p{N}, \s, Script=Han, ...) in a two-stage table built once from the stdlib.

/// Class bits of one Unicode scalar, as the reference regex engines see them.
/// General categories come from Swift's stdlib tables; Han and Python's isspace from UnicodeTables.swift.
struct CharClass: OptionSet, Sendable {
    let rawValue: UInt16
    static let letter = CharClass(rawValue: 1 << 0)        // \p{L}
    static let mark = CharClass(rawValue: 1 << 1)          // \p{M}
    static let number = CharClass(rawValue: 1 << 2)        // \p{N}
    static let punct = CharClass(rawValue: 1 << 3)         // \p{P}
    static let symbol = CharClass(rawValue: 1 << 4)        // \p{S}
    static let space = CharClass(rawValue: 1 << 5)         // \s (White_Space; Oniguruma and regex crate agree)
    static let han = CharClass(rawValue: 1 << 6)           // Script=Han
    /// Kimi's `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]`.
    static let kimiUpper = CharClass(rawValue: 1 << 7)
    /// Kimi's `[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]`.
    static let kimiLower = CharClass(rawValue: 1 << 8)
    /// Python's str.isspace().
    static let pySpace = CharClass(rawValue: 1 << 9)
    /// Rust's char::is_numeric (Nd, Nl, No): the Digits pre-tokenizer.
    static let numeric = CharClass(rawValue: 1 << 10)
    /// Rust regex / Oniguruma `\w` (alphabetic, marks, digits, connector punctuation, join controls).
    static let word = CharClass(rawValue: 1 << 11)
}

/// The table: stage1 maps a 256-scalar block to a deduplicated stage2 block.
final class UnicodeClassTable: @unchecked Sendable {  // immutable after init; raw pointers for the hot path
    static let shared = UnicodeClassTable()

    private let stage1: UnsafeMutablePointer<UInt16>
    private let stage2: UnsafeMutablePointer<UInt16>

    private init() {
        var blocks: [[UInt16]: UInt16] = [:]
        var s1 = [UInt16](repeating: 0, count: 0x1100)
        var s2: [UInt16] = []
        var block = [UInt16](repeating: 0, count: 256)
        let han = hanScriptRanges, py = pythonSpaceRanges
        for b in 0..<0x1100 {
            for i in 0..<256 {
                let v = UInt32(b << 8 | i)
                block[i] = Self.classify(v, han: han, py: py).rawValue
            }
            if let idx = blocks[block] {
                s1[b] = idx
            } else {
                let idx = UInt16(s2.count / 256)
                blocks[block] = idx
                s1[b] = idx
                s2.append(contentsOf: block)
            }
        }
        // Process-lifetime tables (one shared instance): never deallocated.
        stage1 = .allocate(capacity: s1.count)
        stage1.initialize(from: s1, count: s1.count)
        stage2 = .allocate(capacity: s2.count)
        stage2.initialize(from: s2, count: s2.count)
    }

    private static func classify(_ v: UInt32, han: [ClosedRange<UInt32>], py: [ClosedRange<UInt32>]) -> CharClass {
        guard let u = Unicode.Scalar(v) else { return [] }
        var c: CharClass = []
        let p = u.properties
        switch p.generalCategory {
        case .uppercaseLetter, .titlecaseLetter: c.formUnion([.letter, .kimiUpper])
        case .lowercaseLetter: c.formUnion([.letter, .kimiLower])
        case .modifierLetter, .otherLetter: c.formUnion([.letter, .kimiUpper, .kimiLower])
        case .nonspacingMark, .spacingMark, .enclosingMark: c.formUnion([.mark, .kimiUpper, .kimiLower])
        case .decimalNumber, .letterNumber, .otherNumber: c.formUnion([.number, .numeric])
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: c.insert(.punct)
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol: c.insert(.symbol)
        default: break
        }
        if p.isWhitespace { c.insert(.space) }
        if p.isAlphabetic || c.contains(.mark) || p.generalCategory == .decimalNumber
            || p.generalCategory == .connectorPunctuation || p.isJoinControl { c.insert(.word) }
        if han.contains(where: { $0.contains(v) }) {
            c.insert(.han)
            c.remove([.kimiUpper, .kimiLower])
        }
        if py.contains(where: { $0.contains(v) }) { c.insert(.pySpace) }
        return c
    }

    @inline(__always)
    func classOf(_ v: UInt32) -> CharClass {
        if v >= 0x110000 { return [] }
        return CharClass(rawValue: stage2[Int(stage1[Int(v >> 8)]) &* 256 &+ Int(v & 0xFF)])
    }
}
