// Recursive-descent parser from tokens to the AST, following jinja2's grammar and operator precedence.

struct Parser {
    var toks: [Token]
    var i = 0
    /// >0 inside `if` conditions/bodies and inline ifs, where unknown filters/tests are runtime errors.
    var soft = 0
    var loopDepth = 0
    /// Names read inside each macro body being parsed (innermost last).
    var macroNames: [Set<String>] = []

    init(tokens: [Token]) { toks = tokens }

    var cur: Token { toks[i] }
    var curPos: Pos { toks[i].pos }

    func fail(_ msg: String, _ pos: Pos? = nil) -> JinjaError {
        JinjaError(message: msg, pos: pos ?? curPos)
    }

    static func describe(_ t: Tok) -> String {
        switch t {
        case .text: return "template data"
        case .varBegin: return "begin of print statement"
        case .varEnd: return "end of print statement"
        case .blockBegin: return "begin of statement block"
        case .blockEnd: return "end of statement block"
        case .name(let n): return n
        case .string: return "string"
        case .int, .float: return "number"
        case .op(let o): return o
        case .eof: return "end of template"
        }
    }

    mutating func next() -> Token {
        let t = toks[i]
        if i < toks.count - 1 { i += 1 }
        return t
    }

    func isOp(_ o: String) -> Bool { if case .op(o) = cur.tok { return true } else { return false } }
    func isName(_ n: String) -> Bool { if case .name(n) = cur.tok { return true } else { return false } }
    func peekIsName(_ n: String) -> Bool {
        guard i + 1 < toks.count, case .name(n) = toks[i + 1].tok else { return false }
        return true
    }

    mutating func skipOp(_ o: String) -> Bool {
        if isOp(o) { i += 1; return true }
        return false
    }

    mutating func skipName(_ n: String) -> Bool {
        if isName(n) { i += 1; return true }
        return false
    }

    mutating func expectOp(_ o: String) throws(JinjaError) {
        guard skipOp(o) else { throw fail("expected '\(o)', got '\(Parser.describe(cur.tok))'") }
    }

    mutating func expectName() throws(JinjaError) -> String {
        guard case .name(let n) = cur.tok else { throw fail("expected a name, got '\(Parser.describe(cur.tok))'") }
        i += 1
        return n
    }

    mutating func expectBlockEnd() throws(JinjaError) {
        guard case .blockEnd = cur.tok else {
            throw fail("expected end of statement block, got '\(Parser.describe(cur.tok))'")
        }
        i += 1
    }

    // MARK: Statements

    mutating func parseTemplate() throws(JinjaError) -> [Node] {
        let (body, end) = try parseStatements(until: [])
        if let end { throw fail("unexpected '\(end.0)'", end.1) }
        return body
    }

    /// Parses nodes until a block whose tag name is in `until`; returns that name (consumed) and its position.
    mutating func parseStatements(until: Set<String>) throws(JinjaError) -> ([Node], (String, Pos)?) {
        var body: [Node] = []
        while true {
            let t = next()
            switch t.tok {
            case .eof:
                if !until.isEmpty {
                    let names = until.sorted().map { "'\($0)'" }.joined(separator: " or ")
                    throw fail("unexpected end of template, expected \(names)", t.pos)
                }
                return (body, nil)
            case .text(let s):
                body.append(.text(s))
            case .varBegin:
                let e = try parseTuple()
                guard case .varEnd = cur.tok else {
                    throw fail("expected end of print statement, got '\(Parser.describe(cur.tok))'")
                }
                i += 1
                body.append(.output(e, t.pos))
            case .blockBegin:
                guard case .name(let tag) = cur.tok else { throw fail("tag name expected") }
                if until.contains(tag) {
                    let p = curPos
                    i += 1
                    return (body, (tag, p))
                }
                body.append(try parseStatement())
            default:
                throw fail("unexpected '\(Parser.describe(t.tok))'", t.pos)
            }
        }
    }

    mutating func parseStatement() throws(JinjaError) -> Node {
        let p = curPos
        let tag = try expectName()
        switch tag {
        case "if": return try parseIf()
        case "for": return try parseFor(p)
        case "set": return try parseSet(p)
        case "macro": return .macro(try parseMacro(p))
        case "call": return try parseCall(p)
        case "filter":
            let filters = try parseFilterChain()
            try expectBlockEnd()
            let (body, _) = try parseStatements(until: ["endfilter"])
            try expectBlockEnd()
            return .filterBlock(filters, body)
        case "with":
            var assigns: [(Target, Expr)] = []
            while !(cur.tok == .blockEnd) {
                if !assigns.isEmpty { try expectOp(",") }
                let target = try parseAssignTarget(allowNamespace: false)
                try expectOp("=")
                assigns.append((target, try parseExpression()))
            }
            try expectBlockEnd()
            let (body, _) = try parseStatements(until: ["endwith"])
            try expectBlockEnd()
            return .with(assigns, body)
        case "generation":
            try expectBlockEnd()
            let (body, _) = try parseStatements(until: ["endgeneration"])
            try expectBlockEnd()
            return .generation(body)
        case "break", "continue":
            guard loopDepth > 0 else { throw fail("'\(tag)' outside of a loop", p) }
            try expectBlockEnd()
            return tag == "break" ? .breakLoop(p) : .continueLoop(p)
        case "include", "import", "from", "extends", "block", "do", "autoescape", "trans":
            throw fail("unsupported tag '\(tag)'", p)
        default:
            throw fail("unknown tag '\(tag)'", p)
        }
    }

    mutating func parseIf() throws(JinjaError) -> Node {
        soft += 1
        defer { soft -= 1 }
        var branches: [(Expr, [Node])] = []
        var cond = try parseTuple(withCondExpr: false)
        while true {
            try expectBlockEnd()
            let (body, end) = try parseStatements(until: ["elif", "else", "endif"])
            branches.append((cond, body))
            switch end!.0 {
            case "elif":
                cond = try parseTuple(withCondExpr: false)
            case "else":
                try expectBlockEnd()
                let (elseBody, _) = try parseStatements(until: ["endif"])
                try expectBlockEnd()
                return .ifChain(branches, elseBody)
            default:
                try expectBlockEnd()
                return .ifChain(branches, [])
            }
        }
    }

    mutating func parseFor(_ p: Pos) throws(JinjaError) -> Node {
        let target = try parseAssignTarget(allowNamespace: false, endName: "in")
        guard skipName("in") else { throw fail("expected 'in'") }
        let iterable = try parseTuple(withCondExpr: false, endName: "recursive")
        var filter: Expr?
        if skipName("if") { filter = try parseExpression() }
        let recursive = skipName("recursive")
        try expectBlockEnd()
        let savedSoft = soft
        soft = 0
        loopDepth += 1
        let (body, end) = try parseStatements(until: ["endfor", "else"])
        loopDepth -= 1
        var elseBody: [Node] = []
        if end!.0 == "else" {
            try expectBlockEnd()
            (elseBody, _) = try parseStatements(until: ["endfor"])
        }
        soft = savedSoft
        try expectBlockEnd()
        return .forLoop(ForLoop(target: target, iterable: iterable, filter: filter, body: body,
                                elseBody: elseBody, recursive: recursive, pos: p))
    }

    mutating func parseSet(_ p: Pos) throws(JinjaError) -> Node {
        let target = try parseAssignTarget(allowNamespace: true)
        if skipOp("=") {
            let value = try parseTuple()
            try expectBlockEnd()
            return .set(target, value, p)
        }
        let filters = isOp("|") ? try parseFilterChain() : []
        try expectBlockEnd()
        let (body, _) = try parseStatements(until: ["endset"])
        try expectBlockEnd()
        return .setBlock(target, filters, body, p)
    }

    /// `name(...)` filters of a `{% filter %}` / `{% set x | f %}` tag, separated by `|`.
    mutating func parseFilterChain() throws(JinjaError) -> [(String, Args, Pos)] {
        var out: [(String, Args, Pos)] = []
        _ = skipOp("|")
        repeat {
            let p = curPos
            let name = try dottedName()
            try checkKnown(name, filter: true, p)
            let args = isOp("(") ? try parseCallArgs() : Args.empty
            out.append((name, args, p))
        } while skipOp("|")
        return out
    }

    mutating func parseMacroSignature(name: String, _ p: Pos) throws(JinjaError) -> MacroDecl {
        var params: [(String, Expr?)] = []
        try expectOp("(")
        while !skipOp(")") {
            if !params.isEmpty { try expectOp(",") }
            if skipOp(")") { break }
            let pname = try expectName()
            let def: Expr? = skipOp("=") ? try parseExpression() : nil
            if def == nil, params.last?.1 != nil { throw fail("non-default argument follows default argument") }
            params.append((pname, def))
        }
        return MacroDecl(name: name, params: params, body: [], usesCaller: false, usesVarargs: false,
                         usesKwargs: false, pos: p)
    }

    mutating func parseMacroBody(_ decl: inout MacroDecl, end: String) throws(JinjaError) {
        try expectBlockEnd()
        let savedSoft = soft, savedLoops = loopDepth
        soft = 0
        loopDepth = 0
        macroNames.append([])
        let (body, _) = try parseStatements(until: [end])
        let names = macroNames.removeLast()
        soft = savedSoft
        loopDepth = savedLoops
        if case .name = cur.tok, end == "endmacro" { i += 1 }
        try expectBlockEnd()
        decl.body = body
        decl.usesCaller = names.contains("caller")
        decl.usesVarargs = names.contains("varargs")
        decl.usesKwargs = names.contains("kwargs")
    }

    mutating func parseMacro(_ p: Pos) throws(JinjaError) -> MacroDecl {
        let name = try expectName()
        var decl = try parseMacroSignature(name: name, p)
        try parseMacroBody(&decl, end: "endmacro")
        return decl
    }

    mutating func parseCall(_ p: Pos) throws(JinjaError) -> Node {
        var decl = isOp("(") ? try parseMacroSignature(name: "caller", p)
            : MacroDecl(name: "caller", params: [], body: [], usesCaller: false, usesVarargs: false,
                        usesKwargs: false, pos: p)
        let call = try parseExpression()
        guard case .call = call else { throw fail("expected a call after 'call'", p) }
        try parseMacroBody(&decl, end: "endcall")
        return .callBlock(call, decl, p)
    }

    /// Assignment targets: names, tuples of names, and (in `set`) `namespace.attr`.
    mutating func parseAssignTarget(allowNamespace: Bool, endName: String? = nil) throws(JinjaError) -> Target {
        var items: [Target] = []
        let p = curPos
        var isTuple = false
        let parens = skipOp("(")
        while true {
            if !items.isEmpty {
                guard skipOp(",") else { break }
                isTuple = true
                if let endName, isName(endName) { break }
                if isOp("=") || isOp(")") || cur.tok == .blockEnd { break }
            }
            let namePos = curPos
            let name = try expectName()
            if ["true", "false", "none", "True", "False", "None"].contains(name) {
                throw fail("can't assign to '\(name)'", namePos)
            }
            if allowNamespace && skipOp(".") {
                items.append(.attr(name, try expectName(), namePos))
            } else {
                items.append(.name(name))
            }
        }
        if parens { try expectOp(")") }
        return isTuple || parens && items.count != 1 ? .tuple(items, p) : items[0]
    }
}
