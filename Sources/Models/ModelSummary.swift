// ModelSummary: the figures `moerun inspect` prints, computed from the tensor table (parameters, active
// parameters per token, BF16/FP8 bytes, KV-cache bytes), with a text rendering; `--json` encodes the struct.
import Foundation

/// Figures for one component of the main model (or the MTP module as a whole).
public struct ComponentFigures: Codable, Sendable, Equatable {
    public let component: String
    public let parameters: Int
    /// Parameters read per token (routed experts: top-k of E; embedding: one row).
    public let activeParameters: Int
    public let bytesBF16: Int
    public let bytesFP8: Int
}

/// KV-cache bytes per token (BF16 cache entries).
public struct KVCacheFigures: Codable, Sendable, Equatable {
    /// What a layer caches per token: "MLA latent" or "GQA keys + values".
    public let kind: String
    /// Values per layer: kv_lora_rank + qk_rope_head_dim (MLA, what the absorbed decode caches) or 2 x KV heads x head_dim.
    public let latentValuesPerLayer: Int
    public let latentBytesPerTokenPerLayer: Int
    /// Over all main-model layers.
    public let latentBytesPerToken: Int
    /// Standard multi-head attention with the same heads: H x (qk_head_dim + v_head_dim) per layer.
    public let mhaBytesPerTokenPerLayer: Int
    public let mhaBytesPerToken: Int
    /// MTP layers' latent cache (separate: only used for speculative decoding).
    public let mtpLatentBytesPerToken: Int
    public var compression: Double { Double(mhaBytesPerToken) / Double(max(latentBytesPerToken, 1)) }
}

/// Conventions publishers use for "active parameters per token" (routed experts at top-k in all of them).
public enum ActiveCounting: String, Codable, Sendable {
    /// One embedding row, everything else read per token (DeepSeek's README_WEIGHTS, Mistral).
    case oneEmbeddingRow
    /// The whole embedding table counted (Qwen3: 3.3B for Qwen3-30B-A3B is reached only this way).
    case wholeEmbeddingTable
    /// Neither the embedding nor the output head (Z.ai for GLM-4.5, MiniMax for M2).
    case withoutEmbeddingAndHead
}

/// Everything `inspect` reports about a config.
public struct ModelSummary: Codable, Sendable {
    public let modelType: String
    public let layers: Int
    public let denseLayers: [Int]
    public let moeLayers: [Int]
    public let mtpLayers: [Int]
    /// e.g. "0-2 dense, 3-60 MoE; MTP 61 (MoE)".
    public let layerKinds: String
    public let routedExperts: Int
    public let expertsPerToken: Int
    public let sharedExperts: Int
    public let groups: String
    /// Main model (MTP excluded, as the published figures count it).
    public let totalParameters: Int
    /// Parameters read per token: every weight except routed experts (top-k of E) and the embedding table (one row).
    public let activeParameters: Int
    /// Same, counting the whole embedding table (the convention some model cards use).
    public let activeParametersWithEmbeddingTable: Int
    public let mtpParameters: Int
    public let mtpActiveParameters: Int
    public let components: [ComponentFigures]
    public let mtp: ComponentFigures?
    public let bytesBF16: Int
    public let bytesFP8: Int
    /// Part of `bytesFP8` that is block scales.
    public let fp8ScaleBytes: Int
    public let kvCache: KVCacheFigures
    public let tensorCount: Int
    public let mtpTensorCount: Int

    public init(config c: ModelConfig) {
        let table = TensorTable(config: c)
        let latent = c.kvLoraRank + c.qkRopeHeadDim
        let mhaPerLayer = c.numAttentionHeads * (c.qkHeadDim + c.vHeadDim) * 2
        let kv = KVCacheFigures(kind: "MLA latent", latentValuesPerLayer: latent, latentBytesPerTokenPerLayer: latent * 2,
                                latentBytesPerToken: latent * 2 * c.numHiddenLayers,
                                mhaBytesPerTokenPerLayer: mhaPerLayer, mhaBytesPerToken: mhaPerLayer * c.numHiddenLayers,
                                mtpLatentBytesPerToken: latent * 2 * max(c.mtpLayerCount, 0))
        self.init(modelType: c.modelType, shape: c.shape, main: table.mainSpecs, mtpSpecs: table.mtpSpecs,
                  mtpLayers: (0..<max(c.mtpLayerCount, 0)).map { c.numHiddenLayers + $0 }, sharedExperts: c.nSharedExperts,
                  groups: c.nGroup == 1 ? "no group limit (1 group)" : "\(c.nGroup) groups, top \(c.topkGroup)", kvCache: kv)
    }

    /// Figures of any family's config (DeepSeek-V3 / Kimi K2: with their MTP layers and MLA cache figures).
    public init(family f: any FamilyConfiguration) {
        if let c = f as? ModelConfig { self.init(config: c); return }
        let shape = f.shape
        var cached = 0, mha = 0
        for layer in shape.layers {
            cached += layer.cacheFloatsPerToken * 2
            switch layer.mixer {
            case .mla(let a): mha += a.heads * (a.qkHeadDim + a.vHeadDim) * 2
            case .attention(let a): mha += a.heads * a.headDim * 2 * 2
            }
        }
        let n = max(shape.layerCount, 1)
        let kv = KVCacheFigures(kind: "GQA keys + values", latentValuesPerLayer: cached / 2 / n, latentBytesPerTokenPerLayer: cached / n,
                                latentBytesPerToken: cached, mhaBytesPerTokenPerLayer: mha / n, mhaBytesPerToken: mha, mtpLatentBytesPerToken: 0)
        let router = shape.layers.compactMap(\.moe).first.map { $0.scoring == .softmax ? "softmax over all experts, no groups" : "sigmoid, no groups" }
        self.init(modelType: f.modelType, shape: shape, main: f.mainTensorSpecs, mtpSpecs: [], mtpLayers: [],
                  sharedExperts: shape.layers.compactMap(\.moe).first.map { $0.sharedWidth > 0 ? 1 : 0 } ?? 0,
                  groups: router ?? "dense model", kvCache: kv)
    }

    init(modelType: String, shape: ModelShape, main: [TensorSpec], mtpSpecs: [TensorSpec], mtpLayers: [Int], sharedExperts: Int, groups: String,
         kvCache: KVCacheFigures) {
        let topFraction = shape.expertFraction
        func active(_ s: TensorSpec) -> Int { s.activeParameters(expertFraction: topFraction) }
        var comps: [ComponentFigures] = []
        for comp in TensorComponent.allCases where comp != .mtp {
            let specs = main.filter { $0.component == comp }
            comps.append(ComponentFigures(component: comp.rawValue,
                                          parameters: specs.reduce(0) { $0 + $1.parameterCount },
                                          activeParameters: specs.reduce(0) { $0 + active($1) },
                                          bytesBF16: specs.reduce(0) { $0 + $1.bytesBF16 },
                                          bytesFP8: specs.reduce(0) { $0 + $1.bytesFP8 }))
        }
        components = comps
        if mtpSpecs.isEmpty {
            mtp = nil
        } else {
            mtp = ComponentFigures(component: "mtp",
                                   parameters: mtpSpecs.reduce(0) { $0 + $1.parameterCount },
                                   activeParameters: mtpSpecs.reduce(0) { $0 + active($1) },
                                   bytesBF16: mtpSpecs.reduce(0) { $0 + $1.bytesBF16 },
                                   bytesFP8: mtpSpecs.reduce(0) { $0 + $1.bytesFP8 })
        }
        self.modelType = modelType
        layers = shape.layerCount
        denseLayers = (0..<shape.layerCount).filter { !shape.isMoE($0) }
        moeLayers = (0..<shape.layerCount).filter { shape.isMoE($0) }
        self.mtpLayers = mtpLayers
        var kinds = "\(Self.ranges(denseLayers)) dense, \(Self.ranges(moeLayers)) MoE"
        if denseLayers.isEmpty { kinds = "\(Self.ranges(moeLayers)) MoE" }
        if moeLayers.isEmpty { kinds = "\(Self.ranges(denseLayers)) dense" }
        kinds += mtpLayers.isEmpty ? "; no MTP" : "; MTP \(Self.ranges(mtpLayers)) (MoE)"
        layerKinds = kinds
        routedExperts = shape.routedExperts
        expertsPerToken = shape.layers.compactMap(\.moe).first?.topK ?? 0
        self.sharedExperts = sharedExperts
        self.groups = groups
        totalParameters = comps.reduce(0) { $0 + $1.parameters }
        activeParameters = comps.reduce(0) { $0 + $1.activeParameters }
        let embedding = comps.first { $0.component == "embedding" }!
        activeParametersWithEmbeddingTable = activeParameters - embedding.activeParameters + embedding.parameters
        mtpParameters = mtp?.parameters ?? 0
        mtpActiveParameters = mtp?.activeParameters ?? 0
        bytesBF16 = comps.reduce(0) { $0 + $1.bytesBF16 }
        bytesFP8 = comps.reduce(0) { $0 + $1.bytesFP8 }
        fp8ScaleBytes = main.filter(\.quantizable).reduce(0) { $0 + $1.scaleShape.reduce(1, *) * 4 }
        self.kvCache = kvCache
        tensorCount = main.count
        mtpTensorCount = mtpSpecs.count
    }

    /// Active parameters per token as `counting` defines them.
    public func active(_ counting: ActiveCounting) -> Int {
        switch counting {
        case .oneEmbeddingRow: return activeParameters
        case .wholeEmbeddingTable: return activeParametersWithEmbeddingTable
        case .withoutEmbeddingAndHead:
            let part = { (name: String) in components.first { $0.component == name }?.activeParameters ?? 0 }
            return activeParameters - part("embedding") - part("head")
        }
    }

    /// "0-2, 5, 7-9" from sorted indices.
    static func ranges(_ xs: [Int]) -> String {
        guard !xs.isEmpty else { return "none" }
        var parts: [String] = []
        var start = xs[0], prev = xs[0]
        for x in xs.dropFirst() + [Int.min] {
            if x == prev + 1 { prev = x; continue }
            parts.append(start == prev ? "\(start)" : "\(start)-\(prev)")
            start = x
            prev = x
        }
        return parts.joined(separator: ", ")
    }

    /// 671025340416 -> "671.03B"; 1.026e12 -> "1.026T".
    public static func count(_ n: Int) -> String {
        let v = Double(n)
        if v >= 1e12 { return String(format: "%.3fT", v / 1e12) }
        if v >= 1e9 { return String(format: "%.2fB", v / 1e9) }
        if v >= 1e6 { return String(format: "%.2fM", v / 1e6) }
        if v >= 1e3 { return String(format: "%.1fK", v / 1e3) }
        return "\(n)"
    }

    /// Decimal bytes: "1.34 TB", "687.6 GB", "70.3 KB".
    public static func bytes(_ n: Int) -> String {
        let v = Double(n)
        for (unit, scale) in [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)] where v >= scale {
            return String(format: "%.1f", v / scale) + " " + unit
        }
        return "\(n) B"
    }

    /// Human-readable report (what `moerun inspect` prints).
    public func render() -> String {
        var out: [String] = []
        out.append("model type      \(modelType)")
        out.append("layers          \(layers) (\(layerKinds))")
        out.append("experts         \(routedExperts) routed, top-\(expertsPerToken), \(sharedExperts) shared, \(groups)")
        out.append("parameters      \(Self.count(totalParameters)) total, \(Self.count(activeParameters)) active per token"
                   + " (\(Self.count(activeParametersWithEmbeddingTable)) counting the whole embedding table)")
        if let mtp { out.append("MTP (separate)  \(Self.count(mtp.parameters)) total, \(Self.count(mtp.activeParameters)) active per token") }
        out.append("weights         \(Self.bytes(bytesBF16)) at BF16, \(Self.bytes(bytesFP8)) at FP8 (incl. \(Self.bytes(fp8ScaleBytes)) of 128x128 block scales)")
        if let mtp { out.append("MTP weights     \(Self.bytes(mtp.bytesBF16)) at BF16, \(Self.bytes(mtp.bytesFP8)) at FP8") }
        out.append("KV cache/token  \(Self.bytes(kvCache.latentBytesPerToken)) \(kvCache.kind) (\(kvCache.latentValuesPerLayer) values x \(layers) layers, BF16)"
                   + " vs \(Self.bytes(kvCache.mhaBytesPerToken)) standard MHA with the same heads (\(String(format: "%.1f", kvCache.compression))x)")
        out.append("")
        out.append("component          parameters       active         BF16          FP8")
        func row(_ name: String, _ p: Int, _ a: Int, _ b: Int, _ f: Int) -> String {
            func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
            return name.padding(toLength: 16, withPad: " ", startingAt: 0) + pad(Self.count(p), 13) + pad(Self.count(a), 13)
                + pad(Self.bytes(b), 13) + pad(Self.bytes(f), 13)
        }
        for c in components { out.append(row(c.component, c.parameters, c.activeParameters, c.bytesBF16, c.bytesFP8)) }
        out.append(row("total", totalParameters, activeParameters, bytesBF16, bytesFP8))
        if let mtp { out.append(row("mtp (separate)", mtp.parameters, mtp.activeParameters, mtp.bytesBF16, mtp.bytesFP8)) }
        return out.joined(separator: "\n")
    }
}
