// /v1/completions and /v1/chat/completions over loopback: response and event-stream shapes, stop strings that
// span tokens, eos, usage, and what reaches the engine.
import MoerunServer
import Testing
import Text

@Suite struct CompletionTests {
    static let answer = "Hello world, this is a test of stopping."

    /// An engine that answers every request with `text`, then eos.
    static func engine(_ text: String = answer, delay: Duration = .zero) -> ScriptedEngine {
        ScriptedEngine { _ in .init(tokens: Fixture.ids(text) + [Fixture.eos], delay: delay) }
    }

    @Test func completionWholeResponse() async throws {
        let engine = Self.engine()
        let r = try await withServer(engine) { port in
            try await http("POST", "/v1/completions", port: port, body: body(["model": .string(Fixture.model),
                                                                              "prompt": .string("Say hello"), "max_tokens": 50]))
        }
        #expect(r.status == 200)
        let j = r.json
        #expect(j.at("object") == .string("text_completion"))
        #expect(j.at("id")?.stringValue?.hasPrefix("cmpl-") == true)
        #expect(j.at("model") == .string(Fixture.model))
        #expect(j.at("created")?.int != nil)
        #expect(j.at("choices.0.text") == .string(Self.answer))
        #expect(j.at("choices.0.finish_reason") == .string("stop"))
        #expect(j.at("choices.0.index") == .int(0))
        let prompt = Fixture.tokenizer.encode("Say hello")
        #expect(engine.submitted.first?.promptTokens == prompt)
        #expect(engine.submitted.first?.stopTokenIDs == Set(Fixture.tokenizer.config.eosTokenIDs))
        let generated = Fixture.ids(Self.answer).count + 1
        #expect(j.at("usage.prompt_tokens") == .int(prompt.count))
        #expect(j.at("usage.completion_tokens") == .int(generated))
        #expect(j.at("usage.total_tokens") == .int(prompt.count + generated))
    }

    @Test func lengthFinishAndTokenPrompts() async throws {
        let engine = Self.engine()
        try await withServer(engine) { port in
            for prompt: JSONValue in [.array([5, 6, 7]), .array([.array([5, 6, 7])]), .array([.string("abc")])] {
                let r = try await http("POST", "/v1/completions", port: port,
                                       body: body(["prompt": prompt, "max_tokens": 3, "temperature": 0]))
                #expect(r.status == 200, "\(prompt.serialized()): \(r.text)")
                #expect(r.json.at("choices.0.finish_reason") == .string("length"))
                #expect(r.json.at("usage.completion_tokens") == .int(3))
                #expect(r.json.at("choices.0.text") == .string(Fixture.tokenizer.decode(Array(Fixture.ids(Self.answer).prefix(3)))))
            }
        }
        #expect(engine.submitted[0].promptTokens == [5, 6, 7])
        #expect(engine.submitted[1].promptTokens == [5, 6, 7])
        #expect(engine.submitted[2].promptTokens == Fixture.tokenizer.encode("abc"))
        #expect(engine.submitted[0].maxTokens == 3 && engine.submitted[0].temperature == 0)
    }

    @Test func defaultsFromTheRules() async throws {
        let engine = Self.engine()
        try await withServer(engine) { port in
            _ = try await http("POST", "/v1/completions", port: port, body: body(["prompt": .array([1, 2, 3, 4])]))
            _ = try await http("POST", "/v1/completions", port: port,
                               body: body(["prompt": .array([1, 2]), "seed": -1, "top_k": -1, "top_p": 0.5, "ignore_eos": true]))
        }
        let first = try #require(engine.submitted.first)
        // Remaining context (256 - 4) is below the default cap of 4096.
        #expect(first.maxTokens == Fixture.maxModelLength - 4)
        #expect(first.temperature == Float(Fixture.tokenizer.config.defaultTemperature ?? 1))
        #expect(first.topP == 1 && first.topK == 0)
        let second = engine.submitted[1]
        #expect(second.seed == UInt64.max && second.topK == 0 && second.topP == 0.5 && second.stopTokenIDs.isEmpty)
    }

    @Test func stopStringAcrossTokensIsNeverSent() async throws {
        let stop = ", this"
        let tokens = Fixture.ids(Self.answer)
        // The test means something only if no single token holds the whole stop string.
        #expect(!tokens.contains { Fixture.tokenizer.decode([$0]).contains(stop) })
        let engine = Self.engine(delay: .milliseconds(2))
        let (whole, streamed) = try await withServer(engine) { port in
            let whole = try await http("POST", "/v1/completions", port: port,
                                       body: body(["prompt": "x", "max_tokens": 40, "stop": .array([.string("zzz"), .string(stop)])]))
            let streamed = try await http("POST", "/v1/chat/completions", port: port,
                                          body: body(["messages": user("x"), "max_tokens": 40, "stop": .string(stop), "stream": true]))
            return (whole, streamed)
        }
        #expect(whole.json.at("choices.0.text") == .string("Hello world"))
        #expect(whole.json.at("choices.0.finish_reason") == .string("stop"))
        #expect(whole.json.at("choices.0.stop_reason") == .string(stop))
        let deltas = streamed.jsonEvents.compactMap { $0.at("choices.0.delta.content")?.stringValue }
        #expect(deltas.joined() == "Hello world")
        #expect(!deltas.contains { $0.contains(",") })
        #expect(streamed.jsonEvents.last?.at("choices.0.finish_reason") == .string("stop"))
        // Both requests were ended by the front end, not run to max_tokens.
        #expect(await engine.wait { $0.cancelled == [1, 2] })
    }

    @Test func streamingCompletionWithUsage() async throws {
        let engine = Self.engine()
        let r = try await withServer(engine) { port in
            try await http("POST", "/v1/completions", port: port,
                           body: body(["prompt": "hi", "max_tokens": 100, "stream": true,
                                       "stream_options": .object(JSONObject([("include_usage", true)]))]))
        }
        #expect(r.status == 200)
        #expect(r.headers["content-type"] == "text/event-stream")
        #expect(r.events.last == "[DONE]")
        let events = r.jsonEvents
        #expect(events.allSatisfy { $0.at("object") == .string("text_completion") && $0.at("id") == events[0].at("id") })
        let texts = events.compactMap { $0.at("choices.0.text")?.stringValue }
        #expect(texts.joined() == Self.answer)
        let finish = events[events.count - 2]
        #expect(finish.at("choices.0.finish_reason") == .string("stop"))
        let usage = events[events.count - 1]
        #expect(usage.at("choices") == .array([]))
        #expect(usage.at("usage.completion_tokens") == .int(Fixture.ids(Self.answer).count + 1))
        #expect(usage.at("usage.prompt_tokens") == .int(Fixture.tokenizer.encode("hi").count))
    }

    @Test func chatWholeResponse() async throws {
        let engine = Self.engine()
        let messages = JSONValue.array([
            .object(JSONObject([("role", "system"), ("content", "Be brief.")])),
            .object(JSONObject([("role", "user"), ("content", .array([.object(JSONObject([("type", "text"), ("text", "Hi <｜Assistant｜>")]))]))])),
        ])
        let r = try await withServer(engine) { port in
            try await http("POST", "/v1/chat/completions", port: port,
                           body: body(["model": .string(Fixture.model), "messages": messages, "max_completion_tokens": 64,
                                       "user": "someone", "tool_choice": "none"]))
        }
        #expect(r.status == 200, "\(r.text)")
        let j = r.json
        #expect(j.at("object") == .string("chat.completion"))
        #expect(j.at("id")?.stringValue?.hasPrefix("chatcmpl-") == true)
        #expect(j.at("choices.0.message.role") == .string("assistant"))
        #expect(j.at("choices.0.message.content") == .string(Self.answer))
        #expect(j.at("choices.0.finish_reason") == .string("stop"))
        // The prompt is the template's rendering, with the control token the user typed kept as text.
        let expected = try Conversation(messages: .array([
            .object(JSONObject([("role", "system"), ("content", "Be brief.")])),
            .object(JSONObject([("role", "user"), ("content", "Hi <｜Assistant｜>")])),
        ])).encode(tokenizer: Fixture.tokenizer, addGenerationPrompt: true)
        #expect(engine.submitted.first?.promptTokens == expected)
        #expect(engine.submitted.first?.maxTokens == 64)
    }

    @Test func chatStreamShapeAndWholeCharacters() async throws {
        let text = "日本語のテキスト 🎉 done"
        let engine = Self.engine(text)
        let r = try await withServer(engine) { port in
            try await http("POST", "/v1/chat/completions", port: port,
                           body: body(["messages": user("hi"), "stream": true,
                                       "stream_options": .object(JSONObject([("include_usage", true)]))]))
        }
        let events = r.jsonEvents
        #expect(r.events.last == "[DONE]")
        #expect(events.allSatisfy { $0.at("object") == .string("chat.completion.chunk") || $0.at("choices") == .array([]) })
        #expect(events[0].at("choices.0.delta.role") == .string("assistant"))
        let deltas = events.dropFirst().compactMap { $0.at("choices.0.delta.content")?.stringValue }
        #expect(deltas.joined() == text)
        #expect(!deltas.contains { $0.isEmpty || $0.contains("\u{FFFD}") })
        let finish = events[events.count - 2]
        #expect(finish.at("choices.0.finish_reason") == .string("stop"))
        #expect(finish.at("choices.0.delta") == .object(JSONObject()))
        #expect(events[events.count - 1].at("usage.total_tokens")?.int != nil)
        #expect(events[events.count - 1].at("choices") == .array([]))
    }

    @Test func engineFailureAfterTheStatusIsAnErrorEvent() async throws {
        let engine = ScriptedEngine { _ in .init(tokens: Fixture.ids("partial"), failure: "rank 3 lost") }
        let (streamed, whole) = try await withServer(engine) { port in
            let s = try await http("POST", "/v1/chat/completions", port: port,
                                   body: body(["messages": user("hi"), "stream": true, "max_tokens": 100]))
            let w = try await http("POST", "/v1/completions", port: port, body: body(["prompt": "hi", "max_tokens": 100]))
            return (s, w)
        }
        #expect(streamed.status == 200)
        #expect(streamed.events.last == "[DONE]")
        let error = try #require(streamed.jsonEvents.last)
        #expect(error.at("error.message")?.stringValue?.contains("rank 3 lost") == true)
        // A lost rank is the service going away, not the request's fault: 503, as the OpenAI API and vLLM say it.
        #expect(error.at("error.type") == .string("service_unavailable_error"))
        #expect(whole.status == 503)
        #expect(whole.json.at("error.message")?.stringValue?.contains("rank 3 lost") == true)
    }
}
