// SafetensorsHeader: parse and validate the JSON header of one .safetensors file (no tensor bytes touched).
import Foundation
import Tensors

/// One tensor as described by a safetensors header. Offsets are relative to the data section.
public struct TensorEntry: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let begin: Int
    public let end: Int

    public var byteCount: Int { end - begin }
    public var elementCount: Int { shape.reduce(1, *) }
}

/// The parsed header of a safetensors file.
public struct SafetensorsHeader: Sendable {
    /// Header JSON length N (bytes 0..<8 of the file).
    public let headerLength: Int
    /// Absolute file offset of the data section (8 + N).
    public var dataStart: Int { 8 + headerLength }
    /// Tensors by name.
    public let entries: [String: TensorEntry]
    /// `__metadata__` string map (may be empty).
    public let metadata: [String: String]
    /// Names in data-offset order (how the file is laid out).
    public let namesInFileOrder: [String]

    /// The safetensors format caps headers at 100 MB; anything larger is a corrupt length field.
    public static let maxHeaderLength = 100 << 20

    /// Validates the 8-byte length prefix against the file size and returns N.
    public static func headerLength(prefix: UInt64, fileSize: Int, file: String) throws(CheckpointError) -> Int {
        guard fileSize >= 8 else {
            throw CheckpointError(.truncatedFile, file: file, "file is \(fileSize) bytes, shorter than the 8-byte header length",
                                  hint: "the file is truncated or not safetensors; re-download or re-export it")
        }
        guard prefix <= UInt64(fileSize - 8), prefix <= UInt64(maxHeaderLength) else {
            throw CheckpointError(.headerTooLarge, file: file,
                                  "header length \(prefix) exceeds the \(fileSize - 8) bytes that follow it",
                                  hint: "the file is truncated or not a safetensors file (first 8 bytes must be the little-endian header length)")
        }
        return Int(prefix)
    }

    /// Parses header JSON `json` (N bytes) of a file of `fileSize` bytes and validates every entry.
    public static func parse(json: Data, headerLength: Int, fileSize: Int, file: String) throws(CheckpointError) -> SafetensorsHeader {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: json, options: [])
        } catch {
            throw CheckpointError(.headerNotJSON, file: file, "header (\(headerLength) bytes) is not valid JSON",
                                  hint: "the file is corrupt or not safetensors; re-export it with safetensors.save_file")
        }
        guard let dict = object as? [String: Any] else {
            throw CheckpointError(.headerNotJSON, file: file, "header JSON is not an object",
                                  hint: "a safetensors header maps tensor names to {dtype, shape, data_offsets}")
        }
        let dataSize = fileSize - 8 - headerLength
        var entries: [String: TensorEntry] = [:]
        var metadata: [String: String] = [:]
        entries.reserveCapacity(dict.count)
        for (name, value) in dict {
            if name == "__metadata__" {
                guard let meta = value as? [String: Any] else {
                    throw CheckpointError(.badHeaderEntry, file: file, tensor: name, "__metadata__ is not an object",
                                          hint: "__metadata__ must map strings to strings")
                }
                for (k, v) in meta { metadata[k] = (v as? String) ?? "\(v)" }
                continue
            }
            entries[name] = try parseEntry(name: name, value: value, dataSize: dataSize, file: file)
        }
        let ordered = try checkLayout(entries: entries, dataSize: dataSize, file: file)
        return SafetensorsHeader(headerLength: headerLength, entries: entries, metadata: metadata, namesInFileOrder: ordered)
    }

    private static func parseEntry(name: String, value: Any, dataSize: Int, file: String) throws(CheckpointError) -> TensorEntry {
        guard let e = value as? [String: Any] else {
            throw CheckpointError(.badHeaderEntry, file: file, tensor: name, "header entry is not an object",
                                  hint: "each tensor entry needs dtype, shape and data_offsets")
        }
        guard let dtypeName = e["dtype"] as? String else {
            throw CheckpointError(.badHeaderEntry, file: file, tensor: name, "entry has no string 'dtype'",
                                  hint: "each tensor entry needs dtype, shape and data_offsets")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw CheckpointError(.unknownDType, file: file, tensor: name, "unknown dtype '\(dtypeName)'",
                                  hint: "supported: \(DType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let shapeAny = e["shape"] as? [Any], let shape = intArray(shapeAny), shape.allSatisfy({ $0 >= 0 }) else {
            throw CheckpointError(.badHeaderEntry, file: file, tensor: name, "'shape' is not a list of non-negative integers",
                                  hint: "shape must look like [rows, cols]")
        }
        guard let offAny = e["data_offsets"] as? [Any], let off = intArray(offAny), off.count == 2 else {
            throw CheckpointError(.badHeaderEntry, file: file, tensor: name, "'data_offsets' is not [begin, end]",
                                  hint: "data_offsets must be two integers relative to the data section")
        }
        let (begin, end) = (off[0], off[1])
        guard begin >= 0, end >= begin else {
            throw CheckpointError(.offsetsOutOfRange, file: file, tensor: name,
                                  "data_offsets [\(begin), \(end)] are not an ascending pair of non-negative offsets",
                                  hint: "the header is corrupt; re-export the file")
        }
        var elements = 1
        for d in shape {
            let (m, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw CheckpointError(.byteCountMismatch, file: file, tensor: name, "shape \(shape) overflows",
                                      hint: "the header is corrupt")
            }
            elements = m
        }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteWidth)
        guard !overflow, bytes == end - begin else {
            throw CheckpointError(.byteCountMismatch, file: file, tensor: name,
                                  "holds \(end - begin) bytes but shape \(shape) x \(dtype) needs \(overflow ? -1 : bytes)",
                                  hint: "dtype or shape in the header is wrong; re-export the tensor")
        }
        return TensorEntry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// Sorts by offset; rejects overlaps; distinguishes a truncated file (contiguous layout running past EOF).
    private static func checkLayout(entries: [String: TensorEntry], dataSize: Int, file: String) throws(CheckpointError) -> [String] {
        let sorted = entries.values.sorted { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        if let beyond = sorted.first(where: { $0.end > dataSize }) {
            // A contiguous layout that simply runs past EOF is a truncated file; anything else is a bad offset.
            let described = sorted.map(\.end).max() ?? 0
            let contiguous = sorted.reduce(0) { $0 + $1.byteCount } == described
            if contiguous {
                throw CheckpointError(.truncatedFile, file: file, tensor: beyond.name,
                                      "header describes \(described) data bytes but only \(dataSize) are present",
                                      hint: "the file was cut short (interrupted download or copy); fetch it again")
            }
            throw CheckpointError(.offsetsOutOfRange, file: file, tensor: beyond.name,
                                  "data_offsets [\(beyond.begin), \(beyond.end)] outside the data section of \(dataSize) bytes",
                                  hint: "the header is corrupt; re-export the file")
        }
        var previous: TensorEntry?
        for entry in sorted where entry.byteCount > 0 {
            if let p = previous, entry.begin < p.end {
                throw CheckpointError(.overlappingTensors, file: file, tensor: entry.name,
                                      "bytes [\(entry.begin), \(entry.end)) overlap tensor '\(p.name)' [\(p.begin), \(p.end))",
                                      hint: "the header is corrupt; re-export the file")
            }
            previous = entry
        }
        return sorted.map(\.name)
    }

    private static func intArray(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        out.reserveCapacity(values.count)
        for v in values {
            // JSONSerialization yields NSNumber; objCType tells booleans ("c") and floats ("d"/"f") apart.
            guard let n = v as? NSNumber else { return nil }
            let kind = String(cString: n.objCType)
            if kind == "c" || kind == "B" { return nil }
            if kind == "d" || kind == "f" {
                let d = n.doubleValue
                guard d.rounded() == d, let i = Int(exactly: d) else { return nil }
                out.append(i)
            } else {
                out.append(n.intValue)
            }
        }
        return out
    }
}
