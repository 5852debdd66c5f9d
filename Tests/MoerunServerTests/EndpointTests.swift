// /v1/models, /health, /metrics, /tokenize and /detokenize.
import MoerunServer
import Testing
import Text

@Suite struct EndpointTests {
    @Test func models() async throws {
        let r = try await withServer(ScriptedEngine { _ in .init(tokens: []) }) { port in try await http("GET", "/v1/models", port: port) }
        #expect(r.status == 200)
        #expect(r.json.at("object") == .string("list"))
        let card = try #require(r.json.at("data.0"))
        #expect(card.at("id") == .string(Fixture.model))
        #expect(card.at("object") == .string("model"))
        #expect(card.at("owned_by") == .string("moerun"))
        #expect(card.at("root") == .string(Fixture.directory))
        #expect(card.at("max_model_len") == .int(Fixture.maxModelLength))
        #expect(card.at("created")?.int != nil)
    }

    @Test func health() async throws {
        let engine = ScriptedEngine { _ in .init(tokens: []) }
        try await withServer(engine) { port in
            engine.setHealth(.loading)
            let loading = try await http("GET", "/health", port: port)
            #expect(loading.status == 503)
            #expect(loading.json.at("status") == .string("loading"))
            engine.setHealth(.stuck(seconds: 42))
            let stuck = try await http("GET", "/health", port: port)
            #expect(stuck.status == 503)
            #expect(stuck.json.at("reason")?.stringValue?.contains("42 s") == true)
            engine.setHealth(.failed("rank 2 lost"))
            #expect(try await http("GET", "/health", port: port).status == 503)
            engine.setHealth(.ready)
            #expect(try await http("GET", "/health", port: port).status == 200)
        }
    }

    @Test func metrics() async throws {
        let engine = ScriptedEngine { _ in .init(tokens: [10, 11, 12, 13]) }
        let text = try await withServer(engine) { port in
            _ = try await http("POST", "/v1/completions", port: port, body: body(["prompt": [1, 2, 3], "max_tokens": 4]))
            return try await http("GET", "/metrics", port: port).text
        }
        for line in ["moerun_num_requests_running 0", "moerun_prompt_tokens_total 3", "moerun_generation_tokens_total 4",
                     "moerun_time_to_first_token_seconds_count 1", "moerun_inter_token_latency_seconds_count 3",
                     "moerun_e2e_request_latency_seconds_count 1", "moerun_request_finished_total{finished_reason=\"length\"} 1"] {
            #expect(text.contains(line), "\(line) not in:\n\(text)")
        }
    }

    @Test func tokenizeAndDetokenize() async throws {
        let engine = ScriptedEngine { _ in .init(tokens: []) }
        try await withServer(engine) { port in
            let t = try await http("POST", "/tokenize", port: port, body: body(["model": .string(Fixture.model), "prompt": "Hello world"]))
            let ids = Fixture.tokenizer.encode("Hello world")
            #expect(t.json.at("tokens") == .array(ids.map(JSONValue.int)))
            #expect(t.json.at("count") == .int(ids.count))
            #expect(t.json.at("max_model_len") == .int(Fixture.maxModelLength))
            let raw = try await http("POST", "/tokenize", port: port,
                                     body: body(["prompt": "Hello world", "add_special_tokens": false, "return_token_strs": true]))
            #expect(raw.json.at("tokens") == .array(Fixture.ids("Hello world").map(JSONValue.int)))
            #expect(raw.json.at("token_strs.0")?.stringValue != nil)
            let chat = try await http("POST", "/tokenize", port: port, body: body(["messages": user("Hi")]))
            let expected = try Conversation(messages: user("Hi")).encode(tokenizer: Fixture.tokenizer, addGenerationPrompt: true)
            #expect(chat.json.at("tokens") == .array(expected.map(JSONValue.int)))
            let d = try await http("POST", "/detokenize", port: port, body: body(["tokens": .array(ids.map(JSONValue.int))]))
            #expect(d.json.at("prompt") == .string(Fixture.tokenizer.decode(ids)))
        }
    }
}
