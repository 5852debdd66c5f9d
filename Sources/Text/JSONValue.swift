// Ordered JSON values: parsing with line:column errors and compact serialization; object keys keep insertion order.

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
/// like Python's `json.loads`.
public struct JSONObject: Sendable, Equatable, Sequence {
    public private(set) var keys: [String] = []
    private var storage: [String: JSONValue] = [:]

    public init() {}

    public init(_ pairs: [(String, JSONValue)]) {
        for (k, v) in pairs { self[k] = v }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    /// Setting nil removes the key (O(n) in the number of keys).
    public subscript(key: String) -> JSONValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public func makeIterator() -> AnyIterator<(key: String, value: JSONValue)> {
        var i = 0
        return AnyIterator {
            guard i < keys.count else { return nil }
            defer { i += 1 }
            return (keys[i], storage[keys[i]]!)
        }
    }

    /// Order-sensitive: two objects with the same members in a different order render differently.
    public static func == (a: JSONObject, b: JSONObject) -> Bool { a.keys == b.keys && a.storage == b.storage }
}

extension JSONValue {
    /// Parses UTF-8 JSON text (RFC 8259; no comments, no trailing commas, NaN/Infinity rejected).
    public static func parse(_ text: String) throws(TextError) -> JSONValue {
        var text = text
        let result: Result<JSONValue, TextError> = text.withUTF8 { buf in
            var p = JSONParser(buf)
            do throws(TextError) { return .success(try p.parseDocument()) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Parses UTF-8 bytes; invalid UTF-8 is an error naming its position.
    public static func parse(_ bytes: some Collection<UInt8>) throws(TextError) -> JSONValue {
        let array = Array(bytes)
        let result: Result<JSONValue, TextError> = array.withUnsafeBufferPointer { buf in
            do throws(TextError) {
                try JSONParser.validateUTF8(buf)
                var p = JSONParser(buf)
                return .success(try p.parseDocument())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
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

/// Recursive-descent parser over UTF-8 bytes; positions are turned into line:column only when failing.
struct JSONParser {
    let buf: UnsafeBufferPointer<UInt8>
    var pos = 0
    var depth = 0
    static let maxDepth = 512

    init(_ buf: UnsafeBufferPointer<UInt8>) { self.buf = buf }

    static func validateUTF8(_ buf: UnsafeBufferPointer<UInt8>) throws(TextError) {
        var decoder = UTF8()
        var consumed = 0
        // Count bytes as they are consumed so the error can name where the bad byte is.
        var counter = CountingIterator(base: buf.makeIterator(), count: 0)
        while true {
            let before = counter.count
            switch decoder.decode(&counter) {
            case .scalarValue: consumed = counter.count
            case .emptyInput: return
            case .error:
                var p = JSONParser(buf)
                p.pos = max(before, consumed)
                throw p.error("invalid UTF-8")
            }
        }
    }

    struct CountingIterator: IteratorProtocol {
        var base: UnsafeBufferPointer<UInt8>.Iterator
        var count: Int
        mutating func next() -> UInt8? {
            guard let b = base.next() else { return nil }
            count += 1
            return b
        }
    }

    func error(_ what: String) -> TextError {
        var line = 1, col = 1, i = 0
        let end = min(pos, buf.count)
        while i < end {
            let b = buf[i]
            if b == 0x0A { line += 1; col = 1 } else if b & 0xC0 != 0x80 { col += 1 }
            i += 1
        }
        return TextError(.unreadable, "invalid JSON at line \(line), column \(col): \(what)")
    }

    mutating func skipSpace() {
        while pos < buf.count {
            let b = buf[pos]
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { pos += 1 } else { return }
        }
    }

    mutating func parseDocument() throws(TextError) -> JSONValue {
        skipSpace()
        let v = try parseValue()
        skipSpace()
        if pos < buf.count { throw error("unexpected data after the JSON value") }
        return v
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
        default: throw error("unexpected character '\(Character(Unicode.Scalar(buf[pos])))'")
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
            obj[key] = try parseValue()
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

    mutating func parseString() throws(TextError) -> String {
        pos += 1
        let start = pos
        // Fast path: no escapes.
        while pos < buf.count {
            let b = buf[pos]
            if b == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<pos]), as: UTF8.self)
                pos += 1
                return s
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw error("control character in string") }
            pos += 1
        }
        var bytes = Array(buf[start..<pos])
        while true {
            guard pos < buf.count else { throw error("unterminated string") }
            let b = buf[pos]
            if b == UInt8(ascii: "\"") { pos += 1; break }
            if b < 0x20 { throw error("control character in string") }
            if b != UInt8(ascii: "\\") { bytes.append(b); pos += 1; continue }
            pos += 1
            guard pos < buf.count else { throw error("unterminated string") }
            let e = buf[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): bytes.append(0x22)
            case UInt8(ascii: "\\"): bytes.append(0x5C)
            case UInt8(ascii: "/"): bytes.append(0x2F)
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
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
                let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                bytes.append(contentsOf: String(scalar).utf8)
            default: pos -= 1; throw error("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    mutating func parseNumber() throws(TextError) -> JSONValue {
        let start = pos
        var isInt = true
        if buf[pos] == UInt8(ascii: "-") { pos += 1 }
        func digits(_ p: inout Int) -> Int {
            let s = p
            while p < buf.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(buf[p]) { p += 1 }
            return p - s
        }
        guard pos < buf.count else { throw error("invalid number") }
        if buf[pos] == UInt8(ascii: "0") {
            pos += 1
        } else if digits(&pos) == 0 {
            throw error("invalid number")
        }
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
        let text = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<pos]), as: UTF8.self)
        if isInt, let i = Int(text) { return .int(i) }
        guard let d = Double(text) else { throw error("invalid number") }
        return .double(d)
    }
}
