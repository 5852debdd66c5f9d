// Test helpers: locate the built moerun binary and run it (optionally under mpirun) with a hard timeout,
// so no test can hang.
import Foundation

public struct ProcessResult: Sendable {
    public let exitCode: Int32
    public let output: String
    public let seconds: Double
    public let timedOut: Bool
}

public enum MoerunBinary {
    /// Repository root (this file lives in Tests/TestSupport/).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The moerun executable: $MOERUN_BIN, else next to the running test bundle, else .build/{debug,release}.
    public static var path: String {
        let fm = FileManager.default
        if let explicit = ProcessInfo.processInfo.environment["MOERUN_BIN"], fm.isExecutableFile(atPath: explicit) {
            return explicit
        }
        var candidates: [String] = []
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        candidates.append(bundleDir.appendingPathComponent("moerun").path)
        for config in ["debug", "release"] {
            candidates.append(packageRoot.appendingPathComponent(".build/\(config)/moerun").path)
        }
        return candidates.first { fm.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    /// Whether mpirun is on PATH.
    public static var hasMPIRun: Bool { which("mpirun") != nil }

    public static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Arguments for `mpirun -np N` that work as root and with more ranks than cores.
    public static func mpirunArguments(ranks: Int) -> [String] {
        var args = ["-np", String(ranks), "--oversubscribe", "--bind-to", "none"]
        if getuid() == 0 { args.append("--allow-run-as-root") }
        return args
    }

    /// Run moerun directly (singleton) or under mpirun with `ranks` ranks.
    public static func run(_ arguments: [String], ranks: Int? = nil, timeout: Double = 120,
                           environment: [String: String] = [:]) throws -> ProcessResult {
        if let ranks {
            return try runProcess(which("mpirun") ?? "/usr/bin/mpirun",
                                  mpirunArguments(ranks: ranks) + [path] + arguments, timeout: timeout, environment: environment)
        }
        return try runProcess(path, arguments, timeout: timeout, environment: environment)
    }
}

/// Run a process, capture stdout+stderr, kill its process group if it outlives `timeout`.
public func runProcess(_ executable: String, _ arguments: [String], timeout: Double,
                       environment: [String: String] = [:]) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env["OMPI_MCA_orte_base_help_aggregate"] = "0"
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    process.standardInput = FileHandle.nullDevice
    let collector = OutputCollector()
    pipe.fileHandleForReading.readabilityHandler = { handle in
        let data = handle.availableData
        if !data.isEmpty { collector.append(data) }
    }
    let start = Date()
    try process.run()
    var timedOut = false
    while process.isRunning {
        if Date().timeIntervalSince(start) > timeout {
            timedOut = true
            kill(-process.processIdentifier, SIGKILL)
            process.terminate()
            kill(process.processIdentifier, SIGKILL)
            break
        }
        usleep(20_000)
    }
    process.waitUntilExit()
    pipe.fileHandleForReading.readabilityHandler = nil
    collector.append(pipe.fileHandleForReading.readDataToEndOfFile())
    return ProcessResult(exitCode: process.terminationStatus, output: collector.text,
                         seconds: Date().timeIntervalSince(start), timedOut: timedOut)
}

private final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ chunk: Data) { lock.withLock { data.append(chunk) } }
    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}
