// SelfTest: `moerun selftest` — runs the Communicator contract on the world communicator and on split
// sub-communicators with content checks, reports pass/fail per collective on rank 0, then measures
// all-to-all bandwidth at MoE-dispatch message sizes. The result is agreed on by all ranks.
import Comm
import Foundation

/// Faults a test can inject to exercise failure paths.
public enum InjectedFault: String, Sendable, CaseIterable {
    /// The last rank skips one collective, so its peers wait until the watchdog ends the job.
    case hang
}

public struct SelfTestOptions: Sendable {
    public var inject: InjectedFault?
    /// Token counts per rank for the bandwidth table (each token = `hidden` floats).
    public var bandwidthTokens: [Int] = [1, 4, 16, 64, 256]
    public var hidden: Int = 7168
    public var repetitions: Int = 20
    public var warmup: Int = 3
    public var bandwidth: Bool = true

    public init() {}
}

/// One row of the all-to-all bandwidth table.
public struct AllToAllSample: Sendable, Codable {
    public let tokens: Int
    public let bytesPerRank: Int
    public let medianMicroseconds: Double
    public var gigabytesPerSecond: Double { Double(bytesPerRank) / (medianMicroseconds * 1e-6) / 1e9 }
}

public enum SelfTest {
    /// Run every check; `print` is called on rank 0 only. Returns true when every check passed on every rank.
    public static func run(world: any Communicator, options: SelfTestOptions, print: @escaping (String) -> Void) throws -> Bool {
        let say: (String) -> Void = { if world.rank == 0 { print($0) } }
        say("moerun selftest: \(world.size) rank\(world.size == 1 ? "" : "s"), watchdog bound \(String(format: "%.1f", world.watchdog.timeout)) s")
        var allPassed = true

        func report(_ label: String, scope: String, localFailures: [String]) throws {
            // Every rank learns which ranks failed, so the verdict (and exit code) is the same everywhere.
            let flags = try world.allGather([Int32(localFailures.isEmpty ? 1 : 0)])
            let failedRanks = flags.enumerated().filter { $0.element == 0 }.map(\.offset)
            if failedRanks.isEmpty {
                say("  ok    \(label.padding(toLength: 16, withPad: " ", startingAt: 0)) \(scope)")
            } else {
                allPassed = false
                say("  FAIL  \(label.padding(toLength: 16, withPad: " ", startingAt: 0)) \(scope): ranks \(failedRanks)")
            }
            if !localFailures.isEmpty {
                FileHandle.standardError.write("rank \(world.rank): \(label) (\(scope)): \(localFailures.joined(separator: "; "))\n".data(using: .utf8)!)
            }
        }

        for check in CommContract.all {
            world.setContext("selftest \(check.name) on world")
            if options.inject == .hang && check.name == "allReduce" && world.rank == world.size - 1 {
                FileHandle.standardError.write("rank \(world.rank): injected fault: skipping \(check.name)\n".data(using: .utf8)!)
                continue
            }
            try report(check.name, scope: "world (\(world.size) ranks)", localFailures: try check.run(world))
        }

        world.setContext("selftest split")
        let (sub, splitFailures) = try CommContract.splitGroups(world)
        try report("split", scope: "by parity, keys reversed\(world.size > 2 ? ", last rank opts out" : "")", localFailures: splitFailures)
        for check in CommContract.all {
            world.setContext("selftest \(check.name) on split")
            let failures = try sub.map { s in try check.run(s) } ?? []
            try report(check.name, scope: "split sub-communicators", localFailures: failures)
        }

        if options.bandwidth {
            world.setContext("selftest all-to-all bandwidth")
            let samples = try measureAllToAll(world, options: options)
            say("")
            say("all-to-all (MPI_Alltoallv, each rank sends tokens x \(options.hidden) floats spread evenly over \(world.size) ranks)")
            say("  tokens  bytes/rank   median us      GB/s")
            for s in samples {
                say(String(format: "  %6d  %10d  %10.1f  %8.3f", s.tokens, s.bytesPerRank, s.medianMicroseconds, s.gigabytesPerSecond))
            }
        }
        say(allPassed ? "selftest: all checks passed" : "selftest: FAILED")
        return allPassed
    }

    /// Median time of one all-to-all where each rank sends `tokens x hidden` floats split evenly across ranks.
    public static func measureAllToAll(_ comm: any Communicator, options: SelfTestOptions) throws -> [AllToAllSample] {
        var samples: [AllToAllSample] = []
        for tokens in options.bandwidthTokens {
            let totalFloats = tokens * options.hidden
            let per = (0..<comm.size).map { totalFloats / comm.size + ($0 < totalFloats % comm.size ? 1 : 0) }
            let counts = per.map { $0 * 4 }
            let send = [Float](repeating: Float(comm.rank), count: totalFloats)
            // Receive counts mirror the send split because every rank uses the same rule.
            let recvCounts = (0..<comm.size).map { _ in counts[comm.rank] }
            var recv = [Float](repeating: 0, count: recvCounts.reduce(0, +) / 4)
            var times: [Double] = []
            for iteration in 0..<(options.warmup + options.repetitions) {
                try comm.barrier()
                let start = DispatchTime.now().uptimeNanoseconds
                try send.withUnsafeBytes { s in
                    try recv.withUnsafeMutableBytes { try comm.allToAllV(send: s, sendCounts: counts, recv: $0, recvCounts: recvCounts) }
                }
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e3
                if iteration >= options.warmup { times.append(elapsed) }
            }
            // The slowest rank defines the collective's time.
            var slowest = times
            try comm.allReduce(&slowest, op: .max)
            slowest.sort()
            samples.append(AllToAllSample(tokens: tokens, bytesPerRank: counts.reduce(0, +), medianMicroseconds: slowest[slowest.count / 2]))
        }
        return samples
    }
}
