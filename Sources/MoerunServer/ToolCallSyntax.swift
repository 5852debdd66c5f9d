// The inside of a tool-call section, per model family: control tokens and decoded text in, OpenAI tool-call events
// (start with id and name, argument fragments) out, incrementally, so streamed fragments join to the whole result.

/// Parses one family's tool-call section. The section's own begin / end tokens are the caller's; this sees the
/// per-call markers (`markers`) and the decoded text between them.
protocol ToolSectionParser: Sendable {
    /// The per-call control tokens this format uses inside a section.
    var markers: Set<Int> { get }
    /// Tool calls started so far (the next call's OpenAI `index`).
    var callCount: Int { get }
    mutating func marker(_ id: Int) -> [OutputEvent]
    mutating func text(_ text: String) -> [OutputEvent]
    /// The section closed (`complete`) or the generation ended inside it: settles the open call, if any.
    mutating func end(complete: Bool) -> [OutputEvent]
}

/// DeepSeek-V3: `<｜tool▁call▁begin｜>TYPE<｜tool▁sep｜>NAME\n```json\nARGUMENTS\n```<｜tool▁call▁end｜>`, calls
/// separated by "\n". As vLLM's deepseekv3 parser: the name runs to the first newline, the arguments are what the
/// json fence encloses, and the call id is generated (the model writes none).
struct DeepSeekV3ToolCalls: ToolSectionParser {
    struct Tokens: Sendable, Equatable {
        var callBegin: Int, callEnd: Int, separator: Int
    }

    static let fence = "```json\n"
    static let closingFence = "\n```"

    private enum Phase: Sendable {
        case between, type, name
        /// `fenced`: the opening fence was consumed or ruled out. `buffer` then holds the text that may be the start
        /// of the closing fence.
        case arguments(index: Int, fenced: Bool)
    }

    let tokens: Tokens
    private var phase = Phase.between
    private var buffer = ""
    private(set) var callCount = 0
    let markers: Set<Int>

    init(tokens: Tokens) {
        self.tokens = tokens
        markers = [tokens.callBegin, tokens.callEnd, tokens.separator]
    }

    mutating func marker(_ id: Int) -> [OutputEvent] {
        switch id {
        case tokens.callBegin:
            // A call that never closed is settled as if it had.
            let out = closeCall(complete: true)
            phase = .type
            return out
        case tokens.separator:
            guard case .type = phase else { return [] }
            phase = .name
            buffer = ""
            return []
        default:
            return closeCall(complete: true)
        }
    }

    mutating func text(_ text: String) -> [OutputEvent] {
        switch phase {
        case .between, .type:
            // The type is always "function" in OpenAI's format; separators between calls carry nothing.
            return []
        case .name:
            buffer += text
            guard let newline = buffer.firstIndex(of: "\n") else { return [] }
            let name = String(buffer[..<newline]).trimmed
            let rest = String(buffer[buffer.index(after: newline)...])
            buffer = ""
            guard !name.isEmpty else { phase = .between; return [] }
            let index = callCount
            callCount += 1
            phase = .arguments(index: index, fenced: false)
            return [.toolCall(index: index, id: Self.newID(), name: name)] + arguments(rest)
        case .arguments:
            return arguments(text)
        }
    }

    mutating func end(complete: Bool) -> [OutputEvent] { closeCall(complete: complete) }

    /// Sends argument text, except an opening fence and what may still become the closing fence.
    private mutating func arguments(_ text: String) -> [OutputEvent] {
        guard case .arguments(let index, var fenced) = phase else { return [] }
        buffer += text
        if !fenced {
            if buffer.hasPrefix(Self.fence) {
                buffer.removeFirst(Self.fence.count)
                fenced = true
            } else if Self.fence.hasPrefix(buffer) {
                return []
            } else {
                // No fence: the model wrote the arguments bare; take them as they are.
                fenced = true
            }
            phase = .arguments(index: index, fenced: fenced)
        }
        let keep = Self.closingFencePrefixLength(buffer)
        let ready = String(buffer.dropLast(keep))
        buffer = String(buffer.suffix(keep))
        return ready.isEmpty ? [] : [.arguments(index: index, ready)]
    }

    /// Ends the open call. A name cut off by the end of the generation (`complete` false) is not a call: the
    /// name may be incomplete.
    private mutating func closeCall(complete: Bool) -> [OutputEvent] {
        defer { phase = .between; buffer = "" }
        switch phase {
        case .between, .type:
            return []
        case .name:
            let name = buffer.trimmed
            guard complete, !name.isEmpty else { return [] }
            let index = callCount
            callCount += 1
            return [.toolCall(index: index, id: Self.newID(), name: name)]
        case .arguments:
            // All that is ever held is (part of) a fence, never argument text: the closing fence, or what the
            // output was cut off in, or an opening fence with nothing after it.
            return []
        }
    }

    /// Length of the longest suffix of `s` that the closing fence starts with.
    static func closingFencePrefixLength(_ s: String) -> Int {
        let fence = Array(closingFence)
        let tail = Array(s.suffix(fence.count))
        for n in stride(from: min(fence.count, tail.count), to: 0, by: -1) where Array(tail.suffix(n)) == Array(fence.prefix(n)) {
            return n
        }
        return 0
    }

    /// vLLM's form for generated call ids.
    static func newID() -> String {
        var hex = ""
        for _ in 0..<2 { hex += String(UInt64.random(in: 0...UInt64.max), radix: 16).leftPadded(16) }
        return "chatcmpl-tool-" + hex
    }
}

/// Kimi K2: `<|tool_call_begin|>functions.NAME:IDX<|tool_call_argument_begin|>ARGUMENTS<|tool_call_end|>`. The
/// model writes the call id itself (`functions.NAME:IDX`, Kimi's convention, used as the OpenAI id); the name is
/// between `functions.` and the last `:`. Whitespace around the id and the arguments is dropped, as vLLM's
/// kimi_k2 parser does.
struct KimiK2ToolCalls: ToolSectionParser {
    struct Tokens: Sendable, Equatable {
        var callBegin: Int, argumentBegin: Int, callEnd: Int
    }

    private enum Phase: Sendable {
        case between, id
        /// `started`: a non-space character was sent (leading whitespace is dropped until then).
        case arguments(index: Int, started: Bool)
    }

    let tokens: Tokens
    private var phase = Phase.between
    private var buffer = ""
    private(set) var callCount = 0
    let markers: Set<Int>

    init(tokens: Tokens) {
        self.tokens = tokens
        markers = [tokens.callBegin, tokens.argumentBegin, tokens.callEnd]
    }

    mutating func marker(_ id: Int) -> [OutputEvent] {
        switch id {
        case tokens.callBegin:
            let out = closeCall()
            phase = .id
            return out
        case tokens.argumentBegin:
            guard case .id = phase else { return [] }
            let callID = buffer.trimmed
            buffer = ""
            guard let name = Self.name(fromID: callID) else { phase = .between; return [] }
            let index = callCount
            callCount += 1
            phase = .arguments(index: index, started: false)
            return [.toolCall(index: index, id: callID, name: name)]
        default:
            return closeCall()
        }
    }

    mutating func text(_ text: String) -> [OutputEvent] {
        switch phase {
        case .between:
            return []
        case .id:
            buffer += text
            return []
        case .arguments(let index, var started):
            var piece = Substring(text)
            if !started {
                piece = piece.drop { $0.isWhitespace }
                if piece.isEmpty { return [] }
                started = true
                phase = .arguments(index: index, started: true)
            }
            // Trailing whitespace waits: it is dropped if the call ends right after it.
            buffer += piece
            let trailing = buffer.reversed().prefix { $0.isWhitespace }.count
            let ready = String(buffer.dropLast(trailing))
            buffer = String(buffer.suffix(trailing))
            return ready.isEmpty ? [] : [.arguments(index: index, ready)]
        }
    }

    /// A call whose id never reached the argument marker has no name to call: dropped either way.
    mutating func end(complete: Bool) -> [OutputEvent] { closeCall() }

    private mutating func closeCall() -> [OutputEvent] {
        phase = .between
        buffer = ""
        return []
    }

    /// `functions.get_weather:0` -> `get_weather`; without the prefix or the index, what is there.
    static func name(fromID id: String) -> String? {
        var s = Substring(id)
        if s.hasPrefix("functions.") { s = s.dropFirst("functions.".count) }
        if let colon = s.lastIndex(of: ":") { s = s[..<colon] }
        let name = String(s).trimmed
        return name.isEmpty ? nil : name
    }
}

extension String {
    var trimmed: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
