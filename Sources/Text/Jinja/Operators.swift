// Python operator semantics for template values: attribute/item lookup, slicing, arithmetic and comparisons.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum Ops {
    /// An operation on an Undefined value raises its hint (jinja2's UndefinedError); otherwise a TypeError text.
    static func typeError(_ message: String, _ operands: Value..., pos: Pos?) -> JinjaError {
        for v in operands { if case .undefined(let hint) = v { return JinjaError(message: hint, pos: pos) } }
        return JinjaError(message: message, pos: pos)
    }

    static func typeError(_ message: String, _ v: Value, _ pos: Pos?) -> JinjaError {
        typeError(message, v, pos: pos)
    }

    static func objectName(_ v: Value) -> String {
        if case .none = v { return "None" }
        return "\(v.typeName) object"
    }

    /// `obj.name`: Python attributes (methods) first, then the item, as jinja2's sandboxed getattr does.
    static func getAttr(_ v: Value, _ name: String, _ p: Pos) throws(JinjaError) -> Value {
        switch v {
        case .undefined(let hint):
            throw JinjaError(message: hint, pos: p)
        case .dict(let d):
            if Methods.has(v, name) { return .method(BoundMethod(receiver: v, name: name)) }
            if let x = d[name] { return x }
        case .namespace(let ns):
            if let x = ns.attrs[name] { return x }
        case .loop(let st):
            if let x = loopAttr(st, name) { return x }
        default:
            if Methods.has(v, name) { return .method(BoundMethod(receiver: v, name: name)) }
        }
        return .undefined("'\(objectName(v))' has no attribute '\(name)'")
    }

    private static func loopAttr(_ st: LoopState, _ name: String) -> Value? {
        let n = st.items.count, i = st.index0
        switch name {
        case "index": return .int(i + 1)
        case "index0": return .int(i)
        case "revindex": return .int(n - i)
        case "revindex0": return .int(n - i - 1)
        case "first": return .bool(i == 0)
        case "last": return .bool(i == n - 1)
        case "length": return .int(n)
        case "depth": return .int(st.depth0 + 1)
        case "depth0": return .int(st.depth0)
        case "previtem": return i > 0 ? st.items[i - 1] : .undefined("there is no previous item")
        case "nextitem": return i + 1 < n ? st.items[i + 1] : .undefined("there is no next item")
        case "cycle", "changed": return .method(BoundMethod(receiver: .loop(st), name: name))
        default: return nil
        }
    }

    /// `obj[key]`: the item first, then (for string keys) the attribute.
    static func getItem(_ v: Value, _ key: Value, _ p: Pos) throws(JinjaError) -> Value {
        switch v {
        case .undefined(let hint):
            throw JinjaError(message: hint, pos: p)
        case .dict(let d):
            if let x = d[key] { return x }
        case .list(let a), .tuple(let a):
            if case .int(let i)? = key.number {
                let j = i < 0 ? i + a.count : i
                if j >= 0 && j < a.count { return a[j] }
                return .undefined("'\(objectName(v))' has no element \(i)")
            }
        case .string(let s):
            if case .int(let i)? = key.number {
                let scalars = Array(s.unicodeScalars)
                let j = i < 0 ? i + scalars.count : i
                if j >= 0 && j < scalars.count { return .string(String(scalars[j])) }
                return .undefined("'str object' has no element \(i)")
            }
        default:
            break
        }
        if case .string(let name) = key { return try getAttr(v, name, p) }
        var k = ""
        key.writeRepr(into: &k)
        return .undefined("'\(objectName(v))' has no attribute \(k)")
    }

    /// Python slice index selection (PySlice_AdjustIndices).
    static func sliceIndices(_ n: Int, _ start: Value?, _ stop: Value?, _ step: Value?, _ p: Pos)
        throws(JinjaError) -> [Int] {
        func intOrNil(_ v: Value?) throws(JinjaError) -> Int? {
            guard let v, !v.isNone else { return nil }
            guard case .int(let i)? = v.number else {
                throw typeError("slice indices must be integers or None", v, pos: p)
            }
            return i
        }
        let st = try intOrNil(step) ?? 1
        guard st != 0 else { throw JinjaError(message: "slice step cannot be zero", pos: p) }
        func adjust(_ x: Int?, _ def: Int) -> Int {
            guard var x else { return def }
            if x < 0 {
                x += n
                if x < 0 { x = st < 0 ? -1 : 0 }
            } else if x >= n {
                x = st < 0 ? n - 1 : n
            }
            return x
        }
        let lo = adjust(try intOrNil(start), st < 0 ? n - 1 : 0)
        let hi = adjust(try intOrNil(stop), st < 0 ? -1 : n)
        var out: [Int] = []
        var i = lo
        while st > 0 ? i < hi : i > hi {
            out.append(i)
            i += st
        }
        return out
    }

    static func slice(_ v: Value, _ start: Value?, _ stop: Value?, _ step: Value?, _ p: Pos) throws(JinjaError) -> Value {
        switch v {
        case .list(let a): return .list(try sliceIndices(a.count, start, stop, step, p).map { a[$0] })
        case .tuple(let a): return .tuple(try sliceIndices(a.count, start, stop, step, p).map { a[$0] })
        case .string(let s):
            let sc = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            for i in try sliceIndices(sc.count, start, stop, step, p) { out.append(sc[i]) }
            return .string(String(out))
        default:
            throw typeError("'\(v.typeName)' object is not subscriptable", v, pos: p)
        }
    }

    // MARK: Arithmetic

    static func binary(_ op: BinaryOp, _ a: Value, _ b: Value, _ p: Pos) throws(JinjaError) -> Value {
        if let x = a.number, let y = b.number { return try numeric(op, x, y, p) }
        switch (op, a, b) {
        case (.add, .string(let x), .string(let y)): return .string(x + y)
        case (.add, .list(let x), .list(let y)): return .list(x + y)
        case (.add, .tuple(let x), .tuple(let y)): return .tuple(x + y)
        case (.mul, .string(let s), _), (.mul, _, .string(let s)):
            guard case .int(let n)? = (a.number ?? b.number) else { break }
            return .string(n > 0 ? String(repeating: s, count: n) : "")
        case (.mul, .list(let l), _), (.mul, _, .list(let l)):
            guard case .int(let n)? = (a.number ?? b.number) else { break }
            return .list(n > 0 ? Array([[Value]](repeating: l, count: n).joined()) : [])
        default: break
        }
        if op == .add, case .string = a {
            throw typeError("can only concatenate str (not \"\(b.typeName)\") to str", a, b, pos: p)
        }
        throw typeError("unsupported operand type(s) for \(op.rawValue): '\(a.typeName)' and '\(b.typeName)'",
                        a, b, pos: p)
    }

    private static func numeric(_ op: BinaryOp, _ x: Value.Num, _ y: Value.Num, _ p: Pos) throws(JinjaError) -> Value {
        if case .int(let i) = x, case .int(let j) = y {
            func checked(_ r: (partialValue: Int, overflow: Bool)) throws(JinjaError) -> Value {
                if r.overflow { throw JinjaError(message: "integer overflow", pos: p) }
                return .int(r.partialValue)
            }
            switch op {
            case .add: return try checked(i.addingReportingOverflow(j))
            case .sub: return try checked(i.subtractingReportingOverflow(j))
            case .mul: return try checked(i.multipliedReportingOverflow(by: j))
            case .div:
                guard j != 0 else { throw JinjaError(message: "division by zero", pos: p) }
                return .double(Double(i) / Double(j))
            case .floorDiv, .mod:
                guard j != 0 else { throw JinjaError(message: "integer division or modulo by zero", pos: p) }
                var q = i / j, r = i % j
                if r != 0 && (r < 0) != (j < 0) { q -= 1; r += j }
                return .int(op == .floorDiv ? q : r)
            case .pow:
                if j < 0 { return .double(powDouble(Double(i), Double(j))) }
                var result = 1, base = i, e = j
                while e > 0 {
                    if e & 1 == 1 { result = try checkedInt(result.multipliedReportingOverflow(by: base), p) }
                    e >>= 1
                    if e > 0 { base = try checkedInt(base.multipliedReportingOverflow(by: base), p) }
                }
                return .int(result)
            }
        }
        let a = x.asDouble, b = y.asDouble
        switch op {
        case .add: return .double(a + b)
        case .sub: return .double(a - b)
        case .mul: return .double(a * b)
        case .div:
            guard b != 0 else { throw JinjaError(message: "float division by zero", pos: p) }
            return .double(a / b)
        case .floorDiv, .mod:
            guard b != 0 else { throw JinjaError(message: "float floor division by zero", pos: p) }
            var r = fmod(a, b)
            if r != 0 && (r < 0) != (b < 0) { r += b }
            if op == .mod { return .double(r) }
            return .double(((a - r) / b).rounded())
        case .pow:
            return .double(powDouble(a, b))
        }
    }

    private static func checkedInt(_ r: (partialValue: Int, overflow: Bool), _ p: Pos) throws(JinjaError) -> Int {
        if r.overflow { throw JinjaError(message: "integer overflow", pos: p) }
        return r.partialValue
    }

    // MARK: Comparisons

    static func compare(_ op: CompareOp, _ a: Value, _ b: Value, _ p: Pos) throws(JinjaError) -> Bool {
        switch op {
        case .eq: return Value.pyEqual(a, b)
        case .ne: return !Value.pyEqual(a, b)
        case .in: return try contains(b, a, p)
        case .notIn: return !(try contains(b, a, p))
        case .lt, .le, .gt, .ge:
            let c = try order(a, b, op, p)
            switch op {
            case .lt: return c < 0
            case .le: return c <= 0
            case .gt: return c > 0
            default: return c >= 0
            }
        }
    }

    /// Three-way Python ordering for numbers, strings (code point order) and sequences.
    static func order(_ a: Value, _ b: Value, _ op: CompareOp, _ p: Pos) throws(JinjaError) -> Int {
        if let x = a.number, let y = b.number {
            if case .int(let i) = x, case .int(let j) = y { return i < j ? -1 : i > j ? 1 : 0 }
            let u = x.asDouble, v = y.asDouble
            return u < v ? -1 : u > v ? 1 : 0
        }
        switch (a, b) {
        case (.string(let x), .string(let y)):
            return x.utf8.lexicographicallyPrecedes(y.utf8) ? -1 : x.utf8.elementsEqual(y.utf8) ? 0 : 1
        case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
            for (u, v) in zip(x, y) where !Value.pyEqual(u, v) { return try order(u, v, op, p) }
            return x.count < y.count ? -1 : x.count > y.count ? 1 : 0
        default:
            throw typeError("'\(op.rawValue)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'",
                            a, b, pos: p)
        }
    }

    /// Python `item in container`.
    static func contains(_ container: Value, _ item: Value, _ p: Pos) throws(JinjaError) -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let sub) = item else {
                throw typeError("'in <string>' requires string as left operand, not \(item.typeName)", item, pos: p)
            }
            return PyString.find(Array(s.utf8), Array(sub.utf8), from: 0) != nil
        case .list(let a), .tuple(let a): return a.contains { Value.pyEqual($0, item) }
        case .dict(let d): return d[item] != nil
        case .undefined: return false
        default:
            throw typeError("argument of type '\(container.typeName)' is not iterable", container, pos: p)
        }
    }
}

@inline(__always)
func powDouble(_ a: Double, _ b: Double) -> Double { pow(a, b) }
