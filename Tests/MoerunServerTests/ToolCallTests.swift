// Tool calls and reasoning on /v1/chat/completions over loopback, with the engine scripted to write DeepSeek-V3 and
// Kimi K2 tool-call tokens: the OpenAI shapes, and the same answer streamed and whole.
import MoerunServer
import Testing
import Text

/// A streamed chat answer put back together, with every chunk's shape checked on the way.
struct StreamedChat {
    struct Call: Equatable { var id: String, type: String, name: String, arguments: String }
    var content = ""
    var reasoning = ""
    var calls: [Call] = []
    var finishReason: JSONValue?
    /// Argument chunks received (all calls).
    var fragments = 0
    /// Shape violations, with the chunk.
    var problems: [String] = []

    init(_ r: HTTPResult) {
        let events = r.jsonEvents
        if r.events.last != "[DONE]" { problems.append("no [DONE]") }
        for (i, e) in events.enumerated() {
            guard case .object(let delta)? = e.at("choices.0.delta") else {
                if e.at("choices") != .array([]) { problems.append("no delta: \(e.serialized())") }
                continue
            }
            if let f = e.at("choices.0.finish_reason"), f != .null {
                finishReason = f
                if !delta.isEmpty { problems.append("finish chunk with a delta: \(e.serialized())") }
                continue
            }
            if i == 0 {
                if delta != JSONObject([("role", "assistant"), ("content", "")]) { problems.append("first chunk: \(e.serialized())") }
                continue
            }
            guard delta.count == 1, let field = delta.first(where: { _ in true }) else {
                problems.append("not one field: \(e.serialized())")
                continue
            }
            switch (field.key, field.value) {
            case ("content", .string(let t)) where !t.isEmpty: content += t
            case ("reasoning_content", .string(let t)) where !t.isEmpty: reasoning += t
            case ("tool_calls", .array(let list)) where list.count == 1:
                add(list[0], chunk: e)
            default: problems.append("unexpected delta: \(e.serialized())")
            }
        }
    }

    /// A start carries index, id, type, name and empty arguments; then fragments carry index and arguments only.
    private mutating func add(_ entry: JSONValue, chunk: JSONValue) {
        guard let index = entry.at("index")?.int else { problems.append("no index: \(chunk.serialized())"); return }
        if let id = entry.at("id")?.stringValue {
            guard index == calls.count, case .string(let type)? = entry.at("type"), case .string(let name)? = entry.at("function.name"),
                  entry.at("function.arguments") == .string("") else {
                problems.append("bad start: \(chunk.serialized())")
                return
            }
            calls.append(Call(id: id, type: type, name: name, arguments: ""))
        } else {
            guard index < calls.count, entry.at("function.name") == nil, case .string(let f)? = entry.at("function.arguments"),
                  !f.isEmpty, entry.at("type") == nil else {
                problems.append("bad fragment: \(chunk.serialized())")
                return
            }
            calls[index].arguments += f
            fragments += 1
        }
    }
}

@Suite struct ToolCallTests {
    static let tools: JSONValue = [.object(JSONObject([
        ("type", "function"),
        ("function", .object(JSONObject([
            ("name", "get_weather"), ("description", "Current weather in a city"),
            ("parameters", .object(JSONObject([("type", "object"),
                                               ("properties", .object(JSONObject([("city", .object(JSONObject([("type", "string")])))])))]))),
        ]))),
    ]))]

    /// The engine answers with `text` as `tokenizer` encodes it (marker strings become their control tokens), then eos.
    static func engine(_ text: String, _ tokenizer: Tokenizer, eos: Bool = true) -> ScriptedEngine {
        let tokens = ToolFixtures.ids(text, tokenizer) + (eos ? [ToolFixtures.eos(tokenizer)] : [])
        return ScriptedEngine { _ in .init(tokens: tokens) }
    }

    /// The same chat request whole and streamed.
    static func bothWays(_ engine: ScriptedEngine, _ tokenizer: Tokenizer,
                         _ fields: KeyValuePairs<String, JSONValue> = [:]) async throws -> (whole: JSONValue, streamed: StreamedChat) {
        func request(_ stream: Bool) -> String {
            var o = JSONObject([("messages", user("What's the weather in Paris?"))])
            for (k, v) in fields { o[k] = v }
            if stream { o["stream"] = true }
            return JSONValue.object(o).serialized()
        }
        return try await withServer(engine, tokenizer: tokenizer, configure: { $0.maxModelLength = 4096 }) { port in
            let whole = try await http("POST", "/v1/chat/completions", port: port, body: request(false))
            #expect(whole.status == 200, "\(whole.text)")
            let streamed = try await http("POST", "/v1/chat/completions", port: port, body: request(true))
            #expect(streamed.status == 200, "\(streamed.text)")
            let chat = StreamedChat(streamed)
            #expect(chat.problems.isEmpty, "\(chat.problems)")
            return (whole.json, chat)
        }
    }

    /// The whole response's tool calls as the stream's reassembly has them.
    static func calls(_ whole: JSONValue) -> [StreamedChat.Call] {
        (whole.at("choices.0.message.tool_calls")?.arrayValue ?? []).map {
            StreamedChat.Call(id: $0.at("id")?.stringValue ?? "?", type: $0.at("type")?.stringValue ?? "?",
                              name: $0.at("function.name")?.stringValue ?? "?", arguments: $0.at("function.arguments")?.stringValue ?? "?")
        }
    }

    @Test(arguments: ToolScript.all) func toolCallsWholeAndStreamed(_ s: ToolScript) async throws {
        let engine = Self.engine(s.text, s.tokenizer)
        let (whole, streamed) = try await Self.bothWays(engine, s.tokenizer, ["tools": Self.tools])
        let message = try #require(whole.at("choices.0.message"))
        #expect(message.at("role") == .string("assistant"))
        #expect(message.at("content") == .string(s.content))
        #expect(message.at("reasoning_content") == nil)
        #expect(whole.at("choices.0.finish_reason") == .string("tool_calls"))
        let wholeCalls = Self.calls(whole)
        #expect(wholeCalls.map(\.name) == s.calls.map(\.name))
        #expect(wholeCalls.map(\.arguments) == s.calls.map(\.arguments))
        #expect(wholeCalls.allSatisfy { $0.type == "function" })
        for (call, expected) in zip(wholeCalls, s.calls) {
            if let id = expected.id { #expect(call.id == id) } else { #expect(call.id.hasPrefix("chatcmpl-tool-")) }
        }
        // Streamed: the same content, names and arguments (ids too where the model writes them).
        #expect(streamed.content == s.content)
        #expect(streamed.calls.map(\.name) == wholeCalls.map(\.name))
        #expect(streamed.calls.map(\.arguments) == wholeCalls.map(\.arguments))
        #expect(streamed.calls.map(\.type) == wholeCalls.map(\.type))
        if s.calls[0].id != nil { #expect(streamed.calls.map(\.id) == wholeCalls.map(\.id)) }
        #expect(streamed.finishReason == .string("tool_calls"))
        #expect(whole.at("usage.completion_tokens") == .int(s.tokens.count + 1))
        // The arguments arrived in pieces as they were generated, not in one chunk per call.
        #expect(streamed.fragments > 2 * s.calls.count)
    }

    @Test func onlyToolCallsMeansNullContent() async throws {
        let text = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"
        let (whole, streamed) = try await Self.bothWays(Self.engine(text, ToolFixtures.deepseek), ToolFixtures.deepseek,
                                                        ["tools": Self.tools, "tool_choice": "auto"])
        #expect(whole.at("choices.0.message.content") == .null)
        #expect(Self.calls(whole).map(\.arguments) == [#"{"city": "Paris"}"#])
        #expect(streamed.content == "" && streamed.calls.map(\.arguments) == [#"{"city": "Paris"}"#])
    }

    @Test func truncatedSectionEndsWithLength() async throws {
        let s = ToolScript.deepseek
        // Cut inside the second call's arguments.
        let cut = s.tokens.count - 8
        let engine = ScriptedEngine { _ in .init(tokens: s.tokens) }
        let (whole, streamed) = try await Self.bothWays(engine, s.tokenizer, ["tools": Self.tools, "max_tokens": .int(cut)])
        #expect(whole.at("choices.0.finish_reason") == .string("length"))
        #expect(streamed.finishReason == .string("length"))
        let calls = Self.calls(whole)
        #expect(calls.map(\.name) == ["get_weather", "get_time"])
        #expect(calls[0].arguments == ToolScript.weather)
        #expect(ToolScript.time.hasPrefix(calls[1].arguments) && calls[1].arguments != ToolScript.time)
        #expect(streamed.calls.map(\.arguments) == calls.map(\.arguments))
        #expect(streamed.content == s.content && whole.at("choices.0.message.content") == .string(s.content))
    }

    @Test func reasoningBeforeContent() async throws {
        let tokenizer = ToolFixtures.deepseekThinking
        let text = "<think>The user wants 2 + 2. 答えは四。</think>The answer is 4."
        let (whole, streamed) = try await Self.bothWays(Self.engine(text, tokenizer), tokenizer)
        #expect(whole.at("choices.0.message.reasoning_content") == .string("The user wants 2 + 2. 答えは四。"))
        #expect(whole.at("choices.0.message.content") == .string("The answer is 4."))
        #expect(whole.at("choices.0.message.tool_calls") == nil)
        #expect(whole.at("choices.0.finish_reason") == .string("stop"))
        #expect(streamed.reasoning == "The user wants 2 + 2. 答えは四。" && streamed.content == "The answer is 4.")
        #expect(streamed.finishReason == .string("stop"))
    }

    @Test func generationPromptThatOpensTheReasoning() async throws {
        let tokenizer = ToolFixtures.deepseekThinkingOpen
        let engine = Self.engine("Four, since 2 + 2 = 4.</think>4", tokenizer)
        let (whole, streamed) = try await Self.bothWays(engine, tokenizer)
        let think = try #require(tokenizer.id(forToken: "<think>"))
        #expect(engine.submitted.first?.promptTokens.suffix(2).first == think)
        #expect(whole.at("choices.0.message.reasoning_content") == .string("Four, since 2 + 2 = 4."))
        #expect(whole.at("choices.0.message.content") == .string("4"))
        #expect(streamed.reasoning == "Four, since 2 + 2 = 4." && streamed.content == "4")
    }

    @Test func kimiThinkingReasoningThenToolCall() async throws {
        let tokenizer = ToolFixtures.kimiThinking
        let text = "<think>Weather needs a lookup.</think><|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
            + "<|tool_call_argument_begin|>{\"city\": \"Paris\"}<|tool_call_end|><|tool_calls_section_end|>"
        let (whole, streamed) = try await Self.bothWays(Self.engine(text, tokenizer), tokenizer, ["tools": Self.tools])
        #expect(whole.at("choices.0.message.reasoning_content") == .string("Weather needs a lookup."))
        #expect(whole.at("choices.0.message.content") == .null)
        #expect(Self.calls(whole) == [.init(id: "functions.get_weather:0", type: "function", name: "get_weather", arguments: #"{"city": "Paris"}"#)])
        #expect(whole.at("choices.0.finish_reason") == .string("tool_calls"))
        #expect(streamed.reasoning == "Weather needs a lookup." && streamed.content == "")
        #expect(streamed.calls == Self.calls(whole))
        #expect(streamed.finishReason == .string("tool_calls"))
    }

    /// No tools offered, or tool_choice "none": nothing is parsed; the markup is decoded like any text.
    @Test(arguments: [false, true]) func withoutToolsNothingIsParsed(toolChoiceNone: Bool) async throws {
        let s = ToolScript.deepseek
        let fields: KeyValuePairs<String, JSONValue> = toolChoiceNone ? ["tools": Self.tools, "tool_choice": "none"] : [:]
        let (whole, streamed) = try await Self.bothWays(Self.engine(s.text, s.tokenizer), s.tokenizer, fields)
        let expected = s.tokenizer.decode(s.tokens, skipSpecialTokens: true)
        #expect(expected.contains("<｜tool▁call▁begin｜>"))
        #expect(whole.at("choices.0.message.content") == .string(expected))
        #expect(whole.at("choices.0.message.tool_calls") == nil)
        #expect(whole.at("choices.0.finish_reason") == .string("stop"))
        #expect(streamed.content == expected && streamed.calls.isEmpty)
    }

    @Test func stopStringsApplyToContentOnly() async throws {
        let s = ToolScript.deepseek
        // "Paris" is only in the arguments: no stop.
        let (inArgs, inArgsStreamed) = try await Self.bothWays(Self.engine(s.text, s.tokenizer), s.tokenizer,
                                                              ["tools": Self.tools, "stop": "Paris"])
        #expect(inArgs.at("choices.0.finish_reason") == .string("tool_calls"))
        #expect(Self.calls(inArgs).map(\.arguments) == s.calls.map(\.arguments))
        #expect(inArgsStreamed.calls.map(\.arguments) == s.calls.map(\.arguments))
        // "check" is in the content: the answer ends there, before any call.
        let engine = Self.engine(s.text, s.tokenizer)
        let (inContent, inContentStreamed) = try await Self.bothWays(engine, s.tokenizer, ["tools": Self.tools, "stop": "check"])
        #expect(inContent.at("choices.0.finish_reason") == .string("stop"))
        #expect(inContent.at("choices.0.stop_reason") == .string("check"))
        #expect(inContent.at("choices.0.message.content") == .string("Let me "))
        #expect(inContent.at("choices.0.message.tool_calls") == nil)
        #expect(inContentStreamed.content == "Let me " && inContentStreamed.calls.isEmpty)
        #expect(await engine.wait { $0.cancelled.count == 2 })
    }
}
