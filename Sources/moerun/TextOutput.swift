// Text in and out for `moerun generate`: prompts (ids, text, conversations) become requests on every rank;
// rank 0 streams the generated text, stops at stop strings, and prints each result.
import Foundation
import Runtime
import Text

enum TextRequests {
    /// Requests for `inputs`, with the tokenizer when one is needed or present. Runs on every rank with the
    /// same files and arguments, so every rank reaches the same verdict before anything loads.
    static func make(_ inputs: [PromptInput], model: String, maxNewTokens: Int,
                     maxContext: Int) throws -> ([GenerationRequest], Tokenizer?, note: String?) {
        var tokenizer: Tokenizer?
        var note: String?
        if inputs.contains(where: \.needsTokenizer) {
            tokenizer = try Tokenizer.load(directory: model)
        } else {
            // Id prompts work without tokenizer files; with them, the output is also shown as text.
            do { tokenizer = try Tokenizer.load(directory: model) } catch let e {
                if e.code != .missingTokenizer { note = "note: printing token ids only, the tokenizer did not load: \(e)" }
            }
        }
        var requests: [GenerationRequest] = []
        for input in inputs {
            let ids = try input.tokens(tokenizer)
            if input.needsTokenizer && ids.count + maxNewTokens > maxContext {
                throw TextError(.badInput, "\(input.origin) is \(ids.count) tokens long; with --max-new-tokens \(maxNewTokens) it needs \(ids.count + maxNewTokens) positions, more than the model's context of \(maxContext) (max_position_embeddings)",
                                hint: "shorten the prompt or lower --max-new-tokens")
            }
            requests.append(GenerationRequest(prompt: ids, maxNewTokens: maxNewTokens))
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

    private static func quoted(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
