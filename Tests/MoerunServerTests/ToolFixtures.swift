// Tokenizers for the tool-call and reasoning tests: the real fixture tokenizers, and copies of them with `<think>` /
// `</think>` added as single tokens (as R1 and K2-Thinking have them) and a chosen chat template.
import Foundation
import Testing
import Text

enum ToolFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/text")

    /// DeepSeek-V3's tokenizer (tool tokens non-special, no think tokens).
    static var deepseek: Tokenizer { Fixture.tokenizer }

    /// Kimi K2's tokenizer (tool tokens special, no think tokens).
    static let kimi: Tokenizer = load(root.appendingPathComponent("kimi-tiktoken").path)

    /// dsv3-bpe plus `<think>` / `</think>` (non-special, as DeepSeek marks them), with the V3 template.
    static let deepseekThinking: Tokenizer = deepseekWithThink(template: nil)

    /// The same with an R1-0528-style generation prompt that opens the reasoning (`<｜Assistant｜><think>\n`).
    static let deepseekThinkingOpen: Tokenizer = {
        let v3 = (try? String(contentsOf: root.appendingPathComponent("templates/deepseek-v3.jinja"), encoding: .utf8)) ?? ""
        let generation = "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}"
        precondition(v3.contains(generation), "deepseek-v3.jinja changed: the generation prompt was not found")
        return deepseekWithThink(template: v3.replacingOccurrences(
            of: generation, with: "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\\n'}}{% endif %}"))
    }()

    /// kimi-tiktoken with `<think>` / `</think>` named at K2-Thinking's offsets (+22, +23) and its chat template.
    static let kimiThinking: Tokenizer = {
        let source = root.appendingPathComponent("kimi-tiktoken")
        let dir = scratch("kimi-thinking")
        copy(["tiktoken.model", "config.json"], from: source, to: dir)
        var config = json(source.appendingPathComponent("tokenizer_config.json"))
        var decoder = config["added_tokens_decoder"] as? [String: Any] ?? [:]
        for (id, content) in [("4022", "<think>"), ("4023", "</think>")] {
            decoder[id] = ["content": content, "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true]
        }
        config["added_tokens_decoder"] = decoder
        config["chat_template"] = try? String(contentsOf: root.appendingPathComponent("templates/kimi-k2-thinking.jinja"), encoding: .utf8)
        write(config, to: dir.appendingPathComponent("tokenizer_config.json"))
        defer { try? FileManager.default.removeItem(at: dir) }
        return load(dir.path)
    }()

    static func deepseekWithThink(template: String?) -> Tokenizer {
        let source = root.appendingPathComponent("dsv3-bpe")
        let dir = scratch("dsv3-thinking")
        copy(["config.json"], from: source, to: dir)
        var tokenizer = json(source.appendingPathComponent("tokenizer.json"))
        var added = tokenizer["added_tokens"] as? [[String: Any]] ?? []
        let next = (added.compactMap { $0["id"] as? Int }.max() ?? 0) + 1
        for (i, content) in ["<think>", "</think>"].enumerated() {
            added.append(["id": next + i, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
                          "normalized": false, "special": false])
        }
        tokenizer["added_tokens"] = added
        write(tokenizer, to: dir.appendingPathComponent("tokenizer.json"))
        var config = json(source.appendingPathComponent("tokenizer_config.json"))
        if let template { config["chat_template"] = template }
        write(config, to: dir.appendingPathComponent("tokenizer_config.json"))
        // Everything is read at load: the copy is not needed afterwards.
        defer { try? FileManager.default.removeItem(at: dir) }
        return load(dir.path)
    }

    /// The ids the model would generate for `text`: marker strings become their single control tokens.
    static func ids(_ text: String, _ tokenizer: Tokenizer) -> [Int] { tokenizer.encode(text, addSpecialTokens: false) }

    static func eos(_ tokenizer: Tokenizer) -> Int { tokenizer.config.eosTokenIDs[0] }

    private static func load(_ path: String) -> Tokenizer {
        do { return try Tokenizer.load(directory: path) } catch { fatalError("fixture tokenizer \(path): \(error)") }
    }

    private static func scratch(_ name: String) -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("moerun-\(name)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    private static func copy(_ names: [String], from: URL, to: URL) {
        for name in names {
            try? FileManager.default.copyItem(at: from.appendingPathComponent(name), to: to.appendingPathComponent(name))
        }
    }

    private static func json(_ url: URL) -> [String: Any] {
        guard let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { fatalError("cannot read \(url.path)") }
        return object
    }

    private static func write(_ object: [String: Any], to url: URL) {
        guard let data = try? JSONSerialization.data(withJSONObject: object), (try? data.write(to: url)) != nil else {
            fatalError("cannot write \(url.path)")
        }
    }
}
