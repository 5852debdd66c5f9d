// Reading tokenizer files' fields from JSONValue: typed accessors, and errors that name the field's JSON path.

extension JSONValue {
    var isNull: Bool { if case .null = self { return true } else { return false } }
    var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }

    /// Ids and counts. A whole-number float ("5.0") counts too: tokenizer files were read that way before JSONValue
    /// kept integers apart, and some exporters write them.
    var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 9e15: return Int(d)
        default: return nil
        }
    }

    /// Any number as a Double (temperatures, dropout, `model_max_length: 1e30`).
    var numberValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// The word errors use for what was found instead ("must be a boolean, not a string").
    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// Throws `.unreadable` naming the offset of the first byte of `bytes` that is not UTF-8 (for the non-JSON files;
/// the JSON parser reports its own).
func requireUTF8(_ bytes: [UInt8], file: String) throws(TextError) {
    if let bad = bytes.withUnsafeBufferPointer(firstInvalidUTF8) {
        throw TextError(.unreadable, "\(file): not valid UTF-8 at byte offset \(bad)")
    }
}

/// model.vocab: token -> id, looked up in the parsed object itself. A Dictionary copy of 100k+ tokens cost more than
/// parsing the file did: Swift's String hashing normalizes each non-ASCII token first, and JSONObject hashes bytes
/// (which is also how tokenizers' Rust HashMap tells tokens apart).
struct Vocab: Sequence {
    let object: JSONObject
    /// The largest id, -1 when empty.
    let maxID: Int

    /// Checks every id once, so lookups and iteration can take them as read.
    init(_ v: JSONValue, _ r: JSONReader) throws(TextError) {
        guard let o = v.objectValue else { throw r.bad("model.vocab", "must be an object") }
        var top = -1
        for (k, v) in o {
            guard let id = v.intValue, id >= 0, id < 1 << 30 else {
                throw r.bad("model.vocab[\(quote(k))]", "must be a non-negative integer id")
            }
            top = Swift.max(top, id)
        }
        object = o
        maxID = top
    }

    var count: Int { object.count }
    subscript(token: String) -> Int? { object[token]?.intValue }

    func makeIterator() -> some IteratorProtocol<(String, Int)> {
        object.lazy.map { ($0.key, $0.value.intValue!) }.makeIterator()
    }
}

/// A token or key in double quotes with control characters, quotes and backslashes escaped, for error messages.
func quote(_ s: String) -> String {
    "\"" + s.unicodeScalars.map { $0.value < 0x20 || $0 == "\"" || $0 == "\\" ? $0.escaped(asASCII: false) : String($0) }.joined() + "\""
}

/// Field access with JSON paths in the errors.
struct JSONReader {
    let file: String

    func bad(_ path: String, _ what: String) -> TextError {
        TextError(.badField, "\(file): \(path.isEmpty ? "the top level" : path) \(what)")
    }

    func need(_ v: JSONValue, _ key: String, _ path: String) throws(TextError) -> JSONValue {
        guard let x = v[key] else { throw bad(path.isEmpty ? key : "\(path).\(key)", "is missing") }
        return x
    }

    func needString(_ v: JSONValue, _ key: String, _ path: String) throws(TextError) -> String {
        guard let s = try need(v, key, path).stringValue else { throw bad("\(path).\(key)", "must be a string") }
        return s
    }

    func optString(_ v: JSONValue, _ key: String, _ path: String) throws(TextError) -> String? {
        guard let x = v[key], !x.isNull else { return nil }
        guard let s = x.stringValue else { throw bad("\(path).\(key)", "must be a string or null, not \(x.typeName)") }
        return s
    }

    func optBool(_ v: JSONValue, _ key: String, _ path: String) throws(TextError) -> Bool? {
        guard let x = v[key], !x.isNull else { return nil }
        guard let b = x.boolValue else { throw bad("\(path).\(key)", "must be a boolean, not \(x.typeName)") }
        return b
    }

    func type(_ v: JSONValue, _ path: String) throws(TextError) -> String {
        guard v.objectValue != nil else { throw bad(path, "must be an object") }
        return try needString(v, "type", path)
    }
}
