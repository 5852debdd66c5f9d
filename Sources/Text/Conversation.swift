// A chat conversation (OpenAI-style messages and tools) rendered with the checkpoint's chat template and
// encoded so that control-token strings typed into user, system or tool content stay plain text.
import Foundation

public struct Conversation: Sendable {
    /// The messages array as received (rendered as given: null-valued keys are not dropped).
    public var messages: JSONValue
    /// The tools array, or nil when the request has none (the template sees None, as transformers passes it).
    public var tools: JSONValue?

    public init(messages: JSONValue, tools: JSONValue? = nil) {
        self.messages = messages
        self.tools = tools
    }

    /// From a JSON document: a messages array, or an object with "messages" and optionally "tools".
    public init(json: JSONValue, origin: String) throws(TextError) {
        var messages = json, tools: JSONValue?
        if case .object = json {
            guard let m = json["messages"] else { throw TextError(.badInput, "\(origin): no \"messages\" array") }
            messages = m
            tools = json["tools"]
            if case .null? = tools { tools = nil }
        }
        guard case .array(let list) = messages else {
            throw TextError(.badInput, "\(origin): \"messages\" must be an array of {\"role\", \"content\"} objects")
        }
        guard !list.isEmpty else { throw TextError(.badInput, "\(origin): \"messages\" is empty") }
        for (i, m) in list.enumerated() {
            guard case .string? = m["role"] else {
                throw TextError(.badInput, "\(origin): messages[\(i)] has no \"role\" string",
                                hint: "each message is {\"role\": \"system\" | \"user\" | \"assistant\" | \"tool\", \"content\": ...}")
            }
        }
        if let tools, case .array = tools {} else if tools != nil {
            throw TextError(.badInput, "\(origin): \"tools\" must be an array")
        }
        self.init(messages: messages, tools: tools)
    }

    /// One user message, after an optional system message.
    public static func single(user: String, system: String? = nil) -> Conversation {
        var list: [JSONValue] = []
        if let system { list.append(.object(JSONObject([("role", .string("system")), ("content", .string(system))]))) }
        list.append(.object(JSONObject([("role", .string("user")), ("content", .string(user))])))
        return Conversation(messages: .array(list))
    }

    /// Reads a messages file (array or {"messages", "tools"}) and an optional separate tools file.
    public static func load(messagesFile: String, toolsFile: String?) throws(TextError) -> Conversation {
        var c = try Conversation(json: parseFile(messagesFile), origin: messagesFile)
        if let toolsFile {
            let tools = try parseFile(toolsFile)
            guard case .array = tools else { throw TextError(.badInput, "\(toolsFile): the tools file must hold a JSON array") }
            c.tools = tools
        }
        return c
    }

    /// `NAME=JSON` pairs for extra template variables (`thinking=true`); a value that is not JSON is a string.
    public static func parseExtra(_ pairs: [String]) throws(TextError) -> [String: JSONValue] {
        var extra: [String: JSONValue] = [:]
        for pair in pairs {
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                throw TextError(.badInput, "--set '\(pair)' is not NAME=VALUE", hint: "e.g. --set thinking=true")
            }
            let value = String(pair[pair.index(after: eq)...])
            extra[String(pair[..<eq])] = (try? JSONValue.parse(value)) ?? .string(value)
        }
        return extra
    }

    private static func parseFile(_ path: String) throws(TextError) -> JSONValue {
        let text = try PromptFiles.readUTF8(path)
        do { return try JSONValue.parse(text) } catch { throw TextError(.badInput, "\(path): \(error.message)") }
    }

    /// The text the checkpoint's chat template makes of this conversation.
    public func render(tokenizer: Tokenizer, addGenerationPrompt: Bool, extra: [String: JSONValue] = [:]) throws(TextError) -> String {
        try render(messages: messages, tokenizer: tokenizer, addGenerationPrompt: addGenerationPrompt, extra: extra)
    }

    private func render(messages: JSONValue, tokenizer: Tokenizer, addGenerationPrompt: Bool,
                        extra: [String: JSONValue]) throws(TextError) -> String {
        guard let template = try tokenizer.chatTemplate() else {
            throw TextError(.missingTokenizer, "the checkpoint has no chat template (looked in tokenizer_config.json \"chat_template\" and chat_template.jinja)",
                            hint: "use --prompt for a raw completion")
        }
        return try template.render(messages: messages, tools: tools, addGenerationPrompt: addGenerationPrompt,
                                   specialTokens: tokenizer.config.templateTokens, extra: extra)
    }

    /// Token ids of the rendered conversation. The template writes the BOS itself, so nothing is added (as
    /// transformers' apply_chat_template(tokenize=True) does). A special-token string inside user, system or
    /// tool content is encoded as plain text, not as the control token: a user cannot forge a turn boundary
    /// or a tool result by typing one. Assistant turns are taken as the model wrote them. Everything else is
    /// encoded exactly as `encode(rendered text)`.
    public func encode(tokenizer: Tokenizer, addGenerationPrompt: Bool, extra: [String: JSONValue] = [:]) throws(TextError) -> [Int] {
        let specials = tokenizer.specialTokenStrings.sorted { $0.count > $1.count }
        var found: [String] = []
        let masked = Self.mask(messages, specials: specials, found: &found)
        let text = try render(messages: masked, tokenizer: tokenizer, addGenerationPrompt: addGenerationPrompt, extra: extra)
        guard !found.isEmpty else { return tokenizer.encode(text, addSpecialTokens: false) }
        // Split at the markers: the text between them is encoded as usual, each masked string as plain text.
        var ids: [Int] = []
        var piece = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            let k = Int(scalar.value) - Int(Self.markerBase)
            if k >= 0 && k < found.count {
                ids += tokenizer.encode(String(piece), addSpecialTokens: false)
                ids += tokenizer.encodePlain(found[k])
                piece = String.UnicodeScalarView()
            } else {
                piece.append(scalar)
            }
        }
        return ids + tokenizer.encode(String(piece), addSpecialTokens: false)
    }

    /// Markers are scalars of Supplementary Private Use Area-A, one per masked occurrence.
    static let markerBase: UInt32 = 0xF0000

    /// Replaces special-token strings in the content of non-assistant messages by markers.
    static func mask(_ messages: JSONValue, specials: [String], found: inout [String]) -> JSONValue {
        guard !specials.isEmpty, case .array(let list) = messages else { return messages }
        // Text that already holds marker scalars cannot be masked unambiguously (it is then encoded as given).
        guard !messages.serialized().unicodeScalars.contains(where: { $0.value >= markerBase && $0.value < markerBase + 0xFFFE }) else {
            return messages
        }
        func maskText(_ s: String) -> String {
            guard specials.contains(where: { s.contains($0) }) else { return s }
            var out = ""
            var rest = Substring(s)
            while !rest.isEmpty {
                if let hit = specials.first(where: { rest.hasPrefix($0) }), found.count < 0xFFFD {
                    out.unicodeScalars.append(Unicode.Scalar(markerBase + UInt32(found.count))!)
                    found.append(hit)
                    rest = rest.dropFirst(hit.count)
                } else {
                    out.append(rest.first!)
                    rest = rest.dropFirst()
                }
            }
            return out
        }
        func maskContent(_ v: JSONValue) -> JSONValue {
            switch v {
            case .string(let s): return .string(maskText(s))
            case .array(let parts): return .array(parts.map { part in part.updating("text") { maskContent($0) } })
            default: return v
            }
        }
        return .array(list.map { m in
            if case .string("assistant")? = m["role"] { return m }
            return m.updating("content") { maskContent($0) }
        })
    }
}

extension JSONValue {
    /// This object with `key`'s value transformed (self unchanged when not an object or the key is absent).
    func updating(_ key: String, _ transform: (JSONValue) -> JSONValue) -> JSONValue {
        guard case .object(var o) = self, let v = o[key] else { return self }
        o[key] = transform(v)
        return .object(o)
    }
}

extension Tokenizer {
    /// The checkpoint's chat template, parsed (nil when it has none); syntax errors name the file, line and column.
    public func chatTemplate() throws(TextError) -> ChatTemplate? {
        guard let source = config.chatTemplate else { return nil }
        let file = config.files.contains { $0.hasSuffix("chat_template.jinja") } ? "chat_template.jinja" : "tokenizer_config.json chat_template"
        return try ChatTemplate(source: source, name: file)
    }
}
