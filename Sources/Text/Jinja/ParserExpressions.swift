// Expression grammar of the parser: jinja2's precedence from inline-if down to filters, tests and postfix.

extension Parser {
    /// Comma-separated expressions form a tuple (`{{ a, b }}`, `{% set x = 1, 2 %}`).
    mutating func parseTuple(withCondExpr: Bool = true, endName: String? = nil) throws(JinjaError) -> Expr {
        var items: [Expr] = []
        var isTuple = false
        while true {
            if !items.isEmpty {
                guard skipOp(",") else { break }
                isTuple = true
            }
            if isTupleEnd(endName) { break }
            items.append(withCondExpr ? try parseExpression() : try parseOr())
            if !isOp(",") { break }
        }
        if !isTuple {
            guard let first = items.first else {
                throw fail("expected an expression, got '\(Parser.describe(cur.tok))'")
            }
            return first
        }
        return .tuple(items)
    }

    func isTupleEnd(_ endName: String?) -> Bool {
        switch cur.tok {
        case .varEnd, .blockEnd, .eof, .op(")"): return true
        case .name(let n): return n == endName
        default: return false
        }
    }

    mutating func parseExpression() throws(JinjaError) -> Expr {
        var e = try parseOr()
        while isName("if") {
            i += 1
            soft += 1
            let cond = try parseOr()
            let otherwise: Expr? = skipName("else") ? try parseExpression() : nil
            soft -= 1
            e = .cond(cond, e, otherwise)
        }
        return e
    }

    mutating func parseOr() throws(JinjaError) -> Expr {
        var e = try parseAnd()
        while skipName("or") { e = .or(e, try parseAnd()) }
        return e
    }

    mutating func parseAnd() throws(JinjaError) -> Expr {
        var e = try parseNot()
        while skipName("and") { e = .and(e, try parseNot()) }
        return e
    }

    mutating func parseNot() throws(JinjaError) -> Expr {
        if skipName("not") { return .not(try parseNot()) }
        return try parseCompare()
    }

    mutating func parseCompare() throws(JinjaError) -> Expr {
        let p = curPos
        let e = try parseMath1()
        var ops: [(CompareOp, Expr)] = []
        while true {
            if case .op(let o) = cur.tok, let op = CompareOp(rawValue: o), op != .in, op != .notIn {
                i += 1
                ops.append((op, try parseMath1()))
            } else if skipName("in") {
                ops.append((.in, try parseMath1()))
            } else if isName("not") && peekIsName("in") {
                i += 2
                ops.append((.notIn, try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? e : .compare(e, ops, p)
    }

    mutating func parseMath1() throws(JinjaError) -> Expr {
        var e = try parseConcat()
        while case .op(let o) = cur.tok, o == "+" || o == "-" {
            let p = next().pos
            e = .binary(o == "+" ? .add : .sub, e, try parseConcat(), p)
        }
        return e
    }

    mutating func parseConcat() throws(JinjaError) -> Expr {
        var items = [try parseMath2()]
        while skipOp("~") { items.append(try parseMath2()) }
        return items.count == 1 ? items[0] : .concat(items)
    }

    mutating func parseMath2() throws(JinjaError) -> Expr {
        var e = try parsePow()
        while case .op(let o) = cur.tok, let op = BinaryOp(rawValue: o), [.mul, .div, .floorDiv, .mod].contains(op) {
            let p = next().pos
            e = .binary(op, e, try parsePow(), p)
        }
        return e
    }

    mutating func parsePow() throws(JinjaError) -> Expr {
        var e = try parseUnary()
        while isOp("**") {
            let p = next().pos
            e = .binary(.pow, e, try parseUnary(), p)
        }
        return e
    }

    mutating func parseUnary(withFilter: Bool = true) throws(JinjaError) -> Expr {
        let p = curPos
        var e: Expr
        if skipOp("-") {
            e = .neg(try parseUnary(withFilter: false), p)
        } else if skipOp("+") {
            e = .pos(try parseUnary(withFilter: false), p)
        } else {
            e = try parsePrimary()
        }
        e = try parsePostfix(e)
        if withFilter { e = try parseFilterExpr(e) }
        return e
    }

    mutating func parsePrimary() throws(JinjaError) -> Expr {
        let t = next()
        switch t.tok {
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default:
                if !macroNames.isEmpty { macroNames[macroNames.count - 1].insert(n) }
                return .name(n, t.pos)
            }
        case .string(var s):
            while case .string(let more) = cur.tok { s += more; i += 1 }
            return .literal(.string(s))
        case .int(let v): return .literal(.int(v))
        case .float(let v): return .literal(.double(v))
        case .op("("):
            if skipOp(")") { return .tuple([]) }
            let e = try parseTuple()
            try expectOp(")")
            if case .tuple = e { return e }
            return e
        case .op("["):
            var items: [Expr] = []
            while !skipOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if skipOp("]") { break }
                items.append(try parseExpression())
            }
            return .list(items)
        case .op("{"):
            var pairs: [(Expr, Expr)] = []
            while !skipOp("}") {
                if !pairs.isEmpty { try expectOp(",") }
                if skipOp("}") { break }
                let k = try parseExpression()
                try expectOp(":")
                pairs.append((k, try parseExpression()))
            }
            return .dict(pairs)
        default:
            throw fail("unexpected '\(Parser.describe(t.tok))'", t.pos)
        }
    }

    mutating func parsePostfix(_ base: Expr) throws(JinjaError) -> Expr {
        var e = base
        while true {
            if isOp(".") {
                let p = next().pos
                switch next().tok {
                case .name(let n): e = .getattr(e, n, p)
                case .int(let v): e = .getitem(e, .literal(.int(v)), p)
                default: throw fail("expected name or number", p)
                }
            } else if isOp("[") {
                let p = next().pos
                var keys: [Expr] = []
                while !skipOp("]") {
                    if !keys.isEmpty { try expectOp(",") }
                    keys.append(try parseSubscribed())
                }
                e = .getitem(e, keys.count == 1 ? keys[0] : .tuple(keys), p)
            } else if isOp("(") {
                let p = curPos
                e = .call(e, try parseCallArgs(), p)
            } else {
                return e
            }
        }
    }

    mutating func parseSubscribed() throws(JinjaError) -> Expr {
        var parts: [Expr?] = []
        if isOp(":") {
            parts.append(nil)
        } else {
            let e = try parseExpression()
            if !isOp(":") { return e }
            parts.append(e)
        }
        i += 1  // ':'
        parts.append(isOp("]") || isOp(",") || isOp(":") ? nil : try parseExpression())
        if skipOp(":") {
            parts.append(isOp("]") || isOp(",") ? nil : try parseExpression())
        } else {
            parts.append(nil)
        }
        return .slice(parts[0], parts[1], parts[2])
    }

    mutating func parseCallArgs() throws(JinjaError) -> Args {
        try expectOp("(")
        var args = Args()
        var first = true
        while !skipOp(")") {
            if !first { try expectOp(",") }
            first = false
            if skipOp(")") { break }
            if skipOp("**") {
                args.starStar = try parseExpression()
            } else if skipOp("*") {
                args.star = try parseExpression()
            } else if case .name(let n) = cur.tok, i + 1 < toks.count, case .op("=") = toks[i + 1].tok {
                i += 2
                args.keyword.append((n, try parseExpression()))
            } else {
                if !args.keyword.isEmpty || args.star != nil || args.starStar != nil {
                    throw fail("positional argument after keyword argument")
                }
                args.positional.append(try parseExpression())
            }
        }
        return args
    }

    mutating func dottedName() throws(JinjaError) -> String {
        var name = try expectName()
        while isOp("."), i + 1 < toks.count, case .name(let more) = toks[i + 1].tok {
            i += 2
            name += "." + more
        }
        return name
    }

    func checkKnown(_ name: String, filter: Bool, _ p: Pos) throws(JinjaError) {
        guard soft == 0 else { return }
        if filter && !Filters.names.contains(name) { throw fail("unknown filter '\(name)'", p) }
        if !filter && !Predicates.names.contains(name) { throw fail("unknown test '\(name)'", p) }
    }

    mutating func parseFilterExpr(_ base: Expr) throws(JinjaError) -> Expr {
        var e = base
        while true {
            if isOp("|") {
                i += 1
                let p = curPos
                let name = try dottedName()
                try checkKnown(name, filter: true, p)
                let args = isOp("(") ? try parseCallArgs() : Args.empty
                e = .filter(e, name, args, p)
            } else if isName("is") {
                i += 1
                let negated = skipName("not")
                let p = curPos
                let name = try dottedName()
                try checkKnown(name, filter: false, p)
                var args = Args.empty
                if isOp("(") {
                    args = try parseCallArgs()
                } else if startsTestArgument() {
                    if isName("is") { throw fail("you cannot chain multiple tests with is") }
                    args.positional = [try parsePostfix(try parsePrimary())]
                }
                e = .test(e, name, args, p)
                if negated { e = .not(e) }
            } else if isOp("(") {
                let p = curPos
                e = .call(e, try parseCallArgs(), p)
            } else {
                return e
            }
        }
    }

    /// jinja2 accepts one bare argument after a test name (`x is divisibleby 3`, `x is sameas none`).
    func startsTestArgument() -> Bool {
        switch cur.tok {
        case .name(let n): return !["else", "or", "and"].contains(n)
        case .string, .int, .float, .op("["), .op("{"): return true
        default: return false
        }
    }
}
