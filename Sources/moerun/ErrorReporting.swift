// CLI error reporting: typed errors print their one-line message + hint on stderr and exit 1, never a stack dump.
import ArgumentParser
import Foundation

/// Prints a line on stderr.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Runs `body`; any thrown error (CheckpointError, ConfigError, ...) becomes its description on stderr and exit code 1.
/// ArgumentParser's own errors (ValidationError, ExitCode) pass through so usage errors keep their usual form.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let exit as ExitCode {
        throw exit
    } catch let usage as ValidationError {
        throw usage
    } catch {
        printError("error: \(error)")
        throw ExitCode(1)
    }
}
