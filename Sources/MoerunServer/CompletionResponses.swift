// The completion endpoints' wire format, field for field as OpenAI and vLLM write it: the whole response, or
// server-sent events (`data: <compact JSON>` + blank line) ending in `data: [DONE]`.
import Foundation
import Hummingbird
import Text

/// Identity of one response: every chunk of a stream repeats it.
struct ResponseIdentity: Sendable {
    let endpoint: Endpoint
    let id: String
    let created: Int
    let model: String

    init(_ endpoint: Endpoint, model: String) {
        self.endpoint = endpoint
        var hex = ""
        for _ in 0..<2 { hex += String(UInt64.random(in: 0...UInt64.max), radix: 16).leftPadded(16) }
        id = (endpoint == .chat ? "chatcmpl-" : "cmpl-") + hex
        created = Int(Date.now.timeIntervalSince1970)
        self.model = model
    }

    private func envelope(_ object: String, choices: [JSONValue], usage: JSONValue?) -> JSONValue {
        var o = JSONObject([("id", .string(id)), ("object", .string(object)), ("created", .int(created)),
                            ("model", .string(model)), ("choices", .array(choices))])
        if let usage { o["usage"] = usage }
        return .object(o)
    }

    static func usage(_ outcome: GenerationOutcome) -> JSONValue {
        .object(JSONObject([("prompt_tokens", .int(outcome.promptTokens)), ("completion_tokens", .int(outcome.completionTokens)),
                            ("total_tokens", .int(outcome.promptTokens + outcome.completionTokens))]))
    }

    /// The non-streaming response. Chat: `content` is null when the answer is only tool calls (OpenAI's shape);
    /// `reasoning_content` is there when reasoning is split off for this request; `tool_calls` when there are any.
    func full(_ output: AssembledOutput, splitting: OutputSplitting, _ outcome: GenerationOutcome) -> JSONValue {
        let choice: JSONValue
        switch endpoint {
        case .completion:
            choice = .object(JSONObject([("index", .int(0)), ("text", .string(output.content)), ("logprobs", .null),
                                         ("finish_reason", .string(outcome.finishReason)), ("stop_reason", outcome.stopReason)]))
        case .chat:
            let content: JSONValue = output.content.isEmpty && !output.toolCalls.isEmpty ? .null : .string(output.content)
            var message = JSONObject([("role", .string("assistant")), ("content", content)])
            if splitting.think != nil { message["reasoning_content"] = output.reasoning.isEmpty ? .null : .string(output.reasoning) }
            if !output.toolCalls.isEmpty {
                message["tool_calls"] = .array(output.toolCalls.map { call in
                    .object(JSONObject([("id", .string(call.id)), ("type", .string("function")),
                                        ("function", .object(JSONObject([("name", .string(call.name)),
                                                                         ("arguments", .string(call.arguments))])))]))
                })
            }
            choice = .object(JSONObject([("index", .int(0)), ("message", .object(message)), ("logprobs", .null),
                                         ("finish_reason", .string(outcome.finishReason)), ("stop_reason", outcome.stopReason)]))
        }
        return envelope(endpoint == .chat ? "chat.completion" : "text_completion", choices: [choice], usage: Self.usage(outcome))
    }

    /// A stream chunk with one choice: text (completions) or a delta (chat), and the finish fields.
    func chunk(text: String? = nil, role: Bool = false, finish: GenerationOutcome? = nil) -> JSONValue {
        var delta = JSONObject()
        if role { delta["role"] = .string("assistant") }
        if let text { delta["content"] = .string(text) }
        return chunk(delta: delta, text: text, finish: finish)
    }

    /// The chunk of one output event: a content, reasoning_content or tool_calls delta (completions: its text).
    /// A tool call opens with its id, type and name (arguments ""), then its arguments come as fragments.
    func chunk(_ event: OutputEvent) -> JSONValue {
        var delta = JSONObject()
        switch event {
        case .content(let t):
            return chunk(text: t)
        case .reasoning(let t):
            delta["reasoning_content"] = .string(t)
        case .toolCall(let index, let id, let name):
            delta["tool_calls"] = .array([.object(JSONObject([
                ("index", .int(index)), ("id", .string(id)), ("type", .string("function")),
                ("function", .object(JSONObject([("name", .string(name)), ("arguments", .string(""))]))),
            ]))])
        case .arguments(let index, let fragment):
            delta["tool_calls"] = .array([.object(JSONObject([
                ("index", .int(index)), ("function", .object(JSONObject([("arguments", .string(fragment))]))),
            ]))])
        }
        return chunk(delta: delta, text: nil, finish: nil)
    }

    private func chunk(delta: JSONObject, text: String?, finish: GenerationOutcome?) -> JSONValue {
        let finishReason = finish.map { JSONValue.string($0.finishReason) } ?? .null
        let choice: JSONObject
        switch endpoint {
        case .completion:
            choice = JSONObject([("index", .int(0)), ("text", .string(text ?? "")), ("logprobs", .null),
                                 ("finish_reason", finishReason), ("stop_reason", finish?.stopReason ?? .null)])
        case .chat:
            var c = JSONObject([("index", .int(0)), ("delta", .object(delta)), ("logprobs", .null), ("finish_reason", finishReason)])
            if let finish { c["stop_reason"] = finish.stopReason }
            choice = c
        }
        return envelope(endpoint == .chat ? "chat.completion.chunk" : "text_completion", choices: [.object(choice)], usage: nil)
    }

    /// The usage chunk of `stream_options.include_usage`: no choices, only the counts.
    func usageChunk(_ outcome: GenerationOutcome) -> JSONValue {
        envelope(endpoint == .chat ? "chat.completion.chunk" : "text_completion", choices: [], usage: Self.usage(outcome))
    }
}

/// One server-sent event.
func sseEvent(_ value: JSONValue) -> ByteBuffer { ByteBuffer(string: "data: \(value.serialized())\n\n") }

let sseDone = ByteBuffer(string: "data: [DONE]\n\n")

/// Writes a generation as server-sent events. Chat opens with the role chunk when the first token arrives, then
/// content / reasoning / tool-call deltas (never empty), a finish chunk with an empty delta, the usage chunk when asked, then [DONE].
/// A failure after the 200 goes out as `data: {"error": ...}` followed by [DONE].
func writeEventStream(_ call: EngineCall, plan: GenerationPlan, identity: ResponseIdentity, state: ServerState,
                      writer: inout any ResponseBodyWriter) async throws {
    var sentRole = false
    let outcome = try await runGeneration(call, plan: plan, tokenizer: state.tokenizer, metrics: state.metrics) { events in
        if identity.endpoint == .chat && !sentRole {
            try await writer.write(sseEvent(identity.chunk(text: "", role: true)))
            sentRole = true
        }
        for event in events { try await writer.write(sseEvent(identity.chunk(event))) }
    }
    if let error = outcome.error {
        try await writer.write(sseEvent(error.json))
        try await writer.write(sseDone)
        return
    }
    if identity.endpoint == .chat && !sentRole {
        try await writer.write(sseEvent(identity.chunk(text: "", role: true)))
    }
    try await writer.write(sseEvent(identity.chunk(finish: outcome)))
    if plan.includeUsage { try await writer.write(sseEvent(identity.usageChunk(outcome))) }
    try await writer.write(sseDone)
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
