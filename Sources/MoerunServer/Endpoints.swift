// The endpoints around generation: /v1/models, /health, /metrics, and vLLM's /tokenize and /detokenize (same
// request and response keys, which benchmark clients rely on).
import Hummingbird
import Text

extension ServerState {
    func models() -> Response {
        let c = configuration
        let card = JSONValue.object(JSONObject([
            ("id", .string(c.servedModelName)), ("object", .string("model")), ("created", .int(started)),
            ("owned_by", .string("moerun")), ("root", .string(c.modelRoot)), ("parent", .null),
            ("max_model_len", .int(c.maxModelLength)), ("permission", .array([])),
        ]))
        return jsonResponse(.object(JSONObject([("object", .string("list")), ("data", .array([card]))])))
    }

    /// 200 only while the engine loop is making progress; load balancers take 503 as "not now".
    func health() -> Response {
        let (status, reason): (String, String?)
        switch engine.health {
        case .ready: (status, reason) = ("ready", nil)
        case .loading: (status, reason) = ("loading", "the engine is loading the model")
        case .stuck(let s): (status, reason) = ("stuck", "the engine loop has not progressed for \(Int(s)) s")
        case .failed(let why): (status, reason) = ("failed", why)
        }
        var o = JSONObject([("status", .string(status))])
        if let reason { o["reason"] = .string(reason) }
        return jsonResponse(.object(o), status: reason == nil ? .ok : .serviceUnavailable)
    }

    func metricsResponse() -> Response {
        let text = metrics.scrape(engine.counters)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// `{"prompt": text}` (add_special_tokens defaults to true) or `{"messages": [...]}` through the chat template
    /// (add_generation_prompt defaults to true); answers `{"count", "max_model_len", "tokens"}` (+ `token_strs`).
    func tokenize(_ request: Request) async throws -> Response {
        var r = try RequestReader(try await readBody(request))
        try parser.checkModel(&r)
        let returnStrings = try r.bool("return_token_strs") ?? false
        let ids: [Int]
        if r.object["messages"] != nil {
            let conversation = try parser.conversation(&r)
            let extra = try parser.templateKwargs(&r)
            let addGenerationPrompt = try r.bool("add_generation_prompt") ?? true
            if try r.bool("add_special_tokens") == true {
                throw APIError.unsupported("add_special_tokens", "with messages the chat template writes the special tokens")
            }
            if try r.bool("continue_final_message") == true { throw APIError.unsupported("continue_final_message") }
            try r.rejectUnread()
            do {
                ids = try conversation.encode(tokenizer: tokenizer, addGenerationPrompt: addGenerationPrompt, extra: extra)
            } catch {
                throw APIError.invalid("the chat template failed: \(error.description)", param: "messages", code: "chat_template_error")
            }
        } else {
            guard let prompt = try r.string("prompt") else {
                throw APIError.invalid("'prompt' (a string) or 'messages' is required", param: "prompt")
            }
            let addSpecial = try r.bool("add_special_tokens") ?? true
            try r.rejectUnread()
            ids = tokenizer.encode(prompt, addSpecialTokens: addSpecial)
        }
        var o = JSONObject([("count", .int(ids.count)), ("max_model_len", .int(configuration.maxModelLength)),
                            ("tokens", .array(ids.map(JSONValue.int)))])
        if returnStrings { o["token_strs"] = .array(ids.map { .string(tokenizer.token(forID: $0) ?? "") }) }
        return jsonResponse(.object(o))
    }

    /// `{"tokens": [...]}` -> `{"prompt": text}`; special tokens are kept, as vLLM's detokenize does.
    func detokenize(_ request: Request) async throws -> Response {
        var r = try RequestReader(try await readBody(request))
        try parser.checkModel(&r)
        guard let tokens = r.value("tokens") else { throw APIError.invalid("'tokens' is required", param: "tokens") }
        guard case .array(let list) = tokens else { throw APIError.wrongType("tokens", "an array of token ids") }
        try r.rejectUnread()
        let ids = try parser.tokenIDs(list, field: "tokens")
        return jsonResponse(.object(JSONObject([("prompt", .string(tokenizer.decode(ids)))])))
    }
}
