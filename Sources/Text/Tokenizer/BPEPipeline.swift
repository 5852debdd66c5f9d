// tokenizer.json encoding: added tokens, normalizer, pre-tokenizer, BPE model, post-processor (tokenizer/mod.rs order).

/// What encode(addSpecialTokens: true) adds around the ids.
enum PostProcessing: Sendable, Equatable {
    case none
    /// TemplateProcessing's `single` template: `nil` marks `$A`, a list the ids of a special token.
    case template([[Int]?])
    /// Llama-class tokenizers (transformers' LlamaTokenizerFast.update_post_processor) replace tokenizer.json's
    /// post-processor by BOS/EOS from add_bos_token / add_eos_token.
    case bosEos(bos: Int?, eos: Int?)
}

/// The tokenizer.json encode path. Immutable.
final class BPEPipeline: Sendable {
    let addedTokens: [AddedToken]
    let nonNormalized: AddedTokenMatcher
    let normalizedMatcher: AddedTokenMatcher
    let normalizer: NormalizerSpec?
    let preTokenizer: PreTokenizerRunner
    let merger: BPEMerger
    /// ByteLevel pre-tokenizer present: BPE symbols start as bytes. Otherwise they start as characters.
    let byteLevel: Bool
    let charSymbol: [UInt32: Int32]
    let unkID: Int?
    let fuseUnk: Bool
    let post: PostProcessing
    let cache: WordCache

    init(addedTokens: [AddedToken], normalizer: NormalizerSpec?, steps: [PreTokenizerStep], merger: BPEMerger,
         byteLevel: Bool, charSymbol: [UInt32: Int32], unkID: Int?, fuseUnk: Bool, post: PostProcessing) {
        self.addedTokens = addedTokens
        nonNormalized = AddedTokenMatcher(addedTokens.filter { !$0.normalized })
        normalizedMatcher = AddedTokenMatcher(addedTokens.filter { $0.normalized })
        self.normalizer = normalizer.flatMap { $0.isIdentity ? nil : $0 }
        preTokenizer = PreTokenizerRunner(steps: steps)
        self.merger = merger
        self.byteLevel = byteLevel
        self.charSymbol = charSymbol
        self.unkID = unkID
        self.fuseUnk = fuseUnk
        self.post = post
        cache = WordCache()
    }

    func postProcess(_ raw: [Int]) -> [Int] {
        switch post {
        case .none: return raw
        case .template(let pieces):
            var out: [Int] = []
            out.reserveCapacity(raw.count + 4)
            for p in pieces { if let ids = p { out.append(contentsOf: ids) } else { out.append(contentsOf: raw) } }
            return out
        case .bosEos(let bos, let eos):
            return (bos.map { [$0] } ?? []) + raw + (eos.map { [$0] } ?? [])
        }
    }

    /// Ids without post-processing (tokenizers' encode(text, add_special_tokens=False)).
    /// `matchAdded: false` treats added-token strings as ordinary text.
    func encode(_ text: String, matchAdded: Bool = true) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(text.utf8.count / 3 + 4)
        var bytes = Array(text.utf8)
        if !matchAdded {
            encodeNormalizing(bytes, matchAdded: false, into: &out)
            return out
        }
        bytes.withUnsafeBufferPointer { b in
            // Pass 1: tokens matched on the raw text; pass 2: the others, on normalized text (added_vocabulary.rs).
            nonNormalized.split(b, 0, b.count, onText: { lo, hi in
                encodeNormalizing(Array(b[lo..<hi]), into: &out)
            }, onToken: { out.append($0) })
        }
        bytes.removeAll()
        return out
    }

    private func encodeNormalizing(_ piece: [UInt8], matchAdded: Bool = true, into out: inout [Int]) {
        var text = piece
        if let normalizer { text = Array(normalizer.apply(String(decoding: piece, as: UTF8.self)).utf8) }
        text.withUnsafeBufferPointer { b in
            (matchAdded ? normalizedMatcher : AddedTokenMatcher([])).split(b, 0, b.count, onText: { lo, hi in
                let segment = ScalarText(bytes: lo == 0 && hi == b.count ? text : Array(b[lo..<hi]))
                preTokenizer.run(segment) { t, a, z in encodePiece(t, a, z, into: &out) }
            }, onToken: { out.append($0) })
        }
    }

    private func encodePiece(_ t: borrowing ScalarText, _ a: Int, _ z: Int, into out: inout [Int]) {
        let lo = Int(t.offsets[a]), hi = Int(t.offsets[z])
        t.bytes.withUnsafeBufferPointer { b in
            let piece = UnsafeBufferPointer(rebasing: b[lo..<hi])
            if byteLevel {
                if piece.count <= 2 || !cache.lookup(piece, into: &out) {
                    let start = out.count
                    merger.encodeBytes(piece, into: &out)
                    if piece.count > 2 { cache.insert(piece, out[start...]) }
                }
            } else {
                encodeChars(t, a, z, piece, into: &out)
            }
        }
    }

    /// Character-level BPE (no ByteLevel pre-tokenizer): symbols are the piece's characters; unknown ones
    /// become unk_token (fused when fuse_unk) or vanish without one, as models/bpe/model.rs merge_word.
    private func encodeChars(_ t: borrowing ScalarText, _ a: Int, _ z: Int, _ piece: UnsafeBufferPointer<UInt8>,
                             into out: inout [Int]) {
        if let whole = merger.whole {
            let id = whole.lookup(piece)
            if id >= 0 { out.append(id); return }
        }
        var sym: [UInt32] = []
        var lastWasUnk = false
        for k in a..<z {
            if let id = charSymbol[t.scalars[k]] {
                sym.append(UInt32(id))
                lastWasUnk = false
            } else if let unkID {
                if !(fuseUnk && lastWasUnk) { sym.append(UInt32(unkID)) }
                lastWasUnk = true
            }
        }
        if sym.isEmpty { return }
        sym.withUnsafeMutableBufferPointer { merger.mergeSymbols($0.baseAddress!, $0.count, into: &out) }
    }
}
