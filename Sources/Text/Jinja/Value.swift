// Runtime values of the Jinja interpreter with Python semantics: truthiness, equality, hashing, str() and repr().

/// A value while rendering. Lives inside one `render` call only, so it holds reference types freely
/// (namespaces and loops are mutable objects, as in Python) and is not Sendable.
enum Value {
    /// jinja2's default `Undefined`: prints empty, is falsy, iterates as empty; most other uses raise `hint`.
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([Value])
    case tuple([Value])
    case dict(PyDict)
    case namespace(Namespace)
    case macro(MacroValue)
    case builtin(Builtin)
    /// A method looked up on a value (`'a'.upper`), called later with arguments.
    indirect case method(BoundMethod)
    case loop(LoopState)

    static func missing(_ name: String) -> Value { .undefined("'\(name)' is undefined") }

    init(_ json: JSONValue) {
        switch json {
        case .null: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .list(a.map(Value.init))
        case .object(let o):
            var d = PyDict()
            d.reserve(o.count)
            for (k, v) in o { d[.string(k)] = Value(v) }
            self = .dict(d)
        }
    }

    var isUndefined: Bool { if case .undefined = self { return true } else { return false } }
    var isNone: Bool { if case .none = self { return true } else { return false } }

    /// Python truthiness.
    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let a), .tuple(let a): return !a.isEmpty
        case .dict(let d): return !d.isEmpty
        default: return true
        }
    }

    /// Python type name, for error messages that mirror Python's.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .macro: return "Macro"
        case .builtin, .method: return "builtin_function_or_method"
        case .loop: return "LoopContext"
        }
    }

    /// Numeric view: bools are ints, as in Python.
    var number: Num? {
        switch self {
        case .bool(let b): return .int(b ? 1 : 0)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        default: return nil
        }
    }

    enum Num {
        case int(Int)
        case double(Double)
        var asDouble: Double {
            switch self {
            case .int(let i): return Double(i)
            case .double(let d): return d
            }
        }
    }

    /// Python `==`.
    static func pyEqual(_ a: Value, _ b: Value) -> Bool {
        if let x = a.number, let y = b.number {
            switch (x, y) {
            case (.int(let i), .int(let j)): return i == j
            default: return x.asDouble == y.asDouble
            }
        }
        switch (a, b) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let x), .string(let y)): return x.utf8.elementsEqual(y.utf8)
        case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { pyEqual($0, $1) }
        case (.dict(let x), .dict(let y)):
            guard x.count == y.count else { return false }
            for (k, v) in x.pairs {
                guard let w = y[k], pyEqual(v, w) else { return false }
            }
            return true
        case (.namespace(let x), .namespace(let y)): return x === y
        case (.loop(let x), .loop(let y)): return x === y
        case (.macro(let x), .macro(let y)): return x === y
        default: return false
        }
    }

    /// Python `str()`; strings print as-is, containers print their repr.
    var pyStr: String {
        switch self {
        case .string(let s): return s
        case .undefined: return ""
        default:
            var out = ""
            writeRepr(into: &out)
            return out
        }
    }

    /// Python `repr()`.
    func writeRepr(into out: inout String) {
        switch self {
        case .undefined: out += ""
        case .none: out += "None"
        case .bool(let b): out += b ? "True" : "False"
        case .int(let i): out += String(i)
        case .double(let d): out += PyFormat.floatRepr(d)
        case .string(let s): PyFormat.strRepr(s, into: &out)
        case .list(let a):
            out += "["
            for (i, e) in a.enumerated() {
                if i > 0 { out += ", " }
                e.writeRepr(into: &out)
            }
            out += "]"
        case .tuple(let a):
            out += "("
            for (i, e) in a.enumerated() {
                if i > 0 { out += ", " }
                e.writeRepr(into: &out)
            }
            out += a.count == 1 ? ",)" : ")"
        case .dict(let d): d.writeRepr(into: &out)
        case .namespace(let n):
            out += "<Namespace "
            n.attrs.writeRepr(into: &out)
            out += ">"
        case .macro(let m): out += "<Macro '\(m.decl.name)'>"
        case .builtin(let b): out += "<built-in function \(b.rawValue)>"
        case .method(let m): out += "<built-in method \(m.name) of \(m.receiver.typeName) object>"
        case .loop: out += "<LoopContext>"
        }
    }
}

/// Hashable identity of a dict key with Python's rules: `1`, `1.0` and `True` are the same key.
enum HashKey: Hashable {
    case str(String)
    case int(Int)
    case double(Double)
    case none
    case tuple([HashKey])

    init?(_ v: Value) {
        switch v {
        case .string(let s): self = .str(s)
        case .int(let i): self = .int(i)
        case .bool(let b): self = .int(b ? 1 : 0)
        case .double(let d):
            if d == d.rounded(), let i = Int(exactly: d) { self = .int(i) } else { self = .double(d) }
        case .none: self = .none
        case .tuple(let a):
            var keys: [HashKey] = []
            for e in a {
                guard let k = HashKey(e) else { return nil }
                keys.append(k)
            }
            self = .tuple(keys)
        default: return nil
        }
    }
}

/// An insertion-ordered Python dict.
struct PyDict {
    private(set) var keys: [Value] = []
    private(set) var values: [Value] = []
    private var index: [HashKey: Int] = [:]

    var count: Int { keys.count }
    var isEmpty: Bool { keys.isEmpty }
    var pairs: Zip2Sequence<[Value], [Value]> { zip(keys, values) }

    mutating func reserve(_ n: Int) {
        keys.reserveCapacity(n)
        values.reserveCapacity(n)
        index.reserveCapacity(n)
    }

    subscript(key: Value) -> Value? {
        get {
            guard let h = HashKey(key), let i = index[h] else { return nil }
            return values[i]
        }
        set {
            guard let h = HashKey(key), let newValue else { return }
            if let i = index[h] {
                values[i] = newValue
            } else {
                index[h] = keys.count
                keys.append(key)
                values.append(newValue)
            }
        }
    }

    subscript(name: String) -> Value? { self[.string(name)] }

    func writeRepr(into out: inout String) {
        out += "{"
        for i in keys.indices {
            if i > 0 { out += ", " }
            keys[i].writeRepr(into: &out)
            out += ": "
            values[i].writeRepr(into: &out)
        }
        out += "}"
    }
}

/// `namespace(...)`: the one mutable object templates get, assigned through `{% set ns.attr = ... %}`.
final class Namespace {
    var attrs: PyDict
    init(_ attrs: PyDict) { self.attrs = attrs }
}

/// A macro closed over the scope it was defined in.
final class MacroValue {
    let decl: MacroDecl
    let closure: Scope
    /// The body of a `{% call %}` block, exposed to the macro as `caller`.
    let isCaller: Bool
    init(decl: MacroDecl, closure: Scope, isCaller: Bool = false) {
        self.decl = decl
        self.closure = closure
        self.isCaller = isCaller
    }
}

/// The `loop` variable of a for loop.
final class LoopState {
    let items: [Value]
    var index0 = 0
    let depth0: Int
    var lastChanged: [Value]?
    init(items: [Value], depth0: Int) {
        self.items = items
        self.depth0 = depth0
    }
}

struct BoundMethod {
    let receiver: Value
    let name: String
}

/// Global functions transformers' environment exposes.
enum Builtin: String {
    case range, namespace, dict, raiseException = "raise_exception", strftimeNow = "strftime_now"
}
