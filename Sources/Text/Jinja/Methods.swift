// Python methods templates call on strings, dicts and lists, with the immutable sandbox's refusals.

enum Methods {
    static let stringMethods: Set<String> = [
        "startswith", "endswith", "split", "rsplit", "splitlines", "strip", "lstrip", "rstrip", "replace", "upper",
        "lower", "title", "capitalize", "swapcase", "find", "rfind", "index", "rindex", "count", "format", "join",
        "isdigit", "isdecimal", "isnumeric", "isalpha", "isalnum", "isspace", "isupper", "islower",
        "removeprefix", "removesuffix", "partition", "rpartition", "zfill", "center", "ljust", "rjust",
    ]
    static let dictMethods: Set<String> = ["items", "keys", "values", "get", "copy"]
    static let listMethods: Set<String> = ["count", "index", "copy"]
    /// Mutating methods: ImmutableSandboxedEnvironment refuses them (templates use `namespace` instead).
    static let unsafeDict: Set<String> = ["pop", "popitem", "setdefault", "update", "clear"]
    static let unsafeList: Set<String> = ["append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"]

    static func has(_ v: Value, _ name: String) -> Bool {
        switch v {
        case .string: return stringMethods.contains(name)
        case .dict: return dictMethods.contains(name) || unsafeDict.contains(name)
        case .list: return listMethods.contains(name) || unsafeList.contains(name)
        case .tuple: return name == "count" || name == "index"
        default: return false
        }
    }

    static func call(_ v: Value, _ name: String, _ a: CallArgs, _ p: Pos) throws(JinjaError) -> Value {
        switch v {
        case .string(let s): return try stringMethod(s, name, a, p)
        case .dict(let d):
            if unsafeDict.contains(name) { throw unsafe(name, v, p) }
            let args = try a.bind(["key", "default"], name, at: p)
            switch name {
            case "items": return .list(d.pairs.map { .tuple([$0, $1]) })
            case "keys": return .list(d.keys)
            case "values": return .list(d.values)
            case "copy": return v
            default:
                guard let key = args[0] else { throw JinjaError(message: "get expected at least 1 argument", pos: p) }
                return d[key] ?? args[1] ?? .none
            }
        case .list(let items), .tuple(let items):
            if unsafeList.contains(name) { throw unsafe(name, v, p) }
            if name == "copy" { return v }
            let args = try a.bind(["value"], name, at: p)
            let x = args[0] ?? .undefined("missing argument")
            if name == "count" { return .int(items.filter { Value.pyEqual($0, x) }.count) }
            guard let i = items.firstIndex(where: { Value.pyEqual($0, x) }) else {
                throw JinjaError(message: "value is not in list", pos: p)
            }
            return .int(i)
        default:
            throw JinjaError(message: "'\(v.typeName)' object has no attribute '\(name)'", pos: p)
        }
    }

    private static func unsafe(_ name: String, _ v: Value, _ p: Pos) -> JinjaError {
        JinjaError(message: "access to attribute '\(name)' of '\(v.typeName)' object is unsafe.", pos: p)
    }

    private static func str(_ v: Value?, _ what: String, _ p: Pos) throws(JinjaError) -> String? {
        guard let v, !v.isNone else { return nil }
        guard case .string(let s) = v else {
            throw Ops.typeError("\(what) must be str or None, not \(v.typeName)", v, pos: p)
        }
        return s
    }

    private static func int(_ v: Value?, _ def: Int, _ p: Pos) throws(JinjaError) -> Int {
        guard let v, !v.isNone else { return def }
        guard case .int(let i)? = v.number else {
            throw Ops.typeError("'\(v.typeName)' object cannot be interpreted as an integer", v, pos: p)
        }
        return i
    }

    /// Resolves Python's optional `start` / `end` arguments to a clamped scalar range.
    private static func window(_ n: Int, _ start: Value?, _ end: Value?, _ p: Pos) throws(JinjaError) -> (Int, Int) {
        func clamp(_ x: Int) -> Int { x < 0 ? max(0, x + n) : min(x, n) }
        return (clamp(try int(start, 0, p)), clamp(try int(end, n, p)))
    }

    private static func stringMethod(_ s: String, _ name: String, _ a: CallArgs, _ p: Pos) throws(JinjaError) -> Value {
        func bind(_ names: [String]) throws(JinjaError) -> [Value?] { try a.bind(names, name, at: p) }
        func allScalars(_ test: (Unicode.Scalar) -> Bool) -> Value {
            .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(test))
        }
        switch name {
        case "startswith", "endswith":
            let args = try bind(["prefix", "start", "end"])
            let sc = PyString.scalars(s)
            let (lo, hi) = try window(sc.count, args[1], args[2], p)
            var options: [String] = []
            switch args[0] {
            case .string(let x)?: options = [x]
            case .tuple(let xs)?:
                for x in xs {
                    guard case .string(let t) = x else { throw JinjaError(message: "tuple items must be str", pos: p) }
                    options.append(t)
                }
            default: throw JinjaError(message: "\(name) first arg must be str or a tuple of str", pos: p)
            }
            guard lo <= hi else { return .bool(false) }
            let part = sc[lo..<hi]
            for o in options {
                let os = PyString.scalars(o)
                if name == "startswith" ? part.starts(with: os) : part.reversed().starts(with: os.reversed()) {
                    return .bool(true)
                }
            }
            return .bool(false)
        case "split", "rsplit":
            let args = try bind(["sep", "maxsplit"])
            let sep = try str(args[0], "sep", p)
            if sep == "" { throw JinjaError(message: "empty separator", pos: p) }
            let max = try int(args[1], -1, p)
            let parts = name == "split" ? PyString.split(s, sep, max) : PyString.rsplit(s, sep, max)
            return .list(parts.map { .string($0) })
        case "splitlines":
            let args = try bind(["keepends"])
            var out: [Value] = []
            var cur = ""
            let keep = args[0]?.truthy ?? false
            for c in s.unicodeScalars {
                if [0x0A, 0x0D, 0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029].contains(c.value) {
                    if keep { cur.unicodeScalars.append(c) }
                    if c == "\n", !keep, cur.unicodeScalars.last == "\r" { continue }
                    out.append(.string(cur))
                    cur = ""
                } else {
                    cur.unicodeScalars.append(c)
                }
            }
            if !cur.isEmpty { out.append(.string(cur)) }
            return .list(out)
        case "strip", "lstrip", "rstrip":
            let chars = try str(try bind(["chars"])[0], "chars", p)
            return .string(PyString.strip(s, chars, left: name != "rstrip", right: name != "lstrip"))
        case "replace":
            let args = try bind(["old", "new", "count"])
            guard let old = try str(args[0], "old", p), let new = try str(args[1], "new", p) else {
                throw JinjaError(message: "replace expected 2 arguments", pos: p)
            }
            return .string(PyString.replace(s, old, new, count: try int(args[2], -1, p)))
        case "upper": return .string(s.uppercased())
        case "lower": return .string(s.lowercased())
        case "title": return .string(PyString.title(s))
        case "capitalize": return .string(PyString.capitalize(s))
        case "swapcase":
            return .string(s.unicodeScalars.map {
                $0.properties.isUppercase ? $0.properties.lowercaseMapping
                    : $0.properties.isLowercase ? $0.properties.uppercaseMapping : String($0)
            }.joined())
        case "find", "rfind", "index", "rindex", "count":
            let args = try bind(["sub", "start", "end"])
            guard let sub = try str(args[0], "sub", p) else { throw JinjaError(message: "\(name) needs a str", pos: p) }
            let sc = PyString.scalars(s), needle = PyString.scalars(sub)
            let (lo, hi) = try window(sc.count, args[1], args[2], p)
            if name == "count" { return .int(lo <= hi ? PyString.count(Array(sc[lo..<hi]), needle) : 0) }
            let r = name.hasPrefix("r") ? PyString.rfind(sc, needle, from: lo, to: hi)
                : PyString.find(sc, needle, from: lo, to: hi)
            if r == nil && name.hasSuffix("index") { throw JinjaError(message: "substring not found", pos: p) }
            return .int(r ?? -1)
        case "join":
            let args = try bind(["iterable"])
            var out = ""
            for (i, item) in try pyIterate(args[0] ?? .list([]), p).enumerated() {
                guard case .string(let t) = item else {
                    throw JinjaError(message: "sequence item \(i): expected str instance, \(item.typeName) found",
                                     pos: p)
                }
                if i > 0 { out += s }
                out += t
            }
            return .string(out)
        case "format": return .string(try format(s, a, p))
        case "isdigit": return allScalars(PyString.isDigit)
        case "isdecimal": return allScalars(PyString.isDecimal)
        case "isnumeric": return allScalars(PyString.isNumeric)
        case "isalpha": return allScalars(PyString.isAlpha)
        case "isalnum": return allScalars { PyString.isAlpha($0) || PyString.isNumeric($0) }
        case "isspace": return allScalars(isPySpace)
        case "isupper", "islower":
            let cased = s.unicodeScalars.filter(PyString.isCased)
            let want: (Unicode.Scalar) -> Bool = name == "isupper" ? { $0.properties.isUppercase }
                : { $0.properties.isLowercase }
            return .bool(!cased.isEmpty && cased.allSatisfy(want))
        case "removeprefix", "removesuffix":
            guard let x = try str(try bind(["affix"])[0], "affix", p) else { return .string(s) }
            let sc = PyString.scalars(s), xs = PyString.scalars(x)
            if name == "removeprefix", sc.starts(with: xs) { return .string(PyString.make(sc.dropFirst(xs.count))) }
            if name == "removesuffix", !xs.isEmpty, sc.reversed().starts(with: xs.reversed()) {
                return .string(PyString.make(sc.dropLast(xs.count)))
            }
            return .string(s)
        case "partition", "rpartition":
            guard let sep = try str(try bind(["sep"])[0], "sep", p), !sep.isEmpty else {
                throw JinjaError(message: "empty separator", pos: p)
            }
            let sc = PyString.scalars(s), sp = PyString.scalars(sep)
            let at = name == "partition" ? PyString.find(sc, sp, from: 0) : PyString.rfind(sc, sp)
            guard let at else {
                return name == "partition" ? .tuple([.string(s), .string(""), .string("")])
                    : .tuple([.string(""), .string(""), .string(s)])
            }
            return .tuple([.string(PyString.make(sc[..<at])), .string(sep),
                           .string(PyString.make(sc[(at + sp.count)...]))])
        case "zfill", "center", "ljust", "rjust":
            let args = try bind(["width", "fillchar"])
            let width = try int(args[0], 0, p)
            let fill = try str(args[1], "fillchar", p) ?? (name == "zfill" ? "0" : " ")
            let n = s.unicodeScalars.count
            guard width > n else { return .string(s) }
            let pad = width - n
            switch name {
            case "ljust": return .string(s + String(repeating: fill, count: pad))
            case "rjust": return .string(String(repeating: fill, count: pad) + s)
            case "center":
                let left = pad / 2 + (pad & width & 1)
                return .string(String(repeating: fill, count: left) + s + String(repeating: fill, count: pad - left))
            default:
                var sc = PyString.scalars(s)
                let sign = sc.first == "-" || sc.first == "+" ? sc.removeFirst() : nil
                return .string((sign.map { String($0) } ?? "") + String(repeating: "0", count: pad) + PyString.make(sc))
            }
        default:
            throw JinjaError(message: "'str' object has no attribute '\(name)'", pos: p)
        }
    }

    /// `str.format` with `{}`, `{0}` and `{name}` fields (no format specs or conversions).
    static func format(_ s: String, _ a: CallArgs, _ p: Pos) throws(JinjaError) -> String {
        var out = ""
        let sc = PyString.scalars(s)
        var i = 0, auto = 0
        while i < sc.count {
            let c = sc[i]
            if c == "{" && i + 1 < sc.count && sc[i + 1] == "{" { out += "{"; i += 2; continue }
            if c == "}" && i + 1 < sc.count && sc[i + 1] == "}" { out += "}"; i += 2; continue }
            if c != "{" { out.unicodeScalars.append(c); i += 1; continue }
            guard let close = PyString.find(sc, ["}"], from: i) else {
                throw JinjaError(message: "single '{' encountered in format string", pos: p)
            }
            let field = PyString.make(sc[(i + 1)..<close])
            if field.contains(":") || field.contains("!") {
                throw JinjaError(message: "format specs are not supported in str.format", pos: p)
            }
            let v: Value?
            if field.isEmpty {
                v = auto < a.positional.count ? a.positional[auto] : nil
                auto += 1
            } else if let idx = Int(field) {
                v = idx < a.positional.count ? a.positional[idx] : nil
            } else {
                v = a.keyword.first { $0.0 == field }?.1
            }
            guard let v else { throw JinjaError(message: "missing format argument '\(field)'", pos: p) }
            out += v.pyStr
            i = close + 1
        }
        return out
    }
}
