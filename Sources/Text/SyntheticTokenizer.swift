// Tokenizer files for synthetic checkpoints: a byte-level BPE trained on built-in text and filled up to the
// model's vocabulary, written the way the preset's family ships it (tokenizer.json or tiktoken.model), with
// the family's special tokens and chat template, so text prompts work end to end on random weights.
import Foundation

public enum SyntheticTokenizer {
    /// How a family ships its tokenizer.
    public enum Style: Sendable {
        /// DeepSeek-V3: tokenizer.json (byte-level BPE behind three Split regexes), BOS/EOS/pad at ids 0-2.
        case deepseekV3
        /// Kimi K2: tiktoken.model with the built-in pattern; special tokens in tokenizer_config.json, after the ranks.
        case kimiK2
    }

    /// What was written: the ids the model config must agree with.
    public struct Written: Sendable {
        public let files: [String]
        public let bosID: Int
        public let eosIDs: [Int]
        /// Ids the tokenizer can produce or decode (the rest of the vocabulary, if any, decodes to nothing).
        public let tokenCount: Int
    }

    /// Writes the tokenizer files for a model with `vocabSize` ids into `directory`.
    public static func write(style: Style, vocabSize: Int, modelMaxLength: Int, directory: String) throws(TextError) -> Written {
        switch style {
        case .deepseekV3: return try writeDeepSeek(vocabSize: vocabSize, modelMaxLength: modelMaxLength, directory: directory)
        case .kimiK2: return try writeKimi(vocabSize: vocabSize, modelMaxLength: modelMaxLength, directory: directory)
        }
    }

    // MARK: DeepSeek-V3

    static let deepseekLeading = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"]
    static let deepseekChat = ["<｜User｜>", "<｜Assistant｜>", "<think>", "</think>", "<｜tool▁calls▁begin｜>",
                               "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>",
                               "<｜tool▁outputs▁begin｜>", "<｜tool▁outputs▁end｜>", "<｜tool▁output▁begin｜>",
                               "<｜tool▁output▁end｜>", "<｜tool▁sep｜>"]

    static func writeDeepSeek(vocabSize: Int, modelMaxLength: Int, directory: String) throws(TextError) -> Written {
        let specials = deepseekLeading.count + deepseekChat.count
        guard vocabSize >= specials + 256 else { throw tooSmall(vocabSize, needed: specials + 256) }
        let lead = deepseekLeading.count
        let merges = train(budget: vocabSize - specials - 256)
        var vocab: [String: Int] = [:]
        for (i, t) in deepseekLeading.enumerated() { vocab[t] = i }
        for b in 0..<256 { vocab[ByteLevelAlphabet.string(of: [UInt8(b)])] = lead + b }
        for (i, m) in merges.enumerated() { vocab[ByteLevelAlphabet.string(of: m.left + m.right)] = lead + 256 + i }
        let chatBase = lead + 256 + merges.count
        let added = (deepseekLeading.enumerated().map { ($0.offset, $0.element) }
                     + deepseekChat.enumerated().map { (chatBase + $0.offset, $0.element) }).map { id, content -> [String: Any] in
            ["id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false,
             // DeepSeek-V3 marks <think> / </think> as non-special (they stay in decoded text).
             "special": !content.hasSuffix("think>")]
        }
        let tokenizer: [String: Any] = [
            "version": "1.0",
            "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": added,
            "normalizer": ["type": "Sequence", "normalizers": [Any]()],
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                split(#"\p{N}{1,3}"#),
                split("[一-龥\u{3040}-ゟ゠-ヿ]+"),
                split(##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\##r\##n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\##r\##n]*|\s*[\##r\##n]+|\s+(?!\S)|\s+"##),
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false],
            ]],
            "post_processor": [
                "type": "TemplateProcessing",
                "single": [["SpecialToken": ["id": deepseekLeading[0], "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                "pair": [["SpecialToken": ["id": deepseekLeading[0], "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]],
                         ["SpecialToken": ["id": deepseekLeading[0], "type_id": 1]], ["Sequence": ["id": "B", "type_id": 1]]],
                "special_tokens": [deepseekLeading[0]: ["id": deepseekLeading[0], "ids": [0], "tokens": [deepseekLeading[0]]]],
            ],
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": [
                "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab,
                "merges": merges.map { [ByteLevelAlphabet.string(of: $0.left), ByteLevelAlphabet.string(of: $0.right)] },
            ],
        ]
        let config: [String: Any] = [
            "add_bos_token": true, "add_eos_token": false,
            "bos_token": ["__type": "AddedToken", "content": deepseekLeading[0], "lstrip": false, "normalized": true, "rstrip": false, "single_word": false],
            "eos_token": ["__type": "AddedToken", "content": deepseekLeading[1], "lstrip": false, "normalized": true, "rstrip": false, "single_word": false],
            "pad_token": ["__type": "AddedToken", "content": deepseekLeading[1], "lstrip": false, "normalized": true, "rstrip": false, "single_word": false],
            "clean_up_tokenization_spaces": false, "legacy": true, "model_max_length": modelMaxLength,
            "sp_model_kwargs": [String: Any](), "unk_token": NSNull(), "use_default_system_prompt": false,
            "tokenizer_class": "LlamaTokenizerFast",
            "chat_template": BuiltinChatTemplates.deepseekV3,
        ]
        let generation: [String: Any] = ["_from_model_config": true, "bos_token_id": 0, "eos_token_id": 1, "do_sample": true,
                                         "temperature": 0.6, "top_p": 0.95]
        let files = [("tokenizer.json", tokenizer), ("tokenizer_config.json", config), ("generation_config.json", generation)]
        for (name, object) in files { try writeJSON(object, to: directory + "/" + name) }
        return Written(files: files.map(\.0), bosID: 0, eosIDs: [1], tokenCount: chatBase + deepseekChat.count)
    }

    private static func split(_ regex: String) -> [String: Any] {
        ["type": "Split", "pattern": ["Regex": regex], "behavior": "Isolated", "invert": false]
    }

    // MARK: Kimi K2

    /// Kimi K2's named special tokens by offset into the reserved range (the others are <|reserved_token_ID|>).
    static let kimiSpecials: [(offset: Int, content: String)] = [
        (0, "[BOS]"), (1, "[EOS]"), (2, "<|im_end|>"), (3, "<|im_user|>"), (4, "<|im_assistant|>"), (6, "<|start_header_id|>"),
        (7, "<|end_header_id|>"), (9, "[EOT]"), (10, "<|im_system|>"), (11, "<|tool_calls_section_begin|>"),
        (12, "<|tool_calls_section_end|>"), (13, "<|tool_call_begin|>"), (14, "<|tool_call_argument_begin|>"),
        (15, "<|tool_call_end|>"), (17, "<|im_middle|>"), (254, "[UNK]"), (255, "[PAD]"),
    ]

    static func writeKimi(vocabSize: Int, modelMaxLength: Int, directory: String) throws(TextError) -> Written {
        // Kimi's tokenizer reserves 256 ids after the ranks for special tokens (named or <|reserved_token_N|>).
        let reserved = 256
        guard vocabSize >= reserved + 256 else { throw tooSmall(vocabSize, needed: reserved + 256) }
        let merges = train(budget: vocabSize - reserved - 256)
        var lines: [String] = []
        lines.reserveCapacity(256 + merges.count)
        for b in 0..<256 { lines.append(Data([UInt8(b)]).base64EncodedString() + " \(b)") }
        for (i, m) in merges.enumerated() { lines.append(Data(m.left + m.right).base64EncodedString() + " \(256 + i)") }
        let base = 256 + merges.count
        var decoder: [String: Any] = [:]
        for (offset, t) in kimiSpecials {
            decoder[String(base + offset)] = ["content": t, "lstrip": false, "normalized": false, "rstrip": false,
                                         "single_word": false, "special": true]
        }
        let config: [String: Any] = [
            "added_tokens_decoder": decoder,
            "additional_special_tokens": ["<|im_end|>", "<|im_user|>", "<|im_assistant|>", "<|start_header_id|>",
                                          "<|end_header_id|>", "[EOT]", "<|im_system|>", "<|im_middle|>"],
            "bos_token": "[BOS]", "eos_token": "[EOS]", "pad_token": "[PAD]", "unk_token": "[UNK]",
            "clean_up_tokenization_spaces": false, "model_max_length": modelMaxLength,
            "tokenizer_class": "TikTokenTokenizer",
            "auto_map": ["AutoTokenizer": ["tokenization_kimi.TikTokenTokenizer", NSNull()]],
            "chat_template": BuiltinChatTemplates.kimiK2,
        ]
        let eos = [base + 1, base + 2]   // [EOS] and <|im_end|>, as Kimi K2's generation_config lists
        let generation: [String: Any] = ["bos_token_id": base, "eos_token_id": eos, "max_length": modelMaxLength]
        guard FileManager.default.createFile(atPath: directory + "/tiktoken.model",
                                             contents: Data((lines.joined(separator: "\n") + "\n").utf8)) else {
            throw TextError(.unreadable, "cannot write \(directory)/tiktoken.model", hint: "check the path and permissions")
        }
        try writeJSON(config, to: directory + "/tokenizer_config.json")
        try writeJSON(generation, to: directory + "/generation_config.json")
        return Written(files: ["tiktoken.model", "tokenizer_config.json", "generation_config.json"], bosID: base, eosIDs: eos,
                       tokenCount: base + reserved)
    }

    // MARK: Training

    struct Merge { var left: [UInt8]; var right: [UInt8] }

    /// Byte-level BPE merges: first learned from `BuiltinText` (most frequent pair, ties by lower byte string),
    /// then, once pairs run out, merges of already-learned tokens in a fixed order, so every id of a large
    /// vocabulary decodes to text. Deterministic.
    static func train(budget: Int) -> [Merge] {
        struct Pair: Hashable { var left: [UInt8]; var right: [UInt8] }
        var counted: [[[UInt8]]: Int] = [:]
        for w in BuiltinText.words() { counted[w.map { [$0] }, default: 0] += 1 }
        var merges: [Merge] = []
        var known = Set<[UInt8]>((0..<256).map { [UInt8($0)] })
        var pieces = counted.map { (word: $0.key, count: $0.value) }
        while merges.count < budget {
            var counts: [Pair: Int] = [:]
            for (w, n) in pieces where w.count > 1 {
                for i in 0..<(w.count - 1) { counts[Pair(left: w[i], right: w[i + 1]), default: 0] += n }
            }
            var best: (pair: Pair, count: Int)?
            for (pair, n) in counts where n >= 2 && !known.contains(pair.left + pair.right) {
                // Most frequent first; ties go to the lexicographically smaller pair, so training is deterministic.
                if let b = best {
                    if n < b.count { continue }
                    if n == b.count && !(pair.left + [0] + pair.right).lexicographicallyPrecedes(b.pair.left + [0] + b.pair.right) { continue }
                }
                best = (pair, n)
            }
            guard let chosen = best?.pair else { break }
            let merged = chosen.left + chosen.right
            merges.append(Merge(left: chosen.left, right: chosen.right))
            known.insert(merged)
            pieces = pieces.map { w, n in
                var out: [[UInt8]] = []
                var i = 0
                while i < w.count {
                    if i + 1 < w.count && w[i] == chosen.left && w[i + 1] == chosen.right {
                        out.append(merged)
                        i += 2
                    } else {
                        out.append(w[i])
                        i += 1
                    }
                }
                return (out, n)
            }
        }
        // Fill: extend tokens (learned ones first, then the fill's own, so it never runs dry) by one ASCII letter.
        var lefts = merges.isEmpty ? (97...122).map { [UInt8($0)] } : merges.map { $0.left + $0.right }
        let tails: [[UInt8]] = (97...122).map { [UInt8($0)] } + (65...90).map { [UInt8($0)] }
        var k = 0
        while merges.count < budget {
            let left = lefts[k / tails.count], right = tails[k % tails.count]
            k += 1
            let merged = left + right
            if known.insert(merged).inserted {
                merges.append(Merge(left: left, right: right))
                lefts.append(merged)
            }
        }
        return merges
    }

    private static func tooSmall(_ vocab: Int, needed: Int) -> TextError {
        TextError(.badInput, "vocab_size \(vocab) is too small for a byte-level tokenizer with special tokens (needs at least \(needed))",
                  hint: "pass a larger --vocab to moerun synth")
    }

    private static func writeJSON(_ object: Any, to path: String) throws(TextError) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]),
              FileManager.default.createFile(atPath: path, contents: data) else {
            throw TextError(.unreadable, "cannot write \(path)", hint: "check the path and permissions")
        }
    }
}

/// GPT-2's byte-level alphabet: every byte as one printable character (tokenizers' `bytes_char` table).
enum ByteLevelAlphabet {
    static let characters: [Character] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var table = [Int](repeating: -1, count: 256)
        for b in printable { table[b] = b }
        var next = 256
        for b in 0..<256 where table[b] < 0 {
            table[b] = next
            next += 1
            printable.append(b)
        }
        return table.map { Character(Unicode.Scalar(UInt32($0))!) }
    }()

    static func string(of bytes: [UInt8]) -> String { String(bytes.map { characters[Int($0)] }) }
}
