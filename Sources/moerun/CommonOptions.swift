// Options and error handling shared by every subcommand that runs under MPI.
import ArgumentParser
import Foundation
import Runtime

struct MPIOptions: ParsableArguments {
    @Option(name: .long, help: "Seconds a rank may wait in one collective or receive before the job is aborted.")
    var collectiveTimeout: Double = Watchdog.defaultTimeout

    func validate() throws {
        guard collectiveTimeout > 0 else { throw ValidationError("--collective-timeout must be > 0 (got \(collectiveTimeout))") }
    }
}

/// Print to stdout immediately (ranks' output interleaves through mpirun; unbuffered lines keep it readable).
func emit(_ line: String) {
    FileHandle.standardOutput.write((line + "\n").data(using: .utf8)!)
}

/// Run `body` with the world communicator; any error ends the whole job with a one-line message and a
/// non-zero exit on every rank (MPI_Abort), never a hang.
func withWorld(_ options: MPIOptions, _ body: (any Communicator) throws -> Int32) -> Never {
    let world: MPICommunicator
    do {
        world = try MPIEnvironment.initialize(timeout: options.collectiveTimeout)
    } catch {
        FileHandle.standardError.write("moerun: error: \(error)\n".data(using: .utf8)!)
        exit(2)
    }
    let code: Int32
    do {
        code = try body(world)
    } catch {
        MPIEnvironment.abort(message: "moerun: error on rank \(world.rank): \(error)", code: 1)
    }
    MPIEnvironment.finalize()
    exit(code)
}
