// Python str operations over Unicode scalars (code points), so lengths, indexes and splits agree with Python.

enum PyString {
    static func scalars(_ s: String) -> [Unicode.Scalar] { Array(s.unicodeScalars) }

    static func make<C: Collection>(_ c: C) -> String where C.Element == Unicode.Scalar {
        var v = String.UnicodeScalarView()
        v.append(contentsOf: c)
        return String(v)
    }

    /// First index of `needle` in `hay[from..<to]`.
    static func find<T: Equatable>(_ hay: [T], _ needle: [T], from: Int, to: Int? = nil) -> Int? {
        let end = min(to ?? hay.count, hay.count)
        guard from >= 0, needle.count <= end - from else { return nil }
        if needle.isEmpty { return from }
        var i = from
        while i + needle.count <= end {
            if hay[i] == needle[0] {
                var j = 1
                while j < needle.count && hay[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }

    static func rfind<T: Equatable>(_ hay: [T], _ needle: [T], from: Int = 0, to: Int? = nil) -> Int? {
        let end = min(to ?? hay.count, hay.count)
        guard from >= 0, needle.count <= end - from else { return nil }
        var i = end - needle.count
        while i >= from {
            if hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i -= 1
        }
        return nil
    }

    /// Non-overlapping occurrences; an empty needle counts len+1 like Python.
    static func count(_ hay: [Unicode.Scalar], _ needle: [Unicode.Scalar]) -> Int {
        if needle.isEmpty { return hay.count + 1 }
        var n = 0, i = 0
        while let j = find(hay, needle, from: i) {
            n += 1
            i = j + needle.count
        }
        return n
    }

    static func replace(_ s: String, _ old: String, _ new: String, count: Int) -> String {
        let hay = scalars(s), o = scalars(old), nw = scalars(new)
        var out: [Unicode.Scalar] = []
        var i = 0, done = 0
        if o.isEmpty {
            for c in hay {
                if count < 0 || done < count { out += nw; done += 1 }
                out.append(c)
            }
            if count < 0 || done < count { out += nw }
            return make(out)
        }
        while count < 0 || done < count, let j = find(hay, o, from: i) {
            out += hay[i..<j]
            out += nw
            i = j + o.count
            done += 1
        }
        out += hay[i...]
        return make(out)
    }

    /// `str.split(sep, maxsplit)`; `sep == nil` splits on whitespace runs and drops empty parts.
    static func split(_ s: String, _ sep: String?, _ maxsplit: Int) -> [String] {
        let hay = scalars(s)
        var parts: [String] = []
        if let sep {
            let sp = scalars(sep)
            var i = 0
            while maxsplit < 0 || parts.count < maxsplit, let j = find(hay, sp, from: i) {
                parts.append(make(hay[i..<j]))
                i = j + sp.count
            }
            parts.append(make(hay[i...]))
            return parts
        }
        var i = 0
        while true {
            while i < hay.count && isPySpace(hay[i]) { i += 1 }
            if i >= hay.count { break }
            if maxsplit >= 0 && parts.count == maxsplit {
                parts.append(make(hay[i...]))
                break
            }
            var j = i
            while j < hay.count && !isPySpace(hay[j]) { j += 1 }
            parts.append(make(hay[i..<j]))
            i = j
        }
        return parts
    }

    static func rsplit(_ s: String, _ sep: String?, _ maxsplit: Int) -> [String] {
        if maxsplit < 0 { return split(s, sep, maxsplit) }
        let hay = scalars(s)
        var parts: [String] = []
        if let sep {
            let sp = scalars(sep)
            var end = hay.count
            while parts.count < maxsplit, let j = rfind(hay, sp, to: end) {
                parts.append(make(hay[(j + sp.count)..<end]))
                end = j
            }
            parts.append(make(hay[..<end]))
            return parts.reversed()
        }
        var j = hay.count
        while true {
            while j > 0 && isPySpace(hay[j - 1]) { j -= 1 }
            if j == 0 { break }
            if parts.count == maxsplit {
                parts.append(make(hay[..<j]))
                break
            }
            var i = j
            while i > 0 && !isPySpace(hay[i - 1]) { i -= 1 }
            parts.append(make(hay[i..<j]))
            j = i
        }
        return parts.reversed()
    }

    /// `strip` / `lstrip` / `rstrip` with Python's default (whitespace) or an explicit character set.
    static func strip(_ s: String, _ chars: String?, left: Bool, right: Bool) -> String {
        let sc = scalars(s)
        let set = chars.map { Set($0.unicodeScalars) }
        func strippable(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isPySpace(c) }
        var lo = 0, hi = sc.count
        if left { while lo < hi && strippable(sc[lo]) { lo += 1 } }
        if right { while hi > lo && strippable(sc[hi - 1]) { hi -= 1 } }
        if lo == 0 && hi == sc.count { return s }
        return make(sc[lo..<hi])
    }

    static func isCased(_ c: Unicode.Scalar) -> Bool {
        c.properties.isLowercase || c.properties.isUppercase || c.properties.generalCategory == .titlecaseLetter
    }

    /// Python `str.title()`: a cased character after an uncased one is title-cased, others lower-cased.
    static func title(_ s: String) -> String {
        var out = ""
        var prevCased = false
        for c in s.unicodeScalars {
            if isCased(c) {
                out += prevCased ? c.properties.lowercaseMapping : c.properties.titlecaseMapping
                prevCased = true
            } else {
                out.unicodeScalars.append(c)
                prevCased = false
            }
        }
        return out
    }

    /// Python `str.capitalize()`: first character title-cased, the rest lower-cased.
    static func capitalize(_ s: String) -> String {
        guard let first = s.unicodeScalars.first else { return s }
        return first.properties.titlecaseMapping + make(s.unicodeScalars.dropFirst()).lowercased()
    }

    static func isAlpha(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    static func isDecimal(_ c: Unicode.Scalar) -> Bool { c.properties.numericType == .decimal }
    static func isDigit(_ c: Unicode.Scalar) -> Bool {
        c.properties.numericType == .decimal || c.properties.numericType == .digit
    }
    static func isNumeric(_ c: Unicode.Scalar) -> Bool { c.properties.numericType != nil }
}
