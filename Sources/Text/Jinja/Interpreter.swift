// Tree-walking evaluator: statements, scoping (jinja2's per-iteration loop scopes), macros and expressions.

/// A variable scope. `for` iterations, macro calls and `with` blocks get a child scope, so a `set` inside them
/// does not leak out (which is why templates carry state across iterations in a `namespace`).
final class Scope {
    var vars: [String: Value]
    let parent: Scope?

    init(parent: Scope?, vars: [String: Value] = [:]) {
        self.parent = parent
        self.vars = vars
    }

    func lookup(_ name: String) -> Value? {
        var s: Scope? = self
        while let c = s {
            if let v = c.vars[name] { return v }
            s = c.parent
        }
        return nil
    }
}

/// Call arguments after evaluation.
struct CallArgs {
    var positional: [Value] = []
    var keyword: [(String, Value)] = []

    /// Binds to Python-style parameters `names` (positional or keyword); nil where not given.
    func bind(_ names: [String], _ fname: String, at pos: Pos) throws(JinjaError) -> [Value?] {
        guard positional.count <= names.count else {
            throw JinjaError(message: "\(fname)() takes at most \(names.count) argument(s) (\(positional.count) given)",
                             pos: pos)
        }
        var out = [Value?](repeating: nil, count: names.count)
        for (i, v) in positional.enumerated() { out[i] = v }
        for (k, v) in keyword {
            guard let i = names.firstIndex(of: k) else {
                throw JinjaError(message: "\(fname)() got an unexpected keyword argument '\(k)'", pos: pos)
            }
            out[i] = v
        }
        return out
    }
}

enum Flow { case normal, breakLoop, continueLoop }

struct Interpreter {
    let templateName: String
    var callDepth = 0
    static let maxCallDepth = 256

    init(templateName: String) { self.templateName = templateName }

    // MARK: Statements

    mutating func exec(_ nodes: [Node], _ scope: Scope, _ out: inout String) throws(JinjaError) -> Flow {
        for node in nodes {
            let flow = try exec(node, scope, &out)
            if flow != .normal { return flow }
        }
        return .normal
    }

    private mutating func exec(_ node: Node, _ scope: Scope, _ out: inout String) throws(JinjaError) -> Flow {
        switch node {
        case .text(let s):
            out += s
        case .output(let e, _):
            let v = try eval(e, scope)
            if case .string(let s) = v { out += s } else { out += v.pyStr }
        case .ifChain(let branches, let elseBody):
            for (cond, body) in branches where try eval(cond, scope).truthy {
                return try exec(body, scope, &out)
            }
            return try exec(elseBody, scope, &out)
        case .forLoop(let loop):
            try execFor(loop, scope, &out)
        case .set(let target, let e, let p):
            try assign(target, try eval(e, scope), scope, p)
        case .setBlock(let target, let filters, let body, let p):
            var captured = ""
            _ = try exec(body, Scope(parent: scope), &captured)
            var v = Value.string(captured)
            for (name, args, fp) in filters { v = try applyFilter(name, v, try evalArgs(args, scope, fp), scope, fp) }
            try assign(target, v, scope, p)
        case .macro(let decl):
            scope.vars[decl.name] = .macro(MacroValue(decl: decl, closure: scope))
        case .callBlock(let call, let decl, let p):
            guard case .call(let callee, let args, let cp) = call else { break }
            var a = try evalArgs(args, scope, cp)
            a.keyword.append(("caller", .macro(MacroValue(decl: decl, closure: scope, isCaller: true))))
            let v = try callValue(try eval(callee, scope), a, scope, p)
            out += v.pyStr
        case .filterBlock(let filters, let body):
            var captured = ""
            _ = try exec(body, Scope(parent: scope), &captured)
            var v = Value.string(captured)
            for (name, args, fp) in filters { v = try applyFilter(name, v, try evalArgs(args, scope, fp), scope, fp) }
            out += v.pyStr
        case .with(let assigns, let body):
            let inner = Scope(parent: scope)
            for (t, e) in assigns { try assign(t, try eval(e, scope), inner, nil) }
            return try exec(body, inner, &out)
        case .generation(let body):
            return try exec(body, scope, &out)
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        }
        return .normal
    }

    private mutating func execFor(_ loop: ForLoop, _ scope: Scope, _ out: inout String) throws(JinjaError) {
        if loop.recursive { throw JinjaError(message: "recursive loops are not supported", pos: loop.pos) }
        var items = try pyIterate(try eval(loop.iterable, scope), loop.pos)
        if let filter = loop.filter {
            var kept: [Value] = []
            for item in items {
                let s = Scope(parent: scope)
                try assign(loop.target, item, s, loop.pos)
                if try eval(filter, s).truthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            _ = try exec(loop.elseBody, Scope(parent: scope), &out)
            return
        }
        // depth only grows in recursive loops, which are not supported; nested plain loops all report depth 1.
        let state = LoopState(items: items, depth0: 0)
        for (i, item) in items.enumerated() {
            state.index0 = i
            let s = Scope(parent: scope)
            s.vars["loop"] = .loop(state)
            try assign(loop.target, item, s, loop.pos)
            if try exec(loop.body, s, &out) == .breakLoop { break }
        }
    }

    private func assign(_ target: Target, _ value: Value, _ scope: Scope, _ p: Pos?) throws(JinjaError) {
        switch target {
        case .name(let n):
            scope.vars[n] = value
        case .attr(let n, let attr, let tp):
            guard case .namespace(let ns)? = scope.lookup(n) else {
                throw JinjaError(message: "cannot assign attribute on non-namespace object", pos: tp)
            }
            if attr.hasPrefix("_") {
                throw JinjaError(message: "chat templates cannot store underscore-prefixed attributes on a namespace",
                                 pos: tp)
            }
            ns.attrs[.string(attr)] = value
        case .tuple(let targets, let tp):
            let items = try pyIterate(value, tp)
            guard items.count == targets.count else {
                let what = items.count < targets.count ? "not enough" : "too many"
                throw JinjaError(message: "\(what) values to unpack (expected \(targets.count), got \(items.count))",
                                 pos: tp)
            }
            for (t, v) in zip(targets, items) { try assign(t, v, scope, p) }
        }
    }

    // MARK: Expressions

    mutating func eval(_ e: Expr, _ scope: Scope) throws(JinjaError) -> Value {
        switch e {
        case .literal(let l):
            switch l {
            case .none: return .none
            case .bool(let b): return .bool(b)
            case .int(let i): return .int(i)
            case .double(let d): return .double(d)
            case .string(let s): return .string(s)
            }
        case .name(let n, _):
            if let v = scope.lookup(n) { return v }
            if let b = Builtin(rawValue: n) { return .builtin(b) }
            return .missing(n)
        case .list(let items):
            var out: [Value] = []
            out.reserveCapacity(items.count)
            for item in items { out.append(try eval(item, scope)) }
            return .list(out)
        case .tuple(let items):
            var out: [Value] = []
            for item in items { out.append(try eval(item, scope)) }
            return .tuple(out)
        case .dict(let pairs):
            var d = PyDict()
            for (k, v) in pairs {
                let key = try eval(k, scope)
                guard HashKey(key) != nil else {
                    throw JinjaError(message: "unhashable type: '\(key.typeName)'", pos: nil)
                }
                d[key] = try eval(v, scope)
            }
            return .dict(d)
        case .getattr(let base, let name, let p):
            return try Ops.getAttr(try eval(base, scope), name, p)
        case .getitem(let base, let key, let p):
            let b = try eval(base, scope)
            if case .slice(let start, let stop, let step) = key {
                return try Ops.slice(b, try start.map { (x) throws(JinjaError) in try eval(x, scope) },
                                     try stop.map { (x) throws(JinjaError) in try eval(x, scope) },
                                     try step.map { (x) throws(JinjaError) in try eval(x, scope) }, p)
            }
            return try Ops.getItem(b, try eval(key, scope), p)
        case .slice:
            throw JinjaError(message: "slice outside of a subscript", pos: nil)
        case .call(let callee, let args, let p):
            let a = try evalArgs(args, scope, p)
            if case .getattr(let base, let name, let ap) = callee {
                let receiver = try eval(base, scope)
                if Methods.has(receiver, name) {
                    return try callMethod(BoundMethod(receiver: receiver, name: name), a, p)
                }
                return try callValue(try Ops.getAttr(receiver, name, ap), a, scope, p)
            }
            return try callValue(try eval(callee, scope), a, scope, p)
        case .filter(let base, let name, let args, let p):
            let v = try eval(base, scope)
            return try applyFilter(name, v, try evalArgs(args, scope, p), scope, p)
        case .test(let base, let name, let args, let p):
            let v = try eval(base, scope)
            return .bool(try Predicates.apply(name, v, try evalArgs(args, scope, p), p))
        case .neg(let x, let p):
            switch try eval(x, scope) {
            case .bool(let b): return .int(b ? -1 : 0)
            case .int(let i): return .int(0 &- i)
            case .double(let d): return .double(-d)
            case let v: throw Ops.typeError("bad operand type for unary -: '\(v.typeName)'", v, p)
            }
        case .pos(let x, let p):
            let v = try eval(x, scope)
            guard let n = v.number else { throw Ops.typeError("bad operand type for unary +: '\(v.typeName)'", v, p) }
            if case .int(let i) = n { return .int(i) }
            return v
        case .not(let x):
            return .bool(!(try eval(x, scope).truthy))
        case .and(let a, let b):
            let l = try eval(a, scope)
            return l.truthy ? try eval(b, scope) : l
        case .or(let a, let b):
            let l = try eval(a, scope)
            return l.truthy ? l : try eval(b, scope)
        case .binary(let op, let a, let b, let p):
            return try Ops.binary(op, try eval(a, scope), try eval(b, scope), p)
        case .concat(let items):
            var s = ""
            for item in items { s += try eval(item, scope).pyStr }
            return .string(s)
        case .compare(let first, let ops, let p):
            var left = try eval(first, scope)
            for (op, rhs) in ops {
                let right = try eval(rhs, scope)
                if !(try Ops.compare(op, left, right, p)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .cond(let cond, let then, let otherwise):
            if try eval(cond, scope).truthy { return try eval(then, scope) }
            if let otherwise { return try eval(otherwise, scope) }
            return .undefined("the inline if-expression evaluated to false and no else section was defined")
        }
    }

    mutating func evalArgs(_ args: Args, _ scope: Scope, _ p: Pos) throws(JinjaError) -> CallArgs {
        var out = CallArgs()
        for a in args.positional { out.positional.append(try eval(a, scope)) }
        if let star = args.star { out.positional += try pyIterate(try eval(star, scope), p) }
        for (k, a) in args.keyword { out.keyword.append((k, try eval(a, scope))) }
        if let ss = args.starStar {
            guard case .dict(let d) = try eval(ss, scope) else {
                throw JinjaError(message: "argument after ** must be a mapping", pos: p)
            }
            for (k, v) in d.pairs { out.keyword.append((k.pyStr, v)) }
        }
        return out
    }

    // MARK: Calls

    mutating func callValue(_ f: Value, _ a: CallArgs, _ scope: Scope, _ p: Pos) throws(JinjaError) -> Value {
        switch f {
        case .macro(let m): return try callMacro(m, a, p)
        case .builtin(let b): return try Builtins.call(b, a, p)
        case .method(let m): return try callMethod(m, a, p)
        case .undefined(let hint): throw JinjaError(message: hint, pos: p)
        default: throw JinjaError(message: "'\(f.typeName)' object is not callable", pos: p)
        }
    }

    mutating func callMethod(_ m: BoundMethod, _ a: CallArgs, _ p: Pos) throws(JinjaError) -> Value {
        if case .loop(let state) = m.receiver {
            return try loopMethod(state, m.name, a, p)
        }
        return try Methods.call(m.receiver, m.name, a, p)
    }

    private func loopMethod(_ state: LoopState, _ name: String, _ a: CallArgs, _ p: Pos) throws(JinjaError) -> Value {
        switch name {
        case "cycle":
            guard !a.positional.isEmpty else { throw JinjaError(message: "no items for cycling given", pos: p) }
            return a.positional[state.index0 % a.positional.count]
        case "changed":
            if let last = state.lastChanged, last.count == a.positional.count,
               zip(last, a.positional).allSatisfy({ Value.pyEqual($0, $1) }) {
                return .bool(false)
            }
            state.lastChanged = a.positional
            return .bool(true)
        default:
            throw JinjaError(message: "'LoopContext' object has no attribute '\(name)'", pos: p)
        }
    }

    mutating func callMacro(_ m: MacroValue, _ a: CallArgs, _ p: Pos) throws(JinjaError) -> Value {
        let decl = m.decl
        guard callDepth < Interpreter.maxCallDepth else {
            throw JinjaError(message: "maximum macro recursion depth exceeded in '\(decl.name)'", pos: p)
        }
        let scope = Scope(parent: m.closure)
        var given = [Value?](repeating: nil, count: decl.params.count)
        var extra: [Value] = []
        for (i, v) in a.positional.enumerated() {
            if i < given.count { given[i] = v } else { extra.append(v) }
        }
        var kwargs = PyDict()
        for (k, v) in a.keyword {
            if let i = decl.params.firstIndex(where: { $0.0 == k }) {
                given[i] = v
            } else if k == "caller" && (decl.usesCaller || m.isCaller) {
                scope.vars["caller"] = v
            } else if decl.usesKwargs {
                kwargs[.string(k)] = v
            } else {
                throw JinjaError(message: "macro '\(decl.name)' takes no keyword argument '\(k)'", pos: p)
            }
        }
        if !extra.isEmpty && !decl.usesVarargs {
            throw JinjaError(message: "macro '\(decl.name)' takes not more than \(decl.params.count) argument(s)",
                             pos: p)
        }
        for (i, (name, def)) in decl.params.enumerated() {
            if let v = given[i] {
                scope.vars[name] = v
            } else if let def {
                scope.vars[name] = try eval(def, scope)
            } else {
                scope.vars[name] = .undefined("parameter '\(name)' was not provided")
            }
        }
        if decl.usesVarargs { scope.vars["varargs"] = .tuple(extra) }
        if decl.usesKwargs { scope.vars["kwargs"] = .dict(kwargs) }
        if decl.usesCaller && scope.vars["caller"] == nil {
            scope.vars["caller"] = .undefined("No caller defined")
        }
        callDepth += 1
        defer { callDepth -= 1 }
        var out = ""
        _ = try exec(decl.body, scope, &out)
        return .string(out)
    }

    mutating func applyFilter(_ name: String, _ v: Value, _ a: CallArgs, _ scope: Scope, _ p: Pos)
        throws(JinjaError) -> Value {
        try Filters.apply(name, v, a, p)
    }
}

/// Python iteration: strings give characters, dicts give keys, Undefined gives nothing.
func pyIterate(_ v: Value, _ p: Pos?) throws(JinjaError) -> [Value] {
    switch v {
    case .list(let a), .tuple(let a): return a
    case .dict(let d): return d.keys
    case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
    case .undefined: return []
    default: throw JinjaError(message: "'\(v.typeName)' object is not iterable", pos: p)
    }
}
