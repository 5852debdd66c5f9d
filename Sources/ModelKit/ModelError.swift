// Errors of the Model room: a code, a message that says how to fix it, and the offending tensor/field.

public struct ModelError: Error, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        case missingTensor, shapeMismatch, unsupportedConfig, badInput, expertNotLocal, cacheMismatch
    }
    public let code: Code
    public let message: String
    /// The tensor name, config field or argument concerned.
    public let subject: String

    public init(_ code: Code, _ message: String, subject: String = "") {
        self.code = code
        self.message = message
        self.subject = subject
    }

    public var description: String {
        subject.isEmpty ? "[\(code.rawValue)] \(message)" : "[\(code.rawValue)] \(subject): \(message)"
    }
}
