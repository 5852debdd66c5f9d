// Watchdog: bounds every blocking wait. A rank that waits past the bound prints one line naming
// itself, the operation, its sequence number and the caller's context label, then aborts the job.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a rank does when a wait exceeds the bound.
public enum WatchdogAction: Sendable {
    /// Print the line and end the whole job (MPI: `MPI_Abort`).
    case abortJob(@Sendable (_ line: String) -> Never)
    /// Print nothing and throw `CommError(.timeout)` (in-process communicator under unit tests).
    case throwError
}

/// Per-process (per-rank for the in-process communicator) watchdog state shared by a communicator
/// and everything split from it. The context label is set by the engine (layer, step).
public final class Watchdog: @unchecked Sendable {
    /// Default bound (seconds) for one blocking wait; `--collective-timeout` overrides it.
    public static let defaultTimeout: Double = 120

    private let lock = NSLock()
    private var _timeout: Double
    private var _context: String = "-"
    private var _sequence: Int = 0
    public let action: WatchdogAction

    public init(timeout: Double = Watchdog.defaultTimeout, action: WatchdogAction) {
        self._timeout = timeout
        self.action = action
    }

    /// Bound in seconds for a single wait.
    public var timeout: Double {
        get { lock.withLock { _timeout } }
        set { lock.withLock { _timeout = newValue } }
    }

    /// Caller-provided label naming where the program is (e.g. "step 3 layer 12 dispatch").
    public var context: String {
        get { lock.withLock { _context } }
        set { lock.withLock { _context = newValue } }
    }

    /// Number the next blocking operation of this rank (all communicators of the rank share one counter).
    func nextSequence() -> Int {
        lock.withLock {
            _sequence += 1
            return _sequence
        }
    }

    /// The one line printed when a wait exceeds the bound.
    func timeoutLine(rank: Int, worldRank: Int, communicator: String, operation: String, sequence: Int) -> String {
        "moerun watchdog: rank \(worldRank) (rank \(rank) of \(communicator)) waited more than "
            + String(format: "%.1f", timeout) + " s in \(operation) #\(sequence) [context: \(context)]; aborting the job"
    }

    /// Poll `isDone` until it returns true or the bound passes. Spins briefly, then yields, then sleeps (longer
    /// once the wait is long), so that oversubscribed ranks (more ranks than cores) still make progress.
    func wait(rank: Int, worldRank: Int, communicator: String, operation: String, sequence: Int,
              _ isDone: () throws -> Bool) throws {
        if try isDone() { return }
        LastWait.record("rank \(worldRank) was waiting in \(operation) #\(sequence) on \(communicator) [context: \(context)]")
        let start = DispatchTime.now().uptimeNanoseconds
        let bound = UInt64(timeout * 1e9)
        var iterations = 0
        while true {
            LastWait.parkIfStopped()
            if try isDone() { return }
            iterations += 1
            if iterations < 200 {
                continue
            } else if iterations < 2000 {
                sched_yield()
            } else {
                // A wait that already took 50 ms (a rank idle while another calibrates or loads) sleeps 1 ms per poll:
                // polling every 50 us took CPU from the busy ranks of the same node.
                usleep(DispatchTime.now().uptimeNanoseconds - start > 50_000_000 ? 1000 : 50)
            }
            if iterations & 15 == 0, DispatchTime.now().uptimeNanoseconds - start > bound {
                let line = timeoutLine(rank: rank, worldRank: worldRank, communicator: communicator,
                                       operation: operation, sequence: sequence)
                switch action {
                case .abortJob(let abort):
                    abort(line)
                case .throwError:
                    throw CommError(.timeout, call: operation, message: line, rank: worldRank,
                                    hint: "a peer did not take part in this operation (skipped collective or lost rank)")
                }
            }
        }
    }
}

/// Last words before this process aborts the job (a watchdog timeout, a fatal error): a server hands the message
/// to its open requests here, so clients get the reason rather than a cut connection. Runs on the aborting thread.
public enum JobAbortHook {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var hook: (@Sendable (String) -> Void)?

    public static func set(_ body: (@Sendable (String) -> Void)?) { lock.withLock { hook = body } }

    /// Runs the hook once (a second abort on the way out finds it cleared).
    public static func run(_ message: String) {
        let body = lock.withLock { () -> (@Sendable (String) -> Void)? in
            defer { hook = nil }
            return hook
        }
        body?(message)
    }
}

/// Where this process last blocked, kept in a fixed C buffer so a signal handler can print it without
/// allocating: when mpirun tears the job down after a rank died, every surviving rank says where it was.
public enum LastWait {
    private static let capacity = 1024
    nonisolated(unsafe) private static let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 1024)
    nonisolated(unsafe) private static var length = 0

    static func record(_ text: String) {
        length = 0
        var n = 0
        for byte in text.utf8 where n < capacity - 1 {
            buffer[n] = byte
            n += 1
        }
        buffer[n] = 10
        length = n + 1
    }

    /// Install a SIGTERM handler that prints the last wait and exits 143 (128 + SIGTERM).
    public static func installTerminationReport() {
        record("no blocking operation had started yet")
        signal(SIGTERM) { _ in
            LastWait.report()
            _exit(143)
        }
    }

    /// Set by `installStopReport`'s handler; a rank that sees it in a blocking wait stops there for good.
    nonisolated(unsafe) static var stopped: sig_atomic_t = 0

    /// As `installTerminationReport`, but the process stays until the launcher's SIGKILL and takes no part in
    /// any further collective (a served job's ranks other than rank 0). OpenMPI sends SIGKILL 1 s after SIGTERM
    /// only while no rank has exited (it sleeps in whole seconds and a SIGCHLD cuts the sleep short), and
    /// rank 0 needs that second to send its clients the reason: so stay, and let rank 0 see the loop stop.
    public static func installStopReport() {
        record("no blocking operation had started yet")
        signal(SIGTERM) { _ in
            LastWait.report()
            LastWait.stopped = 1
        }
    }

    private static func report() {
        let prefix: StaticString = "moerun: terminated by the launcher (another rank failed or the job was aborted); "
        _ = write(2, prefix.utf8Start, prefix.utf8CodeUnitCount)
        _ = write(2, LastWait.buffer, LastWait.length)
    }

    /// Parks the calling thread for good once the stop report has fired (the launcher's SIGKILL ends it).
    static func parkIfStopped() {
        guard stopped != 0 else { return }
        while true { sleep(60) }
    }
}
