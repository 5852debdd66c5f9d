// The Communicator contract through the real binary under real mpirun (MPICommunicator), plus the
// watchdog path: an injected hang must end the job non-zero, quickly, with a message naming rank and operation.
import Foundation
import Testing
import TestSupport

@Suite(.serialized) struct SelftestUnderMPI {
    @Test func singletonWithoutMPIRunPasses() throws {
        let result = try MoerunBinary.run(["selftest", "--no-bandwidth"], timeout: 60)
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(result.output.contains("selftest: all checks passed"))
        #expect(result.output.contains("1 rank"))
    }

    @Test(.enabled(if: MoerunBinary.hasMPIRun), arguments: [1, 2, 3, 4])
    func everyCollectivePassesUnderMPIRun(ranks: Int) throws {
        let result = try MoerunBinary.run(["selftest", "--repetitions", "3", "--collective-timeout", "30"], ranks: ranks, timeout: 90)
        #expect(!result.timedOut)
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(!result.output.contains("FAIL"))
        for name in ["barrier", "broadcast", "send/recv", "sendAsync", "sendRecv", "allReduce", "allGather", "allGatherV", "allToAll", "allToAllV", "allToAllV-idle", "split"] {
            #expect(result.output.contains("ok    \(name) "), "missing ok line for \(name)")
        }
        #expect(result.output.contains("\(ranks) ranks"))
        #expect(result.output.contains("median us"))
    }

    @Test(.enabled(if: MoerunBinary.hasMPIRun))
    func injectedHangEndsWithWatchdogMessageWithinBound() throws {
        let bound = 2.0
        let result = try MoerunBinary.run(["selftest", "--no-bandwidth", "--collective-timeout", String(bound), "--inject", "hang"],
                                          ranks: 3, timeout: 60)
        #expect(!result.timedOut)
        #expect(result.exitCode != 0)
        #expect(result.output.contains("moerun watchdog: rank"), "\(result.output)")
        #expect(result.output.contains("allReduce") || result.output.contains("allGather"))
        // Process start-up is included; the bound itself is the dominant term.
        #expect(result.seconds < 3 * bound + 3, "took \(result.seconds) s")
    }

    @Test func badInjectValueIsRejectedWithUsage() throws {
        let result = try MoerunBinary.run(["selftest", "--inject", "explode"], timeout: 30)
        #expect(result.exitCode != 0)
        #expect(result.output.contains("unknown --inject 'explode'"))
    }
}
