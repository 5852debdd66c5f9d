// Communicator contract tests on LocalCommunicator (2, 3, 4, 8 ranks); the same checks run under
// real mpirun through `moerun selftest` in IntegrationTests.
import Testing
import Comm

@Suite struct LocalCommunicatorContract {
    @Test(arguments: [1, 2, 3, 4, 8])
    func everyContractCheckPassesOnWorld(ranks: Int) throws {
        let failures = try LocalCommunicator.run(ranks: ranks) { comm in
            try CommContract.all.flatMap { check in try check.run(comm).map { "\(check.name): \($0)" } }
        }
        #expect(failures.allSatisfy { $0.isEmpty }, "\(failures)")
        #expect(failures.count == ranks)
    }

    @Test(arguments: [2, 3, 4, 8])
    func everyContractCheckPassesOnSplitGroups(ranks: Int) throws {
        let failures = try LocalCommunicator.run(ranks: ranks) { comm -> [String] in
            let (sub, splitFailures) = try CommContract.splitGroups(comm)
            guard let sub else { return splitFailures }
            return try splitFailures + CommContract.all.flatMap { check in try check.run(sub).map { "\(check.name): \($0)" } }
        }
        #expect(failures.allSatisfy { $0.isEmpty }, "\(failures)")
    }

    @Test func unevenAllToAllVWithZerosDeliversExactBytes() throws {
        // Rank r sends r+d elements to rank d except nothing to itself: zero-length blocks on the diagonal.
        let received = try LocalCommunicator.run(ranks: 4) { comm -> [[Float]] in
            let blocks = (0..<4).map { d in d == comm.rank ? [] : (0..<(comm.rank + d)).map { Float(comm.rank * 100 + d * 10 + $0) } }
            return try comm.exchange(blocks)
        }
        for (rank, blocks) in received.enumerated() {
            for (src, block) in blocks.enumerated() {
                let expected = src == rank ? [] : (0..<(src + rank)).map { Float(src * 100 + rank * 10 + $0) }
                #expect(block == expected)
            }
        }
    }

    @Test func skippedCollectiveTimesOutNamingOperationAndContext() throws {
        let outcomes = try LocalCommunicator.run(ranks: 3, timeout: 0.5) { comm -> String in
            comm.setContext("step 7 layer 3")
            if comm.rank == 2 { return "skipped" }  // this rank never joins the allReduce
            do {
                _ = try comm.allReduce(Int64(1), op: .sum)
                return "completed"
            } catch let error as CommError {
                return error.message
            }
        }
        #expect(outcomes[2] == "skipped")
        for line in outcomes.prefix(2) {
            #expect(line.contains("allReduce"))
            #expect(line.contains("step 7 layer 3"))
            #expect(line.contains("rank"))
        }
    }

    @Test func mismatchedCountsAreRejectedWithTypedError() throws {
        let errors = try LocalCommunicator.run(ranks: 2) { comm -> String in
            var recv = [UInt8](repeating: 0, count: 4)
            do {
                try [UInt8](repeating: 1, count: 4).withUnsafeBytes { s in
                    try recv.withUnsafeMutableBytes { try comm.allToAllV(send: s, sendCounts: [4, 4], recv: $0, recvCounts: [2, 2]) }
                }
                return "no error"
            } catch let error as CommError {
                return "\(error.code) \(error.call)"
            }
        }
        #expect(errors == ["invalidArgument allToAllV", "invalidArgument allToAllV"])
    }
}
