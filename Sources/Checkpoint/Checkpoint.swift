// CheckpointDirectory: a HF checkpoint directory read in place (config.json bytes, index, lazily opened shards);
// serves zero-copy `Weight` views through `TensorSource`. A shard is opened only when one of its tensors is asked for.
import Foundation
import Tensors

/// Where a tensor lives and what it is.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Shard file name (relative to the checkpoint directory).
    public let file: String
    public let byteCount: Int
}

/// Raw view of a tensor's bytes in the mapping (any dtype, e.g. I32/I64/U8), kept alive by `owner`.
public struct RawTensor: @unchecked Sendable {
    public let info: TensorInfo
    public let bytes: UnsafeRawBufferPointer
    public let owner: AnyObject
}

/// A Hugging Face checkpoint directory (single `model.safetensors` or sharded with `model.safetensors.index.json`).
public final class CheckpointDirectory: TensorSource, @unchecked Sendable {
    public static let indexFileName = "model.safetensors.index.json"
    public static let singleFileName = "model.safetensors"

    public let directory: String
    /// Raw bytes of `config.json` (nil when the directory has none); decoding is the Models room's job.
    public let configData: Data?
    /// Tensor name -> shard file name, from the index (or the single file's header).
    public let weightMap: [String: String]
    /// Every tensor name, sorted.
    public let tensorNames: [String]
    /// Shard file names, sorted.
    public let shardNames: [String]
    /// `metadata.total_size` from the index when present.
    public let indexTotalSize: Int?

    private let lock = NSLock()
    private var files: [String: SafetensorsFile] = [:]
    private var touched: [String: Int] = [:]

    /// Opens a checkpoint directory. Reads config.json and the index; opens no shard unless the directory
    /// has no index (then the lone safetensors file's header supplies the names).
    public init(directory: String) throws(CheckpointError) {
        self.directory = directory
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw CheckpointError(.notFound, file: directory, "checkpoint directory does not exist",
                                  hint: "pass the folder holding config.json and *.safetensors (or use --preset)")
        }
        configData = FileManager.default.contents(atPath: directory + "/config.json")
        let indexPath = directory + "/" + Self.indexFileName
        if FileManager.default.fileExists(atPath: indexPath) {
            let (map, total) = try Self.readIndex(path: indexPath)
            weightMap = map
            indexTotalSize = total
            shardNames = Array(Set(map.values)).sorted()
            for shard in shardNames where !FileManager.default.fileExists(atPath: directory + "/" + shard) {
                let count = map.values.filter { $0 == shard }.count
                throw CheckpointError(.missingShard, file: shard,
                                      "named by \(Self.indexFileName) for \(count) tensors but absent from \(directory)",
                                      hint: "download the missing shard or regenerate the index")
            }
        } else {
            let candidates = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                .filter { $0.hasSuffix(".safetensors") }.sorted()
            guard !candidates.isEmpty else {
                throw CheckpointError(.noSafetensors, file: directory, "no \(Self.indexFileName) and no *.safetensors file",
                                      hint: "export the model with save_pretrained(..., safe_serialization=True)")
            }
            var map: [String: String] = [:]
            for name in candidates {
                let file = try SafetensorsFile(path: directory + "/" + name, displayName: name)
                files[name] = file
                for tensor in file.header.entries.keys {
                    if let other = map[tensor] {
                        throw CheckpointError(.badIndex, file: name, tensor: tensor, "also present in '\(other)'",
                                              hint: "without an index every tensor must be in exactly one file")
                    }
                    map[tensor] = name
                }
            }
            weightMap = map
            indexTotalSize = nil
            shardNames = candidates
        }
        tensorNames = weightMap.keys.sorted()
    }

    private static func readIndex(path: String) throws(CheckpointError) -> ([String: String], Int?) {
        let file = indexFileName
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CheckpointError(.ioError, file: file, "cannot read", hint: "check permissions")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), let dict = object as? [String: Any] else {
            throw CheckpointError(.badIndex, file: file, "not a JSON object",
                                  hint: "expected {\"metadata\": {...}, \"weight_map\": {name: shard}}")
        }
        guard let raw = dict["weight_map"] as? [String: Any] else {
            throw CheckpointError(.badIndex, file: file, "no 'weight_map' object",
                                  hint: "expected {\"metadata\": {...}, \"weight_map\": {name: shard}}")
        }
        var map: [String: String] = [:]
        for (tensor, value) in raw {
            guard let shard = value as? String, !shard.isEmpty, !shard.contains("/"), shard != ".", shard != ".." else {
                throw CheckpointError(.badIndex, file: file, tensor: tensor, "weight_map value is not a plain file name",
                                      hint: "shard names must be file names inside the checkpoint directory")
            }
            map[tensor] = shard
        }
        let total = ((dict["metadata"] as? [String: Any])?["total_size"] as? NSNumber)?.intValue
        return (map, total)
    }

    // MARK: files and infos

    /// The shard holding `name`, opened (header only) on first use.
    public func file(named shard: String) throws(CheckpointError) -> SafetensorsFile {
        lock.lock()
        defer { lock.unlock() }
        if let f = files[shard] { return f }
        let path = directory + "/" + shard
        guard FileManager.default.fileExists(atPath: path) else {
            throw CheckpointError(.missingShard, file: shard, "named by \(Self.indexFileName) but absent",
                                  hint: "download the missing shard or regenerate the index")
        }
        let f = try SafetensorsFile(path: path, displayName: shard)
        files[shard] = f
        return f
    }

    private func entry(_ name: String) throws(CheckpointError) -> (TensorEntry, SafetensorsFile) {
        guard let shard = weightMap[name] else {
            throw CheckpointError(.missingTensor, file: directory, tensor: name, "not in this checkpoint",
                                  hint: "check the tensor name against `moerun inspect`; the checkpoint may be incomplete")
        }
        let f = try file(named: shard)
        guard let e = f.header.entries[name] else {
            throw CheckpointError(.missingTensor, file: shard, tensor: name,
                                  "the index places it in this shard but its header does not list it",
                                  hint: "the index and the shards disagree; regenerate the index")
        }
        return (e, f)
    }

    public func contains(_ name: String) -> Bool { weightMap[name] != nil }

    /// dtype, shape and shard of a tensor (opens that shard's header, maps nothing).
    public func info(_ name: String) throws(CheckpointError) -> TensorInfo {
        let (e, f) = try entry(name)
        return TensorInfo(name: name, dtype: e.dtype, shape: e.shape, file: f.displayName, byteCount: e.byteCount)
    }

    /// Infos of every tensor: opens every shard's header (used by `inspect`; maps nothing).
    public func allInfos() throws(CheckpointError) -> [TensorInfo] {
        var out: [TensorInfo] = []
        out.reserveCapacity(tensorNames.count)
        for name in tensorNames { out.append(try info(name)) }
        return out
    }

    /// Zero-copy bytes of any tensor; records the bytes as touched.
    public func raw(_ name: String) throws(CheckpointError) -> RawTensor {
        let (e, f) = try entry(name)
        let (bytes, owner) = try f.bytes(of: e)
        lock.withLock { touched[name] = e.byteCount }
        return RawTensor(info: TensorInfo(name: name, dtype: e.dtype, shape: e.shape, file: f.displayName, byteCount: e.byteCount),
                         bytes: bytes, owner: owner)
    }

    // MARK: TensorSource

    public func weight(_ name: String) throws -> Weight { try matrix(name) }

    public func vector(_ name: String) throws -> [Float] { try floats(name) }

    /// A 2-D weight view into the mapping. An F8_E4M3 tensor is paired with its `weight_scale_inv` sibling,
    /// whose grid must be [ceil(rows/128), ceil(cols/128)] of finite, non-zero F32 values.
    public func matrix(_ name: String) throws(CheckpointError) -> Weight {
        let t = try raw(name)
        guard t.info.shape.count == 2 else {
            throw CheckpointError(.shapeMismatch, file: t.info.file, tensor: name,
                                  "shape \(t.info.shape) is not 2-D",
                                  hint: "weight() serves matrices [out, in]; use vector() for 1-D tensors")
        }
        let rows = t.info.shape[0], cols = t.info.shape[1]
        switch t.info.dtype {
        case .f32:
            let p = try aligned(t, to: 4)
            return Weight(rows: rows, cols: cols, storage: .f32(p.0.assumingMemoryBound(to: Float.self)), owner: p.1)
        case .bf16:
            let p = try aligned(t, to: 2)
            return Weight(rows: rows, cols: cols, storage: .bf16(p.0.assumingMemoryBound(to: UInt16.self)), owner: p.1)
        case .f16:
            let p = try aligned(t, to: 2)
            return Weight(rows: rows, cols: cols, storage: .f16(p.0.assumingMemoryBound(to: UInt16.self)), owner: p.1)
        case .f8e4m3:
            let scales = try scaleGrid(for: name, rows: rows, cols: cols, weightFile: t.info.file)
            let codes = t.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
            return Weight(rows: rows, cols: cols,
                          storage: .fp8e4m3(codes, scales: scales.0.assumingMemoryBound(to: Float.self)),
                          owner: KeepAlive(t.owner, scales.1))
        default:
            throw CheckpointError(.unsupportedDType, file: t.info.file, tensor: name,
                                  "dtype \(t.info.dtype) cannot be served as a weight matrix",
                                  hint: "weights must be F32, BF16, F16 or F8_E4M3 (+ weight_scale_inv); use raw() for integer tensors")
        }
    }

    /// Name of the block-scale tensor paired with an FP8 weight.
    public static func scaleName(for weightName: String) -> String {
        weightName.hasSuffix(".weight") ? weightName + "_scale_inv" : weightName + ".weight_scale_inv"
    }

    private func scaleGrid(for name: String, rows: Int, cols: Int, weightFile: String) throws(CheckpointError) -> (UnsafeRawPointer, AnyObject) {
        let scaleName = Self.scaleName(for: name)
        guard contains(scaleName) else {
            throw CheckpointError(.missingScale, file: weightFile, tensor: name,
                                  "F8_E4M3 weight without its block scales '\(scaleName)'",
                                  hint: "FP8 checkpoints store a [ceil(out/128), ceil(in/128)] F32 weight_scale_inv next to each FP8 weight")
        }
        let s = try raw(scaleName)
        let expected = [ceilDiv(rows, fp8BlockSize), ceilDiv(cols, fp8BlockSize)]
        guard s.info.dtype == .f32 else {
            throw CheckpointError(.badScale, file: s.info.file, tensor: scaleName, "dtype \(s.info.dtype), expected F32",
                                  hint: "block scales must be stored as F32 multipliers")
        }
        guard s.info.shape == expected else {
            throw CheckpointError(.shapeMismatch, file: s.info.file, tensor: scaleName,
                                  "scale grid \(s.info.shape) does not match weight [\(rows), \(cols)]: expected \(expected) (128x128 blocks, ceil)",
                                  hint: "the scale grid must have one entry per 128x128 block, partial edge blocks included")
        }
        let p = try aligned(s, to: 4)
        let values = p.0.assumingMemoryBound(to: Float.self)
        for i in 0..<(expected[0] * expected[1]) {
            let v = values[i]
            // The FP8 kernels fold 2^56 into each scale (Kernels/Linear.swift FP8Decoder): |scale| < 2^64 keeps that
            // finite with margin; real scales (amax / 448) are far below 1.
            if !v.isFinite || v == 0 || abs(v) >= 0x1p64 {
                let (br, bc) = (i / expected[1], i % expected[1])
                throw CheckpointError(.badScale, file: s.info.file, tensor: scaleName,
                                      "block [\(br), \(bc)] scale is \(v)",
                                      hint: "a block scale must be finite, non-zero and below 2^64 (1.8e19); the quantization step that wrote it failed")
            }
        }
        return (UnsafeRawPointer(values), p.1)
    }

    /// Returns the bytes if suitably aligned (zero copy), else an aligned heap copy (MLX writers do not align).
    private func aligned(_ t: RawTensor, to alignment: Int) throws(CheckpointError) -> (UnsafeRawPointer, AnyObject) {
        guard let base = t.bytes.baseAddress else {
            let block = HeapBlock(byteCount: 0)
            return (UnsafeRawPointer(block.raw), block)
        }
        if Int(bitPattern: base) % alignment == 0 { return (base, t.owner) }
        let block = HeapBlock(byteCount: t.bytes.count)
        block.raw.copyMemory(from: base, byteCount: t.bytes.count)
        return (UnsafeRawPointer(block.raw), block)
    }

    /// A 1-D tensor (norm weight, correction bias) converted to Float.
    public func floats(_ name: String) throws(CheckpointError) -> [Float] {
        let t = try raw(name)
        guard t.info.shape.count == 1 else {
            throw CheckpointError(.shapeMismatch, file: t.info.file, tensor: name, "shape \(t.info.shape) is not 1-D",
                                  hint: "vector() serves 1-D tensors; use weight() for matrices")
        }
        let n = t.info.shape[0]
        let b = t.bytes
        switch t.info.dtype {
        case .f32: return (0..<n).map { b.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        case .bf16: return (0..<n).map { bf16ToFloat(b.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
        case .f16: return (0..<n).map { f16ToFloat(b.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
        case .f8e4m3: return (0..<n).map { fp8E4M3ToFloat(b[$0]) }
        default:
            throw CheckpointError(.unsupportedDType, file: t.info.file, tensor: name,
                                  "dtype \(t.info.dtype) is not a float vector", hint: "use raw() for integer tensors")
        }
    }

    /// Integer tensor (I32, I64, U8) as Int values.
    public func integers(_ name: String) throws(CheckpointError) -> [Int] {
        let t = try raw(name)
        let n = t.info.shape.reduce(1, *)
        let b = t.bytes
        switch t.info.dtype {
        case .i32: return (0..<n).map { Int(b.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
        case .i64: return (0..<n).map { Int(b.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
        case .u8: return (0..<n).map { Int(b[$0]) }
        default:
            throw CheckpointError(.unsupportedDType, file: t.info.file, tensor: name,
                                  "dtype \(t.info.dtype) is not an integer type", hint: "use weight() or vector() for floats")
        }
    }

    // MARK: accounting

    /// Shard files opened so far (header read).
    public var openedFiles: [String] { lock.withLock { files.keys.sorted() } }
    /// Shard files mapped so far (a tensor of them was requested).
    public var mappedFiles: [String] { lock.withLock { files.filter { $0.value.isMapped }.map(\.key).sorted() } }
    /// Sum of the byte sizes of every tensor handed out so far (scales included).
    public var touchedTensorBytes: Int { lock.withLock { touched.values.reduce(0, +) } }
    /// Bytes of all mappings resident in this process (smaps Rss), i.e. what reading actually paged in.
    public func residentMappedBytes() -> Int {
        let all = lock.withLock { Array(files.values) }
        return all.reduce(0) { $0 + $1.residentBytes() }
    }
}

/// Process memory figures from /proc/self/status (Linux).
public enum ProcessMemory {
    /// Current resident set size in bytes (VmRSS), nil where unavailable.
    public static func residentBytes() -> Int? { field("VmRSS:") }
    /// Peak resident set size in bytes (VmHWM).
    public static func peakResidentBytes() -> Int? { field("VmHWM:") }
    /// File-backed resident bytes (RssFile): mapped checkpoint pages land here.
    public static func residentFileBytes() -> Int? { field("RssFile:") }
    /// Memory the kernel can still give this node's processes without swapping (MemAvailable).
    public static func availableBytes() -> Int? { field("MemAvailable:", file: "/proc/meminfo") }

    private static func field(_ key: String, file: String = "/proc/self/status") -> Int? {
        guard let text = readProcFile(file) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }
}
