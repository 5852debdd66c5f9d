// The Text room's one error type: every failure names its file / field / position and says how to fix it.

/// An error of the text layer (tokenizer files, chat templates, prompt files).
public struct TextError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// No tokenizer file in the checkpoint directory.
        case missingTokenizer
        /// A file that cannot be read or is not valid UTF-8 / JSON.
        case unreadable
        /// A field that is missing or has the wrong type / value.
        case badField
        /// A component (model type, normalizer, pre-tokenizer, decoder, ...) moerun does not implement.
        case unsupported
        /// A chat template that does not parse or fails while rendering.
        case template
        /// A prompt or message that cannot be used as given (too long, bad ids, bad JSON).
        case badInput
    }
    public var code: Code
    public var message: String
    public var hint: String?

    public init(_ code: Code, _ message: String, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String { hint.map { "\(message) (\($0))" } ?? message }
}
