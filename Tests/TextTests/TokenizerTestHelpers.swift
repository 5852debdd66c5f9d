// Helpers for the tokenizer tests: fixture paths and a small synthetic byte-level tokenizer.json.
import Foundation
@testable import Text

enum TokFixtures {
    /// Tests/TextTests/X.swift -> Tests/Fixtures/text
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        url.deleteLastPathComponent()
        url.deleteLastPathComponent()
        return url.appendingPathComponent("Fixtures/text").path
    }()

    static func path(_ rel: String) -> String { "\(root)/\(rel)" }

    static func exists(_ rel: String) -> Bool { FileManager.default.fileExists(atPath: path(rel)) }

    static func json(_ rel: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path(rel))))
    }

    /// corpus.txt split on the byte "\n" (Swift's Character view would keep "\r\n" together).
    static func corpusLines() throws -> (String, [String]) {
        let data = try Data(contentsOf: URL(fileURLWithPath: path("corpus.txt")))
        let text = String(decoding: data, as: UTF8.self)
        let lines = [UInt8](data).split(separator: 0x0A, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        return (text, lines)
    }
}

/// A byte-level BPE tokenizer.json like the one scripts make with huggingface/tokenizers: ids 0..255 are the
/// bytes, then MERGES in order. Expected ids in the tests come from tokenizers 0.23.3 on the same JSON.
enum SynthTokenizer {
    static let merges: [(String, String)] = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r"),
                                             ("Ġw", "or"), ("Ġwor", "l"), ("Ġworl", "d"), ("1", "2"), ("12", "3")]

    /// A JSON string literal for `s`.
    static func escape(_ s: String) -> String { JSONValue.string(s).serialized() }

    static func json(preTokenizer: String, addedTokens: String = "[]", normalizer: String = "null",
                     postProcessor: String = "null", decoder: String = #"{"type":"ByteLevel"}"#,
                     mergesOverride: String? = nil) -> String {
        var vocab: [(String, Int)] = (0..<256).map { (ByteLevelMap.encode([UInt8($0)]), $0) }
        for (a, b) in merges { vocab.append((a + b, vocab.count)) }
        let vocabJSON = vocab.map { "\(escape($0.0)):\($0.1)" }.joined(separator: ",")
        let mergesJSON = mergesOverride ?? "[" + merges.map { escape("\($0.0) \($0.1)") }.joined(separator: ",") + "]"
        return """
        {"version":"1.0","truncation":null,"padding":null,"added_tokens":\(addedTokens),"normalizer":\(normalizer),
         "pre_tokenizer":\(preTokenizer),"post_processor":\(postProcessor),"decoder":\(decoder),
         "model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,"end_of_word_suffix":null,
                  "fuse_unk":false,"byte_fallback":false,"ignore_merges":false,"vocab":{\(vocabJSON)},"merges":\(mergesJSON)}}
        """
    }

    static let byteLevelNoRegex = #"{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}"#

    static func make(_ json: String, config: TokenizerConfig = TokenizerConfig()) throws -> Tokenizer {
        try Tokenizer(tokenizerJSON: Array(json.utf8), config: config)
    }
}
