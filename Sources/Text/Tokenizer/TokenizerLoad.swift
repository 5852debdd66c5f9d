// Tokenizer.load(directory:): which files a Hugging Face checkpoint ships and which tokenizer they make.
import Foundation

extension Tokenizer {
    /// The tokenizer files looked for, in order of preference.
    public static let tokenizerFileNames = ["tokenizer.json", "tiktoken.model"]

    /// model_type values whose tiktoken.model moerun can encode (their pre-tokenization pattern is built in).
    static let tiktokenModelTypes: Set<String> = ["kimi_k2"]

    /// Loads tokenizer.json (preferred) or tiktoken.model plus the config files next to them. Needs no weights.
    public static func load(directory: String) throws(TextError) -> Tokenizer {
        let dir = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        func path(_ name: String) -> String { "\(dir)/\(name)" }
        func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name)) }

        var config = TokenizerConfig()
        if exists("config.json") {
            let j = try readJSON(path("config.json"))
            config.files.append("config.json")
            if let t = j["model_type"]?.stringValue { config.modelType = t }
        }
        if exists("tokenizer_config.json") {
            try config.read(tokenizerConfig: try readJSON(path("tokenizer_config.json")), file: path("tokenizer_config.json"))
            config.files.append("tokenizer_config.json")
        }
        if exists("chat_template.jinja") {
            // The standalone file is what current transformers saves and prefers over the config's copy.
            let bytes = try readFile(path("chat_template.jinja"))
            try requireUTF8(bytes, file: path("chat_template.jinja"))
            config.chatTemplate = String(decoding: bytes, as: UTF8.self)
            config.files.append("chat_template.jinja")
        }
        if exists("generation_config.json") {
            try config.read(generationConfig: try readJSON(path("generation_config.json")), file: path("generation_config.json"))
            config.files.append("generation_config.json")
        }

        if exists("tokenizer.json") {
            config.files.append("tokenizer.json")
            return try Tokenizer(tokenizerJSON: try readFile(path("tokenizer.json")), file: path("tokenizer.json"), config: config)
        }
        if exists("tiktoken.model") {
            let known = config.modelType.map { tiktokenModelTypes.contains($0) } ?? false
            guard known || config.tokenizerClass == "TikTokenTokenizer" else {
                throw TextError(.unsupported,
                    "\(path("tiktoken.model")): model_type '\(config.modelType ?? "(none)")' is not supported with tiktoken.model "
                    + "(supported: \(tiktokenModelTypes.sorted().joined(separator: ", ")), or tokenizer_class TikTokenTokenizer): "
                    + "its pre-tokenization pattern is not built in")
            }
            config.files.append("tiktoken.model")
            return try Tokenizer(tiktokenModel: try readFile(path("tiktoken.model")), file: path("tiktoken.model"), config: config)
        }
        throw TextError(.missingTokenizer,
            "no tokenizer file in \(dir): looked for \(tokenizerFileNames.joined(separator: ", "))",
            hint: "--prompt-ids still works without one")
    }

    static func readFile(_ path: String) throws(TextError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TextError(.unreadable, "\(path): cannot be read")
        }
        return [UInt8](data)
    }

    static func readJSON(_ path: String) throws(TextError) -> JSONValue {
        try JSONValue.parse(try readFile(path), file: path)
    }
}
