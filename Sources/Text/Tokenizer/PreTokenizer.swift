// Pre-tokenization: Split / Digits / ByteLevel steps over scalar ranges, as huggingface/tokenizers pre_tokenizers/*.

/// How a Split keeps its matches (huggingface/tokenizers `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// One step of the (flattened) pre-tokenizer sequence.
enum PreTokenizerStep: Sendable, Equatable {
    case split(KnownPattern, SplitBehavior, invert: Bool)
    /// ByteLevel: optional prefix space, optional GPT-2 split; must be the last step (the byte mapping is
    /// implicit: the model consumes raw bytes).
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
}

/// Runs the steps over text and hands each final piece (a scalar range of some ScalarText) to `emit`.
struct PreTokenizerRunner {
    let steps: [PreTokenizerStep]

    func run(_ text: ScalarText, _ emit: (borrowing ScalarText, Int, Int) -> Void) {
        if text.count == 0 { return }
        apply(0, text, 0, text.count, emit)
    }

    private func apply(_ k: Int, _ text: ScalarText, _ lo: Int, _ hi: Int,
                       _ emit: (borrowing ScalarText, Int, Int) -> Void) {
        if lo >= hi { return }
        if k == steps.count { emit(text, lo, hi); return }
        switch steps[k] {
        case .split(let pattern, let behavior, let invert):
            if behavior == .isolated {
                // Isolated keeps every match and every gap in order, whatever `invert` says.
                forEachMatch(pattern, text, lo, hi) { a, b, _ in apply(k + 1, text, a, b, emit) }
                return
            }
            var parts: [(Int, Int, Bool)] = []
            forEachMatch(pattern, text, lo, hi) { a, b, m in parts.append((a, b, m != invert)) }
            for (a, b) in Self.applyBehavior(parts, behavior) { apply(k + 1, text, a, b, emit) }
        case .byteLevel(let addPrefixSpace, let useRegex):
            if addPrefixSpace && text.scalars[lo] != 0x20 {
                // tokenizers prepends the space to each piece that lacks one.
                let spaced = ScalarText(bytes: [0x20] + text.bytes[Int(text.offsets[lo])..<Int(text.offsets[hi])])
                applyByteLevelRegex(k, spaced, 0, spaced.count, useRegex, emit)
            } else {
                applyByteLevelRegex(k, text, lo, hi, useRegex, emit)
            }
        }
    }

    private func applyByteLevelRegex(_ k: Int, _ text: ScalarText, _ lo: Int, _ hi: Int, _ useRegex: Bool,
                                     _ emit: (borrowing ScalarText, Int, Int) -> Void) {
        if useRegex {
            forEachMatch(.gpt2, text, lo, hi) { a, b, _ in apply(k + 1, text, a, b, emit) }
        } else {
            apply(k + 1, text, lo, hi, emit)
        }
    }

    /// find_iter semantics: matches and the gaps between them, in order, covering [lo, hi).
    @inline(__always)
    func forEachMatch(_ pattern: KnownPattern, _ text: ScalarText, _ lo: Int, _ hi: Int,
                      _ body: (Int, Int, Bool) -> Void) {
        text.scalars.withUnsafeBufferPointer { sb in
            text.classes.withUnsafeBufferPointer { cb in
                let s = sb.baseAddress!, c = cb.baseAddress!
                var i = lo, gap = lo
                while i < hi {
                    let e = pattern.matchEnd(s, c, i, hi)
                    if e > i {
                        if gap < i { body(gap, i, false) }
                        body(i, e, true)
                        i = e
                        gap = e
                    } else {
                        i += 1
                    }
                }
                if gap < hi { body(gap, hi, false) }
            }
        }
    }

    /// The non-Isolated behaviours, folded exactly as `NormalizedString::split` does.
    static func applyBehavior(_ parts: [(Int, Int, Bool)], _ behavior: SplitBehavior) -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        switch behavior {
        case .isolated:
            out = parts.map { ($0.0, $0.1) }
        case .removed:
            out = parts.filter { !$0.2 }.map { ($0.0, $0.1) }
        case .contiguous:
            var prev = false
            for (a, b, m) in parts {
                if m == prev, !out.isEmpty { out[out.count - 1].1 = b } else { out.append((a, b)) }
                prev = m
            }
        case .mergedWithPrevious:
            var prev = false
            for (a, b, m) in parts {
                if m && !prev, !out.isEmpty { out[out.count - 1].1 = b } else { out.append((a, b)) }
                prev = m
            }
        case .mergedWithNext:
            var prev = false
            for (a, b, m) in parts.reversed() {
                if m && !prev, !out.isEmpty { out[out.count - 1].0 = a } else { out.append((a, b)) }
                prev = m
            }
            out.reverse()
        }
        return out
    }
}
