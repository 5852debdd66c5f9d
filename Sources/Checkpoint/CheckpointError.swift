// CheckpointError: the one error type of the Checkpoint room; every case names the file and/or tensor and a fix.

/// A checkpoint could not be read as asked. `description` is one line a user can act on, plus a hint.
public struct CheckpointError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Stable machine-readable reason (tests and `--json` output match on it).
    public enum Code: String, Sendable, Equatable {
        case notFound            // directory or file does not exist / cannot be opened
        case noSafetensors       // directory holds neither an index nor *.safetensors
        case ioError             // read / mmap failed
        case truncatedFile       // file shorter than its own header says
        case headerTooLarge      // header length field beyond the file (or absurdly large)
        case headerNotJSON       // header bytes are not a JSON object
        case badHeaderEntry      // entry lacks dtype / shape / data_offsets or has wrong types
        case unknownDType        // dtype string moerun does not know
        case offsetsOutOfRange   // data_offsets outside the data section
        case overlappingTensors  // two tensors share bytes
        case byteCountMismatch   // end - begin != numel x itemsize
        case badIndex            // model.safetensors.index.json malformed
        case missingShard        // a shard named by the index is absent
        case missingTensor       // asked-for tensor not present
        case unsupportedDType    // tensor dtype cannot be served by this accessor
        case shapeMismatch       // wrong rank / shape for the accessor or the scale grid
        case missingScale        // FP8 weight without its weight_scale_inv sibling
        case badScale            // scale dtype wrong, NaN/Inf, zero or >= 2^64
        case writeFailed         // the writer could not create or fill a file
    }

    public let code: Code
    /// File the problem is in (path as the user gave it, or the shard name).
    public let file: String?
    /// Tensor the problem concerns.
    public let tensor: String?
    /// What is wrong.
    public let message: String
    /// How to fix it.
    public let hint: String

    public init(_ code: Code, file: String? = nil, tensor: String? = nil, _ message: String, hint: String) {
        self.code = code
        self.file = file
        self.tensor = tensor
        self.message = message
        self.hint = hint
    }

    public var description: String {
        var where_: [String] = []
        if let file { where_.append("file '\(file)'") }
        if let tensor { where_.append("tensor '\(tensor)'") }
        let location = where_.isEmpty ? "" : where_.joined(separator: ", ") + ": "
        return "checkpoint error [\(code.rawValue)] \(location)\(message)\n  hint: \(hint)"
    }
}
