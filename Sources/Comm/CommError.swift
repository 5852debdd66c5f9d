// CommError: every transport failure as one typed error naming the call, the rank and our source location.

/// Why a communication call failed.
public enum CommErrorCode: String, Sendable {
    /// An MPI call returned an error code (message holds `MPI_Error_string`).
    case mpi
    /// A wait exceeded the watchdog bound (in-process communicator; MPI ranks abort instead).
    case timeout
    /// The caller passed inconsistent sizes, ranks or counts.
    case invalidArgument
    /// MPI could not be initialised or was used after finalisation.
    case environment
}

/// A failed communication call: the call, what the library said, the rank and where in our code it happened.
public struct CommError: Error, CustomStringConvertible, Sendable {
    public let code: CommErrorCode
    public let call: String
    public let message: String
    public let rank: Int
    public let file: String
    public let line: Int
    public let hint: String

    public init(_ code: CommErrorCode, call: String, message: String, rank: Int,
                hint: String = "", file: String = #fileID, line: Int = #line) {
        self.code = code
        self.call = call
        self.message = message
        self.rank = rank
        self.hint = hint
        self.file = file
        self.line = line
    }

    public var description: String {
        var text = "rank \(rank): \(call) failed (\(code.rawValue)): \(message) [\(file):\(line)]"
        if !hint.isEmpty { text += "\n  hint: \(hint)" }
        return text
    }
}
