// Global functions of transformers' environment: range, namespace, dict, raise_exception, strftime_now.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum Builtins {
    /// The sandbox refuses larger ranges (jinja2's MAX_RANGE).
    static let maxRange = 100_000

    static func call(_ b: Builtin, _ a: CallArgs, _ p: Pos) throws(JinjaError) -> Value {
        switch b {
        case .range:
            var ints: [Int] = []
            for v in a.positional {
                guard case .int(let i)? = v.number else {
                    throw Ops.typeError("'\(v.typeName)' object cannot be interpreted as an integer", v, pos: p)
                }
                ints.append(i)
            }
            let (start, stop, step): (Int, Int, Int)
            switch ints.count {
            case 1: (start, stop, step) = (0, ints[0], 1)
            case 2: (start, stop, step) = (ints[0], ints[1], 1)
            case 3: (start, stop, step) = (ints[0], ints[1], ints[2])
            default: throw JinjaError(message: "range expected 1 to 3 arguments, got \(ints.count)", pos: p)
            }
            guard step != 0 else { throw JinjaError(message: "range() arg 3 must not be zero", pos: p) }
            let count = step > 0 ? max(0, (stop - start + step - 1) / step) : max(0, (start - stop - step - 1) / -step)
            guard count <= maxRange else {
                throw JinjaError(message: "Range too big. The sandbox blocks ranges larger than MAX_RANGE (\(maxRange)).",
                                 pos: p)
            }
            return .list((0..<count).map { .int(start + $0 * step) })
        case .namespace, .dict:
            var d = PyDict()
            for v in a.positional {
                guard case .dict(let other) = v else {
                    throw JinjaError(message: "\(b.rawValue)() positional argument must be a mapping", pos: p)
                }
                for (k, x) in other.pairs { d[k] = x }
            }
            for (k, x) in a.keyword { d[.string(k)] = x }
            guard b == .namespace else { return .dict(d) }
            for case .string(let k) in d.keys where k.hasPrefix("_") {
                throw JinjaError(message: "Chat templates cannot store underscore-prefixed attributes on a namespace, "
                                 + "but got '\(k)'. Please rename the attribute.", pos: p)
            }
            return .namespace(Namespace(d))
        case .raiseException:
            let message = (a.positional.first ?? a.keyword.first?.1 ?? .string("")).pyStr
            throw JinjaError(message: message, pos: p, raised: true)
        case .strftimeNow:
            guard case .string(let format)? = a.positional.first ?? a.keyword.first?.1 else {
                throw JinjaError(message: "strftime_now() needs a format string", pos: p)
            }
            return .string(strftimeNow(format))
        }
    }

    /// Local time like Python's `datetime.now().strftime(format)` (C strftime; `%f` is the microseconds).
    static func strftimeNow(_ format: String) -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tmv = tm()
        localtime_r(&t, &tmv)
        let micro = String(Int(ts.tv_nsec) / 1000)
        let fmt = format.replacingMicroseconds(String(repeating: "0", count: 6 - micro.count) + micro)
        var buf = [CChar](repeating: 0, count: 512)
        let n = strftime(&buf, buf.count, fmt, &tmv)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension String {
    /// Replaces `%f` (not `%%f`) with the given digits, which C strftime does not know.
    func replacingMicroseconds(_ digits: String) -> String {
        var out = ""
        var it = unicodeScalars.makeIterator()
        while let c = it.next() {
            guard c == "%" else { out.unicodeScalars.append(c); continue }
            guard let d = it.next() else { out += "%"; break }
            if d == "f" { out += digits } else { out += "%"; out.unicodeScalars.append(d) }
        }
        return out
    }
}
