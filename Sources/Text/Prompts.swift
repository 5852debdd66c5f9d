// Prompts as users give them (ids, text, conversations; on the command line or in a prompt file) and their
// conversion to token ids, with errors that name the file, line and byte offset.
import Foundation

/// One prompt before tokenization. `origin` names where it came from for error messages ("--prompt",
/// "prompts.jsonl line 7").
public enum PromptInput: Sendable {
    case ids([Int], origin: String)
    case text(String, origin: String)
    case messages(Conversation, origin: String)

    public var origin: String {
        switch self {
        case .ids(_, let o), .text(_, let o), .messages(_, let o): return o
        }
    }

    /// Whether a tokenizer is needed to turn this prompt into ids.
    public var needsTokenizer: Bool {
        if case .ids = self { return false }
        return true
    }

    /// Token ids: ids as given; text as `encode(text)` (BOS as the tokenizer adds it); a conversation through
    /// the chat template (see `Conversation.encode`).
    public func tokens(_ tokenizer: Tokenizer?) throws(TextError) -> [Int] {
        switch self {
        case .ids(let ids, _): return ids
        case .text(let text, _): return try Self.require(tokenizer, origin).encode(text)
        case .messages(let c, _): return try c.encode(tokenizer: Self.require(tokenizer, origin), addGenerationPrompt: true)
        }
    }

    private static func require(_ tokenizer: Tokenizer?, _ origin: String) throws(TextError) -> Tokenizer {
        guard let tokenizer else {
            throw TextError(.missingTokenizer, "\(origin) is text, which needs the checkpoint's tokenizer", hint: "give token ids with --prompt-ids instead")
        }
        return tokenizer
    }
}

public enum PromptFiles {
    /// Reads a file that must be UTF-8; an invalid byte is reported with its offset and line.
    public static func readUTF8(_ path: String) throws(TextError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TextError(.unreadable, "cannot read '\(path)'", hint: "check the path and permissions")
        }
        return try decodeUTF8([UInt8](data), path: path)
    }

    static func decodeUTF8(_ bytes: [UInt8], path: String) throws(TextError) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        scan: while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .emptyInput, .error: break scan
            }
        }
        let line = bytes[..<offset].reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
        throw TextError(.badInput, "'\(path)' is not valid UTF-8: invalid byte 0x\(String(bytes[offset], radix: 16, uppercase: true)) at byte offset \(offset) (line \(line))",
                        hint: "save the file as UTF-8")
    }

    /// A prompt file: one prompt per line, as comma-separated ids or a JSON object {"prompt": "text"} or
    /// {"messages": [...], "tools": [...]}; blank lines and lines starting with # are skipped. Line numbers in
    /// errors are the file's own (1-based, counting every line).
    public static func read(_ path: String) throws(TextError) -> [PromptInput] {
        try parse(readUTF8(path), path: path)
    }

    public static func parse(_ text: String, path: String) throws(TextError) -> [PromptInput] {
        var inputs: [PromptInput] = []
        // Split the bytes on "\n" (a String sees "\r\n" as one Character); "\r" is trimmed with other whitespace.
        for (index, raw) in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let line = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let origin = "\(path) line \(index + 1)"
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("{") {
                inputs.append(try jsonLine(line, origin: origin))
            } else {
                inputs.append(.ids(try parseIDs(line, what: origin), origin: origin))
            }
        }
        guard !inputs.isEmpty else {
            throw TextError(.badInput, "'\(path)' holds no prompt", hint: "write one prompt per line: ids like 1,2,3 or {\"prompt\": \"text\"}")
        }
        return inputs
    }

    private static func jsonLine(_ line: String, origin: String) throws(TextError) -> PromptInput {
        let value: JSONValue
        do { value = try JSONValue.parse(line) } catch {
            throw TextError(.badInput, "\(origin): \(error.message)", hint: "each JSON line is one object: {\"prompt\": \"text\"} or {\"messages\": [...]}")
        }
        if let prompt = value["prompt"] {
            guard case .string(let text) = prompt else {
                throw TextError(.badInput, "\(origin): \"prompt\" must be a string", hint: "token ids go on a line of their own: 1,2,3")
            }
            return .text(text, origin: origin)
        }
        if value["messages"] != nil { return .messages(try Conversation(json: value, origin: origin), origin: origin) }
        throw TextError(.badInput, "\(origin): a JSON line needs \"prompt\" or \"messages\"")
    }

    /// Parse "185,175,484" into token ids.
    public static func parseIDs(_ text: String, what: String) throws(TextError) -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        if parts.count == 1 && parts[0].isEmpty { return [] }
        var ids: [Int] = []
        for (i, p) in parts.enumerated() {
            guard let v = Int(p) else { throw TextError(.badInput, "\(what): '\(p)' (item \(i + 1)) is not an integer token id") }
            ids.append(v)
        }
        return ids
    }
}
