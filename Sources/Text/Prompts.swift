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

/// Per-request generation settings a JSON prompt line may carry (nil: the command line's).
public struct PromptSettings: Sendable, Equatable {
    public var maxTokens: Int?
    public var temperature: Float?
    public var topP: Float?
    public var topK: Int?
    /// A line's own seed samples from (seed, step) alone, as a served request does.
    public var seed: UInt64?
    public init() {}
}

/// One prompt of a prompt file with its line's settings.
public struct PromptLine: Sendable {
    public var input: PromptInput
    public var settings: PromptSettings
    public init(input: PromptInput, settings: PromptSettings = PromptSettings()) {
        self.input = input
        self.settings = settings
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

    /// A prompt file: one prompt per line, as comma-separated ids or a JSON object {"prompt": "text" or [ids]}
    /// or {"messages": [...], "tools": [...]}, optionally with "max_tokens", "temperature", "top_p", "top_k",
    /// "seed"; blank lines and lines starting with # are skipped. Line numbers in errors are the file's own
    /// (1-based, counting every line).
    public static func read(_ path: String) throws(TextError) -> [PromptLine] {
        try parse(readUTF8(path), path: path)
    }

    public static func parse(_ text: String, path: String) throws(TextError) -> [PromptLine] {
        var inputs: [PromptLine] = []
        // Split the bytes on "\n" (a String sees "\r\n" as one Character); "\r" is trimmed with other whitespace.
        for (index, raw) in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let line = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let origin = "\(path) line \(index + 1)"
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("{") {
                inputs.append(try jsonLine(line, origin: origin))
            } else {
                inputs.append(PromptLine(input: .ids(try parseIDs(line, what: origin), origin: origin), settings: PromptSettings()))
            }
        }
        guard !inputs.isEmpty else {
            throw TextError(.badInput, "'\(path)' holds no prompt", hint: "write one prompt per line: ids like 1,2,3 or {\"prompt\": \"text\"}")
        }
        return inputs
    }

    static let lineKeys: Set<String> = ["prompt", "messages", "tools", "max_tokens", "temperature", "top_p", "top_k", "seed"]

    private static func jsonLine(_ line: String, origin: String) throws(TextError) -> PromptLine {
        let value: JSONValue
        do { value = try JSONValue.parse(line) } catch {
            throw TextError(.badInput, "\(origin): \(error.message)", hint: "each JSON line is one object: {\"prompt\": \"text\"} or {\"messages\": [...]}")
        }
        guard case .object(let fields) = value else { throw TextError(.badInput, "\(origin): a JSON line must be an object") }
        if let unknown = fields.keys.first(where: { !lineKeys.contains($0) }) {
            throw TextError(.badInput, "\(origin): unknown key \"\(unknown)\"", hint: "keys: " + lineKeys.sorted().joined(separator: ", "))
        }
        let input: PromptInput
        switch value["prompt"] {
        case .string(let text)?: input = .text(text, origin: origin)
        case .array(let items)?:
            var ids: [Int] = []
            for item in items {
                guard case .int(let id) = item else { throw TextError(.badInput, "\(origin): \"prompt\" as an array holds token ids (integers)") }
                ids.append(id)
            }
            input = .ids(ids, origin: origin)
        case nil:
            guard value["messages"] != nil else { throw TextError(.badInput, "\(origin): a JSON line needs \"prompt\" or \"messages\"") }
            input = .messages(try Conversation(json: value, origin: origin), origin: origin)
        default:
            throw TextError(.badInput, "\(origin): \"prompt\" must be a string", hint: "or an array of token ids; ids may also go on a line of their own: 1,2,3")
        }
        func number(_ key: String) throws(TextError) -> Double? {
            switch value[key] {
            case nil, .null?: return nil
            case .int(let i)?: return Double(i)
            case .double(let d)?: return d
            default: throw TextError(.badInput, "\(origin): \"\(key)\" must be a number")
            }
        }
        func integer(_ key: String) throws(TextError) -> Int? {
            guard let d = try number(key) else { return nil }
            guard d == d.rounded(), d >= 0, d < 9e15 else { throw TextError(.badInput, "\(origin): \"\(key)\" must be a non-negative integer") }
            return Int(d)
        }
        var settings = PromptSettings()
        settings.maxTokens = try integer("max_tokens")
        settings.temperature = try number("temperature").map(Float.init)
        settings.topP = try number("top_p").map(Float.init)
        settings.topK = try integer("top_k")
        settings.seed = try integer("seed").map(UInt64.init)
        return PromptLine(input: input, settings: settings)
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
