// Tokenizer facts the chat-template layer needs: template variables, added-token strings, plain-text encode.

extension TokenizerConfig {
    /// Template variables for chat templates: bos_token, eos_token, pad_token where the config names them.
    public var templateTokens: [String: String] {
        var out: [String: String] = [:]
        if let bosToken { out["bos_token"] = bosToken }
        if let eosToken { out["eos_token"] = eosToken }
        if let padToken { out["pad_token"] = padToken }
        return out
    }
}

extension Tokenizer {
    /// Every string encode() turns into a single added/special token instead of encoding it as text.
    public var specialTokenStrings: [String] {
        switch engine {
        case .bpe(let p): return p.addedTokens.map(\.content)
        case .tiktoken(let t): return t.specials.tokens.map(\.content)
        }
    }

    /// Ids of `text` with added/special-token strings encoded as ordinary text and nothing added around them
    /// (tiktoken's `disallowed_special=()`; for tokenizer.json, no added-token matching at all).
    public func encodePlain(_ text: String) -> [Int] {
        switch engine {
        case .bpe(let p): return p.encode(text, matchAdded: false)
        case .tiktoken(let t): return t.encode(text, allowSpecial: false)
        }
    }
}
