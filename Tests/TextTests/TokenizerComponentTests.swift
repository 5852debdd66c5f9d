// Unit tests per component; expected ids are tokenizers 0.23.3's on the same synthetic tokenizer.json.
import Foundation
import Testing
@testable import Text

@Suite struct TokenizerComponentTests {
    static func splitTokenizer(_ pattern: String, _ behavior: String, invert: Bool) throws -> Tokenizer {
        let pre = #"{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":\#(pattern),"behavior":"\#(behavior)","invert":\#(invert)},\#(SynthTokenizer.byteLevelNoRegex)]}"#
        return try SynthTokenizer.make(SynthTokenizer.json(preTokenizer: pre))
    }

    /// Pieces of the pre-tokenizer alone, as strings.
    static func pieces(_ tok: Tokenizer, _ text: String) -> [String] {
        guard case .bpe(let p) = tok.engine else { return [] }
        var out: [String] = []
        p.preTokenizer.run(ScalarText(bytes: Array(text.utf8))) { t, a, b in
            out.append(String(decoding: t.bytes[Int(t.offsets[a])..<Int(t.offsets[b])], as: UTF8.self))
        }
        return out
    }

    @Test(arguments: [
        ("Removed", false, ["The", "final", "countdown"]),
        ("Removed", true, ["-", "-", "-", "-"]),
        ("Isolated", false, ["The", "-", "final", "-", "-", "countdown", "-"]),
        ("Isolated", true, ["The", "-", "final", "-", "-", "countdown", "-"]),
        ("MergedWithPrevious", false, ["The-", "final-", "-", "countdown-"]),
        ("MergedWithPrevious", true, ["The", "-final", "-", "-countdown", "-"]),
        ("MergedWithNext", false, ["The", "-final", "-", "-countdown", "-"]),
        ("MergedWithNext", true, ["The-", "final-", "-", "countdown-"]),
        ("Contiguous", false, ["The", "-", "final", "--", "countdown", "-"]),
        ("Contiguous", true, ["The", "-", "final", "--", "countdown", "-"]),
    ])
    func splitBehaviours(behavior: String, invert: Bool, expected: [String]) throws {
        let tok = try Self.splitTokenizer(#"{"String":"-"}"#, behavior, invert: invert)
        #expect(Self.pieces(tok, "The-final--countdown-") == expected)
        let ids = tok.encode("The-final--countdown-")
        #expect(ids == (behavior == "Removed" ? (invert ? [45, 45, 45, 45] : [84, 256, 102, 105, 110, 97, 108, 99, 111, 117, 110, 116, 100, 111, 119, 110])
                        : [84, 256, 45, 102, 105, 110, 97, 108, 45, 45, 99, 111, 117, 110, 116, 100, 111, 119, 110, 45]))
    }

    @Test func splitRegexDigits() throws {
        let tok = try Self.splitTokenizer(#"{"Regex":"\\p{N}{1,3}"}"#, "Isolated", invert: false)
        #expect(Self.pieces(tok, "a12345b 7") == ["a", "123", "45", "b ", "7"])
        #expect(tok.encode("a12345b 7") == [97, 266, 52, 53, 98, 32, 55])
    }

    @Test func digits() throws {
        for (individual, pieces, ids) in [
            (false, ["abc", "123", "def", "٣4", "x"], [97, 98, 99, 266, 100, 101, 102, 217, 163, 52, 120]),
            (true, ["abc", "1", "2", "3", "def", "٣", "4", "x"], [97, 98, 99, 49, 50, 51, 100, 101, 102, 217, 163, 52, 120]),
        ] {
            let pre = #"{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":\#(individual)},\#(SynthTokenizer.byteLevelNoRegex)]}"#
            let tok = try SynthTokenizer.make(SynthTokenizer.json(preTokenizer: pre))
            #expect(Self.pieces(tok, "abc123def٣4x") == pieces)
            #expect(tok.encode("abc123def٣4x") == ids)
        }
    }

    static let addedCases: [(String, [[Int]])] = [
        // flags, then ids for: "hello  <tok>  world", "hello<tok>world", "a <tok>b", "<tok> <tok>", "x\u{a0}<tok>\u{3000}y"
        ("{}", [[259, 32, 32, 267, 32, 264], [259, 267, 119, 261, 108, 100], [97, 32, 267, 98], [267, 32, 267], [120, 194, 160, 267, 227, 128, 128, 121]]),
        (#"{"lstrip":true}"#, [[259, 267, 32, 264], [259, 267, 119, 261, 108, 100], [97, 267, 98], [267, 267], [120, 267, 227, 128, 128, 121]]),
        (#"{"rstrip":true}"#, [[259, 32, 32, 267, 119, 261, 108, 100], [259, 267, 119, 261, 108, 100], [97, 32, 267, 98], [267, 267], [120, 194, 160, 267, 121]]),
        (#"{"lstrip":true,"rstrip":true}"#, [[259, 267, 119, 261, 108, 100], [259, 267, 119, 261, 108, 100], [97, 267, 98], [267, 267], [120, 267, 121]]),
        (#"{"single_word":true}"#, [[259, 32, 32, 267, 32, 264], [259, 60, 116, 111, 107, 62, 119, 261, 108, 100], [97, 32, 60, 116, 111, 107, 62, 98], [267, 32, 267], [120, 194, 160, 267, 227, 128, 128, 121]]),
    ]

    @Test func addedTokenStripAndSingleWord() throws {
        let texts = ["hello  <tok>  world", "hello<tok>world", "a <tok>b", "<tok> <tok>", "x\u{a0}<tok>\u{3000}y"]
        let gpt2 = #"{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}"#
        for (flags, expected) in Self.addedCases {
            // The JSON id 300 is ignored: tokenizers assigns the next free id (267) to a new added token.
            var fields = ["single_word": "false", "lstrip": "false", "rstrip": "false"]
            for key in fields.keys where flags.contains("\"\(key)\":true") { fields[key] = "true" }
            let flagJSON = fields.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
            let added = #"[{"id":300,"content":"<tok>",\#(flagJSON),"normalized":false,"special":true}]"#
            let tok = try SynthTokenizer.make(SynthTokenizer.json(preTokenizer: gpt2, addedTokens: added))
            for (text, ids) in zip(texts, expected) { #expect(tok.encode(text) == ids, "flags \(flags) text \(text.debugDescription)") }
        }
    }

    @Test func addedTokensLongestMatchWins() throws {
        let added = #"[{"id":267,"content":"<a>","special":true,"normalized":false},{"id":268,"content":"<a><b>","special":false,"normalized":false}]"#
        let tok = try SynthTokenizer.make(SynthTokenizer.json(preTokenizer: SynthTokenizer.byteLevelNoRegex, addedTokens: added))
        #expect(tok.encode("x<a><b><a>") == [120, 268, 267])
        #expect(tok.decode([120, 268, 267], skipSpecialTokens: true) == "x<a><b>")
    }

    @Test func templateProcessingAddsBOS() throws {
        let added = #"[{"id":300,"content":"<s>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}]"#
        let post = #"{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"pair":[{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{"<s>":{"id":"<s>","ids":[300],"tokens":["<s>"]}}}"#
        let pre = #"{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}"#
        let tok = try SynthTokenizer.make(SynthTokenizer.json(preTokenizer: pre, addedTokens: added, postProcessor: post))
        #expect(tok.encode("hello world") == [300, 32, 259, 264])
        #expect(tok.encode(" hello world", addSpecialTokens: false) == [32, 259, 264])
        let text = "it's 123 worlds!  \n x"
        #expect(tok.encode(text) == [300, 32, 105, 116, 39, 115, 32, 266, 264, 115, 33, 32, 32, 10, 32, 120])
        #expect(tok.decode(tok.encode(text)) == " " + text)
    }

    @Test func llamaClassAddsBOSFromConfig() throws {
        let added = #"[{"id":267,"content":"<s>","special":true,"normalized":false}]"#
        let json = SynthTokenizer.json(preTokenizer: SynthTokenizer.byteLevelNoRegex, addedTokens: added)
        var cfg = TokenizerConfig(bosToken: "<s>", addBosToken: true, tokenizerClass: "LlamaTokenizerFast")
        #expect(try SynthTokenizer.make(json, config: cfg).encode("he") == [267, 256])
        cfg.addBosToken = false
        #expect(try SynthTokenizer.make(json, config: cfg).encode("he") == [256])
        // Another class keeps tokenizer.json's post-processor (none here).
        #expect(try SynthTokenizer.make(json, config: TokenizerConfig(bosToken: "<s>", addBosToken: true)).encode("he") == [256])
    }

    @Test(arguments: [
        (#"{"type":"Lowercase"}"#, [259, 32, 207, 131, 206, 177, 207, 131, 32, 105, 204, 135, 32, 101, 204, 129, 32, 239, 172, 129, 32, 226, 145, 160, 32, 195, 165, 32, 267, 32, 267]),
        (#"{"type":"NFC"}"#, [72, 101, 76, 76, 111, 32, 206, 163, 206, 145, 206, 163, 32, 196, 176, 32, 195, 169, 32, 239, 172, 129, 32, 226, 145, 160, 32, 195, 133, 32, 267, 32, 60, 116, 111, 107, 62]),
        (#"{"type":"NFKC"}"#, [72, 101, 76, 76, 111, 32, 206, 163, 206, 145, 206, 163, 32, 196, 176, 32, 195, 169, 32, 102, 105, 32, 49, 32, 195, 133, 32, 267, 32, 60, 116, 111, 107, 62]),
        (#"{"type":"NFD"}"#, [72, 101, 76, 76, 111, 32, 206, 163, 206, 145, 206, 163, 32, 73, 204, 135, 32, 101, 204, 129, 32, 239, 172, 129, 32, 226, 145, 160, 32, 65, 204, 138, 32, 267, 32, 60, 116, 111, 107, 62]),
        (#"{"type":"NFKD"}"#, [72, 101, 76, 76, 111, 32, 206, 163, 206, 145, 206, 163, 32, 73, 204, 135, 32, 101, 204, 129, 32, 102, 105, 32, 49, 32, 65, 204, 138, 32, 267, 32, 60, 116, 111, 107, 62]),
        (#"{"type":"Sequence","normalizers":[{"type":"NFKC"},{"type":"Lowercase"}]}"#, [259, 32, 207, 131, 206, 177, 207, 131, 32, 105, 204, 135, 32, 195, 169, 32, 102, 105, 32, 49, 32, 195, 165, 32, 267, 32, 267]),
    ])
    func normalizers(normalizer: String, expected: [Int]) throws {
        // A normalized added token is matched by its normalized text (Lowercase: "<TOK>" matches "<tok>" too).
        let added = #"[{"id":300,"content":"<TOK>","single_word":false,"lstrip":false,"rstrip":false,"normalized":true,"special":false}]"#
        let tok = try SynthTokenizer.make(SynthTokenizer.json(preTokenizer: SynthTokenizer.byteLevelNoRegex, addedTokens: added,
                                                               normalizer: normalizer))
        #expect(tok.encode("HeLLo ΣΑΣ İ e\u{301} ﬁ ① Å <TOK> <tok>") == expected)
    }

    @Test func mergesAsPairsEqualMergesAsStrings() throws {
        let pairs = "[" + SynthTokenizer.merges.map { "[\(SynthTokenizer.escape($0.0)),\(SynthTokenizer.escape($0.1))]" }.joined(separator: ",") + "]"
        let a = try SynthTokenizer.make(SynthTokenizer.json(preTokenizer: SynthTokenizer.byteLevelNoRegex))
        let b = try SynthTokenizer.make(SynthTokenizer.json(preTokenizer: SynthTokenizer.byteLevelNoRegex, mergesOverride: pairs))
        let text = "hello world 123 hellohello"
        #expect(a.encode(text) == b.encode(text))
        #expect(a.encode("hello") == [259])
    }

    /// The heap merger (long words) and the small-array merger agree: lowest rank first, leftmost on ties.
    @Test func longWordMergesLikeShortWords() throws {
        let tok = try SynthTokenizer.make(SynthTokenizer.json(preTokenizer: SynthTokenizer.byteLevelNoRegex))
        let unit = "hellohel123"
        let long = String(repeating: unit, count: 20)  // 220 bytes: heap path
        #expect(tok.encode(long) == Array((0..<20).map { _ in tok.encode(unit) }.joined()))
    }

    /// Scanner semantics on the tricky alternatives (checked against the regex package / tiktoken by hand).
    @Test func kimiScannerPieces() throws {
        func pieces(_ text: String, _ p: KnownPattern) -> [String] {
            let t = ScalarText(bytes: Array(text.utf8))
            var out: [String] = []
            PreTokenizerRunner(steps: []).forEachMatch(p, t, 0, t.count) { a, b, _ in
                out.append(String(decoding: t.bytes[Int(t.offsets[a])..<Int(t.offsets[b])], as: UTF8.self))
            }
            return out
        }
        #expect(pieces("Hello WORLD's 12345 中文abc  \n\n x  ", .kimi)
                == ["Hello", " WORLD's", " ", "123", "45", " ", "中文", "abc", "  \n\n", " x", "  "])
        #expect(pieces("I'LL ſt 'Ss", .kimi) == ["I'LL", " ſt", " '", "Ss"])
        // DeepSeek-V3's three Splits in sequence (tokenizers' pre_tokenize_str on the fixture gives the same).
        let dsv3 = try Tokenizer.load(directory: TokFixtures.path("dsv3-bpe"))
        #expect(Self.pieces(dsv3, "a12345 b\t\tc") == ["a", "123", "45", " b", "\t", "\tc"])
    }

    @Test func unicodeClassesMatchReferenceSets() {
        let t = UnicodeClassTable.shared
        #expect(t.classOf(0x4E00).contains(.han) && t.classOf(0x3005).contains(.han) && !t.classOf(0x3042).contains(.han))
        #expect(t.classOf(0x1C).contains(.pySpace) && !t.classOf(0x1C).contains(.space))
        #expect(t.classOf(0x85).contains(.space) && t.classOf(0x3000).contains(.space) && !t.classOf(0x200B).contains(.space))
        #expect(t.classOf(0x0663).contains(.number) && t.classOf(0x2460).contains(.numeric))
        #expect(t.classOf(0x0301).contains(.mark) && t.classOf(0x0301).contains(.kimiUpper))
    }
}

@Suite struct TokenizerPlainEncodeTests {
    @Test(arguments: ["dsv3-bpe", "kimi-tiktoken"])
    func encodePlainKeepsSpecialStringsAsText(dir: String) throws {
        let tok = try Tokenizer.load(directory: TokFixtures.path(dir))
        let special = try #require(tok.specialTokenStrings.first { tok.isSpecial(tok.id(forToken: $0) ?? -1) })
        let text = "a" + special + "b"
        let plain = tok.encodePlain(text)
        #expect(!plain.contains { tok.isSpecial($0) })
        #expect(tok.decode(plain) == text)
        #expect(tok.encode(text, addSpecialTokens: false).contains(tok.id(forToken: special)!))
        #expect(tok.config.templateTokens["bos_token"] == tok.config.bosToken)
    }
}
