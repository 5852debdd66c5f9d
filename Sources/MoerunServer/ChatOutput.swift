// Splits generated tokens into what an OpenAI chat answer is made of: content, reasoning (`<think>...</think>`) and
// tool calls, token by token, so that a stream and a whole response are built from the same events.
import Text

/// One piece of generated output, in order.
enum OutputEvent: Sendable, Equatable {
    case content(String)
    case reasoning(String)
    /// A tool call begins: its OpenAI `index` (0-based in this answer), id and function name.
    case toolCall(index: Int, id: String, name: String)
    /// More of the JSON arguments of call `index`.
    case arguments(index: Int, String)
}

/// The tool-call format a checkpoint's model writes, with its control token ids.
enum ToolCallFormat: Sendable, Equatable {
    /// The tokens that open and close the whole tool-call section.
    struct Section: Sendable, Equatable { var begin: Int, end: Int }

    case deepseekV3(section: Section, DeepSeekV3ToolCalls.Tokens)
    case kimiK2(section: Section, KimiK2ToolCalls.Tokens)

    var section: Section {
        switch self {
        case .deepseekV3(let s, _), .kimiK2(let s, _): return s
        }
    }

    func makeParser() -> any ToolSectionParser {
        switch self {
        case .deepseekV3(_, let t): return DeepSeekV3ToolCalls(tokens: t)
        case .kimiK2(_, let t): return KimiK2ToolCalls(tokens: t)
        }
    }

    /// The format of `tokenizer`'s checkpoint: config.json's model_type first, else whichever family's control
    /// tokens the vocabulary has (a DeepSeek-V3 fine-tune under another model_type still writes DeepSeek's syntax).
    /// nil: no known format, tool calls stay in the content.
    static func detect(_ tokenizer: Tokenizer) -> ToolCallFormat? {
        let ids = { (names: [String]) -> [Int]? in
            let found = names.compactMap { tokenizer.id(forToken: $0) }
            return found.count == names.count ? found : nil
        }
        let deepseek = ids(["<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"])
            .map { ToolCallFormat.deepseekV3(section: .init(begin: $0[0], end: $0[1]),
                                             .init(callBegin: $0[2], callEnd: $0[3], separator: $0[4])) }
        let kimi = ids(["<|tool_calls_section_begin|>", "<|tool_calls_section_end|>", "<|tool_call_begin|>",
                        "<|tool_call_argument_begin|>", "<|tool_call_end|>"])
            .map { ToolCallFormat.kimiK2(section: .init(begin: $0[0], end: $0[1]),
                                         .init(callBegin: $0[2], argumentBegin: $0[3], callEnd: $0[4])) }
        switch tokenizer.config.modelType {
        case "kimi_k2"?: return kimi ?? deepseek
        case "deepseek_v3"?: return deepseek ?? kimi
        default: return deepseek ?? kimi
        }
    }
}

/// `<think>` / `</think>` as single tokens (R1, K2-Thinking); whether they are "special" does not matter here.
struct ThinkTokens: Sendable, Equatable {
    var begin: Int, end: Int

    static func detect(_ tokenizer: Tokenizer) -> ThinkTokens? {
        guard let b = tokenizer.id(forToken: "<think>"), let e = tokenizer.id(forToken: "</think>") else { return nil }
        return ThinkTokens(begin: b, end: e)
    }

    /// True when the prompt leaves a `<think>` open (a generation prompt that starts the reasoning): the output then
    /// begins inside the reasoning, without a `<think>` of its own.
    func isOpen(after prompt: [Int]) -> Bool {
        guard let b = prompt.lastIndex(of: begin) else { return false }
        return prompt.lastIndex(of: end).map { $0 < b } ?? true
    }
}

/// How one request's output is split (all nil / false: everything is content, as /v1/completions has it).
struct OutputSplitting: Sendable, Equatable {
    /// Tool calls are parsed (the request has tools, tool_choice is not "none", the checkpoint's format is known).
    var tools: ToolCallFormat?
    /// Reasoning is split off (a chat request, and the tokenizer has both think tokens).
    var think: ThinkTokens?
    var startsInReasoning = false

    static let none = OutputSplitting()
}

/// The state machine over generated tokens. Control tokens are recognised by id before decoding (the tokenizer may
/// or may not call them special); the text between them goes through one streaming decoder, flushed at each control
/// token so that no UTF-8 character straddles two kinds of output.
struct ChatOutputParser: Sendable {
    private enum Channel: Sendable { case content, reasoning, toolSection }

    private let splitting: OutputSplitting
    private var decoder: StreamingDecoder
    private var channel: Channel
    private var tools: (any ToolSectionParser)?

    init(tokenizer: Tokenizer, splitting: OutputSplitting, skipSpecialTokens: Bool) {
        self.splitting = splitting
        decoder = StreamingDecoder(tokenizer: tokenizer, skipSpecialTokens: skipSpecialTokens)
        channel = splitting.think != nil && splitting.startsInReasoning ? .reasoning : .content
        tools = splitting.tools?.makeParser()
    }

    /// Tool calls started so far.
    var toolCallCount: Int { tools?.callCount ?? 0 }

    mutating func push(_ token: Int) -> [OutputEvent] {
        if channel == .toolSection, var parser = tools {
            defer { tools = parser }
            if token == splitting.tools?.section.end {
                let events = parser.text(decoder.finish()) + parser.end(complete: true)
                channel = .content
                return events
            }
            if parser.markers.contains(token) { return parser.text(decoder.finish()) + parser.marker(token) }
            return parser.text(decoder.push(token))
        }
        if let think = splitting.think {
            // Only a token that changes the channel is a marker; a stray one is decoded like any token.
            if channel == .content && token == think.begin { return switchTo(.reasoning) }
            if channel == .reasoning && token == think.end { return switchTo(.content) }
        }
        // The section start also ends a reasoning block that was not closed (Kimi K2-Thinking does that).
        if let format = splitting.tools, token == format.section.begin { return switchTo(.toolSection) }
        return wrap(decoder.push(token))
    }

    /// The generation ended: held text (an unfinished character, an open call's tail) goes out.
    mutating func finish() -> [OutputEvent] {
        if channel == .toolSection, var parser = tools {
            defer { tools = parser }
            return parser.text(decoder.finish()) + parser.end(complete: false)
        }
        return wrap(decoder.finish())
    }

    private mutating func switchTo(_ next: Channel) -> [OutputEvent] {
        let flushed = wrap(decoder.finish())
        channel = next
        return flushed
    }

    private func wrap(_ text: String) -> [OutputEvent] {
        guard !text.isEmpty else { return [] }
        return [channel == .reasoning ? .reasoning(text) : .content(text)]
    }
}

/// A whole answer put together from its events (the non-streaming response).
struct AssembledOutput: Sendable, Equatable {
    struct ToolCall: Sendable, Equatable {
        var id: String, name: String, arguments: String
    }

    var content = ""
    var reasoning = ""
    var toolCalls: [ToolCall] = []

    mutating func add(_ event: OutputEvent) {
        switch event {
        case .content(let t): content += t
        case .reasoning(let t): reasoning += t
        case .toolCall(let index, let id, let name):
            // Indices come in order from 0; the guard only keeps a broken sequence from trapping.
            if index == toolCalls.count { toolCalls.append(ToolCall(id: id, name: name, arguments: "")) }
        case .arguments(let index, let t):
            if index < toolCalls.count { toolCalls[index].arguments += t }
        }
    }
}

/// Adjacent text events of one kind become one (one delta per kind and token, never empty).
func coalesced(_ events: [OutputEvent]) -> [OutputEvent] {
    var out: [OutputEvent] = []
    for e in events {
        switch (out.last, e) {
        case let (.content(a)?, .content(b)): out[out.count - 1] = .content(a + b)
        case let (.reasoning(a)?, .reasoning(b)): out[out.count - 1] = .reasoning(a + b)
        case let (.arguments(i, a)?, .arguments(j, b)) where i == j: out[out.count - 1] = .arguments(index: i, a + b)
        default: out.append(e)
        }
    }
    return out
}
