// The fixture corpus through both reference-made tokenizers: ids, decode, long inputs, tokenBytes.
import Foundation
import Testing
@testable import Text

@Suite struct TokenizerFixtureTests {
    static let dirs = ["dsv3-bpe", "kimi-tiktoken"]

    static func load(_ dir: String) throws -> Tokenizer { try Tokenizer.load(directory: TokFixtures.path(dir)) }

    /// A fixture's list of cases; an empty one would make its test pass vacuously.
    static func cases(_ dir: String, _ file: String) throws -> [[String: Any]] {
        let cases = try #require(try TokFixtures.json("\(dir)/\(file)") as? [[String: Any]])
        #expect(!cases.isEmpty)
        return cases
    }

    /// Expands run-length encoded ids, [[id, count], ...].
    static func expand(_ runs: [[Int]]) -> [Int] { runs.flatMap { Array(repeating: $0[0], count: $0[1]) } }

    @Test(arguments: dirs)
    func everyLineMatchesReference(dir: String) throws {
        let tok = try Self.load(dir)
        let (_, lines) = try TokFixtures.corpusLines()
        let expected = try String(contentsOfFile: TokFixtures.path("\(dir)/expected.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        #expect(expected.count == lines.count)
        var idsOK = 0, rawOK = 0, roundTrip = 0
        for row in expected {
            let e = try #require(try JSONSerialization.jsonObject(with: Data(row.utf8)) as? [String: Any])
            let n = try #require(e["n"] as? Int)
            let line = lines[n - 1]
            let ids = tok.encode(line), raw = tok.encode(line, addSpecialTokens: false)
            if ids == (e["ids"] as? [Int]) { idsOK += 1 } else { Issue.record("\(dir) line \(n): ids \(ids) != \(e["ids"]!)") }
            if raw == (e["raw"] as? [Int]) { rawOK += 1 } else { Issue.record("\(dir) line \(n): raw \(raw) != \(e["raw"]!)") }
            if tok.decode(raw) == line { roundTrip += 1 } else { Issue.record("\(dir) line \(n): decode(encode(x)) != x") }
        }
        #expect(idsOK == lines.count && rawOK == lines.count && roundTrip == lines.count)
    }

    @Test(arguments: dirs)
    func wholeCorpusMatchesReference(dir: String) throws {
        let tok = try Self.load(dir)
        let (text, _) = try TokFixtures.corpusLines()
        let whole = try #require(try TokFixtures.json("\(dir)/whole.json") as? [String: Any])
        let raw = tok.encode(text, addSpecialTokens: false)
        #expect(raw == (whole["raw"] as? [Int]))
        #expect(tok.encode(text) == (whole["ids"] as? [Int]))
        #expect(tok.decode(raw) == text)
    }

    @Test(arguments: dirs)
    func decodeCasesMatchReference(dir: String) throws {
        let tok = try Self.load(dir)
        for c in try Self.cases(dir, "decode.json") {
            let ids = try #require(c["ids"] as? [Int])
            #expect(tok.decode(ids) == (c["text"] as? String), "ids \(ids)")
            #expect(tok.decode(ids, skipSpecialTokens: true) == (c["skip_special"] as? String), "ids \(ids) skipping")
        }
    }

    /// Runs of > 25,000 chars and inputs crossing Kimi's 400,000-char window.
    @Test(arguments: dirs)
    func longInputsMatchReference(dir: String) throws {
        let tok = try Self.load(dir)
        for c in try Self.cases(dir, "long.json") {
            let recipe = try #require(c["recipe"] as? [[Any]])
            var text = ""
            for step in recipe {
                let s = try #require(step[0] as? String), k = try #require(step[1] as? Int)
                text += String(repeating: s, count: k)
            }
            #expect(text.unicodeScalars.count == (c["chars"] as? Int))
            let expected = Self.expand(try #require(c["ids_rle"] as? [[Int]]))
            let got = tok.encode(text)
            #expect(got == expected, "\(dir) recipe \(recipe.map { "\($0[1])x\(($0[0] as? String)?.prefix(12) ?? "")" })")
            if let rawRLE = c["raw_rle"] as? [[Int]] { #expect(tok.encode(text, addSpecialTokens: false) == Self.expand(rawRLE)) }
        }
    }

    /// The streaming decoder relies on decode(ids) == UTF-8 of the concatenated tokenBytes.
    @Test(arguments: dirs)
    func tokenBytesConcatenateToDecode(dir: String) throws {
        let tok = try Self.load(dir)
        let (text, lines) = try TokFixtures.corpusLines()
        for s in [text] + lines.prefix(200) {
            let ids = tok.encode(s)
            let bytes = ids.flatMap { tok.tokenBytes($0) }
            #expect(String(decoding: bytes, as: UTF8.self) == tok.decode(ids))
        }
        // Every single id too, including partial UTF-8 tokens and specials.
        for id in 0..<tok.vocabularySize {
            #expect(String(decoding: tok.tokenBytes(id), as: UTF8.self) == tok.decode([id]), "id \(id)")
        }
    }

    @Test func dsv3ConfigAndVocabulary() throws {
        let tok = try Self.load("dsv3-bpe")
        #expect(tok.vocabularySize == 4818)
        #expect(tok.config.kind == "tokenizer.json BPE")
        #expect(tok.config.modelType == "deepseek_v3")
        #expect(tok.config.bosTokenID == 4000 && tok.config.eosTokenID == 4001)
        #expect(tok.config.eosTokenIDs == [4001])
        #expect(tok.config.addBosToken == true)
        #expect(tok.config.modelMaxLength == 131072)
        #expect(tok.config.chatTemplate?.contains("<｜Assistant｜>") == true)
        #expect(tok.config.files.contains("tokenizer.json") && tok.config.files.contains("tokenizer_config.json"))
        #expect(tok.id(forToken: "<｜begin▁of▁sentence｜>") == 4000)
        #expect(tok.token(forID: 4000) == "<｜begin▁of▁sentence｜>")
        #expect(tok.isSpecial(4000))
        let user = try #require(tok.id(forToken: "<｜User｜>"))
        #expect(!tok.isSpecial(user))
        #expect(!tok.isSpecial(100))
        #expect(tok.encode("<｜User｜>hi", addSpecialTokens: false).first == user)
    }

    @Test func kimiConfigAndSpecials() throws {
        let tok = try Self.load("kimi-tiktoken")
        #expect(tok.vocabularySize == 4256)
        #expect(tok.config.kind == "tiktoken.model")
        #expect(tok.config.modelType == "kimi_k2")
        // Its model_max_length is 1e30 written out: past Int, so no limit.
        #expect(tok.config.modelMaxLength == nil)
        #expect(tok.config.bosTokenID == 4000 && tok.config.eosTokenID == 4001)
        #expect(tok.id(forToken: "<|im_end|>") == 4002)
        #expect(tok.id(forToken: "<|reserved_token_4005|>") == 4005)
        // Reserved names encode as their id but are not "special" to decode(skipSpecialTokens:), as in HF.
        #expect(!tok.isSpecial(4005) && tok.isSpecial(4002) && !tok.isSpecial(65))
        #expect(tok.encode("<|reserved_token_4005|>") == [4005])
        #expect(tok.encode("a<|im_end|>b").contains(4002))
        // Registered specials are skipped; reserved names are not (HF decode path).
        #expect(tok.decode([4002, 4005], skipSpecialTokens: true) == "<|reserved_token_4005|>")
        #expect(tok.token(forID: 32) == "Ġ")
    }
}
