// Python's text forms: float repr, str repr, and json.dumps string quoting, byte for byte.

enum PyFormat {
    /// `repr(float)`: shortest round-trip digits; exponent form when the exponent is < -4 or >= 16.
    static func floatRepr(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        let (negative, digits, decpt) = shortestDigits(d)
        let sign = negative ? "-" : ""
        if digits.isEmpty { return sign + "0.0" }
        let exp = decpt - 1
        if exp < -4 || exp >= 16 {
            var m = String(digits.first!)
            if digits.count > 1 { m += "." + digits.dropFirst() }
            let e = abs(exp)
            return sign + m + "e" + (exp < 0 ? "-" : "+") + (e < 10 ? "0" : "") + String(e)
        }
        if decpt <= 0 {
            return sign + "0." + String(repeating: "0", count: -decpt) + digits
        }
        if decpt >= digits.count {
            return sign + digits + String(repeating: "0", count: decpt - digits.count) + ".0"
        }
        let cut = digits.index(digits.startIndex, offsetBy: decpt)
        return sign + digits[..<cut] + "." + digits[cut...]
    }

    /// Significant digits (no leading/trailing zeros) and the decimal point position: value = 0.DIGITS × 10^decpt.
    /// Swift's `description` already prints the shortest round-trip digits; only the layout differs from Python.
    private static func shortestDigits(_ d: Double) -> (Bool, String, Int) {
        var text = Substring(d.description)
        let negative = text.hasPrefix("-")
        if negative { text = text.dropFirst() }
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = text[..<e]
        }
        var intLen = text.count
        if let dot = text.firstIndex(of: ".") {
            intLen = text.distance(from: text.startIndex, to: dot)
            text.remove(at: dot)
        }
        var digits = String(text)
        var decpt = intLen + exponent
        while digits.first == "0" { digits.removeFirst(); decpt -= 1 }
        while digits.last == "0" { digits.removeLast() }
        return (negative, digits, decpt)
    }

    /// Python's `str.isprintable` per scalar: not in Cc, Cf, Cs, Co, Cn, Zl, Zp, Zs (except the ASCII space).
    static func isPrintable(_ s: Unicode.Scalar) -> Bool {
        if s.value < 0x7F { return s.value >= 0x20 }
        switch s.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned,
             .lineSeparator, .paragraphSeparator, .spaceSeparator:
            return false
        default:
            return true
        }
    }

    /// `repr(str)`: single quotes unless the text has a single quote and no double quote.
    static func strRepr(_ s: String, into out: inout String) {
        let quote: Unicode.Scalar = (s.utf8.contains(0x27) && !s.utf8.contains(0x22)) ? "\"" : "'"
        out.unicodeScalars.append(quote)
        appendEscaped(s, into: &out) { c in
            switch c {
            case "\\": "\\\\"
            case "\n": "\\n"
            case "\r": "\\r"
            case "\t": "\\t"
            case quote: "\\" + String(c)
            default:
                if isPrintable(c) { nil }
                else if c.value < 0x100 { "\\x" + hex(c.value, width: 2) }
                else if c.value < 0x10000 { "\\u" + hex(c.value, width: 4) }
                else { "\\U" + hex(c.value, width: 8) }
            }
        }
        out.unicodeScalars.append(quote)
    }

    /// Appends `s` with each scalar that `escape` maps replaced by its escape: the loop of every quoting function
    /// (repr, json.dumps, the escape filter), which differ only in their tables.
    static func appendEscaped(_ s: String, into out: inout String, _ escape: (Unicode.Scalar) -> String?) {
        for c in s.unicodeScalars {
            if let e = escape(c) { out += e } else { out.unicodeScalars.append(c) }
        }
    }

    static func hex(_ v: UInt32, width: Int) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - h.count)) + h
    }

    /// `json.dumps(str)`: escapes quote, backslash and control characters; `asciiOnly` also escapes non-ASCII
    /// (as lowercase `\uXXXX`, surrogate pairs above U+FFFF), like `ensure_ascii=True`.
    static func jsonQuote(_ s: String, asciiOnly: Bool, into out: inout String) {
        out += "\""
        appendEscaped(s, into: &out) { c in
            switch c {
            case "\"": "\\\""
            case "\\": "\\\\"
            case "\n": "\\n"
            case "\r": "\\r"
            case "\t": "\\t"
            case "\u{08}": "\\b"
            case "\u{0C}": "\\f"
            default:
                if c.value < 0x20 || (asciiOnly && c.value > 0x7E && c.value < 0x10000) { "\\u" + hex(c.value, width: 4) }
                else if asciiOnly && c.value >= 0x10000 {
                    "\\u" + hex(0xD800 + ((c.value - 0x10000) >> 10), width: 4) + "\\u" + hex(0xDC00 + (c.value & 0x3FF), width: 4)
                } else { nil }
            }
        }
        out += "\""
    }
}
