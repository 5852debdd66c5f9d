// Tokenizer reproducing jinja2's lexer with trim_blocks=True, lstrip_blocks=True and whitespace control.

enum Tok: Equatable {
    case text(String)
    case varBegin, varEnd, blockBegin, blockEnd
    case name(String)
    case string(String)
    case int(Int)
    case float(Double)
    case op(String)
    case eof
}

struct Token {
    var tok: Tok
    var pos: Pos
}

/// An error found while lexing, parsing or rendering; `raised` marks `raise_exception`, whose message
/// surfaces unchanged.
struct JinjaError: Error {
    var message: String
    var pos: Pos?
    var raised = false
}

/// Python's `\s` / `str.isspace` for one scalar.
@inline(__always)
func isPySpace(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        return true
    default:
        return false
    }
}

struct Lexer {
    private let src: [Unicode.Scalar]
    private var lineStarts: [Int] = [0]
    private var tokens: [Token] = []
    private let trimBlocks = true
    private let lstripBlocks = true

    /// Newlines are normalized to `\n` and one trailing newline is dropped (jinja2's keep_trailing_newline=False).
    init(_ source: String) {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(source.unicodeScalars.count)
        var prevCR = false
        for c in source.unicodeScalars {
            if c == "\r" {
                scalars.append("\n")
                prevCR = true
                continue
            }
            if c == "\n" && prevCR { prevCR = false; continue }
            prevCR = false
            scalars.append(c)
        }
        if scalars.last == "\n" { scalars.removeLast() }
        src = scalars
        for (i, c) in src.enumerated() where c == "\n" { lineStarts.append(i + 1) }
    }

    func pos(_ i: Int) -> Pos {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= i { lo = mid } else { hi = mid - 1 }
        }
        return Pos(line: Int32(lo + 1), col: Int32(i - lineStarts[lo] + 1))
    }

    private func string(_ r: Range<Int>) -> String {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: src[r])
        return String(s)
    }

    private func at(_ i: Int, _ text: String) -> Bool {
        var j = i
        for c in text.unicodeScalars {
            guard j < src.count, src[j] == c else { return false }
            j += 1
        }
        return true
    }

    private mutating func emitText(_ r: Range<Int>) {
        if !r.isEmpty { tokens.append(Token(tok: .text(string(r)), pos: pos(r.lowerBound))) }
    }

    /// Applies `{%-` (strip all trailing whitespace) or lstrip_blocks (strip the indentation of a tag alone on
    /// its line) to the text before a tag, like jinja2's OptionalLStrip.
    private func stripText(_ start: Int, _ end: Int, sign: Unicode.Scalar?, lstrip: Bool, lineStarting: Bool) -> Int {
        var e = end
        if sign == "-" {
            while e > start && isPySpace(src[e - 1]) { e -= 1 }
        } else if sign != "+" && lstrip && lstripBlocks {
            var l = end
            while l > start && src[l - 1] != "\n" { l -= 1 }
            if (l > start || lineStarting) && l < end && src[l..<end].allSatisfy(isPySpace) { e = l }
        }
        return e
    }

    mutating func tokenize() throws(JinjaError) -> [Token] {
        var i = 0
        var lineStarting = true
        let n = src.count
        while i < n {
            var j = i
            var kind: Unicode.Scalar = " "
            while j + 1 < n {
                if src[j] == "{" && (src[j + 1] == "{" || src[j + 1] == "%" || src[j + 1] == "#") {
                    kind = src[j + 1]
                    break
                }
                j += 1
            }
            if kind == " " {
                emitText(i..<n)
                break
            }
            var k = j + 2
            var sign: Unicode.Scalar?
            if k < n && (src[k] == "-" || src[k] == "+") { sign = src[k]; k += 1 }
            let textEnd = stripText(i, j, sign: sign, lstrip: kind != "{", lineStarting: lineStarting)
            if kind == "%", let (bodyStart, _) = rawBegin(k) {
                emitText(i..<textEnd)
                i = try lexRaw(from: bodyStart, openedAt: j)
                lineStarting = i > 0 && src[i - 1] == "\n"
                continue
            }
            emitText(i..<textEnd)
            switch kind {
            case "#":
                i = try skipComment(from: k, openedAt: j)
            case "{":
                tokens.append(Token(tok: .varBegin, pos: pos(j)))
                i = try lexTag(from: k, block: false)
            default:
                tokens.append(Token(tok: .blockBegin, pos: pos(j)))
                i = try lexTag(from: k, block: true)
            }
            lineStarting = i > 0 && src[i - 1] == "\n"
        }
        tokens.append(Token(tok: .eof, pos: pos(n)))
        return tokens
    }

    /// `{% raw %}` / `{%- raw -%}`: returns where the raw body starts.
    private func rawBegin(_ k: Int) -> (Int, Int)? {
        var p = k
        while p < src.count && isPySpace(src[p]) { p += 1 }
        guard at(p, "raw") else { return nil }
        p += 3
        while p < src.count && isPySpace(src[p]) { p += 1 }
        if at(p, "-%}") {
            p += 3
            while p < src.count && isPySpace(src[p]) { p += 1 }
            return (p, p)
        }
        if at(p, "%}") { return (p + 2, p + 2) }
        return nil
    }

    private mutating func lexRaw(from start: Int, openedAt: Int) throws(JinjaError) -> Int {
        var j = start
        while j + 1 < src.count {
            if src[j] == "{" && src[j + 1] == "%" {
                var k = j + 2
                var sign: Unicode.Scalar?
                if k < src.count && (src[k] == "-" || src[k] == "+") { sign = src[k]; k += 1 }
                while k < src.count && isPySpace(src[k]) { k += 1 }
                if at(k, "endraw") {
                    k += 6
                    while k < src.count && isPySpace(src[k]) { k += 1 }
                    if let end = blockEnd(k) {
                        let textEnd = stripText(start, j, sign: sign, lstrip: true, lineStarting: false)
                        emitText(start..<textEnd)
                        return end
                    }
                }
            }
            j += 1
        }
        throw JinjaError(message: "missing end of raw directive", pos: pos(openedAt))
    }

    /// Matches a block end at `p` (`%}` plus one newline, `-%}` plus all whitespace, or `+%}`).
    private func blockEnd(_ p: Int) -> Int? {
        if at(p, "-%}") {
            var e = p + 3
            while e < src.count && isPySpace(src[e]) { e += 1 }
            return e
        }
        if at(p, "+%}") { return p + 3 }
        if at(p, "%}") { return p + 2 + (trimBlocks && p + 2 < src.count && src[p + 2] == "\n" ? 1 : 0) }
        return nil
    }

    private func skipComment(from k: Int, openedAt: Int) throws(JinjaError) -> Int {
        var m = k
        while m + 1 < src.count {
            if src[m] == "#" && src[m + 1] == "}" {
                if m - 1 >= k && src[m - 1] == "-" {
                    var e = m + 2
                    while e < src.count && isPySpace(src[e]) { e += 1 }
                    return e
                }
                if m - 1 >= k && src[m - 1] == "+" { return m + 2 }
                return m + 2 + (trimBlocks && m + 2 < src.count && src[m + 2] == "\n" ? 1 : 0)
            }
            m += 1
        }
        throw JinjaError(message: "missing end of comment tag", pos: pos(openedAt))
    }

    private static let twoCharOps: Set<String> = ["//", "**", "==", "!=", ">=", "<="]
    private static let oneCharOps: Set<Unicode.Scalar> = [
        "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", "<", ">", "=", ".", ":", "|", ",", ";",
    ]

    /// Tokens inside `{{ }}` / `{% %}` up to the matching end; braces must balance before an end counts.
    private mutating func lexTag(from start: Int, block: Bool) throws(JinjaError) -> Int {
        var p = start
        var balance: [Unicode.Scalar] = []
        while true {
            while p < src.count && isPySpace(src[p]) { p += 1 }
            guard p < src.count else {
                throw JinjaError(message: "unexpected end of template, expected '\(block ? "%}" : "}}")'",
                                 pos: pos(p))
            }
            if balance.isEmpty {
                if block, let e = blockEnd(p) {
                    tokens.append(Token(tok: .blockEnd, pos: pos(p)))
                    return e
                }
                if !block {
                    if at(p, "-}}") {
                        tokens.append(Token(tok: .varEnd, pos: pos(p)))
                        var e = p + 3
                        while e < src.count && isPySpace(src[e]) { e += 1 }
                        return e
                    }
                    if at(p, "}}") {
                        tokens.append(Token(tok: .varEnd, pos: pos(p)))
                        return p + 2
                    }
                }
            }
            let c = src[p]
            let here = pos(p)
            if c == "'" || c == "\"" {
                let (value, end) = try lexString(p)
                tokens.append(Token(tok: .string(value), pos: here))
                p = end
            } else if c.properties.numericType == .decimal && c.isASCII {
                let afterDot: Bool
                if case .op(".")? = tokens.last?.tok { afterDot = true } else { afterDot = false }
                let (tok, end) = try lexNumber(p, allowFloat: !afterDot)
                tokens.append(Token(tok: tok, pos: here))
                p = end
            } else if c == "_" || c.properties.isAlphabetic {
                var e = p + 1
                while e < src.count && (src[e] == "_" || src[e].properties.isAlphabetic
                                        || src[e].properties.numericType == .decimal) { e += 1 }
                tokens.append(Token(tok: .name(string(p..<e)), pos: here))
                p = e
            } else {
                var op = ""
                if p + 1 < src.count, Lexer.twoCharOps.contains(string(p..<(p + 2))) {
                    op = string(p..<(p + 2))
                } else if Lexer.oneCharOps.contains(c) {
                    op = String(Character(c))
                } else {
                    throw JinjaError(message: "unexpected char '\(Character(c))'", pos: here)
                }
                switch op {
                case "{": balance.append("}")
                case "(": balance.append(")")
                case "[": balance.append("]")
                case "}", ")", "]":
                    guard let expected = balance.popLast() else {
                        throw JinjaError(message: "unexpected '\(op)'", pos: here)
                    }
                    if String(Character(expected)) != op {
                        throw JinjaError(message: "unexpected '\(op)', expected '\(Character(expected))'", pos: here)
                    }
                default: break
                }
                tokens.append(Token(tok: .op(op), pos: here))
                p += op.unicodeScalars.count
            }
        }
    }

    private func digitRun(_ p: Int) -> Int {
        var e = p
        while e < src.count && (src[e].isASCII && src[e].properties.numericType == .decimal
                                || (src[e] == "_" && e > p && e + 1 < src.count
                                    && src[e + 1].properties.numericType == .decimal)) { e += 1 }
        return e
    }

    private func lexNumber(_ p: Int, allowFloat: Bool) throws(JinjaError) -> (Tok, Int) {
        var e = digitRun(p)
        var isFloat = false
        if allowFloat && e + 1 < src.count && src[e] == "." && src[e + 1].isASCII
            && src[e + 1].properties.numericType == .decimal {
            e = digitRun(e + 1)
            isFloat = true
        }
        if allowFloat && e < src.count && (src[e] == "e" || src[e] == "E") {
            var x = e + 1
            if x < src.count && (src[x] == "+" || src[x] == "-") { x += 1 }
            if x < src.count && src[x].isASCII && src[x].properties.numericType == .decimal {
                e = digitRun(x)
                isFloat = true
            }
        }
        let text = string(p..<e).replacingUnderscores()
        if isFloat, let d = Double(text) { return (.float(d), e) }
        guard let i = Int(text) else { throw JinjaError(message: "integer literal too large", pos: pos(p)) }
        return (.int(i), e)
    }

    /// A quoted literal with Python's `unicode-escape` rules (unknown escapes keep their backslash).
    private func lexString(_ p: Int) throws(JinjaError) -> (String, Int) {
        let quote = src[p]
        var out = String.UnicodeScalarView()
        var i = p + 1
        func hexValue(_ start: Int, _ count: Int) -> UInt32? {
            guard start + count <= src.count else { return nil }
            var v: UInt32 = 0
            for c in src[start..<(start + count)] {
                guard c.isASCII, let d = UInt32(String(c), radix: 16) else { return nil }
                v = v * 16 + d
            }
            return v
        }
        while i < src.count {
            let c = src[i]
            if c == quote { return (String(out), i + 1) }
            if c != "\\" || i + 1 >= src.count { out.append(c); i += 1; continue }
            let e = src[i + 1]
            i += 2
            switch e {
            case "\n": break
            case "\\", "'", "\"": out.append(e)
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "v": out.append("\u{0B}")
            case "0"..."7":
                var v = e.value - 0x30
                var count = 1
                while count < 3, i < src.count, ("0"..."7").contains(src[i]) {
                    v = v * 8 + src[i].value - 0x30
                    i += 1
                    count += 1
                }
                out.append(Unicode.Scalar(v) ?? "\u{FFFD}")
            case "x", "u", "U":
                let width = e == "x" ? 2 : e == "u" ? 4 : 8
                guard let v = hexValue(i, width) else {
                    throw JinjaError(message: "truncated \\\(Character(e)) escape in string literal", pos: pos(i - 2))
                }
                out.append(Unicode.Scalar(v) ?? "\u{FFFD}")
                i += width
            default:
                out.append("\\")
                out.append(e)
            }
        }
        throw JinjaError(message: "unterminated string literal", pos: pos(p))
    }
}

extension String {
    func replacingUnderscores() -> String { String(unicodeScalars.filter { $0 != "_" }.map(Character.init)) }
}
