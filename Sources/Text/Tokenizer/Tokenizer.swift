// The public tokenizer: encode/decode exactly as the reference libraries (tokenizers, tiktoken + Kimi's wrapper).
import Foundation

/// A loaded tokenizer. Immutable after load, so one instance serves every thread.
public final class Tokenizer: Sendable {
    public let config: TokenizerConfig
    let engine: Engine
    /// id -> token string (nil for holes in the id space).
    let idToToken: [String?]
    let tokenToID: [String: Int]
    /// Bytes each id contributes to decode: tokenArena[tokenStart[id]..<tokenStart[id+1]].
    let tokenArena: [UInt8]
    let tokenStart: [Int32]
    /// Ids dropped by decode(skipSpecialTokens: true).
    let skippable: [Bool]
    /// Without a decoder, tokenizers joins token strings with spaces (no byte mapping).
    let joinWithSpaces: Bool

    public var vocabularySize: Int { idToToken.count }

    enum Engine: Sendable {
        case bpe(BPEPipeline)
        case tiktoken(TiktokenPipeline)
    }

    /// `overrides` are added/special tokens whose text maps to their id even when the model vocabulary has it too.
    init(config: TokenizerConfig, engine: Engine, idToToken: [String?], overrides: [(String, Int)],
         tokenBytes: [[UInt8]?], skippable: [Bool], joinWithSpaces: Bool) {
        var cfg = config
        var map: [String: Int] = [:]
        map.reserveCapacity(idToToken.count)
        for (id, t) in idToToken.enumerated() { if let t, map[t] == nil { map[t] = id } }
        // Added tokens win over model tokens with the same text, as token_to_id checks the added vocabulary first.
        for (t, id) in overrides { map[t] = id }
        tokenToID = map
        cfg.bosTokenID = cfg.bosToken.flatMap { map[$0] }
        cfg.eosTokenID = cfg.eosToken.flatMap { map[$0] }
        if cfg.eosTokenIDs.isEmpty, let e = cfg.eosTokenID { cfg.eosTokenIDs = [e] }
        self.config = cfg
        self.engine = engine
        self.idToToken = idToToken
        var arena: [UInt8] = [], starts: [Int32] = [0]
        for b in tokenBytes { arena.append(contentsOf: b ?? []); starts.append(Int32(arena.count)) }
        tokenArena = arena
        tokenStart = starts
        self.skippable = skippable
        self.joinWithSpaces = joinWithSpaces
    }

    /// Builds a tokenizer from tokenizer.json bytes (tests and synthetic checkpoints).
    public convenience init(tokenizerJSON: [UInt8], config: TokenizerConfig) throws(TextError) {
        try self.init(tokenizerJSON: tokenizerJSON, file: "tokenizer.json", config: config)
    }

    public convenience init(tokenizerJSON: Data, config: TokenizerConfig) throws(TextError) {
        try self.init(tokenizerJSON: [UInt8](tokenizerJSON), config: config)
    }

    /// Token ids of `text`. With `addSpecialTokens`, what the checkpoint's tokenizer class adds (e.g. BOS).
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        switch engine {
        case .bpe(let p):
            let raw = p.encode(text)
            return addSpecialTokens ? p.postProcess(raw) : raw
        case .tiktoken(let t):
            return t.encode(text)
        }
    }

    /// The text of `ids`: token bytes concatenated, invalid UTF-8 replaced by U+FFFD (like the references).
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        if joinWithSpaces {
            let parts = ids.compactMap { id -> String? in
                guard id >= 0 && id < idToToken.count, !(skipSpecialTokens && skippable[id]) else { return nil }
                return idToToken[id]
            }
            return parts.joined(separator: " ")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        tokenArena.withUnsafeBufferPointer { a in
            for id in ids where id >= 0 && id < idToToken.count && idToToken[id] != nil {
                if skipSpecialTokens && skippable[id] { continue }
                bytes.append(contentsOf: a[Int(tokenStart[id])..<Int(tokenStart[id + 1])])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Bytes this token contributes to decode (empty for unknown ids).
    public func tokenBytes(_ id: Int) -> [UInt8] {
        guard id >= 0 && id < idToToken.count else { return [] }
        return Array(tokenArena[Int(tokenStart[id])..<Int(tokenStart[id + 1])])
    }

    /// True for the ids decode(skipSpecialTokens: true) drops (the streaming decoder relies on the two agreeing).
    public func isSpecial(_ id: Int) -> Bool { id >= 0 && id < skippable.count && skippable[id] }

    public func id(forToken token: String) -> Int? { tokenToID[token] }

    public func token(forID id: Int) -> String? { id >= 0 && id < idToToken.count ? idToToken[id] : nil }
}
