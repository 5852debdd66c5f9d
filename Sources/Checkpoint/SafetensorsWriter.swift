// SafetensorsWriter: streams tensors into a .safetensors file (8-byte aligned data start, declared order),
// plus the sharded-checkpoint index. Used by `synth` and by tests that craft files.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Tensors

/// A tensor to be written: name, dtype, shape.
public struct TensorDeclaration: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }
    public var byteCount: Int { shape.reduce(1, *) * dtype.byteWidth }
}

/// Writes one safetensors file: the header for all declared tensors first, then each tensor's bytes in order.
public final class SafetensorsWriter {
    public let path: String
    public let declarations: [TensorDeclaration]
    private var fd: Int32
    private var buffer: UnsafeMutableRawPointer
    private let bufferCapacity = 8 << 20
    private var buffered = 0
    private var current = 0
    private var writtenInCurrent = 0
    /// Bytes written to the file so far (header included).
    public private(set) var bytesWritten = 0

    /// The header bytes (length prefix + JSON padded with spaces so data starts 8-byte aligned).
    public static func header(for declarations: [TensorDeclaration], metadata: [String: String] = ["format": "pt"]) -> [UInt8] {
        var json = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let meta = metadata.keys.sorted().map { "\(quote($0)):\(quote(metadata[$0]!))" }.joined(separator: ",")
            parts.append("\"__metadata__\":{\(meta)}")
        }
        var offset = 0
        for d in declarations {
            let end = offset + d.byteCount
            parts.append("\(quote(d.name)):{\"dtype\":\"\(d.dtype.rawValue)\",\"shape\":[\(d.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        json += parts.joined(separator: ",") + "}"
        var body = Array(json.utf8)
        while (8 + body.count) % 8 != 0 { body.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + body.count)
        withUnsafeBytes(of: UInt64(body.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: body)
        return out
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }

    /// Creates (truncates) `path` and writes the header.
    public init(path: String, declarations: [TensorDeclaration], metadata: [String: String] = ["format": "pt"]) throws(CheckpointError) {
        self.path = path
        self.declarations = declarations
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw CheckpointError(.writeFailed, file: path, "cannot create (\(String(cString: strerror(errno))))",
                                  hint: "check that the output directory exists and is writable")
        }
        buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferCapacity, alignment: 64)
        let head = Self.header(for: declarations, metadata: metadata)
        var failure: CheckpointError?
        head.withUnsafeBytes { b in
            do throws(CheckpointError) { try append(b) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    deinit {
        if fd >= 0 { close(fd) }
        buffer.deallocate()
    }

    /// Name of the tensor whose bytes are expected next (nil when all are written).
    public var nextTensor: TensorDeclaration? { current < declarations.count ? declarations[current] : nil }

    /// Appends bytes of the current tensor (any chunking); advances to the next tensor when one is complete.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        var remaining = bytes
        while !remaining.isEmpty {
            guard let d = nextTensor else {
                throw CheckpointError(.writeFailed, file: path, "more bytes than the declared tensors hold",
                                      hint: "internal error in the writer's caller")
            }
            let take = min(remaining.count, d.byteCount - writtenInCurrent)
            try append(UnsafeRawBufferPointer(rebasing: remaining[..<take]))
            writtenInCurrent += take
            remaining = UnsafeRawBufferPointer(rebasing: remaining[take...])
            if writtenInCurrent == d.byteCount { current += 1; writtenInCurrent = 0 }
        }
        // Zero-size tensors need no bytes; step over them.
        while let d = nextTensor, d.byteCount == 0 { current += 1 }
    }

    /// Convenience: writes the first `count` values (default all) of an array of trivially copyable values.
    public func write<T: BitwiseCopyable>(values: [T], count: Int? = nil) throws(CheckpointError) {
        var failure: CheckpointError?
        let n = (count ?? values.count) * MemoryLayout<T>.stride
        values.withUnsafeBytes { b in
            do throws(CheckpointError) { try write(UnsafeRawBufferPointer(rebasing: b[0..<n])) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    private func append(_ bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        var src = bytes
        while !src.isEmpty {
            let n = min(src.count, bufferCapacity - buffered)
            (buffer + buffered).copyMemory(from: src.baseAddress!, byteCount: n)
            buffered += n
            bytesWritten += n
            src = UnsafeRawBufferPointer(rebasing: src[n...])
            if buffered == bufferCapacity { try flush() }
        }
    }

    private func flush() throws(CheckpointError) {
        var done = 0
        while done < buffered {
            let r = posixWrite(fd, buffer + done, buffered - done)
            if r < 0 {
                if errno == EINTR { continue }
                throw CheckpointError(.writeFailed, file: path, "write failed (\(String(cString: strerror(errno))))",
                                      hint: "check free disk space")
            }
            done += r
        }
        buffered = 0
    }

    /// Flushes and closes; fails if a declared tensor did not receive all its bytes.
    public func finish() throws(CheckpointError) {
        while let d = nextTensor, d.byteCount == 0 { current += 1 }
        if let d = nextTensor {
            throw CheckpointError(.writeFailed, file: path, tensor: d.name, "closed before the tensor was fully written",
                                  hint: "internal error in the writer's caller")
        }
        try flush()
        close(fd)
        fd = -1
    }

    /// Writes `model.safetensors.index.json` for a sharded checkpoint.
    public static func writeIndex(directory: String, weightMap: [String: String], totalSize: Int) throws(CheckpointError) {
        var lines: [String] = []
        for name in weightMap.keys.sorted() { lines.append("    \(quote(name)): \(quote(weightMap[name]!))") }
        let text = "{\n  \"metadata\": {\n    \"total_size\": \(totalSize)\n  },\n  \"weight_map\": {\n"
            + lines.joined(separator: ",\n") + "\n  }\n}\n"
        let path = directory + "/" + CheckpointDirectory.indexFileName
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
            throw CheckpointError(.writeFailed, file: path, "cannot create the index", hint: "check that the directory is writable")
        }
    }
}

/// write(2) outside the class, where `write` would resolve to the method.
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
