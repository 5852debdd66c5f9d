// Streamed detokenization equals the whole decode (no U+FFFD the whole decode lacks), and stop strings are
// matched on the accumulated text, never emitted, with a held-back tail flushed at the end.
import Testing
@testable import Text

/// A deterministic generator for random id sequences (xorshift; no dependence on the system RNG).
struct TestRandom {
    var state: UInt64
    mutating func next(_ n: Int) -> Int {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Int(state % UInt64(n))
    }
}

@Suite struct StreamingDecoderTests {
    /// Tokens of 1-3 bytes cut out of multi-byte text, so most characters are split across tokens.
    static let pieces: [[UInt8]] = {
        let text = Array("héllo 🙂 世界 👍🏽 ü ŋ 🇫🇷 € e\u{301}".utf8)
        var out: [[UInt8]] = []
        var i = 0, k = 0
        while i < text.count {
            let n = min(1 + k % 3, text.count - i)
            out.append(Array(text[i..<(i + n)]))
            i += n
            k += 1
        }
        return out + [[0xFF], [0xC3], [0xE2, 0x82], [0xF0, 0x9F], [0x80]]   // invalid and dangling bytes too
    }()

    static func stream(_ ids: [Int]) -> String {
        var d = StreamingDecoder(bytes: { pieces[$0] })
        return ids.map { d.push($0) }.joined() + d.finish()
    }

    @Test func splitEmojiComesOutWholeNotAsReplacementCharacters() {
        let emoji = Array("🙂".utf8)
        let vocab = [Array(emoji[0..<2]), Array(emoji[2..<4])]
        var d = StreamingDecoder(bytes: { vocab[$0] })
        #expect(d.push(0) == "")
        #expect(d.push(1) == "🙂")
        #expect(d.finish() == "")
    }

    @Test func inOrderPiecesReproduceTheTextAndEachDeltaIsWhole() {
        let ids = Array(0..<(Self.pieces.count - 5))
        var d = StreamingDecoder(bytes: { Self.pieces[$0] })
        var deltas: [String] = []
        for id in ids { deltas.append(d.push(id)) }
        deltas.append(d.finish())
        #expect(deltas.joined() == "héllo 🙂 世界 👍🏽 ü ŋ 🇫🇷 € e\u{301}")
        #expect(!deltas.joined().unicodeScalars.contains("\u{FFFD}"))
    }

    @Test func randomSequencesStreamExactlyTheWholeDecode() {
        var rng = TestRandom(state: 0x9E37_79B9_7F4A_7C15)
        for _ in 0..<2000 {
            let ids = (0..<(1 + rng.next(24))).map { _ in rng.next(Self.pieces.count) }
            let whole = String(decoding: ids.flatMap { Self.pieces[$0] }, as: UTF8.self)
            let streamed = Self.stream(ids)
            #expect(streamed == whole, "\(ids)")
            let extra = streamed.unicodeScalars.filter { $0 == "\u{FFFD}" }.count - whole.unicodeScalars.filter { $0 == "\u{FFFD}" }.count
            #expect(extra == 0)
        }
    }

    @Test func incompleteTailIsHeldThenFlushedAsTheWholeDecodeHasIt() {
        var d = StreamingDecoder(bytes: { [[0x61], [0xE4, 0xB8]][$0] })
        #expect(d.push(0) == "a")
        #expect(d.push(1) == "")
        #expect(d.finish() == String(decoding: [0xE4, 0xB8], as: UTF8.self))
    }
}

@Suite struct StopMatcherTests {
    func run(_ stops: [String], _ chunks: [String]) -> (String, StopMatcher) {
        var m = StopMatcher(stops: stops)
        var out = chunks.map { m.push($0) }.joined()
        out += m.finish()
        return (out, m)
    }

    @Test func stopStringSplitAcrossChunksIsNeverEmitted() {
        let (out, m) = run(["</answer>"], ["The result is 42</", "ans", "wer> and more"])
        #expect(out == "The result is 42")
        #expect(m.stopped && m.matched == "</answer>")
    }

    @Test func heldTailIsReleasedWhenItStopsMatching() {
        var m = StopMatcher(stops: ["STOP"])
        #expect(m.push("abc ST") == "abc ")
        #expect(m.push("A") == "STA", "\"STA\" can no longer become \"STOP\"")
        #expect(m.push("RT") == "RT")
        #expect(!m.stopped)
    }

    @Test func heldTailIsFlushedAtTheEnd() {
        let (out, m) = run(["\n\nUser:"], ["Hello\n", "\nUs"])
        #expect(out == "Hello\n\nUs")
        #expect(!m.stopped)
    }

    @Test func earliestMatchWinsAndLaterTextIsDropped() {
        let (out, m) = run(["bb", "ab"], ["xxab", "bb"])
        #expect(out == "xx")
        #expect(m.matched == "ab")
        var after = StopMatcher(stops: ["x"])
        _ = after.push("ax")
        #expect(after.push("more") == "")
    }

    @Test func noStopsPassesEverythingThrough() {
        let (out, _) = run([], ["a", "b🙂"])
        #expect(out == "ab🙂")
    }

    @Test func matchingIsOverScalarsSoCombiningMarksDoNotHideAStop() {
        // "e" + U+0301 is one Character; the stop "e" still matches the scalar.
        let (out, m) = run(["e"], ["cafe\u{301}"])
        #expect(out == "caf")
        #expect(m.stopped)
    }
}
