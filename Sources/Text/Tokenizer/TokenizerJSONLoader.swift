// Builds the tokenizer.json pipeline; every malformed field names its JSON path, every unknown component its type.

extension Tokenizer {
    static let supportedPreTokenizers = "Split, ByteLevel, Digits, Sequence"
    static let supportedPostProcessors = "TemplateProcessing, ByteLevel, Sequence"
    static let supportedDecoders = "ByteLevel, Sequence of ByteLevel"
    static let llamaClasses: Set<String> = ["LlamaTokenizerFast", "LlamaTokenizer", "CodeLlamaTokenizerFast",
                                             "GemmaTokenizerFast"]

    convenience init(tokenizerJSON bytes: [UInt8], file: String, config: TokenizerConfig) throws(TextError) {
        // The parser checks UTF-8 as it reads strings; a bad byte is reported at its offset like a syntax error.
        let root = try JSONValue.parse(bytes, file: file)
        let r = JSONReader(file: file)
        guard root.objectValue != nil else { throw r.bad("", "must be an object") }

        // Model.
        let model = try r.need(root, "model", "")
        let mtype = model["type"]?.stringValue ?? "BPE"
        guard mtype == "BPE" else {
            throw TextError(.unsupported, "\(file): model type '\(mtype)' is not supported (supported: BPE)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key], !v.isNull {
                throw TextError(.unsupported, "\(file): model.\(key) is not supported (it must be null)")
            }
        }
        if let d = model["dropout"]?.numberValue, d != 0 {
            throw TextError(.unsupported, "\(file): model.dropout \(d) is not supported (encode must be deterministic)")
        }
        let vocab = try Vocab(try r.need(model, "vocab", "model"), r)
        var maxID = vocab.maxID
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
        guard let merges = try r.need(model, "merges", "model").arrayValue else { throw r.bad("model.merges", "must be an array") }
        var pairEntries: [(UInt32, UInt32, UInt32, UInt32)] = []
        pairEntries.reserveCapacity(merges.count)
        for (i, m) in merges.enumerated() {
            let a: String, b: String
            switch m {
            case .string(let s):
                // Split on the byte: a Character split would also grapheme-break 128k strings.
                let u = s.utf8
                guard let space = u.firstIndex(of: 0x20), !u[u.index(after: space)...].contains(0x20) else {
                    throw r.bad("model.merges[\(i)]", "must be two tokens separated by one space")
                }
                a = String(s[..<space]); b = String(s[u.index(after: space)...])
            case .array(let p):
                guard p.count == 2, let x = p[0].stringValue, let y = p[1].stringValue else {
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
        // By id rather than a set lookup per token: the only ids that can hold a special token's text are its
        // added id and its vocab id.
        var specialFlags = [Bool](repeating: false, count: idToToken.count)
        for c in specialSet {
            for id in [addedMap[c], vocab[c]].compactMap({ $0 }) where idToToken[id] == c { specialFlags[id] = true }
        }
        var cfg = config
        cfg.kind = "tokenizer.json BPE"
        let pipeline = BPEPipeline(addedTokens: matchable, normalizer: normalizer, steps: steps, merger: merger,
                                   byteLevel: byteLevel, charSymbol: charSymbol, unkID: unkID, fuseUnk: fuseUnk, post: post)
        self.init(config: cfg, engine: .bpe(pipeline), idToToken: idToToken, overrides: added.map { ($0.content, $0.id) },
                  tokenBytes: tokenBytes, skippable: specialFlags, joinWithSpaces: !byteDecoder)
    }

    private static func readAddedTokens(_ v: JSONValue?, _ r: JSONReader) throws(TextError) -> [AddedToken] {
        guard let v, !v.isNull else { return [] }
        guard let list = v.arrayValue else { throw r.bad("added_tokens", "must be an array") }
        var out: [AddedToken] = []
        for (i, e) in list.enumerated() {
            let p = "added_tokens[\(i)]"
            guard e.objectValue != nil else { throw r.bad(p, "must be an object") }
            guard let content = e["content"]?.stringValue else { throw r.bad("\(p).content", "must be a string") }
            guard let id = e["id"]?.intValue else { throw r.bad("\(p).id", "must be an integer") }
            out.append(AddedToken(
                content: content, id: id, special: try r.optBool(e, "special", p) ?? false,
                singleWord: try r.optBool(e, "single_word", p) ?? false, lstrip: try r.optBool(e, "lstrip", p) ?? false,
                rstrip: try r.optBool(e, "rstrip", p) ?? false, normalized: try r.optBool(e, "normalized", p) ?? true))
        }
        return out
    }

    static func readNormalizer(_ v: JSONValue?, _ path: String, _ r: JSONReader) throws(TextError) -> NormalizerSpec? {
        guard let v, !v.isNull else { return nil }
        let type = try r.type(v, path)
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Sequence":
            guard let list = try r.need(v, "normalizers", path).arrayValue else { throw r.bad("\(path).normalizers", "must be an array") }
            var out: [NormalizerSpec] = []
            for (i, e) in list.enumerated() {
                if let n = try readNormalizer(e, "\(path).normalizers[\(i)]", r) { out.append(n) }
            }
            return .sequence(out)
        default:
            throw TextError(.unsupported, "\(r.file): \(path) type '\(type)' is not supported (supported: \(NormalizerSpec.supportedTypes))")
        }
    }

    static func readPreTokenizer(_ v: JSONValue, _ path: String, _ r: JSONReader,
                                 into steps: inout [PreTokenizerStep]) throws(TextError) {
        let type = try r.type(v, path)
        switch type {
        case "Sequence":
            guard let list = try r.need(v, "pretokenizers", path).arrayValue else { throw r.bad("\(path).pretokenizers", "must be an array") }
            for (i, e) in list.enumerated() { try readPreTokenizer(e, "\(path).pretokenizers[\(i)]", r, into: &steps) }
        case "Split":
            let pv = try r.need(v, "pattern", path)
            let pattern: KnownPattern
            if let s = pv["String"]?.stringValue {
                guard !s.isEmpty else { throw r.bad("\(path).pattern", "an empty String pattern matches nothing useful") }
                pattern = .literal(s.unicodeScalars.map(\.value))
            } else if let re = pv["Regex"]?.stringValue {
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

    static func readPostProcessor(_ v: JSONValue, _ path: String, _ r: JSONReader, into template: inout [[Int]?]?) throws(TextError) {
        let type = try r.type(v, path)
        switch type {
        case "ByteLevel": return  // offsets only
        case "Sequence":
            guard let list = try r.need(v, "processors", path).arrayValue else { throw r.bad("\(path).processors", "must be an array") }
            for (i, e) in list.enumerated() { try readPostProcessor(e, "\(path).processors[\(i)]", r, into: &template) }
        case "TemplateProcessing":
            guard template == nil else {
                throw TextError(.unsupported, "\(r.file): \(path): more than one TemplateProcessing is not supported")
            }
            var specials: [String: [Int]] = [:]
            if let st = v["special_tokens"], let pairs = st.objectValue {
                for (name, e) in pairs {
                    guard let ids = e["ids"]?.arrayValue?.compactMap(\.intValue) else {
                        throw r.bad("\(path).special_tokens[\(quote(name))].ids", "must be a list of integers")
                    }
                    specials[name] = ids
                }
            }
            var pieces: [[Int]?] = []
            let single = try r.need(v, "single", path)
            if let list = single.arrayValue {
                for (i, p) in list.enumerated() {
                    if p["Sequence"] != nil {
                        pieces.append(nil)
                    } else if let name = p["SpecialToken"]?["id"]?.stringValue {
                        guard let ids = specials[name] else {
                            throw r.bad("\(path).single[\(i)]", "special token '\(name)' is not in \(path).special_tokens")
                        }
                        pieces.append(ids)
                    } else {
                        throw r.bad("\(path).single[\(i)]", "must be {\"Sequence\": ...} or {\"SpecialToken\": ...}")
                    }
                }
            } else if let s = single.stringValue {
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
    static func readDecoder(_ v: JSONValue?, _ path: String, _ r: JSONReader) throws(TextError) -> Bool {
        guard let v, !v.isNull else { return false }
        let type = try r.type(v, path)
        switch type {
        case "ByteLevel": return true
        case "Sequence":
            guard let list = try r.need(v, "decoders", path).arrayValue, !list.isEmpty else {
                throw r.bad("\(path).decoders", "must be a non-empty array")
            }
            for (i, e) in list.enumerated() { _ = try readDecoder(e, "\(path).decoders[\(i)]", r) }
            return true
        default:
            throw TextError(.unsupported, "\(r.file): \(path) type '\(type)' is not supported (supported: \(supportedDecoders))")
        }
    }
}
