// Ordered JSON values: parsing with line:column (and, for files, byte offset) errors and compact serialization.

/// A JSON value whose objects remember key order (Foundation's JSONSerialization does not, and the order of tool
/// arguments is visible in rendered prompts through `tojson`).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// Integers that fit in `Int`; larger ones parse as `.double` (Python would keep them exact).
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// Member of an object, nil when absent or not an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var objectValue: JSONObject? { if case .object(let o) = self { return o } else { return nil } }
}

/// A JSON object: string keys in insertion order; a repeated key keeps its first position and its last value,
/// like Python's `json.loads`. Keys are told apart by their UTF-8 bytes, as Python and serde_json tell them apart
/// (Swift's `==` would also equate canonically equivalent spellings, and its hashing normalizes every non-ASCII
/// key first, which made a 130k-token vocabulary slow to read).
public struct JSONObject: Sendable, Equatable, Sequence {
    public private(set) var keys: [String] = []
    private var values: [JSONValue] = []
    /// Open addressing over `keys`: position or -1, power-of-two sized; empty while the object is small enough that
    /// a linear scan beats hashing (messages and tool schemas have a handful of keys, vocabularies 100k+).
    private var slots: [Int32] = []
    private static let linearLimit = 8

    public init() {}

    public init(_ pairs: [(String, JSONValue)]) {
        for (k, v) in pairs { set(k, v) }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    /// Setting nil removes the key (O(n) in the number of keys).
    public subscript(key: String) -> JSONValue? {
        get { position(of: key).map { values[$0] } }
        set {
            if let newValue {
                set(key, newValue)
            } else if let i = position(of: key) {
                keys.remove(at: i)
                values.remove(at: i)
                rehash()
            }
        }
    }

    /// Adds or replaces (the parser's path for every member).
    mutating func set(_ key: String, _ value: JSONValue) {
        if slots.isEmpty {
            if let i = keys.firstIndex(where: { Self.same($0, key) }) { values[i] = value; return }
            keys.append(key)
            values.append(value)
            if keys.count > Self.linearLimit { rehash() }
            return
        }
        let slot = find(key)
        if slots[slot] >= 0 { values[Int(slots[slot])] = value; return }
        slots[slot] = Int32(keys.count)
        keys.append(key)
        values.append(value)
        if keys.count * 2 > slots.count { rehash() }
    }

    private func position(of key: String) -> Int? {
        if slots.isEmpty { return keys.firstIndex(where: { Self.same($0, key) }) }
        let p = slots[find(key)]
        return p >= 0 ? Int(p) : nil
    }

    /// The slot holding `key`, or the empty slot where it would go.
    private func find(_ key: String) -> Int {
        let mask = slots.count - 1
        var h = Self.hash(key) & mask
        while slots[h] >= 0 && !Self.same(keys[Int(slots[h])], key) { h = (h + 1) & mask }
        return h
    }

    private mutating func rehash() {
        guard keys.count > Self.linearLimit else { slots = []; return }
        var cap = 16
        while cap < keys.count * 4 { cap <<= 1 }
        slots = [Int32](repeating: -1, count: cap)
        let mask = cap - 1
        for (i, k) in keys.enumerated() {
            var h = Self.hash(k) & mask
            while slots[h] >= 0 { h = (h + 1) & mask }
            slots[h] = Int32(i)
        }
    }

    private static func hash(_ key: String) -> Int {
        key.utf8.withContiguousStorageIfAvailable(BytesTable.hash) ?? Array(key.utf8).withUnsafeBufferPointer(BytesTable.hash)
    }

    private static func same(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    public struct Iterator: IteratorProtocol {
        let object: JSONObject
        var i = 0
        public mutating func next() -> (key: String, value: JSONValue)? {
            guard i < object.keys.count else { return nil }
            defer { i += 1 }
            return (object.keys[i], object.values[i])
        }
    }

    public func makeIterator() -> Iterator { Iterator(object: self) }

    /// Order-sensitive: two objects with the same members in a different order render differently.
    public static func == (a: JSONObject, b: JSONObject) -> Bool { a.keys == b.keys && a.values == b.values }
}

extension JSONValue {
    /// Parses UTF-8 JSON text (RFC 8259; no comments, no trailing commas, NaN/Infinity rejected).
    public static func parse(_ text: String) throws(TextError) -> JSONValue {
        var text = text
        // withUTF8's closure cannot throw a typed error; carry it out in a Result.
        let result = text.withUTF8 { buf -> Result<JSONValue, TextError> in
            do throws(TextError) { return .success(try JSONParser.parse(buf, file: nil)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Parses UTF-8 bytes; invalid UTF-8 is an error naming its position. With `file`, errors start with the file's
    /// name and give the byte offset as well as line and column (`FILE: invalid JSON at byte offset N (line L,
    /// column C): ...`): what a user needs to find the spot in a multi-megabyte tokenizer.json.
    public static func parse(_ bytes: some Collection<UInt8>, file: String? = nil) throws(TextError) -> JSONValue {
        func run(_ buf: UnsafeBufferPointer<UInt8>) throws(TextError) -> JSONValue { try JSONParser.parse(buf, file: file) }
        // As above: withContiguousStorageIfAvailable's closure cannot throw a typed error.
        let direct = bytes.withContiguousStorageIfAvailable { buf -> Result<JSONValue, TextError> in
            do throws(TextError) { return .success(try run(buf)) } catch { return .failure(error) }
        }
        if let direct { return try direct.get() }
        return try Array(bytes).withUnsafeBufferPointer { (buf) throws(TextError) -> JSONValue in try run(buf) }
    }
    /// Compact serialization (`{"a":[1,2]}`), keys in stored order, non-ASCII kept as UTF-8.
    public func serialized() -> String {
        var out = ""
        JSONValue.write(self, into: &out)
        return out
    }

    static func write(_ v: JSONValue, into out: inout String) {
        switch v {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += PyFormat.floatRepr(d)
        case .string(let s): PyFormat.jsonQuote(s, asciiOnly: false, into: &out)
        case .array(let a):
            out += "["
            for (i, e) in a.enumerated() {
                if i > 0 { out += "," }
                write(e, into: &out)
            }
            out += "]"
        case .object(let o):
            out += "{"
            var first = true
            for (k, e) in o {
                if !first { out += "," }
                first = false
                PyFormat.jsonQuote(k, asciiOnly: false, into: &out)
                out += ":"
                write(e, into: &out)
            }
            out += "}"
        }
    }
}

/// Recursive-descent parser over UTF-8 bytes; positions become line:column only when failing. Strings are
/// validated as they are made (everything outside them must be ASCII), so a document is read once: tokenizer.json
/// files run to 10 MB and load on every start.
struct JSONParser {
    let buf: UnsafeBufferPointer<UInt8>
    let file: String?
    var pos = 0
    var depth = 0
    /// Reused by strings with escapes.
    var scratch: [UInt8] = []
    static let maxDepth = 512

    static func parse(_ buf: UnsafeBufferPointer<UInt8>, file: String?) throws(TextError) -> JSONValue {
        var p = JSONParser(buf: buf, file: file)
        p.skipSpace()
        let v = try p.parseValue()
        p.skipSpace()
        if p.pos < buf.count { throw p.error("unexpected data after the JSON value") }
        return v
    }

    private init(buf: UnsafeBufferPointer<UInt8>, file: String?) {
        self.buf = buf
        self.file = file
    }

    func error(_ what: String) -> TextError {
        var line = 1, col = 1, i = 0
        let end = min(pos, buf.count)
        while i < end {
            let b = buf[i]
            if b == 0x0A { line += 1; col = 1 } else if b & 0xC0 != 0x80 { col += 1 }
            i += 1
        }
        if let file { return TextError(.unreadable, "\(file): invalid JSON at byte offset \(pos) (line \(line), column \(col)): \(what)") }
        return TextError(.unreadable, "invalid JSON at line \(line), column \(col): \(what)")
    }

    /// A byte no value starts with: names the character, or says the bytes there are not UTF-8.
    func unexpectedCharacter() -> TextError {
        let b = buf[pos]
        let length = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2
        let end = min(pos + length, buf.count)
        guard end - pos == length, let c = String(validating: UnsafeBufferPointer(rebasing: buf[pos..<end]), as: UTF8.self) else {
            return error("invalid UTF-8")
        }
        return error("unexpected character '\(c)'")
    }

    mutating func skipSpace() {
        while pos < buf.count {
            let b = buf[pos]
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { pos += 1 } else { return }
        }
    }

    mutating func parseValue() throws(TextError) -> JSONValue {
        guard pos < buf.count else { throw error("unexpected end of input") }
        switch buf[pos] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw unexpectedCharacter()
        }
    }

    mutating func literal(_ word: StaticString) throws(TextError) {
        let n = word.utf8CodeUnitCount
        guard pos + n <= buf.count else { throw error("unexpected end of input") }
        for i in 0..<n where buf[pos + i] != word.utf8Start[i] { throw error("invalid literal") }
        pos += n
    }

    mutating func enter() throws(TextError) {
        depth += 1
        if depth > JSONParser.maxDepth { throw error("nesting deeper than \(JSONParser.maxDepth)") }
    }

    mutating func parseObject() throws(TextError) -> JSONValue {
        try enter()
        pos += 1
        var obj = JSONObject()
        skipSpace()
        if pos < buf.count && buf[pos] == UInt8(ascii: "}") { pos += 1; depth -= 1; return .object(obj) }
        while true {
            skipSpace()
            guard pos < buf.count, buf[pos] == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try parseString()
            skipSpace()
            guard pos < buf.count, buf[pos] == UInt8(ascii: ":") else { throw error("expected ':'") }
            pos += 1
            skipSpace()
            obj.set(key, try parseValue())
            skipSpace()
            guard pos < buf.count else { throw error("unexpected end of input in object") }
            if buf[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if buf[pos] == UInt8(ascii: "}") { pos += 1; break }
            throw error("expected ',' or '}'")
        }
        depth -= 1
        return .object(obj)
    }

    mutating func parseArray() throws(TextError) -> JSONValue {
        try enter()
        pos += 1
        var arr: [JSONValue] = []
        skipSpace()
        if pos < buf.count && buf[pos] == UInt8(ascii: "]") { pos += 1; depth -= 1; return .array(arr) }
        while true {
            skipSpace()
            arr.append(try parseValue())
            skipSpace()
            guard pos < buf.count else { throw error("unexpected end of input in array") }
            if buf[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if buf[pos] == UInt8(ascii: "]") { pos += 1; break }
            throw error("expected ',' or ']'")
        }
        depth -= 1
        return .array(arr)
    }

    mutating func hex4() throws(TextError) -> UInt32 {
        guard pos + 4 <= buf.count else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = buf[pos]
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
            default: throw error("invalid \\u escape")
            }
            v = v << 4 | UInt32(d)
            pos += 1
        }
        return v
    }

    /// The string whose raw bytes are `start..<pos`, made from `bytes` (the same bytes, escapes decoded). Escapes
    /// only add whole characters, so the first bad byte of the raw text is the one to report.
    func validString(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) throws(TextError) -> String {
        if let s = String(validating: bytes, as: UTF8.self) { return s }
        var at = self
        at.pos = start + (firstInvalidUTF8(UnsafeBufferPointer(rebasing: buf[start..<pos])) ?? 0)
        throw at.error("invalid UTF-8")
    }

    mutating func parseString() throws(TextError) -> String {
        pos += 1
        let start = pos
        // Fast path: no escapes, the string is the bytes in place.
        while pos < buf.count {
            let b = buf[pos]
            if b == UInt8(ascii: "\"") {
                let s = try validString(UnsafeBufferPointer(rebasing: buf[start..<pos]), from: start)
                pos += 1
                return s
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw error("control character in string") }
            pos += 1
        }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: buf[start..<pos]))
        while true {
            guard pos < buf.count else { throw error("unterminated string") }
            let b = buf[pos]
            if b == UInt8(ascii: "\"") { break }
            if b < 0x20 { throw error("control character in string") }
            if b != UInt8(ascii: "\\") { scratch.append(b); pos += 1; continue }
            pos += 1
            guard pos < buf.count else { throw error("unterminated string") }
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
                var code = try hex4()
                if (0xD800..<0xDC00).contains(code), pos + 1 < buf.count,
                   buf[pos] == UInt8(ascii: "\\"), buf[pos + 1] == UInt8(ascii: "u") {
                    let save = pos
                    pos += 2
                    let low = try hex4()
                    if (0xDC00..<0xE000).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        pos = save
                    }
                }
                // Lone surrogates cannot live in a Swift String; they become U+FFFD.
                UTF8.encode(Unicode.Scalar(code) ?? "\u{FFFD}") { scratch.append($0) }
            default: pos -= 1; throw error("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
            }
        }
        let s = try scratch.withUnsafeBufferPointer { (bytes) throws(TextError) -> String in try validString(bytes, from: start) }
        pos += 1
        return s
    }

    /// Integers are read in place (a vocabulary is 100k+ of them); fractions and exponents go through Double's parser.
    mutating func parseNumber() throws(TextError) -> JSONValue {
        let start = pos
        let negative = buf[pos] == UInt8(ascii: "-")
        if negative { pos += 1 }
        func digits(_ p: inout Int) -> Int {
            let s = p
            while p < buf.count, buf[p] &- UInt8(ascii: "0") < 10 { p += 1 }
            return p - s
        }
        guard pos < buf.count else { throw error("invalid number") }
        let intStart = pos
        if buf[pos] == UInt8(ascii: "0") {
            pos += 1
        } else if digits(&pos) == 0 {
            throw error("invalid number")
        }
        let intEnd = pos
        var isInt = true
        if pos < buf.count, buf[pos] == UInt8(ascii: ".") {
            pos += 1
            isInt = false
            if digits(&pos) == 0 { throw error("digits expected after '.'") }
        }
        if pos < buf.count, buf[pos] == UInt8(ascii: "e") || buf[pos] == UInt8(ascii: "E") {
            pos += 1
            isInt = false
            if pos < buf.count, buf[pos] == UInt8(ascii: "+") || buf[pos] == UInt8(ascii: "-") { pos += 1 }
            if digits(&pos) == 0 { throw error("digits expected in exponent") }
        }
        if isInt {
            // Accumulated as a negative number so that Int.min fits; an overflow falls through to Double.
            var v = 0, overflow = false
            for i in intStart..<intEnd {
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (s, o2) = m.subtractingReportingOverflow(Int(buf[i] &- UInt8(ascii: "0")))
                v = s
                overflow = overflow || o1 || o2
            }
            if !overflow && negative { return .int(v) }
            if !overflow && v != .min { return .int(-v) }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<pos]), as: UTF8.self)
        guard let d = Double(text) else { throw error("invalid number") }
        return .double(d)
    }
}

/// Offset of the first byte that is not part of valid UTF-8 (no overlongs, surrogates or values past U+10FFFF),
/// or nil.
func firstInvalidUTF8(_ b: UnsafeBufferPointer<UInt8>) -> Int? {
    var i = 0
    let n = b.count
    while i < n {
        let c = b[i]
        if c < 0x80 { i += 1; continue }
        let len: Int, minV: UInt32
        if c & 0xE0 == 0xC0 { len = 2; minV = 0x80 } else if c & 0xF0 == 0xE0 { len = 3; minV = 0x800 }
        else if c & 0xF8 == 0xF0 { len = 4; minV = 0x10000 } else { return i }
        guard i + len <= n else { return i }
        var v = UInt32(c) & (0xFF >> (len + 1))
        for k in 1..<len {
            guard b[i + k] & 0xC0 == 0x80 else { return i }
            v = v << 6 | UInt32(b[i + k] & 0x3F)
        }
        if v < minV || v > 0x10FFFF || (v >= 0xD800 && v < 0xE000) { return i }
        i += len
    }
    return nil
}
