// Every TextError the tokenizer loader raises: missing file, malformed fields, unsupported parts, bad bytes.
import Foundation
import Testing
@testable import Text

@Suite struct TokenizerErrorTests {
    static func tempDir(_ files: [String: [UInt8]]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, bytes) in files { try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/\(name)")) }
        return dir
    }

    static func error(_ body: () throws(TextError) -> Tokenizer) -> TextError? {
        do { _ = try body(); return nil } catch { return error }
    }

    @Test func missingTokenizerFile() throws {
        let dir = try Self.tempDir(["config.json": Array(#"{"model_type":"deepseek_v3"}"#.utf8)])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = try #require(Self.error { () throws(TextError) in try Tokenizer.load(directory: dir) })
        #expect(e.code == .missingTokenizer)
        #expect(e.description.contains("tokenizer.json") && e.description.contains("tiktoken.model"))
        #expect(e.description.contains("--prompt-ids"))
    }

    @Test(arguments: [
        (#"["a b c"]"#, "model.merges[0]"),
        (#"["h e", 7]"#, "model.merges[1]"),
        (#"["h e", "zz q"]"#, "model.merges[1]"),
        (#"[["h"]]"#, "model.merges[0]"),
    ])
    func malformedMergesNameTheirPath(merges: String, path: String) throws {
        let json = SynthTokenizer.json(preTokenizer: SynthTokenizer.byteLevelNoRegex, mergesOverride: merges)
        let e = try #require(Self.error { () throws(TextError) in try Tokenizer(tokenizerJSON: Array(json.utf8), config: TokenizerConfig()) })
        #expect(e.code == .badField)
        #expect(e.message.contains(path), "\(e.message)")
    }

    @Test func malformedPreTokenizerNamesItsPath() throws {
        let pre = #"{"type":"Sequence","pretokenizers":[{"type":"Digits"},{"type":"ByteLevel"},{"type":"Split","pattern":42,"behavior":"Isolated","invert":false}]}"#
        let json = SynthTokenizer.json(preTokenizer: pre)
        let e = try #require(Self.error { () throws(TextError) in try Tokenizer(tokenizerJSON: Array(json.utf8), config: TokenizerConfig()) })
        #expect(e.code == .badField)
        #expect(e.message.contains("pre_tokenizer.pretokenizers[2].pattern"), "\(e.message)")
        let bad = SynthTokenizer.json(preTokenizer: #"{"type":"Split","pattern":{"String":"-"},"behavior":"Sideways","invert":false}"#)
        let e2 = try #require(Self.error { () throws(TextError) in try Tokenizer(tokenizerJSON: Array(bad.utf8), config: TokenizerConfig()) })
        #expect(e2.code == .badField && e2.message.contains("pre_tokenizer.behavior"))
    }

    @Test(arguments: [
        ("preTokenizer", #"{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}"#, "pre_tokenizer type 'Metaspace' is not supported"),
        ("normalizer", #"{"type":"Precompiled","precompiled_charsmap":""}"#, "normalizer type 'Precompiled' is not supported"),
        ("decoder", #"{"type":"Sequence","decoders":[{"type":"ByteFallback"}]}"#, "decoder.decoders[0] type 'ByteFallback' is not supported"),
        ("post", #"{"type":"BertProcessing","sep":["[SEP]",1],"cls":["[CLS]",0]}"#, "post_processor type 'BertProcessing' is not supported"),
        ("preTokenizer", #"{"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Isolated","invert":false}"#, "is not supported"),
    ])
    func unsupportedComponentsAreNamed(slot: String, value: String, message: String) throws {
        let json: String
        switch slot {
        case "normalizer": json = SynthTokenizer.json(preTokenizer: SynthTokenizer.byteLevelNoRegex, normalizer: value)
        case "decoder": json = SynthTokenizer.json(preTokenizer: SynthTokenizer.byteLevelNoRegex, decoder: value)
        case "post": json = SynthTokenizer.json(preTokenizer: SynthTokenizer.byteLevelNoRegex, postProcessor: value)
        default: json = SynthTokenizer.json(preTokenizer: value)
        }
        let e = try #require(Self.error { () throws(TextError) in try Tokenizer(tokenizerJSON: Array(json.utf8), config: TokenizerConfig()) })
        #expect(e.code == .unsupported)
        #expect(e.message.contains(message), "\(e.message)")
        #expect(e.message.contains("supported"), "\(e.message)")
    }

    @Test func unsupportedModelType() throws {
        let json = #"{"model":{"type":"Unigram","vocab":[]},"pre_tokenizer":null}"#
        let e = try #require(Self.error { () throws(TextError) in try Tokenizer(tokenizerJSON: Array(json.utf8), config: TokenizerConfig()) })
        #expect(e.code == .unsupported && e.message.contains("model type 'Unigram' is not supported"))
        // A tiktoken.model whose model type has no built-in pattern.
        let dir = try Self.tempDir(["tiktoken.model": Array("AA== 0\n".utf8), "config.json": Array(#"{"model_type":"llama"}"#.utf8)])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e2 = try #require(Self.error { () throws(TextError) in try Tokenizer.load(directory: dir) })
        #expect(e2.code == .unsupported && e2.message.contains("'llama'") && e2.message.contains("kimi_k2"))
    }

    @Test func invalidUTF8AndJSONNameFileAndOffset() throws {
        let dir = try Self.tempDir(["tokenizer.json": Array(#"{"model": "#.utf8) + [0xFF, 0x22, 0x7D]])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = try #require(Self.error { () throws(TextError) in try Tokenizer.load(directory: dir) })
        #expect(e.code == .unreadable && e.message.contains("tokenizer.json") && e.message.contains("offset 10"), "\(e.message)")

        let dir2 = try Self.tempDir(["tokenizer.json": Array(#"{"model": {"type": "BPE",}}"#.utf8)])
        defer { try? FileManager.default.removeItem(atPath: dir2) }
        let e2 = try #require(Self.error { () throws(TextError) in try Tokenizer.load(directory: dir2) })
        #expect(e2.code == .unreadable && e2.message.contains("tokenizer.json") && e2.message.contains("offset 25"), "\(e2.message)")

        let dir3 = try Self.tempDir(["tokenizer_config.json": Array("{\"bos_token\": [1,}".utf8), "tokenizer.json": []])
        defer { try? FileManager.default.removeItem(atPath: dir3) }
        let e3 = try #require(Self.error { () throws(TextError) in try Tokenizer.load(directory: dir3) })
        #expect(e3.code == .unreadable && e3.message.contains("tokenizer_config.json") && e3.message.contains("offset 17"), "\(e3.message)")

        let dir4 = try Self.tempDir(["tiktoken.model": Array("AA== 0\n!!! 1\n".utf8), "config.json": Array(#"{"model_type":"kimi_k2"}"#.utf8)])
        defer { try? FileManager.default.removeItem(atPath: dir4) }
        let e4 = try #require(Self.error { () throws(TextError) in try Tokenizer.load(directory: dir4) })
        #expect(e4.code == .badField && e4.message.contains("tiktoken.model") && e4.message.contains("line 2"), "\(e4.message)")
    }

    @Test func configNumbersTakeIntsAndFloats() throws {
        var c = TokenizerConfig()
        // Kimi's "no limit": larger than Int, so no limit here either.
        try c.read(tokenizerConfig: try JSONValue.parse(#"{"model_max_length": 1e30}"#), file: "c.json")
        #expect(c.modelMaxLength == nil)
        try c.read(tokenizerConfig: try JSONValue.parse(#"{"model_max_length": 1000000000000000019884624838656}"#), file: "c.json")
        #expect(c.modelMaxLength == nil)
        try c.read(tokenizerConfig: try JSONValue.parse(#"{"model_max_length": 4096.0}"#), file: "c.json")
        #expect(c.modelMaxLength == 4096)
        try c.read(generationConfig: try JSONValue.parse(#"{"eos_token_id": [1, 2.0], "temperature": 1, "top_p": 0.95}"#), file: "g.json")
        #expect(c.eosTokenIDs == [1, 2] && c.defaultTemperature == 1 && c.defaultTopP == 0.95)
        #expect(throws: TextError(.badField, "g.json: eos_token_id[0] must be an integer")) {
            try c.read(generationConfig: try JSONValue.parse(#"{"eos_token_id": [1.5]}"#), file: "g.json")
        }
    }
}
