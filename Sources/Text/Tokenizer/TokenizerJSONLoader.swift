// Builds the tokenizer.json pipeline; every malformed field names its JSON path, every unknown component its type.

extension Tokenizer {
    static let supportedPreTokenizers = "Split, ByteLevel, Digits, Sequence"
    static let supportedPostProcessors = "TemplateProcessing, ByteLevel, Sequence"
    static let supportedDecoders = "ByteLevel, Sequence of ByteLevel"
    static let llamaClasses: Set<String> = ["LlamaTokenizerFast", "LlamaTokenizer", "CodeLlamaTokenizerFast",
                                             "GemmaTokenizerFast"]

    convenience init(tokenizerJSON bytes: [UInt8], file: String, config: TokenizerConfig) throws(TextError) {
        if let bad = firstInvalidUTF8(bytes) {
            throw TextError(.unreadable, "\(file): not valid UTF-8 at byte offset \(bad)")
        }
        let root = try TJSON.parse(bytes, file: file)
        let r = JSONReader(file: file)
        guard root.object != nil else { throw r.bad("", "must be an object") }

        // Model.
        let model = try r.need(root, "model", "")
        let mtype = model["type"]?.string ?? "BPE"
        guard mtype == "BPE" else {
            throw TextError(.unsupported, "\(file): model type '\(mtype)' is not supported (supported: BPE)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key], !v.isNull {
                throw TextError(.unsupported, "\(file): model.\(key) is not supported (it must be null)")
            }
        }
        if case .number(let d)? = model["dropout"], d != 0 {
            throw TextError(.unsupported, "\(file): model.dropout \(d) is not supported (encode must be deterministic)")
        }
        guard let vocabPairs = try r.need(model, "vocab", "model").object else { throw r.bad("model.vocab", "must be an object") }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(vocabPairs.count)
        var maxID = -1
        for (k, v) in vocabPairs {
            guard let id = v.int, id >= 0, id < 1 << 30 else { throw r.bad("model.vocab[\(quote(k))]", "must be a non-negative integer id") }
            vocab[k] = id
            maxID = max(maxID, id)
        }
        let unkToken = try r.optString(model, "unk_token", "model")
        let fuseUnk = try r.optBool(model, "fuse_unk", "model") ?? false
        let ignoreMerges = try r.optBool(model, "ignore_merges", "model") ?? false
        let byteFallback = try r.optBool(model, "byte_fallback", "model") ?? false

        // Normalizer and pre-tokenizer.
        let normalizer = try Self.readNormalizer(root["normalizer"], "normalizer", r)
        var steps: [PreTokenizerStep] = []
        if let pt = root["pre_tokenizer"], !pt.isNull { try Self.readPreTokenizer(pt, "pre_tokenizer", r, into: &steps) }
        if let i = steps.firstIndex(where: { if case .byteLevel = $0 { return true } else { return false } }), i != steps.count - 1 {
            throw TextError(.unsupported, "\(file): pre_tokenizer ByteLevel must be the last step (later steps would see mapped bytes)")
        }
        let byteLevel = steps.last.map { if case .byteLevel = $0 { return true } else { return false } } ?? false
        if byteFallback && !byteLevel {
            throw TextError(.unsupported, "\(file): model.byte_fallback is only supported with a ByteLevel pre-tokenizer")
        }

        // Merges, ranked by order.
        guard let merges = try r.need(model, "merges", "model").array else { throw r.bad("model.merges", "must be an array") }
        var pairEntries: [(UInt32, UInt32, UInt32, UInt32)] = []
        pairEntries.reserveCapacity(merges.count)
        for (i, m) in merges.enumerated() {
            let a: String, b: String
            switch m {
            case .string(let s):
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw r.bad("model.merges[\(i)]", "must be two tokens separated by one space") }
                a = String(parts[0]); b = String(parts[1])
            case .array(let p):
                guard p.count == 2, let x = p[0].string, let y = p[1].string else {
                    throw r.bad("model.merges[\(i)]", "must be a pair of strings")
                }
                a = x; b = y
            default: throw r.bad("model.merges[\(i)]", "must be a string \"a b\" or a pair [a, b]")
            }
            guard let ia = vocab[a], let ib = vocab[b] else {
                throw r.bad("model.merges[\(i)]", "token '\(vocab[a] == nil ? a : b)' is not in model.vocab")
            }
            guard let im = vocab[a + b] else { throw r.bad("model.merges[\(i)]", "merged token '\(a + b)' is not in model.vocab") }
            pairEntries.append((UInt32(ia), UInt32(ib), UInt32(i), UInt32(im)))
        }

        var byteSymbol = [Int32](repeating: -1, count: 256)
        var charSymbol: [UInt32: Int32] = [:]
        var wholeEntries: [([UInt8], Int)] = []
        if byteLevel {
            for b in 0..<256 {
                if let id = vocab[String(Character(Unicode.Scalar(ByteLevelMap.byteToChar[b])!))] { byteSymbol[b] = Int32(id) }
            }
            if ignoreMerges { for (k, id) in vocab { if let raw = ByteLevelMap.decode(k) { wholeEntries.append((raw, id)) } } }
        } else {
            for (k, id) in vocab where k.unicodeScalars.count == 1 { charSymbol[k.unicodeScalars.first!.value] = Int32(id) }
            if ignoreMerges { for (k, id) in vocab { wholeEntries.append((Array(k.utf8), id)) } }
        }
        var unkID: Int? = nil
        if let unkToken {
            guard let u = vocab[unkToken] else { throw r.bad("model.unk_token", "'\(unkToken)' is not in model.vocab") }
            unkID = u
        }
        let merger = BPEMerger(pairs: PairTable(pairEntries), whole: ignoreMerges ? BytesTable(wholeEntries) : nil,
                               byteSymbol: byteSymbol)

        // Added tokens, registered as tokenizer/serialization.rs + AddedVocabulary::add_tokens do.
        var added = try Self.readAddedTokens(root["added_tokens"], r)
        var addedMap: [String: Int] = [:]
        var addedByID: [Int: AddedToken] = [:]
        var specialSet = Set<String>()
        var nextID = vocab.count
        for t in added where !t.content.isEmpty {
            if let id = addedMap[t.content], var same = addedByID[id] {
                same.id = t.id
                if same == t { continue }
            }
            let newID: Int
            if let id = addedMap[t.content] ?? vocab[t.content] { newID = id } else { newID = nextID; nextID += 1 }
            addedMap[t.content] = newID
            if t.special { specialSet.insert(t.content) }
            var tt = t
            tt.id = newID
            addedByID[newID] = tt
        }
        added = addedByID.keys.sorted().map { addedByID[$0]! }
        maxID = max(maxID, added.map(\.id).max() ?? -1)
        // Normalized tokens are matched by their normalized text.
        let matchable = added.map { t -> AddedToken in
            var m = t
            if t.normalized, let normalizer { m.content = normalizer.apply(t.content) }
            return m
        }

        // Post-processor and decoder.
        var template: [[Int]?]? = nil
        if let pp = root["post_processor"], !pp.isNull { try Self.readPostProcessor(pp, "post_processor", r, into: &template) }
        let post: PostProcessing
        if let cls = config.tokenizerClass, Self.llamaClasses.contains(cls) {
            post = .bosEos(bos: (config.addBosToken ?? true) ? config.bosToken.flatMap { addedMap[$0] ?? vocab[$0] } : nil,
                           eos: (config.addEosToken ?? false) ? config.eosToken.flatMap { addedMap[$0] ?? vocab[$0] } : nil)
        } else {
            post = template.map { .template($0) } ?? .none
        }
        let byteDecoder = try Self.readDecoder(root["decoder"], "decoder", r)

        var idToToken = [String?](repeating: nil, count: maxID + 1)
        for (k, id) in vocab { idToToken[id] = k }
        for t in added { idToToken[t.id] = t.content }
        let tokenBytes = idToToken.map { t in t.map { byteDecoder ? ByteLevelMap.decoderBytes($0) : Array($0.utf8) } }
        let specialFlags = idToToken.map { t in t.map { specialSet.contains($0) } ?? false }
        var cfg = config
        cfg.kind = "tokenizer.json BPE"
        let pipeline = BPEPipeline(addedTokens: matchable, normalizer: normalizer, steps: steps, merger: merger,
                                   byteLevel: byteLevel, charSymbol: charSymbol, unkID: unkID, fuseUnk: fuseUnk, post: post)
        self.init(config: cfg, engine: .bpe(pipeline), idToToken: idToToken, overrides: added.map { ($0.content, $0.id) },
                  tokenBytes: tokenBytes, skippable: specialFlags, joinWithSpaces: !byteDecoder)
    }

    private static func readAddedTokens(_ v: TJSON?, _ r: JSONReader) throws(TextError) -> [AddedToken] {
        guard let v, !v.isNull else { return [] }
        guard let list = v.array else { throw r.bad("added_tokens", "must be an array") }
        var out: [AddedToken] = []
        for (i, e) in list.enumerated() {
            let p = "added_tokens[\(i)]"
            guard e.object != nil else { throw r.bad(p, "must be an object") }
            guard let content = e["content"]?.string else { throw r.bad("\(p).content", "must be a string") }
            guard let id = e["id"]?.int else { throw r.bad("\(p).id", "must be an integer") }
            out.append(AddedToken(
                content: content, id: id, special: try r.optBool(e, "special", p) ?? false,
                singleWord: try r.optBool(e, "single_word", p) ?? false, lstrip: try r.optBool(e, "lstrip", p) ?? false,
                rstrip: try r.optBool(e, "rstrip", p) ?? false, normalized: try r.optBool(e, "normalized", p) ?? true))
        }
        return out
    }

    static func readNormalizer(_ v: TJSON?, _ path: String, _ r: JSONReader) throws(TextError) -> NormalizerSpec? {
        guard let v, !v.isNull else { return nil }
        let type = try r.type(v, path)
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Sequence":
            guard let list = try r.need(v, "normalizers", path).array else { throw r.bad("\(path).normalizers", "must be an array") }
            var out: [NormalizerSpec] = []
            for (i, e) in list.enumerated() {
                if let n = try readNormalizer(e, "\(path).normalizers[\(i)]", r) { out.append(n) }
            }
            return .sequence(out)
        default:
            throw TextError(.unsupported, "\(r.file): \(path) type '\(type)' is not supported (supported: \(NormalizerSpec.supportedTypes))")
        }
    }

    static func readPreTokenizer(_ v: TJSON, _ path: String, _ r: JSONReader,
                                 into steps: inout [PreTokenizerStep]) throws(TextError) {
        let type = try r.type(v, path)
        switch type {
        case "Sequence":
            guard let list = try r.need(v, "pretokenizers", path).array else { throw r.bad("\(path).pretokenizers", "must be an array") }
            for (i, e) in list.enumerated() { try readPreTokenizer(e, "\(path).pretokenizers[\(i)]", r, into: &steps) }
        case "Split":
            let pv = try r.need(v, "pattern", path)
            let pattern: KnownPattern
            if let s = pv["String"]?.string {
                guard !s.isEmpty else { throw r.bad("\(path).pattern", "an empty String pattern matches nothing useful") }
                pattern = .literal(s.unicodeScalars.map(\.value))
            } else if let re = pv["Regex"]?.string {
                guard let k = KnownPattern.recognise(regex: re) else {
                    throw TextError(.unsupported, "\(r.file): \(path).pattern regex \(quote(re)) is not supported: moerun "
                        + "matches known patterns (DeepSeek-V3's three Splits, GPT-2's, Kimi K2's) and literals with exact scanners")
                }
                pattern = k
            } else {
                throw r.bad("\(path).pattern", "must be {\"String\": ...} or {\"Regex\": ...}")
            }
            let bs = try r.needString(v, "behavior", path)
            guard let behavior = SplitBehavior(rawValue: bs) else {
                throw r.bad("\(path).behavior", "'\(bs)' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous")
            }
            steps.append(.split(pattern, behavior, invert: try r.optBool(v, "invert", path) ?? false))
        case "Digits":
            let individual = try r.optBool(v, "individual_digits", path) ?? false
            steps.append(.split(.numericChar, individual ? .isolated : .contiguous, invert: false))
        case "ByteLevel":
            steps.append(.byteLevel(addPrefixSpace: try r.optBool(v, "add_prefix_space", path) ?? true,
                                    useRegex: try r.optBool(v, "use_regex", path) ?? true))
        default:
            throw TextError(.unsupported, "\(r.file): \(path) type '\(type)' is not supported (supported: \(supportedPreTokenizers))")
        }
    }

    static func readPostProcessor(_ v: TJSON, _ path: String, _ r: JSONReader, into template: inout [[Int]?]?) throws(TextError) {
        let type = try r.type(v, path)
        switch type {
        case "ByteLevel": return  // offsets only
        case "Sequence":
            guard let list = try r.need(v, "processors", path).array else { throw r.bad("\(path).processors", "must be an array") }
            for (i, e) in list.enumerated() { try readPostProcessor(e, "\(path).processors[\(i)]", r, into: &template) }
        case "TemplateProcessing":
            guard template == nil else {
                throw TextError(.unsupported, "\(r.file): \(path): more than one TemplateProcessing is not supported")
            }
            var specials: [String: [Int]] = [:]
            if let st = v["special_tokens"], let pairs = st.object {
                for (name, e) in pairs {
                    guard let ids = e["ids"]?.array?.compactMap(\.int) else {
                        throw r.bad("\(path).special_tokens[\(quote(name))].ids", "must be a list of integers")
                    }
                    specials[name] = ids
                }
            }
            var pieces: [[Int]?] = []
            let single = try r.need(v, "single", path)
            if let list = single.array {
                for (i, p) in list.enumerated() {
                    if p["Sequence"] != nil {
                        pieces.append(nil)
                    } else if let name = p["SpecialToken"]?["id"]?.string {
                        guard let ids = specials[name] else {
                            throw r.bad("\(path).single[\(i)]", "special token '\(name)' is not in \(path).special_tokens")
                        }
                        pieces.append(ids)
                    } else {
                        throw r.bad("\(path).single[\(i)]", "must be {\"Sequence\": ...} or {\"SpecialToken\": ...}")
                    }
                }
            } else if let s = single.string {
                // The string form: "[CLS]:0 $A:0 [SEP]:0".
                for part in s.split(separator: " ") {
                    let name = String(part.split(separator: ":", maxSplits: 1).first ?? part)
                    if name.hasPrefix("$") { pieces.append(nil); continue }
                    guard let ids = specials[name] else { throw r.bad("\(path).single", "special token '\(name)' is not in special_tokens") }
                    pieces.append(ids)
                }
            } else {
                throw r.bad("\(path).single", "must be a list of pieces or a template string")
            }
            template = pieces
        default:
            throw TextError(.unsupported, "\(r.file): \(path) type '\(type)' is not supported (supported: \(supportedPostProcessors))")
        }
    }

    /// True for a ByteLevel decoder, false for none; anything else is unsupported.
    static func readDecoder(_ v: TJSON?, _ path: String, _ r: JSONReader) throws(TextError) -> Bool {
        guard let v, !v.isNull else { return false }
        let type = try r.type(v, path)
        switch type {
        case "ByteLevel": return true
        case "Sequence":
            guard let list = try r.need(v, "decoders", path).array, !list.isEmpty else {
                throw r.bad("\(path).decoders", "must be a non-empty array")
            }
            for (i, e) in list.enumerated() { _ = try readDecoder(e, "\(path).decoders[\(i)]", r) }
            return true
        default:
            throw TextError(.unsupported, "\(r.file): \(path) type '\(type)' is not supported (supported: \(supportedDecoders))")
        }
    }
}

func quote(_ s: String) -> String {
    "\"" + s.unicodeScalars.map { $0.value < 0x20 || $0 == "\"" || $0 == "\\" ? $0.escaped(asASCII: false) : String($0) }.joined() + "\""
}

/// Field access with JSON paths in the errors.
struct JSONReader {
    let file: String

    func bad(_ path: String, _ what: String) -> TextError {
        TextError(.badField, "\(file): \(path.isEmpty ? "the top level" : path) \(what)")
    }

    func need(_ v: TJSON, _ key: String, _ path: String) throws(TextError) -> TJSON {
        guard let x = v[key] else { throw bad(path.isEmpty ? key : "\(path).\(key)", "is missing") }
        return x
    }

    func needString(_ v: TJSON, _ key: String, _ path: String) throws(TextError) -> String {
        guard let s = try need(v, key, path).string else { throw bad("\(path).\(key)", "must be a string") }
        return s
    }

    func optString(_ v: TJSON, _ key: String, _ path: String) throws(TextError) -> String? {
        guard let x = v[key], !x.isNull else { return nil }
        guard let s = x.string else { throw bad("\(path).\(key)", "must be a string or null, not \(x.typeName)") }
        return s
    }

    func optBool(_ v: TJSON, _ key: String, _ path: String) throws(TextError) -> Bool? {
        guard let x = v[key], !x.isNull else { return nil }
        guard let b = x.bool else { throw bad("\(path).\(key)", "must be a boolean, not \(x.typeName)") }
        return b
    }

    func type(_ v: TJSON, _ path: String) throws(TextError) -> String {
        guard v.object != nil else { throw bad(path, "must be an object") }
        return try needString(v, "type", path)
    }
}

/// Offset of the first byte that is not part of valid UTF-8, or nil.
func firstInvalidUTF8(_ b: [UInt8]) -> Int? {
    var i = 0
    let n = b.count
    while i < n {
        let c = b[i]
        if c < 0x80 { i += 1; continue }
        let len: Int, minV: UInt32
        if c & 0xE0 == 0xC0 { len = 2; minV = 0x80 } else if c & 0xF0 == 0xE0 { len = 3; minV = 0x800 }
        else if c & 0xF8 == 0xF0 { len = 4; minV = 0x10000 } else { return i }
        guard i + len <= n else { return i }
        var v = UInt32(c) & (0xFF >> (len + 1))
        for k in 1..<len {
            guard b[i + k] & 0xC0 == 0x80 else { return i }
            v = v << 6 | UInt32(b[i + k] & 0x3F)
        }
        if v < minV || v > 0x10FFFF || (v >= 0xD800 && v < 0xE000) { return i }
        i += len
    }
    return nil
}
