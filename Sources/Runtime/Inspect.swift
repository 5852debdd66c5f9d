// Inspect: the logic behind `moerun inspect` - a preset or a checkpoint directory -> figures, tensor
// accounting against the table, and (hidden `--touch`) resident-memory measurement of reading a subset.
import Checkpoint
import Foundation
import Models
import Tensors

/// Published headline figures next to the computed ones (presets only).
public struct PublishedComparison: Codable, Sendable {
    public let source: String
    public let totalParameters: Double
    public let activeParameters: Double
    /// (computed - published) / published.
    public let totalDeviation: Double
    public let activeDeviation: Double
}

/// Per-shard figures of a checkpoint.
public struct ShardFigures: Codable, Sendable {
    public let file: String
    public let bytes: Int
    public let tensors: Int
}

/// What `inspect` found in a checkpoint directory.
public struct CheckpointFigures: Codable, Sendable {
    public let directory: String
    public let shards: [ShardFigures]
    public let sharded: Bool
    public let bytesOnDisk: Int
    public let accounting: TensorAccounting
    public let unknownConfigKeys: [String]
    public let ignoredConfigKeys: [String]
}

/// The full `inspect` result (`--json` encodes exactly this).
public struct InspectReport: Codable, Sendable {
    public let source: String
    /// The decoded config (DeepSeek-V3 / Kimi K2; the other families' figures are in `summary`).
    public let config: ModelConfig?
    public let summary: ModelSummary
    public let published: [PublishedComparison]
    public let checkpoint: CheckpointFigures?
}

/// One model's column of `inspect --compare`.
public struct ComparedModel: Codable, Sendable {
    public let name: String
    public let modelType: String
    public let totalParameters: Int
    public let activeParameters: Int
    public let layers: Int
    public let denseLayers: Int
    public let moeLayers: Int
    public let facts: ArchitectureFacts
    /// KV-cache bytes of one token over all layers, BF16 entries.
    public let kvBytesPerToken: Int
    public let kvBytesAtContext: Int
    public let routedExperts: Int
    public let sharedExperts: Int
    public let expertsPerToken: Int
    /// Intermediate width of one routed expert.
    public let expertWidth: Int
    public let vocab: Int
    public let hidden: Int
    public let bytesBF16: Int
    public let bytesFP8: Int
    /// "FP8" when the release declares 128x128 FP8 blocks, else "BF16".
    public let releasedDType: String
}

/// `inspect --compare`: the models side by side at one context length.
public struct ModelComparison: Codable, Sendable {
    public let context: Int
    public let models: [ComparedModel]
}

/// Result of reading a subset of tensors (`inspect --touch`).
public struct TouchReport: Codable, Sendable {
    public let pattern: String
    public let tensors: Int
    /// Bytes of the matching tensors (incl. FP8 scales).
    public let tensorBytes: Int
    public let checkpointBytes: Int
    public let residentBefore: Int
    public let residentAfter: Int
    public let peakResident: Int
    /// Resident bytes of the checkpoint mappings (smaps Rss), i.e. what reading paged into this process.
    public let mappedResident: Int
    public let shardsOpened: Int
    public let shardsMapped: Int
    public let shardsTotal: Int
    public let seconds: Double
    /// Fold of the bytes read (keeps the reads observable, so the optimizer cannot drop them).
    public let checksum: UInt64
}

public enum Inspector {
    /// Figures for a named preset.
    public static func inspect(preset name: String) throws -> InspectReport {
        let preset = try AnyPreset.named(name)
        try preset.decoded.config.validate()
        let summary = ModelSummary(family: preset.decoded.config)
        let published = preset.published.map { f in
            let note: [ActiveCounting: String] = [.wholeEmbeddingTable: "; active counted with the whole embedding table",
                                                  .withoutEmbeddingAndHead: "; active counted without embedding and output head"]
            return PublishedComparison(source: f.source + (note[f.counting] ?? ""),
                                       totalParameters: f.totalParameters, activeParameters: f.activeParameters,
                                       totalDeviation: (Double(summary.totalParameters) - f.totalParameters) / f.totalParameters,
                                       activeDeviation: (Double(summary.active(f.counting)) - f.activeParameters) / f.activeParameters)
        }
        return InspectReport(source: "preset \(preset.name)", config: preset.decoded.config as? ModelConfig, summary: summary,
                             published: published, checkpoint: nil)
    }

    /// Presets (by name, `all` for every one) or checkpoint directories side by side.
    public static func compare(_ names: [String], context: Int) throws -> ModelComparison {
        let expanded = names.flatMap { $0.lowercased() == "all" ? AnyPreset.names : [$0] }
        let models = try expanded.map { name -> ComparedModel in
            let config: any FamilyConfiguration
            if FileManager.default.fileExists(atPath: name + "/config.json") {
                config = try loadConfig(try CheckpointDirectory(directory: name)).config
            } else {
                config = try AnyPreset.named(name).decoded.config
                try config.validate()
            }
            let s = ModelSummary(family: config), shape = config.shape
            let moe = shape.layers.compactMap(\.moe).first
            return ComparedModel(name: name, modelType: config.modelType, totalParameters: s.totalParameters, activeParameters: s.activeParameters,
                                 layers: shape.layerCount, denseLayers: s.denseLayers.count, moeLayers: s.moeLayers.count, facts: config.facts,
                                 kvBytesPerToken: s.kvCache.latentBytesPerToken, kvBytesAtContext: s.kvCache.latentBytesPerToken * context,
                                 routedExperts: s.routedExperts, sharedExperts: s.sharedExperts, expertsPerToken: s.expertsPerToken,
                                 expertWidth: moe?.width ?? 0, vocab: shape.vocab, hidden: shape.hidden, bytesBF16: s.bytesBF16,
                                 bytesFP8: s.bytesFP8, releasedDType: config.isFP8 ? "FP8" : "BF16")
        }
        return ModelComparison(context: context, models: models)
    }

    /// Scatter plot: active parameters per token (x, log scale) against KV-cache bytes per token (y, log scale), one
    /// labelled point per model, the two costs a decode step pays per token (weights read, cache read and kept).
    public static func svg(_ c: ModelComparison) -> String {
        let w = 760.0, h = 480.0, left = 80.0, right = 40.0, top = 50.0, bottom = 60.0
        let xs = c.models.map { Double(max($0.activeParameters, 1)) }, ys = c.models.map { Double(max($0.kvBytesPerToken, 1)) }
        func range(_ v: [Double]) -> (Double, Double) {
            let lo = log10(v.min() ?? 1), hi = log10(v.max() ?? 10)
            return (floor(lo), max(ceil(hi), floor(lo) + 1))
        }
        let (x0, x1) = range(xs), (y0, y1) = range(ys)
        func px(_ v: Double) -> Double { left + (log10(v) - x0) / (x1 - x0) * (w - left - right) }
        func py(_ v: Double) -> Double { h - bottom - (log10(v) - y0) / (y1 - y0) * (h - top - bottom) }
        func fmt(_ v: Double) -> String { String(format: "%.1f", v) }
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(w))" height="\(Int(h))" font-family="sans-serif" font-size="11">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(Int(left))" y="22" font-size="13">Per token: active parameters (weights read) vs KV-cache bytes (BF16), log scales</text>
        <line x1="\(fmt(left))" y1="\(fmt(h - bottom))" x2="\(fmt(w - right))" y2="\(fmt(h - bottom))" stroke="black"/>
        <line x1="\(fmt(left))" y1="\(fmt(top))" x2="\(fmt(left))" y2="\(fmt(h - bottom))" stroke="black"/>

        """
        for e in Int(x0)...Int(x1) {
            let v = pow(10, Double(e)), x = px(v)
            svg += "<line x1=\"\(fmt(x))\" y1=\"\(fmt(h - bottom))\" x2=\"\(fmt(x))\" y2=\"\(fmt(top))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(fmt(x))\" y=\"\(fmt(h - bottom + 16))\" text-anchor=\"middle\">\(ModelSummary.count(Int(v)))</text>\n"
        }
        for e in Int(y0)...Int(y1) {
            let v = pow(10, Double(e)), y = py(v)
            svg += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(y))\" x2=\"\(fmt(w - right))\" y2=\"\(fmt(y))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(fmt(left - 6))\" y=\"\(fmt(y + 4))\" text-anchor=\"end\">\(ModelSummary.bytes(Int(v)))</text>\n"
        }
        svg += "<text x=\"\(fmt((left + w - right) / 2))\" y=\"\(fmt(h - 20))\" text-anchor=\"middle\">active parameters per token</text>\n"
        svg += "<text x=\"18\" y=\"\(fmt((top + h - bottom) / 2))\" transform=\"rotate(-90 18 \(fmt((top + h - bottom) / 2)))\" text-anchor=\"middle\">KV cache per token</text>\n"
        for (m, (x, y)) in zip(c.models, zip(xs, ys)) {
            let kind = m.facts.attention.hasPrefix("MLA") ? "#b03a2e" : "#1f618d"
            svg += "<circle cx=\"\(fmt(px(x)))\" cy=\"\(fmt(py(y)))\" r=\"5\" fill=\"\(kind)\"><title>\(m.name): \(ModelSummary.count(m.activeParameters)) active, \(ModelSummary.bytes(m.kvBytesPerToken)) KV per token</title></circle>"
            svg += "<text x=\"\(fmt(px(x) + 8))\" y=\"\(fmt(py(y) - 6))\">\(m.name)</text>\n"
        }
        svg += "<text x=\"\(fmt(w - right))\" y=\"\(fmt(top - 8))\" text-anchor=\"end\"><tspan fill=\"#b03a2e\">MLA</tspan>  <tspan fill=\"#1f618d\">GQA</tspan></text>\n</svg>\n"
        return svg
    }

    /// Numbers as a table (a column per model), then each model's architecture in words.
    public static func render(_ c: ModelComparison) -> String {
        let width = max(16, (c.models.map(\.name.count).max() ?? 0) + 2)
        func row(_ label: String, _ value: (ComparedModel) -> String) -> String {
            label.padding(toLength: 24, withPad: " ", startingAt: 0)
                + c.models.map { String(repeating: " ", count: max(0, width - value($0).count)) + value($0) }.joined()
        }
        let count = ModelSummary.count, bytes = ModelSummary.bytes
        var out = [row("", \.name),
                   row("model_type", \.modelType),
                   row("total parameters", { count($0.totalParameters) }),
                   row("active per token", { count($0.activeParameters) }),
                   row("layers (dense+MoE)", { "\($0.layers) (\($0.denseLayers)+\($0.moeLayers))" }),
                   row("hidden / vocab", { "\($0.hidden) / \($0.vocab)" }),
                   row("experts (top-k)", { $0.routedExperts == 0 ? "dense" : "\($0.routedExperts) (\($0.expertsPerToken))" }),
                   row("shared experts", { "\($0.sharedExperts)" }),
                   row("expert width", { "\($0.expertWidth)" }),
                   row("KV cache per token", { bytes($0.kvBytesPerToken) }),
                   row("KV cache at \(c.context)", { bytes($0.kvBytesAtContext) }),
                   row("weights BF16", { bytes($0.bytesBF16) }),
                   row("weights FP8", { bytes($0.bytesFP8) }),
                   row("released as", { $0.releasedDType == "FP8" ? "FP8 " + bytes($0.bytesFP8) : "BF16 " + bytes($0.bytesBF16) }),
                   "", "KV cache: BF16 entries, one sequence; active: routed experts at top-k, one embedding row.", ""]
        for m in c.models {
            out.append("\(m.name):")
            out.append("  attention  \(m.facts.attention)")
            out.append("  router     \(m.facts.router)")
            out.append("  norms      \(m.facts.norms)")
            out.append("  positions  \(m.facts.positions)")
        }
        return out.joined(separator: "\n")
    }

    /// Decodes and validates a checkpoint directory's config.json.
    public static func loadConfig(_ checkpoint: CheckpointDirectory) throws -> DecodedFamilyConfig {
        guard let data = checkpoint.configData else {
            throw CheckpointError(.notFound, file: checkpoint.directory + "/config.json", "no config.json in the checkpoint directory",
                                  hint: "copy the model's config.json next to the safetensors files")
        }
        let file = checkpoint.directory + "/config.json"
        let decoded = try ModelFamilies.decode(data, file: file)
        do { try decoded.config.validate() } catch let error as ConfigError { throw error.inFile(file) }
        return decoded
    }

    /// Reads config + every shard header of `directory` and checks every tensor against the table (maps no data).
    public static func inspect(directory: String, requireMTP: Bool = false) throws -> InspectReport {
        let ck = try CheckpointDirectory(directory: directory)
        let decoded = try loadConfig(ck)
        let infos = try ck.allInfos()
        let tensors = infos.map { CheckpointTensor(name: $0.name, dtype: $0.dtype, shape: $0.shape, file: $0.file) }
        let accounting: TensorAccounting
        if let deepSeek = decoded.config as? ModelConfig {
            accounting = try TensorTable(config: deepSeek).check(tensors, requireMTP: requireMTP, checkpointName: directory)
        } else {
            accounting = try TensorTable.check(decoded.config.mainTensorSpecs, tensors, checkpointName: directory)
        }
        var shards: [ShardFigures] = []
        for shard in ck.shardNames {
            let f = try ck.file(named: shard)
            shards.append(ShardFigures(file: shard, bytes: f.fileSize, tensors: f.header.entries.count))
        }
        let figures = CheckpointFigures(directory: directory, shards: shards,
                                        sharded: FileManager.default.fileExists(atPath: directory + "/" + CheckpointDirectory.indexFileName),
                                        bytesOnDisk: shards.reduce(0) { $0 + $1.bytes }, accounting: accounting,
                                        unknownConfigKeys: decoded.unknownKeys, ignoredConfigKeys: decoded.ignoredKeys)
        return InspectReport(source: directory, config: decoded.config as? ModelConfig, summary: ModelSummary(family: decoded.config),
                             published: [], checkpoint: figures)
    }

    /// Human-readable report.
    public static func render(_ r: InspectReport) -> String {
        var out = ["source          \(r.source)", r.summary.render()]
        if !r.published.isEmpty { out.append("") }
        for p in r.published {
            let pct = { (x: Double) in String(format: "%+.2f%%", x * 100) }
            out.append("published       \(ModelSummary.count(Int(p.totalParameters))) total, \(ModelSummary.count(Int(p.activeParameters))) active"
                       + ": computed \(pct(p.totalDeviation)) total, \(pct(p.activeDeviation)) active (\(p.source))")
        }
        if let c = r.checkpoint {
            let a = c.accounting
            out.append("")
            out.append("checkpoint      \(c.shards.count) file(s)\(c.sharded ? " + index" : ""), \(ModelSummary.bytes(c.bytesOnDisk)) on disk, \(a.total) tensors")
            let dtypes = a.dtypeCounts.keys.sorted().map { "\($0) \(a.dtypeCounts[$0]!)" }.joined(separator: ", ")
            out.append("tensors         \(a.matched) weights + \(a.scales) FP8 scale grids accounted for, \(a.unexpected.count) unexpected (\(dtypes))")
            let mtpDeclared = !r.summary.mtpLayers.isEmpty
            out.append("MTP tensors     \(mtpDeclared ? (a.mtpPresent ? "present" : "declared by config but absent") : "none (not declared)")")
            if !a.optionalAbsent.isEmpty { out.append("optional absent \(a.optionalAbsent.joined(separator: ", "))") }
            if !a.unexpected.isEmpty {
                out.append("warning: \(a.unexpected.count) tensor(s) not used by the model: \(a.unexpected.prefix(8).joined(separator: ", "))\(a.unexpected.count > 8 ? ", ..." : "")")
            }
            if !c.unknownConfigKeys.isEmpty { out.append("note: config.json keys not used by moerun: \(c.unknownConfigKeys.joined(separator: ", "))") }
        }
        return out.joined(separator: "\n")
    }

    /// Reads every tensor whose name matches `pattern` (regex) through the real accessors, touching each
    /// cache line, and reports the process's resident memory before/after.
    public static func touch(directory: String, pattern: String) throws -> TouchReport {
        let regex: Regex<AnyRegexOutput>
        do { regex = try Regex(pattern) } catch {
            throw CheckpointError(.missingTensor, tensor: pattern, "--touch pattern is not a valid regular expression",
                                  hint: "e.g. 'mlp\\.experts\\.([0-7])\\.' for experts 0-7 of every layer")
        }
        let ck = try CheckpointDirectory(directory: directory)
        let names = ck.tensorNames.filter { $0.contains(regex) && !$0.hasSuffix("_scale_inv") }
        guard !names.isEmpty else {
            throw CheckpointError(.missingTensor, file: directory, tensor: pattern, "no tensor matches the --touch pattern",
                                  hint: "list names with `moerun inspect DIR --json` or loosen the pattern")
        }
        let before = ProcessMemory.residentBytes() ?? 0
        let start = Date()
        var checksum: UInt64 = 0
        for name in names {
            let info = try ck.info(name)
            // Validate through the real accessor (FP8 pairs get their scale grid checked), then read the bytes.
            if info.shape.count == 2 && info.dtype.isFloatingPoint { _ = try ck.weight(name) }
            let raw = try ck.raw(name)
            checksum &+= touchBytes(raw.bytes)
        }
        let seconds = Date().timeIntervalSince(start)
        let after = ProcessMemory.residentBytes() ?? 0
        let peak = ProcessMemory.peakResidentBytes() ?? 0
        let mappedResident = ck.residentMappedBytes()
        let (opened, mapped) = (ck.openedFiles.count, ck.mappedFiles.count)
        // Size of the whole checkpoint from the files on disk (headers of other shards stay unread).
        let total = ck.indexTotalSize ?? ck.shardNames.reduce(0) { acc, shard in
            acc + ((try? FileManager.default.attributesOfItem(atPath: directory + "/" + shard)[.size] as? Int) ?? 0)
        }
        return TouchReport(pattern: pattern, tensors: names.count, tensorBytes: ck.touchedTensorBytes, checkpointBytes: total,
                           residentBefore: before, residentAfter: after, peakResident: peak,
                           mappedResident: mappedResident, shardsOpened: opened,
                           shardsMapped: mapped, shardsTotal: ck.shardNames.count, seconds: seconds, checksum: checksum)
    }

    /// Reads one byte per 64-byte line (faults in every page, like a full read does) and folds them.
    static func touchBytes(_ b: UnsafeRawBufferPointer) -> UInt64 {
        var acc: UInt64 = 0
        var i = 0
        while i < b.count {
            acc = acc &* 31 &+ UInt64(b[i])
            i += 64
        }
        return acc
    }

    public static func render(_ t: TouchReport) -> String {
        let b = ModelSummary.bytes
        return """
        touched         \(t.tensors) tensors matching /\(t.pattern)/: \(b(t.tensorBytes)) of \(b(t.checkpointBytes)) (\(String(format: "%.1f", 100 * Double(t.tensorBytes) / Double(max(t.checkpointBytes, 1))))%)
        shards          \(t.shardsOpened) of \(t.shardsTotal) opened, \(t.shardsMapped) mapped
        resident        \(b(t.residentBefore)) before, \(b(t.residentAfter)) after (+\(b(t.residentAfter - t.residentBefore))), peak \(b(t.peakResident))
        mapped resident \(b(t.mappedResident)) of checkpoint pages in this process (\(String(format: "%.2f", Double(t.mappedResident) / Double(max(t.tensorBytes, 1))))x the subset)
        time            \(String(format: "%.2f", t.seconds)) s (checksum \(String(t.checksum, radix: 16)))
        """
    }
}
