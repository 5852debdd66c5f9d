// A small strict JSON reader for tokenizer files: ordered objects, byte offsets in syntax errors, JSON paths in field errors.

/// A parsed JSON value. Objects keep their key order (tokenizer.json's order is meaningful for nothing we
/// read, but errors and tests are easier to follow that way). Named apart from the room's JSONValue on purpose:
/// this one is internal to the tokenizer and tuned for 10 MB vocabularies.
enum TJSON: Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([TJSON])
    case object([(String, TJSON)])

    subscript(key: String) -> TJSON? {
        if case .object(let pairs) = self { return pairs.first(where: { $0.0 == key })?.1 }
        return nil
    }

    var isNull: Bool { if case .null = self { return true } else { return false } }
    var string: String? { if case .string(let s) = self { return s } else { return nil } }
    var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    var array: [TJSON]? { if case .array(let a) = self { return a } else { return nil } }
    var object: [(String, TJSON)]? { if case .object(let o) = self { return o } else { return nil } }
    var int: Int? {
        if case .number(let d) = self, d == d.rounded(), abs(d) < 9e15 { return Int(d) }
        return nil
    }
    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// Parses `bytes`; `file` names the source in errors (which carry the byte offset of the first bad byte).
    static func parse(_ bytes: [UInt8], file: String) throws(TextError) -> TJSON {
        var p = TJSONParser(file: file)
        return try bytes.withUnsafeBufferPointer { (buf) throws(TextError) -> TJSON in
            p.buf = buf
            p.skipSpace()
            let v = try p.value(depth: 0)
            p.skipSpace()
            if p.pos != buf.count { throw p.fail("unexpected data after the JSON value") }
            return v
        }
    }
}

private struct TJSONParser {
    let file: String
    var buf = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
    var pos = 0
    var scratch: [UInt8] = []

    init(file: String) { self.file = file }

    func fail(_ what: String) -> TextError {
        TextError(.unreadable, "\(file): invalid JSON at byte offset \(pos): \(what)")
    }

    mutating func skipSpace() {
        while pos < buf.count {
            let c = buf[pos]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { pos += 1 } else { break }
        }
    }

    mutating func value(depth: Int) throws(TextError) -> TJSON {
        guard depth < 512 else { throw fail("nesting deeper than 512") }
        guard pos < buf.count else { throw fail("unexpected end of input") }
        switch buf[pos] {
        case UInt8(ascii: "{"):
            pos += 1
            var pairs: [(String, TJSON)] = []
            skipSpace()
            if pos < buf.count, buf[pos] == UInt8(ascii: "}") { pos += 1; return .object(pairs) }
            while true {
                skipSpace()
                guard pos < buf.count, buf[pos] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try string()
                skipSpace()
                guard pos < buf.count, buf[pos] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                pos += 1
                skipSpace()
                pairs.append((key, try value(depth: depth + 1)))
                skipSpace()
                guard pos < buf.count else { throw fail("unexpected end of input in an object") }
                if buf[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if buf[pos] == UInt8(ascii: "}") { pos += 1; return .object(pairs) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            pos += 1
            var items: [TJSON] = []
            skipSpace()
            if pos < buf.count, buf[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try value(depth: depth + 1))
                skipSpace()
                guard pos < buf.count else { throw fail("unexpected end of input in an array") }
                if buf[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if buf[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        default:
            return try number()
        }
    }

    mutating func literal(_ word: StaticString, _ v: TJSON) throws(TextError) -> TJSON {
        let n = word.utf8CodeUnitCount
        guard pos + n <= buf.count else { throw fail("unexpected end of input") }
        for i in 0..<n where buf[pos + i] != word.utf8Start[i] { throw fail("unknown literal") }
        pos += n
        return v
    }

    mutating func number() throws(TextError) -> TJSON {
        let start = pos
        while pos < buf.count {
            let c = buf[pos]
            if (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".")
                || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") { pos += 1 } else { break }
        }
        guard pos > start, let d = Double(String(decoding: buf[start..<pos], as: UTF8.self)) else {
            pos = start
            throw fail("expected a value")
        }
        return .number(d)
    }

    /// Reads a string at `pos` (which is at the opening quote); validates UTF-8 and escapes.
    mutating func string() throws(TextError) -> String {
        pos += 1
        let start = pos
        // Fast path: no escapes.
        while pos < buf.count {
            let c = buf[pos]
            if c == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: buf[start..<pos])
                guard let s = String(validating: slice, as: UTF8.self) else {
                    pos = start
                    throw fail("string is not valid UTF-8")
                }
                pos += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail("control character in a string") }
            pos += 1
        }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: buf[start..<pos])
        while pos < buf.count {
            let c = buf[pos]
            if c == UInt8(ascii: "\"") {
                pos += 1
                guard let s = String(validating: scratch, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
                return s
            }
            if c < 0x20 { throw fail("control character in a string") }
            if c != UInt8(ascii: "\\") { scratch.append(c); pos += 1; continue }
            pos += 1
            guard pos < buf.count else { break }
            let e = buf[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): scratch.append(0x22)
            case UInt8(ascii: "\\"): scratch.append(0x5C)
            case UInt8(ascii: "/"): scratch.append(0x2F)
            case UInt8(ascii: "b"): scratch.append(0x08)
            case UInt8(ascii: "f"): scratch.append(0x0C)
            case UInt8(ascii: "n"): scratch.append(0x0A)
            case UInt8(ascii: "r"): scratch.append(0x0D)
            case UInt8(ascii: "t"): scratch.append(0x09)
            case UInt8(ascii: "u"):
                var v = try hex4()
                if v >= 0xD800 && v < 0xDC00 {
                    // A surrogate pair; serde_json rejects lone surrogates, so do we.
                    guard pos + 6 <= buf.count, buf[pos] == UInt8(ascii: "\\"), buf[pos + 1] == UInt8(ascii: "u") else {
                        throw fail("lone surrogate in \\u escape")
                    }
                    pos += 2
                    let lo = try hex4()
                    guard lo >= 0xDC00 && lo < 0xE000 else { throw fail("bad low surrogate in \\u escape") }
                    v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
                } else if v >= 0xDC00 && v < 0xE000 {
                    throw fail("lone surrogate in \\u escape")
                }
                guard let u = Unicode.Scalar(v) else { throw fail("bad \\u escape") }
                UTF8.encode(u) { scratch.append($0) }
            default:
                pos -= 1
                throw fail("unknown escape")
            }
        }
        throw fail("unterminated string")
    }

    mutating func hex4() throws(TextError) -> UInt32 {
        guard pos + 4 <= buf.count else { throw fail("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = buf[pos]
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x41 + 10
            case 0x61...0x66: d = c - 0x61 + 10
            default: throw fail("bad hex digit in \\u escape")
            }
            v = v << 4 | UInt32(d)
            pos += 1
        }
        return v
    }
}
