// Text in and out for `moerun generate`: prompts (ids, text, conversations) become requests on every rank;
// rank 0 streams the generated text, stops at stop strings, and prints each result.
import Foundation
import Runtime
import Text

enum TextRequests {
    /// Requests for `inputs`, with the tokenizer when one is needed or present. Runs on every rank with the
    /// same files and arguments, so every rank reaches the same verdict before anything loads.
    static func make(_ lines: [PromptLine], model: String, maxNewTokens: Int, sampling: SamplingParameters,
                     maxContext: Int) throws -> ([GenerationRequest], Tokenizer?, note: String?) {
        var tokenizer: Tokenizer?
        var note: String?
        if lines.contains(where: \.input.needsTokenizer) {
            tokenizer = try Tokenizer.load(directory: model)
        } else {
            // Id prompts work without tokenizer files; with them, the output is also shown as text.
            do { tokenizer = try Tokenizer.load(directory: model) } catch let e {
                if e.code != .missingTokenizer { note = "note: printing token ids only, the tokenizer did not load: \(e)" }
            }
        }
        var requests: [GenerationRequest] = []
        for line in lines {
            let input = line.input, s = line.settings
            let ids = try input.tokens(tokenizer)
            let budget = s.maxTokens ?? maxNewTokens
            guard budget >= 1 else { throw TextError(.badInput, "\(input.origin): max_tokens must be at least 1") }
            if input.needsTokenizer && ids.count + budget > maxContext {
                throw TextError(.badInput, "\(input.origin) is \(ids.count) tokens long; with --max-new-tokens \(budget) it needs \(ids.count + budget) positions, more than the model's context of \(maxContext) (max_position_embeddings)",
                                hint: "shorten the prompt or lower --max-new-tokens")
            }
            var request = GenerationRequest(prompt: ids, maxNewTokens: budget)
            if s != PromptSettings() {
                request.sampling = SamplingParameters(temperature: s.temperature ?? sampling.temperature, topK: s.topK ?? sampling.topK,
                                                      topP: s.topP ?? sampling.topP, seed: s.seed ?? sampling.seed)
                // A line's own seed samples from (seed, step) alone, as `moerun serve` does for a request.
                if s.seed != nil { request.samplingKey = 0 }
            }
            requests.append(request)
        }
        return (requests, tokenizer, note)
    }
}

/// Rank 0's view of the generated text. A lone request streams to stdout as tokens arrive; a batch prints
/// each request's text when generation ends. Stop strings end a request and are never printed.
final class TextOutput {
    private let tokenizer: Tokenizer?
    private let streaming: Bool
    private let showIDs: Bool
    private var decoders: [StreamingDecoder]
    private var stops: [StopMatcher]
    private var texts: [String]

    init(tokenizer: Tokenizer?, requests: Int, stops: [String], showIDs: Bool) {
        self.tokenizer = tokenizer
        self.streaming = tokenizer != nil && requests == 1
        self.showIDs = showIDs || tokenizer == nil
        decoders = tokenizer.map { t in Array(repeating: StreamingDecoder(tokenizer: t, skipSpecialTokens: true), count: requests) } ?? []
        self.stops = Array(repeating: StopMatcher(stops: stops), count: requests)
        texts = Array(repeating: "", count: requests)
    }

    /// A token of `request` arrived; returns true when a stop string has now matched.
    func received(request: Int, token: Int) -> Bool {
        guard tokenizer != nil else { return false }
        let shown = stops[request].push(decoders[request].push(token))
        show(request, shown)
        return stops[request].stopped
    }

    private func show(_ request: Int, _ text: String) {
        guard !text.isEmpty else { return }
        texts[request] += text
        if streaming { FileHandle.standardOutput.write(Data(text.utf8)) }
    }

    /// Flushes held text and prints what the stream did not.
    func finish(_ results: [GenerationResult], say: (String) -> Void) {
        for (i, r) in results.enumerated() {
            if tokenizer != nil { show(i, stops[i].push(decoders[i].finish()) + stops[i].finish()) }
            let reason = r.finishReason == "stop" && stops[i].matched != nil
                ? "stop: \(Self.quoted(stops[i].matched!))" : r.finishReason
            if streaming {
                FileHandle.standardOutput.write(Data("\n".utf8))
                say("[\(r.tokens.count) tokens, \(reason)]")
            } else if tokenizer != nil {
                say("--- prompt \(i) (\(r.prompt.count) tokens) -> \(r.tokens.count) tokens, \(reason):")
                say(texts[i])
            }
            if showIDs {
                say("prompt \(i): [\(r.prompt.map(String.init).joined(separator: ","))] -> \(r.tokens.map(String.init).joined(separator: ",")) (\(reason))")
            }
        }
    }

    /// One JSON object per request, in prompt order (text as streamed: special tokens and stop strings left out).
    func jsonLines(_ results: [GenerationResult]) -> String {
        results.enumerated().map { i, r in
            var o = JSONObject()
            o["index"] = .int(i)
            o["prompt_tokens"] = .int(r.prompt.count)
            o["tokens"] = .array(r.tokens.map { .int($0) })
            o["text"] = tokenizer == nil ? .null : .string(texts[i])
            o["finish_reason"] = .string(r.finishReason)
            return JSONValue.object(o).serialized() + "\n"
        }.joined()
    }

    private static func quoted(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
