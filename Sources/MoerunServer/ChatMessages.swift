// OpenAI chat `messages` and `tools` as the chat template receives them: shapes checked with the failing path
// named, text content parts joined into one string (what string-content templates such as DeepSeek's expect).
import Text

extension RequestParser {
    /// messages (required, non-empty) and tools (optional array of objects) from the body.
    func conversation(_ r: inout RequestReader) throws(APIError) -> Conversation {
        guard let messages = r.value("messages") else { throw .invalid("'messages' is required", param: "messages") }
        guard case .array(let list) = messages else { throw .wrongType("messages", "an array of message objects") }
        guard !list.isEmpty else { throw .invalid("'messages' must not be empty", param: "messages") }
        var normalized: [JSONValue] = []
        normalized.reserveCapacity(list.count)
        for (i, m) in list.enumerated() {
            guard case .object(var o) = m else { throw .wrongType("messages[\(i)]", "an object") }
            guard case .string(let role)? = o["role"] else { throw .wrongType("messages[\(i)].role", "a string") }
            guard ["system", "developer", "user", "assistant", "tool"].contains(role) else {
                throw .invalid("messages[\(i)].role '\(role)' is not one of system, developer, user, assistant, tool",
                               param: "messages[\(i)].role")
            }
            if let content = o["content"] { o["content"] = try Self.flatten(content, path: "messages[\(i)].content") }
            normalized.append(.object(o))
        }
        var tools: JSONValue?
        if let t = r.value("tools") {
            guard case .array(let items) = t else { throw .wrongType("tools", "an array of tool objects") }
            for (i, item) in items.enumerated() {
                guard case .object = item else { throw .wrongType("tools[\(i)]", "an object") }
                guard case .object? = item["function"] else { throw .wrongType("tools[\(i)].function", "an object") }
            }
            tools = t
        }
        return Conversation(messages: .array(normalized), tools: tools)
    }

    /// String content stays as is; an array of text parts becomes their texts joined by newlines, as vLLM does for
    /// string-content templates. Other part types (images, audio) have no place in a text-only model.
    static func flatten(_ content: JSONValue, path: String) throws(APIError) -> JSONValue {
        switch content {
        case .string, .null: return content
        case .array(let parts):
            var texts: [String] = []
            for (j, part) in parts.enumerated() {
                guard case .string(let type)? = part["type"] else { throw .wrongType("\(path)[\(j)].type", "a string") }
                guard type == "text" else {
                    throw .invalid("\(path)[\(j)] has type '\(type)'; this model takes text parts only", param: "\(path)[\(j)].type")
                }
                guard case .string(let text)? = part["text"] else { throw .wrongType("\(path)[\(j)].text", "a string") }
                texts.append(text)
            }
            return .string(texts.joined(separator: "\n"))
        default:
            throw .wrongType(path, "a string, an array of text parts, or null")
        }
    }

    /// vLLM's `chat_template_kwargs`: extra template variables (e.g. {"thinking": true}).
    func templateKwargs(_ r: inout RequestReader) throws(APIError) -> [String: JSONValue] {
        guard let o = try r.object("chat_template_kwargs") else { return [:] }
        var extra: [String: JSONValue] = [:]
        for (k, v) in o { extra[k] = v }
        return extra
    }
}
