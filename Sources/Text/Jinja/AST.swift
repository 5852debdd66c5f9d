// The parsed template: immutable, Sendable syntax trees with source positions for runtime errors.

/// 1-based line and column (in Unicode scalars) of a token in the template source.
struct Pos: Sendable, Equatable, CustomStringConvertible {
    var line: Int32
    var col: Int32
    var description: String { "\(line):\(col)" }
}

enum Literal: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
}

/// Call arguments, evaluated left to right like Python.
struct Args: Sendable {
    var positional: [Expr] = []
    var keyword: [(String, Expr)] = []
    var star: Expr?
    var starStar: Expr?
    static let empty = Args()
}

enum BinaryOp: String, Sendable {
    case add = "+", sub = "-", mul = "*", div = "/", floorDiv = "//", mod = "%", pow = "**"
}

enum CompareOp: String, Sendable {
    case eq = "==", ne = "!=", lt = "<", le = "<=", gt = ">", ge = ">=", `in` = "in", notIn = "not in"
}

indirect enum Expr: Sendable {
    case literal(Literal)
    case name(String, Pos)
    case list([Expr])
    case tuple([Expr])
    case dict([(Expr, Expr)])
    case getattr(Expr, String, Pos)
    case getitem(Expr, Expr, Pos)
    /// `a[start:stop:step]`; only valid as the key of `getitem`.
    case slice(Expr?, Expr?, Expr?)
    case call(Expr, Args, Pos)
    /// `value | name(args)`. Unknown names fail at parse time, except inside `if` / inline-if, where jinja2
    /// reports them only when the branch runs.
    case filter(Expr, String, Args, Pos)
    case test(Expr, String, Args, Pos)
    case neg(Expr, Pos)
    case pos(Expr, Pos)
    case not(Expr)
    case and(Expr, Expr)
    case or(Expr, Expr)
    case binary(BinaryOp, Expr, Expr, Pos)
    case concat([Expr])
    case compare(Expr, [(CompareOp, Expr)], Pos)
    /// `then if cond else otherwise`; a missing else yields Undefined.
    case cond(Expr, Expr, Expr?)
}

/// Left-hand side of `set` and `for`.
indirect enum Target: Sendable {
    case name(String)
    case tuple([Target], Pos)
    case attr(String, String, Pos)
}

struct MacroDecl: Sendable {
    var name: String
    var params: [(String, Expr?)]
    var body: [Node]
    /// Whether the body mentions `caller`, `varargs` or `kwargs`: jinja2 only accepts extra arguments then.
    var usesCaller: Bool
    var usesVarargs: Bool
    var usesKwargs: Bool
    var pos: Pos
}

struct ForLoop: Sendable {
    var target: Target
    var iterable: Expr
    var filter: Expr?
    var body: [Node]
    var elseBody: [Node]
    var recursive: Bool
    var pos: Pos
}

indirect enum Node: Sendable {
    case text(String)
    case output(Expr, Pos)
    case ifChain([(Expr, [Node])], [Node])
    case forLoop(ForLoop)
    case set(Target, Expr, Pos)
    case setBlock(Target, [(String, Args, Pos)], [Node], Pos)
    case macro(MacroDecl)
    /// `{% call(params) macro(args) %}body{% endcall %}`: body becomes `caller`.
    case callBlock(Expr, MacroDecl, Pos)
    case filterBlock([(String, Args, Pos)], [Node])
    case with([(Target, Expr)], [Node])
    /// transformers' `{% generation %}` block: renders its body unchanged.
    case generation([Node])
    case breakLoop(Pos)
    case continueLoop(Pos)
}
