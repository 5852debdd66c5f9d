// jinja2's built-in filters (the subset chat templates use) plus transformers' `tojson`.

enum Filters {
    static let names: Set<String> = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "first",
        "float", "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject",
        "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum",
        "title", "tojson", "trim", "unique", "upper", "wordcount",
    ]

    static func apply(_ name: String, _ v: Value, _ a: CallArgs, _ p: Pos) throws(JinjaError) -> Value {
        func bind(_ params: [String]) throws(JinjaError) -> [Value?] { try a.bind(params, name, at: p) }
        switch name {
        case "tojson":
            return .string(try PyJSON(a, p).dumps(v, p))
        case "length", "count":
            switch v {
            case .string(let s): return .int(s.unicodeScalars.count)
            case .list(let x), .tuple(let x): return .int(x.count)
            case .dict(let d): return .int(d.count)
            case .undefined: return .int(0)
            case .namespace(let n): return .int(n.attrs.count)
            default: throw JinjaError(message: "object of type '\(v.typeName)' has no len()", pos: p)
            }
        case "default", "d":
            let args = try bind(["default_value", "boolean"])
            let useDefault = v.isUndefined || (args[1]?.truthy ?? false) && !v.truthy
            return useDefault ? (args[0] ?? .string("")) : v
        case "string": return .string(v.pyStr)
        case "safe": return .string(v.pyStr)
        case "escape", "e": return .string(htmlEscape(v.pyStr))
        case "upper": return .string(v.pyStr.uppercased())
        case "lower": return .string(v.pyStr.lowercased())
        case "capitalize": return .string(PyString.capitalize(v.pyStr))
        case "title": return .string(title(v.pyStr))
        case "trim":
            let chars = try bind(["chars"])[0]
            return .string(PyString.strip(v.pyStr, chars.flatMap { $0.isNone ? nil : $0.pyStr }, left: true, right: true))
        case "replace":
            let args = try bind(["old", "new", "count"])
            var count = -1
            if let c = args[2], case .int(let n)? = c.number { count = n }
            return .string(PyString.replace(v.pyStr, args[0]?.pyStr ?? "", args[1]?.pyStr ?? "", count: count))
        case "center":
            let args = try bind(["width"])
            return try Methods.call(.string(v.pyStr), "center", CallArgs(positional: [args[0] ?? .int(80)]), p)
        case "indent": return .string(try indent(v.pyStr, try bind(["width", "first", "blank"])))
        case "wordcount":
            var n = 0, inWord = false
            for c in v.pyStr.unicodeScalars {
                let w = c == "_" || PyString.isAlpha(c) || PyString.isNumeric(c)
                if w && !inWord { n += 1 }
                inWord = w
            }
            return .int(n)
        case "int": return try toInt(v, try bind(["default", "base"]), p)
        case "float":
            let def = try bind(["default"])[0] ?? .double(0)
            switch v {
            case .double: return v
            case .int(let i): return .double(Double(i))
            case .bool(let b): return .double(b ? 1 : 0)
            case .string(let s):
                let t = PyString.strip(s, nil, left: true, right: true).replacingUnderscores()
                if let d = Double(t) { return .double(d) }
                switch t.lowercased() {
                case "inf", "+inf", "infinity", "+infinity": return .double(.infinity)
                case "-inf", "-infinity": return .double(-.infinity)
                case "nan", "+nan", "-nan": return .double(.nan)
                default: return def
                }
            default: return def
            }
        case "abs":
            switch v.number {
            case .int(let i)?: return .int(abs(i))
            case .double(let d)?: return .double(abs(d))
            default: throw Ops.typeError("bad operand type for abs(): '\(v.typeName)'", v, pos: p)
            }
        case "round":
            let args = try bind(["precision", "method"])
            guard let n = v.number else { throw Ops.typeError("type \(v.typeName) doesn't define __round__", v, pos: p) }
            var precision = 0
            if case .int(let x)? = args[0]?.number { precision = x }
            let method = args[1]?.pyStr ?? "common"
            guard ["common", "ceil", "floor"].contains(method) else {
                throw JinjaError(message: "method must be common, ceil or floor", pos: p)
            }
            if method == "common", case .int(let i) = n { return .int(i) }
            let scale = powDouble(10, Double(precision))
            let x = n.asDouble * scale
            let r = method == "ceil" ? x.rounded(.up) : method == "floor" ? x.rounded(.down)
                : x.rounded(.toNearestOrEven)
            return .double(r / scale)
        case "list": return .list(try pyIterate(v, p))
        case "items":
            switch v {
            case .dict(let d): return .list(d.pairs.map { .tuple([$0, $1]) })
            case .undefined: return .list([])
            default: throw JinjaError(message: "Can only get item pairs from a mapping.", pos: p)
            }
        case "first", "last":
            let items = try pyIterate(v, p)
            guard let x = name == "first" ? items.first : items.last else {
                return .undefined("No \(name) item, sequence was empty.")
            }
            return x
        case "reverse":
            if case .string(let s) = v { return .string(PyString.make(s.unicodeScalars.reversed())) }
            return .list(try pyIterate(v, p).reversed())
        case "join":
            let args = try bind(["d", "attribute"])
            var items = try pyIterate(v, p)
            if let attr = args[1] { items = try items.map { (x) throws(JinjaError) in try attribute(x, attr, p) } }
            return .string(items.map(\.pyStr).joined(separator: args[0]?.pyStr ?? ""))
        case "attr":
            guard let n = try bind(["name"])[0] else { throw JinjaError(message: "attr needs a name", pos: p) }
            return try Ops.getAttr(v, n.pyStr, p)
        case "map": return try map(v, a, p)
        case "select", "reject", "selectattr", "rejectattr": return try select(name, v, a, p)
        case "sort":
            let args = try bind(["reverse", "case_sensitive", "attribute"])
            var items = try pyIterate(v, p)
            let keys = try sortKeys(items, args[2], caseSensitive: args[1]?.truthy ?? false, p)
            try stableSort(&items, keys, p)
            return .list(args[0]?.truthy ?? false ? items.reversed() : items)
        case "dictsort":
            let args = try bind(["case_sensitive", "by", "reverse"])
            guard case .dict(let d) = v else { throw JinjaError(message: "You can only sort by either mapping", pos: p) }
            let byValue = args[1]?.pyStr == "value"
            var items: [Value] = d.pairs.map { .tuple([$0, $1]) }
            let keys = items.map { (x) -> Value in
                guard case .tuple(let kv) = x else { return x }
                let k = kv[byValue ? 1 : 0]
                return args[0]?.truthy ?? false ? k : lowered(k)
            }
            try stableSort(&items, keys, p)
            return .list(args[2]?.truthy ?? false ? items.reversed() : items)
        case "unique":
            let args = try bind(["case_sensitive", "attribute"])
            let items = try pyIterate(v, p)
            let keys = try sortKeys(items, args[1], caseSensitive: args[0]?.truthy ?? false, p)
            var out: [Value] = [], seen: [Value] = []
            for (x, k) in zip(items, keys) where !seen.contains(where: { Value.pyEqual($0, k) }) {
                seen.append(k)
                out.append(x)
            }
            return .list(out)
        case "max", "min":
            let args = try bind(["case_sensitive", "attribute"])
            let items = try pyIterate(v, p)
            guard !items.isEmpty else { return .undefined("No aggregated item, sequence was empty.") }
            let keys = try sortKeys(items, args[1], caseSensitive: args[0]?.truthy ?? false, p)
            var best = 0
            for i in 1..<items.count {
                let c = try Ops.order(keys[i], keys[best], .lt, p)
                if name == "max" ? c > 0 : c < 0 { best = i }
            }
            return items[best]
        case "sum":
            let args = try bind(["attribute", "start"])
            var total = args[1] ?? .int(0)
            for x in try pyIterate(v, p) {
                total = try Ops.binary(.add, total, args[0].map { (at) throws(JinjaError) in try attribute(x, at, p) } ?? x, p)
            }
            return total
        case "batch":
            let args = try bind(["linecount", "fill_with"])
            guard case .int(let n)? = args[0]?.number, n > 0 else {
                throw JinjaError(message: "batch needs a positive line count", pos: p)
            }
            var out: [Value] = [], cur: [Value] = []
            for x in try pyIterate(v, p) {
                cur.append(x)
                if cur.count == n { out.append(.list(cur)); cur = [] }
            }
            if !cur.isEmpty {
                if let fill = args[1] { cur += Array(repeating: fill, count: n - cur.count) }
                out.append(.list(cur))
            }
            return .list(out)
        default:
            throw JinjaError(message: "unknown filter '\(name)'", pos: p)
        }
    }

    static func htmlEscape(_ s: String) -> String {
        var out = ""
        PyFormat.appendEscaped(s, into: &out) { c in
            switch c {
            case "&": "&amp;"
            case "<": "&lt;"
            case ">": "&gt;"
            case "\"": "&#34;"
            case "'": "&#39;"
            default: nil
            }
        }
        return out
    }

    /// jinja2's `title` filter: capitalizes after `-`, whitespace and opening brackets.
    private static func title(_ s: String) -> String {
        var out = ""
        var atStart = true
        for c in s.unicodeScalars {
            if c == "-" || c == "(" || c == "{" || c == "[" || c == "<" || isPySpace(c) {
                out.unicodeScalars.append(c)
                atStart = true
            } else {
                out += atStart ? c.properties.uppercaseMapping : c.properties.lowercaseMapping
                atStart = false
            }
        }
        return out
    }

    private static func indent(_ s: String, _ args: [Value?]) throws(JinjaError) -> String {
        var ind = "    "
        if case .string(let w)? = args[0] { ind = w } else if case .int(let n)? = args[0]?.number {
            ind = String(repeating: " ", count: max(0, n))
        }
        let lines: [String]
        if case .list(let l) = try Methods.call(.string(s + "\n"), "splitlines", CallArgs(), Pos(line: 0, col: 0)) {
            lines = l.map(\.pyStr)
        } else {
            lines = []
        }
        var rv: String
        if args[2]?.truthy ?? false {
            rv = lines.joined(separator: "\n" + ind)
        } else {
            rv = lines.first ?? ""
            if lines.count > 1 {
                rv += "\n" + lines.dropFirst().map { $0.isEmpty ? $0 : ind + $0 }.joined(separator: "\n")
            }
        }
        return (args[1]?.truthy ?? false) ? ind + rv : rv
    }

    private static func toInt(_ v: Value, _ args: [Value?], _ p: Pos) throws(JinjaError) -> Value {
        let def = args[0] ?? .int(0)
        var base = 10
        if case .int(let b)? = args[1]?.number { base = b }
        switch v {
        case .int(let i): return .int(i)
        case .bool(let b): return .int(b ? 1 : 0)
        case .double(let d):
            guard d.isFinite, let i = Int(exactly: d.rounded(.towardZero)) else { return def }
            return .int(i)
        case .string(let s):
            var t = PyString.strip(s, nil, left: true, right: true).replacingUnderscores()
            var negative = false
            if t.hasPrefix("-") || t.hasPrefix("+") { negative = t.hasPrefix("-"); t.removeFirst() }
            let prefixes = [16: "0x", 8: "0o", 2: "0b"]
            if let pre = prefixes[base], t.lowercased().hasPrefix(pre) { t.removeFirst(2) }
            if let i = Int(t, radix: base) { return .int(negative ? -i : i) }
            if base == 10, let d = Double(t), d.isFinite, let i = Int(exactly: d.rounded(.towardZero)) {
                return .int(negative ? -i : i)
            }
            return def
        default:
            return def
        }
    }

    private static func lowered(_ v: Value) -> Value {
        if case .string(let s) = v { return .string(s.lowercased()) }
        return v
    }

    /// Dotted attribute paths (`"function.name"`, `"0"`), resolved item-first like jinja2's attrgetter.
    static func attribute(_ v: Value, _ path: Value, _ p: Pos) throws(JinjaError) -> Value {
        if case .int = path { return try Ops.getItem(v, path, p) }
        var cur = v
        for part in path.pyStr.split(separator: ".", omittingEmptySubsequences: false) {
            let key: Value = Int(part).map { .int($0) } ?? .string(String(part))
            cur = try Ops.getItem(cur, key, p)
        }
        return cur
    }

    private static func sortKeys(_ items: [Value], _ attr: Value?, caseSensitive: Bool, _ p: Pos)
        throws(JinjaError) -> [Value] {
        var keys: [Value] = []
        for x in items {
            var k = x
            if let attr, !attr.isNone {
                let parts = attr.pyStr.split(separator: ",").map { Value.string(String($0)) }
                if parts.count > 1 {
                    var tuple: [Value] = []
                    for part in parts { tuple.append(try attribute(x, part, p)) }
                    k = .tuple(caseSensitive ? tuple : tuple.map(lowered))
                    keys.append(k)
                    continue
                }
                k = try attribute(x, attr, p)
            }
            keys.append(caseSensitive ? k : lowered(k))
        }
        return keys
    }

    private static func stableSort(_ items: inout [Value], _ keys: [Value], _ p: Pos) throws(JinjaError) {
        var order = Array(items.indices)
        var failure: JinjaError?
        // Merge-sort stability comes from ordering ties by original index.
        order.sort { i, j in
            guard failure == nil else { return false }
            do throws(JinjaError) {
                let c = try Ops.order(keys[i], keys[j], .lt, p)
                return c != 0 ? c < 0 : i < j
            } catch {
                failure = error
                return false
            }
        }
        if let failure { throw failure }
        items = order.map { items[$0] }
    }

    private static func map(_ v: Value, _ a: CallArgs, _ p: Pos) throws(JinjaError) -> Value {
        let items = try pyIterate(v, p)
        if let attr = a.keyword.first(where: { $0.0 == "attribute" })?.1 {
            let def = a.keyword.first { $0.0 == "default" }?.1
            var out: [Value] = []
            for x in items {
                let r = try attribute(x, attr, p)
                out.append(r.isUndefined ? (def ?? r) : r)
            }
            return .list(out)
        }
        guard let first = a.positional.first else { return .list(items) }
        let rest = CallArgs(positional: Array(a.positional.dropFirst()), keyword: a.keyword)
        var out: [Value] = []
        for x in items { out.append(try apply(first.pyStr, x, rest, p)) }
        return .list(out)
    }

    private static func select(_ name: String, _ v: Value, _ a: CallArgs, _ p: Pos) throws(JinjaError) -> Value {
        let keep = name.hasPrefix("select")
        let byAttr = name.hasSuffix("attr")
        var args = a.positional
        var attr: Value?
        if byAttr {
            guard !args.isEmpty else { throw JinjaError(message: "\(name) needs an attribute name", pos: p) }
            attr = args.removeFirst()
        }
        let test = args.isEmpty ? nil : args.removeFirst().pyStr
        var out: [Value] = []
        for x in try pyIterate(v, p) {
            let subject = try attr.map { (at) throws(JinjaError) in try attribute(x, at, p) } ?? x
            let ok = try test.map { (t) throws(JinjaError) in
                try Predicates.apply(t, subject, CallArgs(positional: args, keyword: a.keyword), p)
            } ?? subject.truthy
            if ok == keep { out.append(x) }
        }
        return .list(out)
    }
}
