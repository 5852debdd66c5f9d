// Streamed detokenization: text deltas that are always whole UTF-8 characters and whose concatenation equals
// the whole decode, and stop strings matched on the accumulated text without ever emitting them.

/// Turns token ids into text deltas as they are generated.
///
/// A byte-level token may end inside a multi-byte character. The decoder holds back a trailing sequence that
/// is still a valid beginning of a UTF-8 character and emits everything before it. The held bytes start at a
/// lead byte, so no decoding attempt of the bytes before them can reach into them, and the deltas decode to
/// exactly what decoding all bytes at once gives (U+FFFD included, where the bytes really are invalid).
public struct StreamingDecoder: Sendable {
    private let bytesOf: @Sendable (Int) -> [UInt8]
    private var pending: [UInt8] = []

    /// `skipSpecialTokens` drops special tokens from the text, as `Tokenizer.decode(_:skipSpecialTokens:)` does.
    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {
        bytesOf = { id in skipSpecialTokens && tokenizer.isSpecial(id) ? [] : tokenizer.tokenBytes(id) }
    }

    /// A decoder over any id -> bytes mapping (tests, other vocabularies).
    public init(bytes: @escaping @Sendable (Int) -> [UInt8]) {
        bytesOf = bytes
    }

    /// Adds one token; returns the text that is now complete (possibly empty).
    public mutating func push(_ id: Int) -> String {
        pending += bytesOf(id)
        let cut = Self.completePrefixLength(pending)
        guard cut > 0 else { return "" }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// The held bytes at the end of the stream (a character that never completed decodes to U+FFFD).
    public mutating func finish() -> String {
        defer { pending = [] }
        return pending.isEmpty ? "" : String(decoding: pending, as: UTF8.self)
    }

    /// Length of `bytes` without a trailing, still-completable start of a UTF-8 character.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        // A character has at most 4 bytes, so its lead byte is among the last 3 when it is incomplete.
        var lead = n - 1
        while lead >= 0 && lead >= n - 3 && bytes[lead] & 0xC0 == 0x80 { lead -= 1 }
        guard lead >= 0 && lead >= n - 3 else { return n }
        let b0 = bytes[lead]
        let length: Int
        switch b0 {
        case 0xC2...0xDF: length = 2
        case 0xE0...0xEF: length = 3
        case 0xF0...0xF4: length = 4
        default: return n  // ASCII or a byte that never starts a character: nothing to wait for
        }
        let have = n - lead
        guard have < length else { return n }
        // The second byte's range depends on the lead (no overlongs, no surrogates, nothing past U+10FFFF).
        if have >= 2 {
            let b1 = bytes[lead + 1]
            let ok: Bool
            switch b0 {
            case 0xE0: ok = (0xA0...0xBF).contains(b1)
            case 0xED: ok = (0x80...0x9F).contains(b1)
            case 0xF0: ok = (0x90...0xBF).contains(b1)
            case 0xF4: ok = (0x80...0x8F).contains(b1)
            default: ok = true
            }
            if !ok { return n }
        }
        return lead
    }
}

/// Matches stop strings on generated text. Text that could still grow into a stop string is held back; the
/// text of a matched stop string is never emitted; `finish` flushes a held tail when generation ends.
public struct StopMatcher: Sendable {
    private let stops: [[Unicode.Scalar]]
    private var held: [Unicode.Scalar] = []
    public private(set) var stopped = false
    /// The stop string that ended the text, once one has.
    public private(set) var matched: String?

    public init(stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }.map { Array($0.unicodeScalars) }
    }

    /// Adds generated text; returns what may be shown now. After a match, `stopped` is true and later pushes
    /// return nothing.
    public mutating func push(_ text: String) -> String {
        guard !stopped else { return "" }
        guard !stops.isEmpty else { return text }
        held += text.unicodeScalars
        // The earliest match wins; on a tie at one position the longest stop string.
        var best: (at: Int, stop: Int)?
        for (k, stop) in stops.enumerated() {
            if let at = Self.firstIndex(of: stop, in: held), best == nil || at < best!.at
                || (at == best!.at && stop.count > stops[best!.stop].count) {
                best = (at, k)
            }
        }
        if let best {
            stopped = true
            matched = String(String.UnicodeScalarView(stops[best.stop]))
            let out = String(String.UnicodeScalarView(held[..<best.at]))
            held = []
            return out
        }
        // Hold the longest suffix that is a proper prefix of some stop string.
        var keep = 0
        for stop in stops {
            var m = min(stop.count - 1, held.count)
            while m > keep {
                if held[(held.count - m)...].elementsEqual(stop[..<m]) { keep = m; break }
                m -= 1
            }
        }
        let out = String(String.UnicodeScalarView(held[..<(held.count - keep)]))
        held.removeFirst(held.count - keep)
        return out
    }

    /// The held-back tail, when generation ends without a match.
    public mutating func finish() -> String {
        defer { held = [] }
        return stopped ? "" : String(String.UnicodeScalarView(held))
    }

    private static func firstIndex(of needle: [Unicode.Scalar], in hay: [Unicode.Scalar]) -> Int? {
        guard needle.count <= hay.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] {
            if hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
        }
        return nil
    }
}
