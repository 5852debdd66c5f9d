// Bad requests each get their status and an OpenAI-shaped error naming the field, and the server keeps serving.
import Foundation
import MoerunServer
import Testing
import Text

@Suite struct ValidationTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var path: String
        var body: String
        var status: Int
        /// Expected `error.param` (nil: not checked).
        var param: String?
        /// A piece of `error.message`.
        var message: String
        var testDescription: String { "\(path) \(message)" }
    }

    static let tooLong = JSONValue.array((0..<Fixture.maxModelLength).map { _ in 5 })

    static let cases: [Case] = [
        Case(path: "/v1/completions", body: "{\"prompt\": \"x\",", status: 400, param: nil, message: "not valid JSON"),
        Case(path: "/v1/completions", body: "[1, 2]", status: 400, param: nil, message: "must be a JSON object"),
        Case(path: "/v1/completions", body: body(["prompt": "x", "temperature": "hot"]), status: 400, param: "temperature", message: "'temperature' must be a number"),
        Case(path: "/v1/completions", body: body(["prompt": "x", "max_tokens": "5"]), status: 400, param: "max_tokens", message: "an integer"),
        Case(path: "/v1/completions", body: body(["prompt": 5]), status: 400, param: "prompt", message: "'prompt' must be"),
        Case(path: "/v1/chat/completions", body: body(["messages": user("x"), "stop": [1]]), status: 400, param: "stop[0]", message: "a string"),
        Case(path: "/v1/completions", body: body(["prompt": "x", "xyz": 1]), status: 400, param: "xyz", message: "unsupported field 'xyz'"),
        Case(path: "/v1/chat/completions", body: body(["messages": user("x"), "response_format": .object(JSONObject([("type", "json_object")]))]), status: 400, param: "response_format", message: "unsupported field 'response_format'"),
        Case(path: "/v1/completions", body: body(["model": "gpt-4", "prompt": "x"]), status: 404, param: "model", message: "'gpt-4' does not exist"),
        Case(path: "/v1/completions", body: body(["prompt": tooLong]), status: 400, param: "prompt", message: "maximum context length is 256"),
        Case(path: "/v1/completions", body: body(["prompt": "x", "max_tokens": 300]), status: 400, param: "max_tokens", message: "maximum context length is 256"),
        Case(path: "/v1/chat/completions", body: body(["messages": user("x"), "max_completion_tokens": 1000]), status: 400, param: "max_completion_tokens", message: "maximum context length"),
        Case(path: "/v1/completions", body: body(["prompt": [1, 99999]]), status: 400, param: "prompt", message: "prompt[1] = 99999 is not a token id"),
        Case(path: "/v1/completions", body: body(["prompt": [1, -1]]), status: 400, param: "prompt", message: "is not a token id"),
        Case(path: "/v1/completions", body: body(["prompt": ["a", "b"]]), status: 400, param: "prompt", message: "holds 2 prompts"),
        Case(path: "/v1/chat/completions", body: body(["messages": []]), status: 400, param: "messages", message: "must not be empty"),
        Case(path: "/v1/chat/completions", body: body(["messages": [.object(JSONObject([("content", "hi")]))]]), status: 400, param: "messages[0].role", message: "a string"),
        Case(path: "/v1/chat/completions", body: body(["messages": user("x"), "n": 2]), status: 400, param: "n", message: "'n' must be 1"),
        Case(path: "/v1/chat/completions", body: body(["messages": user("x"), "logprobs": true]), status: 400, param: "logprobs", message: "unsupported field 'logprobs'"),
        Case(path: "/v1/chat/completions", body: body(["messages": user("x"), "top_logprobs": 3]), status: 400, param: "top_logprobs", message: "unsupported field 'top_logprobs'"),
        Case(path: "/v1/completions", body: body(["prompt": "x", "logprobs": 2]), status: 400, param: "logprobs", message: "unsupported field 'logprobs'"),
        Case(path: "/v1/chat/completions", body: body(["messages": user("x"), "stream_options": .object(JSONObject([("include_usage", true)]))]), status: 400, param: "stream_options", message: "only allowed with"),
        Case(path: "/v1/chat/completions", body: body(["messages": user("x"), "tool_choice": "required"]), status: 400, param: "tool_choice", message: "unsupported field 'tool_choice'"),
        Case(path: "/v1/chat/completions", body: body(["messages": user("x"), "top_p": 0]), status: 400, param: "top_p", message: "'top_p' must be in (0.0"),
        Case(path: "/v1/chat/completions", body: body(["messages": user("x"), "presence_penalty": 0.5]), status: 400, param: "presence_penalty", message: "only 0"),
        Case(path: "/tokenize", body: body(["prompt": 3]), status: 400, param: "prompt", message: "'prompt' must be a string"),
        Case(path: "/detokenize", body: body(["tokens": [1, 100000]]), status: 400, param: "tokens", message: "is not a token id"),
        Case(path: "/v1/nothing", body: "{}", status: 404, param: nil, message: "no route POST /v1/nothing"),
    ]

    @Test(arguments: cases) func refused(_ c: Case) async throws {
        let engine = ScriptedEngine { _ in .init(tokens: [1, 2, 3]) }
        try await withServer(engine) { port in
            let r = try await http("POST", c.path, port: port, body: c.body)
            #expect(r.status == c.status, "\(r.text)")
            let error = r.json.at("error")
            #expect(error?.at("message")?.stringValue?.contains(c.message) == true, "\(r.text)")
            #expect(error?.at("type")?.stringValue?.isEmpty == false)
            if let param = c.param { #expect(error?.at("param") == .string(param), "\(r.text)") }
            #expect(error?.at("code") != nil)
            // Still serving after the bad request.
            let ok = try await http("POST", "/v1/completions", port: port, body: body(["prompt": "x", "max_tokens": 2]))
            #expect(ok.status == 200)
        }
        #expect(engine.submitted.count == 1)
    }

    @Test func nullMeansAbsent() async throws {
        let engine = ScriptedEngine { _ in .init(tokens: [1, 2, 3]) }
        let r = try await withServer(engine) { port in
            try await http("POST", "/v1/chat/completions", port: port,
                           body: body(["messages": user("x"), "temperature": .null, "stop": .null, "logprobs": .null,
                                       "suffix": .null, "max_tokens": 2]))
        }
        #expect(r.status == 200, "\(r.text)")
    }

    @Test func bodyOverTheLimitIs413() async throws {
        let engine = ScriptedEngine { _ in .init(tokens: [1]) }
        let r = try await withServer(engine, configure: { $0.maxBodyBytes = 1024 }) { port in
            try await http("POST", "/v1/completions", port: port, body: body(["prompt": .string(String(repeating: "a", count: 4000))]))
        }
        #expect(r.status == 413)
        #expect(r.json.at("error.code") == .string("request_too_large"))
    }

    @Test func apiKey() async throws {
        let engine = ScriptedEngine { _ in .init(tokens: [1]) }
        try await withServer(engine, configure: { $0.apiKey = "sekret" }) { port in
            let chat = body(["messages": user("x"), "max_tokens": 1])
            let missing = try await http("POST", "/v1/chat/completions", port: port, body: chat)
            #expect(missing.status == 401)
            #expect(missing.json.at("error.type") == .string("authentication_error"))
            let wrong = try await http("GET", "/v1/models", port: port, headers: ["Authorization": "Bearer nope"])
            #expect(wrong.status == 401)
            let tokenize = try await http("POST", "/tokenize", port: port, body: body(["prompt": "x"]))
            #expect(tokenize.status == 401)
            let right = try await http("POST", "/v1/chat/completions", port: port, body: chat, headers: ["Authorization": "Bearer sekret"])
            #expect(right.status == 200)
            #expect(try await http("GET", "/health", port: port).status == 200)
            #expect(try await http("GET", "/metrics", port: port).status == 200)
        }
    }

    @Test func chatTemplateThatRaisesIs400() async throws {
        let json = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixture.directory + "/tokenizer.json")))
        let config = TokenizerConfig(chatTemplate: "{% if messages[0]['role'] != 'system' %}{{ raise_exception('the first message must be a system message') }}{% endif %}x")
        let tokenizer = try Tokenizer(tokenizerJSON: json, config: config)
        let engine = ScriptedEngine { _ in .init(tokens: [1]) }
        let r = try await withServer(engine, tokenizer: tokenizer) { port in
            try await http("POST", "/v1/chat/completions", port: port, body: body(["messages": user("x")]))
        }
        #expect(r.status == 400)
        #expect(r.json.at("error.message")?.stringValue?.contains("the first message must be a system message") == true)
        #expect(engine.submitted.isEmpty)
    }

    @Test func engineRefusals() async throws {
        let engine = ScriptedEngine { _ in .init(tokens: [1]) }
        try await withServer(engine) { port in
            let request = body(["prompt": "x"])
            engine.reject(with: .queueFull(retryAfterSeconds: 3))
            let full = try await http("POST", "/v1/completions", port: port, body: request)
            #expect(full.status == 429)
            #expect(full.headers["retry-after"] == "3")
            #expect(full.json.at("error.type") == .string("rate_limit_error"))
            engine.reject(with: .draining)
            let draining = try await http("POST", "/v1/completions", port: port, body: request)
            #expect(draining.status == 503)
            engine.reject(with: .unavailable("loading weights"))
            let loading = try await http("POST", "/v1/completions", port: port, body: request)
            #expect(loading.status == 503)
            #expect(loading.json.at("error.message")?.stringValue?.contains("loading weights") == true)
        }
    }
}
