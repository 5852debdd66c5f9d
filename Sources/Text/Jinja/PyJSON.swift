// transformers' `tojson` filter: Python `json.dumps(x, ensure_ascii, indent, separators, sort_keys)` byte for byte.

struct PyJSON {
    var asciiOnly = false
    /// nil: single line; otherwise the text repeated once per nesting level after each newline.
    var indent: String?
    var itemSeparator = ", "
    var keySeparator = ": "
    var sortKeys = false

    /// Binds transformers' signature `tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
    init(_ a: CallArgs, _ p: Pos) throws(JinjaError) {
        let args = try a.bind(["ensure_ascii", "indent", "separators", "sort_keys"], "tojson", at: p)
        asciiOnly = args[0]?.truthy ?? false
        switch args[1] {
        case nil, .none?: indent = nil
        case .string(let s)?: indent = s
        case let v?:
            guard case .int(let n)? = v.number else {
                throw Ops.typeError("indent must be an int or a str, not \(v.typeName)", v, pos: p)
            }
            indent = String(repeating: " ", count: max(0, n))
        }
        if indent != nil { itemSeparator = "," }
        switch args[2] {
        case nil, .none?: break
        case .list(let pair)?, .tuple(let pair)?:
            guard pair.count == 2, case .string(let item) = pair[0], case .string(let key) = pair[1] else {
                throw JinjaError(message: "separators must be a pair of strings", pos: p)
            }
            itemSeparator = item
            keySeparator = key
        case let v?:
            throw Ops.typeError("separators must be a tuple, not \(v.typeName)", v, pos: p)
        }
        sortKeys = args[3]?.truthy ?? false
    }

    func dumps(_ v: Value, _ p: Pos) throws(JinjaError) -> String {
        var out = ""
        try write(v, level: 0, into: &out, p)
        return out
    }

    private func newline(_ level: Int, into out: inout String) {
        guard let indent else { return }
        out += "\n"
        for _ in 0..<level { out += indent }
    }

    private func keyText(_ k: Value, _ p: Pos) throws(JinjaError) -> String {
        switch k {
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return Self.floatText(d)
        case .none: return "null"
        default:
            throw Ops.typeError("keys must be str, int, float, bool or None, not \(k.typeName)", k, pos: p)
        }
    }

    private static func floatText(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        return PyFormat.floatRepr(d)
    }

    private func write(_ v: Value, level: Int, into out: inout String, _ p: Pos) throws(JinjaError) {
        switch v {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += Self.floatText(d)
        case .string(let s): PyFormat.jsonQuote(s, asciiOnly: asciiOnly, into: &out)
        case .list(let items), .tuple(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(level + 1, into: &out)
                try write(item, level: level + 1, into: &out, p)
            }
            newline(level, into: &out)
            out += "]"
        case .dict(let d):
            if d.isEmpty { out += "{}"; return }
            var entries: [(String, Value)] = []
            for (k, x) in d.pairs { entries.append((try keyText(k, p), x)) }
            if sortKeys {
                entries.sort { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) }
            }
            out += "{"
            for (i, (k, x)) in entries.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(level + 1, into: &out)
                PyFormat.jsonQuote(k, asciiOnly: asciiOnly, into: &out)
                out += keySeparator
                try write(x, level: level + 1, into: &out, p)
            }
            newline(level, into: &out)
            out += "}"
        default:
            throw JinjaError(message: "Object of type \(v.typeName) is not JSON serializable", pos: p)
        }
    }
}
