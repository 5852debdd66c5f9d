// Turns a /v1/completions or /v1/chat/completions body into a token-level engine request plus what the front end
// itself applies (stop strings, streaming options). Every field OpenAI or vLLM defines that moerun cannot honour
// is refused by name; limits (context, vocabulary) are checked here, before the engine sees anything.
import Text

enum Endpoint: Sendable {
    case completion, chat
}

/// A validated request: what the engine runs and what the front end applies to its tokens.
struct GenerationPlan: Sendable {
    var endpoint: Endpoint
    var engineRequest: EngineRequest
    var stops: [String]
    var stream: Bool
    var includeUsage: Bool
    var skipSpecialTokens: Bool
    /// How the output splits into content, reasoning and tool calls (chat only).
    var splitting = OutputSplitting.none
}

struct RequestParser: Sendable {
    let configuration: ServerConfiguration
    let tokenizer: Tokenizer
    /// The checkpoint's tool-call format and think tokens, looked up once.
    let toolFormat: ToolCallFormat?
    let thinkTokens: ThinkTokens?

    init(configuration: ServerConfiguration, tokenizer: Tokenizer) {
        self.configuration = configuration
        self.tokenizer = tokenizer
        toolFormat = ToolCallFormat.detect(tokenizer)
        thinkTokens = ThinkTokens.detect(tokenizer)
    }

    var vocabularySize: Int { configuration.vocabularySize ?? tokenizer.vocabularySize }

    func completion(_ r: inout RequestReader) throws(APIError) -> GenerationPlan {
        try checkModel(&r)
        guard let prompt = r.value("prompt") else { throw .invalid("'prompt' is required", param: "prompt") }
        let addSpecial = try r.bool("add_special_tokens") ?? true
        if let echo = try r.bool("echo"), echo { throw .unsupported("echo", "the prompt is not echoed back") }
        if try r.int("logprobs") != nil { throw .unsupported("logprobs", "the engine does not return log-probabilities") }
        if let best = try r.int("best_of"), best != 1 { throw .unsupported("best_of", "only 1 is supported") }
        let common = try commonFields(&r)
        try r.rejectUnread()
        let ids = try promptTokens(prompt, addSpecialTokens: addSpecial)
        return try plan(.completion, prompt: ids, common, promptField: "prompt")
    }

    func chat(_ r: inout RequestReader) throws(APIError) -> GenerationPlan {
        try checkModel(&r)
        let conversation = try conversation(&r)
        let extra = try templateKwargs(&r)
        let addGenerationPrompt = try r.bool("add_generation_prompt") ?? true
        if let logprobs = try r.bool("logprobs"), logprobs {
            throw .unsupported("logprobs", "the engine does not return log-probabilities")
        }
        if let top = try r.int("top_logprobs"), top != 0 {
            throw .unsupported("top_logprobs", "the engine does not return log-probabilities")
        }
        var toolsAllowed = true
        switch r.value("tool_choice") {
        case nil, .string("auto")?: break
        case .string("none")?: toolsAllowed = false
        case .string(let other)?: throw .unsupported("tool_choice", "'\(other)' is not supported (use \"none\" or \"auto\")")
        case _?: throw .unsupported("tool_choice", "a named tool choice is not supported (use \"none\" or \"auto\")")
        }
        var common = try commonFields(&r)
        // max_completion_tokens replaced max_tokens in OpenAI's chat API; when both are given it wins, as in vLLM.
        if let m = try r.int("max_completion_tokens", in: 1...Int.max) {
            common.maxTokens = m
            common.maxTokensField = "max_completion_tokens"
        }
        try r.rejectUnread()
        let ids: [Int]
        do {
            ids = try conversation.encode(tokenizer: tokenizer, addGenerationPrompt: addGenerationPrompt, extra: extra)
        } catch {
            throw .invalid("the chat template failed: \(error.description)", param: "messages", code: "chat_template_error")
        }
        var plan = try plan(.chat, prompt: ids, common, promptField: "messages")
        // As vLLM: tool calls are parsed only when the client offered tools and allowed calling them; reasoning
        // whenever the vocabulary has the think tokens (a model without them never writes any).
        let offered = conversation.tools?.arrayValue.map { !$0.isEmpty } ?? false
        plan.splitting = OutputSplitting(tools: offered && toolsAllowed ? toolFormat : nil, think: thinkTokens,
                                         startsInReasoning: thinkTokens?.isOpen(after: ids) ?? false)
        return plan
    }

    /// `model` may be omitted (vLLM serves its one model then); a different name is 404 as in OpenAI's API.
    func checkModel(_ r: inout RequestReader) throws(APIError) {
        guard let model = try r.string("model") else { return }
        guard model == configuration.servedModelName else {
            throw APIError(status: .notFound, type: "not_found_error",
                           message: "the model '\(model)' does not exist; this server serves '\(configuration.servedModelName)'",
                           param: "model", code: "model_not_found")
        }
    }

    struct CommonFields {
        var maxTokens: Int?
        /// The field max_tokens came from, for the error that names it.
        var maxTokensField = "max_tokens"
        var temperature: Double?
        var topP: Double?
        var topK: Int
        var seed: UInt64
        var stops: [String]
        var stream: Bool
        var includeUsage: Bool
        var ignoreEOS: Bool
        var skipSpecialTokens: Bool
    }

    /// Fields both endpoints share.
    func commonFields(_ r: inout RequestReader) throws(APIError) -> CommonFields {
        let maxTokens = try r.int("max_tokens", in: 1...Int.max)
        let temperature = try r.double("temperature", in: 0...2)
        let topP = try r.double("top_p", in: 0...1, exclusiveLow: true)
        let topK = try r.int("top_k", in: -1...Int.max) ?? 0
        // vLLM takes any 64-bit integer; a request without one gets a fresh random seed, so two unseeded requests
        // differ as they do with OpenAI.
        let seed = try r.int("seed").map { UInt64(bitPattern: Int64($0)) } ?? UInt64.random(in: 0...UInt64.max)
        let stops = try stopStrings(&r)
        let stream = try r.bool("stream") ?? false
        var includeUsage = false
        if let options = try r.object("stream_options") {
            guard stream else { throw .invalid("'stream_options' is only allowed with \"stream\": true", param: "stream_options") }
            for (key, value) in options {
                switch (key, value) {
                case ("include_usage", .bool(let b)): includeUsage = b
                case ("include_usage", .null): break
                case ("include_usage", _): throw .wrongType("stream_options.include_usage", "a boolean")
                case ("continuous_usage_stats", .bool(false)), ("continuous_usage_stats", .null): break
                default: throw .unsupported("stream_options.\(key)")
                }
            }
        }
        if let n = try r.int("n"), n != 1 { throw .invalid("'n' must be 1 (one choice per request), got \(n)", param: "n", code: "unsupported_value") }
        // The penalties are accepted only at their neutral value, which is what the engine does anyway.
        for key in ["frequency_penalty", "presence_penalty"] {
            if let p = try r.double(key), p != 0 { throw .unsupported(key, "only 0 is supported") }
        }
        // `user` identifies the end user for the caller's abuse monitoring in OpenAI's API; it does not change the
        // output, so it is accepted and not used.
        r.ignore("user")
        let ignoreEOS = try r.bool("ignore_eos") ?? false
        let skipSpecial = try r.bool("skip_special_tokens") ?? true
        return CommonFields(maxTokens: maxTokens, temperature: temperature, topP: topP, topK: topK == -1 ? 0 : topK,
                            seed: seed, stops: stops, stream: stream, includeUsage: includeUsage, ignoreEOS: ignoreEOS,
                            skipSpecialTokens: skipSpecial)
    }

    func stopStrings(_ r: inout RequestReader) throws(APIError) -> [String] {
        switch r.value("stop") {
        case nil: return []
        case .string(let s)?: return [s]
        case .array(let list)?:
            var out: [String] = []
            for (i, e) in list.enumerated() {
                guard case .string(let s) = e else { throw .wrongType("stop[\(i)]", "a string") }
                out.append(s)
            }
            return out
        case _?: throw .wrongType("stop", "a string or an array of strings")
        }
    }

    /// Prompt and sampling defaults become the engine request; context limits are enforced, never clamped.
    func plan(_ endpoint: Endpoint, prompt: [Int], _ c: CommonFields, promptField: String) throws(APIError) -> GenerationPlan {
        let limit = configuration.maxModelLength
        guard !prompt.isEmpty else { throw .invalid("the prompt is empty (0 tokens)", param: promptField) }
        guard prompt.count < limit else {
            throw .invalid("this model's maximum context length is \(limit) tokens, and the prompt has \(prompt.count): "
                           + "no room to generate; shorten the \(promptField)", param: promptField, code: "context_length_exceeded")
        }
        let maxTokens: Int
        if let asked = c.maxTokens {
            guard prompt.count + asked <= limit else {
                throw .invalid("this model's maximum context length is \(limit) tokens; you requested \(prompt.count + asked) "
                               + "(\(prompt.count) in the \(promptField), \(asked) for the completion); reduce the \(promptField) or \(c.maxTokensField)",
                               param: c.maxTokensField,
                               code: "context_length_exceeded")
            }
            maxTokens = asked
        } else {
            maxTokens = min(limit - prompt.count, configuration.defaultMaxTokens)
        }
        // Omitted sampling fields take the checkpoint's generation_config.json values, else OpenAI's (1.0, 1.0), as vLLM.
        let temperature = c.temperature ?? tokenizer.config.defaultTemperature ?? 1
        let topP = c.topP ?? tokenizer.config.defaultTopP ?? 1
        let request = EngineRequest(promptTokens: prompt, maxTokens: maxTokens, temperature: Float(temperature),
                                    topP: Float(topP), topK: c.topK, seed: c.seed,
                                    stopTokenIDs: c.ignoreEOS ? [] : Set(tokenizer.config.eosTokenIDs))
        return GenerationPlan(endpoint: endpoint, engineRequest: request, stops: c.stops, stream: c.stream,
                              includeUsage: c.includeUsage, skipSpecialTokens: c.skipSpecialTokens)
    }

    /// A completion prompt: text, token ids, or a one-element array of either (OpenAI's batch form, one prompt).
    func promptTokens(_ prompt: JSONValue, addSpecialTokens: Bool) throws(APIError) -> [Int] {
        switch prompt {
        case .string(let s):
            return tokenizer.encode(s, addSpecialTokens: addSpecialTokens)
        case .array(let list):
            if list.isEmpty { throw .invalid("'prompt' is empty", param: "prompt") }
            if case .string(let s) = list[0] {
                guard list.count == 1 else { throw Self.batched(list.count) }
                return tokenizer.encode(s, addSpecialTokens: addSpecialTokens)
            }
            if case .array(let inner) = list[0] {
                guard list.count == 1 else { throw Self.batched(list.count) }
                return try tokenIDs(inner, field: "prompt[0]")
            }
            return try tokenIDs(list, field: "prompt")
        default:
            throw .wrongType("prompt", "a string, an array of token ids, or a one-element array of either")
        }
    }

    static func batched(_ n: Int) -> APIError {
        .invalid("'prompt' holds \(n) prompts; this server takes one prompt per request", param: "prompt", code: "unsupported_value")
    }

    /// Ids as integers inside the vocabulary (an id past the embedding would read outside the weights).
    func tokenIDs(_ list: [JSONValue], field: String) throws(APIError) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(list.count)
        for (i, v) in list.enumerated() {
            guard let id = RequestReader.integer(v) else { throw .wrongType("\(field)[\(i)]", "an integer token id") }
            guard id >= 0 && id < vocabularySize else {
                throw .invalid("\(field)[\(i)] = \(id) is not a token id (the vocabulary has \(vocabularySize))", param: field,
                               code: "invalid_token_id")
            }
            ids.append(id)
        }
        return ids
    }
}
