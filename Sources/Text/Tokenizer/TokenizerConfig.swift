// TokenizerConfig: the facts moerun takes from tokenizer_config.json, generation_config.json and config.json.

/// Settings that come with a checkpoint's tokenizer (all optional in the files; ids are resolved at load).
public struct TokenizerConfig: Sendable, Equatable {
    public var bosToken: String?
    public var eosToken: String?
    public var padToken: String?
    public var bosTokenID: Int?
    public var eosTokenID: Int?
    /// tokenizer_config.json `add_bos_token` / `add_eos_token` (nil when absent).
    public var addBosToken: Bool?
    public var addEosToken: Bool?
    public var chatTemplate: String?
    public var modelMaxLength: Int?
    /// generation_config.json `eos_token_id` (int or list), else the eos token's id.
    public var eosTokenIDs: [Int]
    public var defaultTemperature: Double?
    public var defaultTopP: Double?
    /// config.json `model_type` (e.g. deepseek_v3, kimi_k2).
    public var modelType: String?
    public var tokenizerClass: String?
    /// "tokenizer.json BPE" or "tiktoken.model".
    public var kind: String
    /// The files that were read, in order.
    public var files: [String]
    /// tokenizer_config.json `added_tokens_decoder` (id, token); tiktoken takes its special names from it.
    var addedTokensDecoder: [AddedToken]

    public init(bosToken: String? = nil, eosToken: String? = nil, padToken: String? = nil,
                addBosToken: Bool? = nil, addEosToken: Bool? = nil, chatTemplate: String? = nil,
                modelMaxLength: Int? = nil, eosTokenIDs: [Int] = [], defaultTemperature: Double? = nil,
                defaultTopP: Double? = nil, modelType: String? = nil, tokenizerClass: String? = nil,
                kind: String = "", files: [String] = []) {
        self.bosToken = bosToken
        self.eosToken = eosToken
        self.padToken = padToken
        self.addBosToken = addBosToken
        self.addEosToken = addEosToken
        self.chatTemplate = chatTemplate
        self.modelMaxLength = modelMaxLength
        self.eosTokenIDs = eosTokenIDs
        self.defaultTemperature = defaultTemperature
        self.defaultTopP = defaultTopP
        self.modelType = modelType
        self.tokenizerClass = tokenizerClass
        self.kind = kind
        self.files = files
        self.addedTokensDecoder = []
    }

    /// Reads tokenizer_config.json fields into `self`.
    mutating func read(tokenizerConfig j: JSONValue, file: String) throws(TextError) {
        guard j.objectValue != nil else { throw TextError(.badField, "\(file): the top level must be an object") }
        bosToken = try Self.tokenString(j["bos_token"], "bos_token", file) ?? bosToken
        eosToken = try Self.tokenString(j["eos_token"], "eos_token", file) ?? eosToken
        padToken = try Self.tokenString(j["pad_token"], "pad_token", file) ?? padToken
        if let v = j["add_bos_token"], !v.isNull {
            guard let b = v.boolValue else { throw TextError(.badField, "\(file): add_bos_token must be a boolean") }
            addBosToken = b
        }
        if let v = j["add_eos_token"], !v.isNull {
            guard let b = v.boolValue else { throw TextError(.badField, "\(file): add_eos_token must be a boolean") }
            addEosToken = b
        }
        if let v = j["tokenizer_class"]?.stringValue { tokenizerClass = v }
        // Often a huge float (1e30, "no limit" in Kimi's and others' configs): that is no limit here too.
        if let d = j["model_max_length"]?.numberValue { modelMaxLength = abs(d) < 9e18 ? Int(d) : nil }
        switch j["chat_template"] {
        case .string(let s)?: chatTemplate = s
        case .array(let list)?:
            // The list form names templates; the one called "default" is the chat template.
            for (i, e) in list.enumerated() {
                guard let name = e["name"]?.stringValue, let t = e["template"]?.stringValue else {
                    throw TextError(.badField, "\(file): chat_template[\(i)] needs string fields name and template")
                }
                if name == "default" { chatTemplate = t }
            }
        case .null?, nil: break
        case let v?: throw TextError(.badField, "\(file): chat_template must be a string or a list, not \(v.typeName)")
        }
        if let dec = j["added_tokens_decoder"] {
            guard let pairs = dec.objectValue else { throw TextError(.badField, "\(file): added_tokens_decoder must be an object") }
            for (key, v) in pairs {
                guard let id = Int(key), let content = v["content"]?.stringValue else {
                    throw TextError(.badField, "\(file): added_tokens_decoder.\(key) needs an integer key and a string content")
                }
                addedTokensDecoder.append(AddedToken(
                    content: content, id: id, special: v["special"]?.boolValue ?? false,
                    singleWord: v["single_word"]?.boolValue ?? false, lstrip: v["lstrip"]?.boolValue ?? false,
                    rstrip: v["rstrip"]?.boolValue ?? false, normalized: v["normalized"]?.boolValue ?? false))
            }
        }
    }

    /// A token field is a string or an AddedToken object with `content`.
    private static func tokenString(_ v: JSONValue?, _ name: String, _ file: String) throws(TextError) -> String? {
        switch v {
        case nil, .null?: return nil
        case .string(let s)?: return s
        case .object?:
            if let s = v?["content"]?.stringValue { return s }
            throw TextError(.badField, "\(file): \(name).content must be a string")
        case let x?: throw TextError(.badField, "\(file): \(name) must be a string or an object, not \(x.typeName)")
        }
    }

    /// Reads generation_config.json (eos_token_id int or list, temperature, top_p).
    mutating func read(generationConfig j: JSONValue, file: String) throws(TextError) {
        switch j["eos_token_id"] {
        case .int?, .double?:
            guard let i = j["eos_token_id"]?.intValue else { throw TextError(.badField, "\(file): eos_token_id must be an integer") }
            eosTokenIDs = [i]
        case .array(let a)?:
            var ids: [Int] = []
            for (k, e) in a.enumerated() {
                guard let i = e.intValue else { throw TextError(.badField, "\(file): eos_token_id[\(k)] must be an integer") }
                ids.append(i)
            }
            eosTokenIDs = ids
        case .null?, nil: break
        case let v?: throw TextError(.badField, "\(file): eos_token_id must be an integer or a list, not \(v.typeName)")
        }
        if let t = j["temperature"]?.numberValue { defaultTemperature = t }
        if let p = j["top_p"]?.numberValue { defaultTopP = p }
    }
}
