// Streaming over real vocabularies whose tokens split multi-byte characters: the streamed deltas concatenate
// to exactly the whole decode and never hold a U+FFFD the whole decode lacks.
import Foundation
import Testing
@testable import Text

@Suite struct StreamingFixtureTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/text").path

    @Test(arguments: ["dsv3-bpe", "kimi-tiktoken"])
    func streamEqualsWholeDecodeOnSplitCharacters(fixture: String) throws {
        let t = try Tokenizer.load(directory: Self.root + "/" + fixture)
        // Tokens that are not whole UTF-8 text on their own: the ones that split characters.
        let partial = (0..<t.vocabularySize).filter { String(validating: t.tokenBytes($0), as: UTF8.self) == nil }
        #expect(partial.count > 100, "the fixture vocabulary splits characters (\(partial.count) partial tokens)")
        // Real generations: every corpus line containing multi-byte text, encoded, then streamed back.
        let corpus = try String(contentsOfFile: Self.root + "/corpus.txt", encoding: .utf8)
        var lines = 0
        for line in corpus.split(separator: "\n") where line.utf8.count != line.unicodeScalars.count {
            let ids = t.encode(String(line), addSpecialTokens: false)
            var d = StreamingDecoder(tokenizer: t)
            let streamed = ids.map { d.push($0) }.joined() + d.finish()
            #expect(streamed == t.decode(ids), "line \(line)")
            lines += 1
        }
        #expect(lines > 500)
        // Random sequences that lean on the partial tokens, as a sampling model would produce them.
        var rng = TestRandom(state: 0xD1B5_4A32_D192_ED03)
        for _ in 0..<3000 {
            let ids = (0..<(1 + rng.next(16))).map { _ in rng.next(3) == 0 ? rng.next(t.vocabularySize) : partial[rng.next(partial.count)] }
            var d = StreamingDecoder(tokenizer: t, skipSpecialTokens: true)
            var deltas: [String] = []
            for id in ids { deltas.append(d.push(id)) }
            deltas.append(d.finish())
            let whole = t.decode(ids, skipSpecialTokens: true)
            #expect(deltas.joined() == whole, "\(ids)")
            let fffd = { (s: String) in s.unicodeScalars.filter { $0 == "\u{FFFD}" }.count }
            #expect(deltas.map(fffd).reduce(0, +) == fffd(whole), "\(ids)")
        }
    }
}
