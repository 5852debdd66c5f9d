// jinja2's `is` tests (defined, string, mapping, eq, ...) with Python's type rules (bool is a number).

enum Predicates {
    static let names: Set<String> = [
        "defined", "undefined", "none", "boolean", "false", "true", "integer", "float", "number", "string",
        "mapping", "iterable", "sequence", "callable", "sameas", "escaped", "odd", "even", "divisibleby",
        "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=",
        "in", "lower", "upper", "filter", "test",
    ]

    static func apply(_ name: String, _ v: Value, _ a: CallArgs, _ p: Pos) throws(JinjaError) -> Bool {
        let arg = a.positional.first ?? a.keyword.first?.1
        func needArg() throws(JinjaError) -> Value {
            guard let arg else { throw JinjaError(message: "test '\(name)' needs an argument", pos: p) }
            return arg
        }
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": return v.isNone
        case "boolean": if case .bool = v { return true } else { return false }
        case "true": if case .bool(true) = v { return true } else { return false }
        case "false": if case .bool(false) = v { return true } else { return false }
        case "integer": if case .int = v { return true } else { return false }
        case "float": if case .double = v { return true } else { return false }
        case "number": return v.number != nil
        case "string": if case .string = v { return true } else { return false }
        case "mapping": if case .dict = v { return true } else { return false }
        case "iterable", "sequence":
            switch v {
            case .string, .list, .tuple, .dict, .undefined: return true
            default: return false
            }
        case "callable":
            switch v {
            case .macro, .builtin, .method, .loop: return true
            default: return false
            }
        case "sameas":
            let other = try needArg()
            switch (v, other) {
            case (.none, .none): return true
            case (.bool(let x), .bool(let y)): return x == y
            case (.namespace(let x), .namespace(let y)): return x === y
            case (.int(let x), .int(let y)): return x == y && (-5...256).contains(x)
            default: return false
            }
        case "escaped": return false
        case "odd", "even", "divisibleby":
            let divisor = name == "divisibleby" ? try needArg() : .int(2)
            let r = try Ops.binary(.mod, v, divisor, p)
            let remainder = r.number?.asDouble ?? 0
            return name == "odd" ? remainder == 1 : remainder == 0
        case "eq", "equalto", "==": return try Ops.compare(.eq, v, try needArg(), p)
        case "ne", "!=": return try Ops.compare(.ne, v, try needArg(), p)
        case "lt", "lessthan", "<": return try Ops.compare(.lt, v, try needArg(), p)
        case "le", "<=": return try Ops.compare(.le, v, try needArg(), p)
        case "gt", "greaterthan", ">": return try Ops.compare(.gt, v, try needArg(), p)
        case "ge", ">=": return try Ops.compare(.ge, v, try needArg(), p)
        case "in": return try Ops.contains(try needArg(), v, p)
        case "lower", "upper":
            let s = v.pyStr
            let cased = s.unicodeScalars.filter(PyString.isCased)
            return !cased.isEmpty && cased.allSatisfy { name == "lower" ? $0.properties.isLowercase
                : $0.properties.isUppercase }
        case "filter": return Filters.names.contains(v.pyStr)
        case "test": return names.contains(v.pyStr)
        default:
            throw JinjaError(message: "unknown test '\(name)'", pos: p)
        }
    }
}
