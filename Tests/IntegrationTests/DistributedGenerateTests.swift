// The distributed engine under real mpirun: every layout reproduces the single-rank run byte for byte
// (tokens and full logits), bad plans fail before loading, and a killed rank ends the job non-zero with
// every survivor saying where it was. Every mpirun has a timeout, so no test can hang.
import Foundation
import Testing
import TestSupport

/// Run `moerun generate` on a fixture with all its prompts and return (result, dump JSON bytes).
func generateDump(_ fixture: String, ranks: Int?, plan: String?, extra: [String] = []) throws -> (ProcessResult, Data?) {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("moerun-\(fixture)-\(ranks ?? 0)-\(plan ?? "default")-\(UUID().uuidString).json").path
    var args = ["generate", "--model", Fixtures.path(fixture), "--prompts", try Fixtures.promptsFile(fixture),
                "--max-new-tokens", "6", "--ignore-eos", "--dump-logits", out, "--collective-timeout", "30", "--max-batch", "2"]
    if let plan { args += ["--plan", plan] }
    let result = try MoerunBinary.run(args + extra, ranks: ranks, timeout: 120)
    defer { try? FileManager.default.removeItem(atPath: out) }
    return (result, FileManager.default.contents(atPath: out))
}

@Suite(.serialized, .enabled(if: MoerunBinary.hasMPIRun)) struct DistributedGenerateTests {
    static let layouts: [(ranks: Int, plan: String)] = [
        (1, "pp=1,ep=1"), (2, "pp=2,ep=1"), (2, "pp=1,ep=2"), (4, "pp=1,ep=4"), (4, "pp=2,ep=2"), (6, "pp=3,ep=2"),
    ]

    @Test(arguments: ["dsv3-tiny-fp32", "kimi-k2-tiny-fp32"])
    func everyLayoutIsBitwiseIdenticalToOneRank(fixture: String) throws {
        let (single, reference) = try generateDump(fixture, ranks: nil, plan: nil)
        #expect(single.exitCode == 0, "\(single.output)")
        let referenceData = try #require(reference)
        // Experts that do not divide the lanes: 8 over 3 (DeepSeek-shaped), 12 over 5 (Kimi-shaped).
        let uneven = fixture.hasPrefix("dsv3") ? (3, "pp=1,ep=3") : (5, "pp=1,ep=5")
        for (ranks, plan) in Self.layouts + [uneven] {
            let (run, dump) = try generateDump(fixture, ranks: ranks, plan: plan)
            #expect(run.exitCode == 0 && !run.timedOut, "\(plan): \(run.output)")
            #expect(dump == referenceData, "\(fixture) \(plan): logits dump differs from the single-rank run")
        }
    }

    /// Tensor parallelism under real mpirun: tp=2, tp=3 (4 heads over 3 ranks), with stages, with two groups, and
    /// both (8 ranks); Kimi K2's 2 heads allow tp=2.
    @Test(arguments: ["dsv3-tiny-fp32", "kimi-k2-tiny-fp32"])
    func tensorParallelLayoutsAreBitwiseIdenticalToOneRank(fixture: String) throws {
        let (single, reference) = try generateDump(fixture, ranks: nil, plan: nil)
        #expect(single.exitCode == 0, "\(single.output)")
        let referenceData = try #require(reference)
        let layouts = [(2, "tp=2"), (4, "pp=2,tp=2"), (4, "pp=1,dp=2,tp=2"), (8, "pp=2,dp=2,tp=2")]
            + (fixture.hasPrefix("dsv3") ? [(3, "tp=3")] : [])
        for (ranks, plan) in layouts {
            let (run, dump) = try generateDump(fixture, ranks: ranks, plan: plan)
            #expect(run.exitCode == 0 && !run.timedOut, "\(plan): \(run.output)")
            #expect(dump == referenceData, "\(fixture) \(plan): logits dump differs from the single-rank run")
        }
    }

    /// The other families under real mpirun: pipeline, expert parallel, both, experts that do not divide the lanes
    /// (8 over 3; Mixtral's 6 over 5), and tensor parallel.
    @Test(arguments: Fixtures.families)
    func familiesAreBitwiseIdenticalToOneRankInEveryLayout(fixture: String) throws {
        let (single, reference) = try generateDump(fixture, ranks: nil, plan: nil)
        #expect(single.exitCode == 0, "\(single.output)")
        let referenceData = try #require(reference)
        let uneven = fixture.hasPrefix("mixtral") ? (5, "pp=1,ep=5") : (3, "pp=1,ep=3")
        // Tensor parallel by KV heads (2 in every fixture); MiniMax-M2's whole-projection QK-norm refuses it by name.
        let tensorParallel = fixture.hasPrefix("minimax") ? [] : [(2, "tp=2"), (4, "pp=2,tp=2"), (4, "pp=1,dp=2,tp=2")]
        if fixture.hasPrefix("minimax") {
            let (run, _) = try generateDump(fixture, ranks: 2, plan: "tp=2")
            #expect(run.exitCode != 0 && run.output.contains("whole projection"), "\(run.output)")
        }
        for (ranks, plan) in [(2, "pp=2,ep=1"), (2, "pp=1,ep=2"), (4, "pp=2,ep=2"), uneven] + tensorParallel {
            let (run, dump) = try generateDump(fixture, ranks: ranks, plan: plan)
            #expect(run.exitCode == 0 && !run.timedOut, "\(plan): \(run.output)")
            #expect(dump == referenceData, "\(fixture) \(plan): logits dump differs from the single-rank run")
        }
    }

    @Test func planThatDoesNotMatchRanksFailsBeforeLoading() throws {
        let (run, _) = try generateDump("dsv3-tiny-fp32", ranks: 3, plan: "pp=2,ep=2")
        #expect(run.exitCode != 0)
        #expect(run.output.contains("needs 4 ranks but 3 were launched"), "\(run.output)")
        #expect(run.output.contains("pp=1,ep=3"))
        #expect(!run.output.contains("rank 0: stage"), "nothing may load for a bad plan")
        let (tooDeep, _) = try generateDump("dsv3-tiny-fp32", ranks: 5, plan: "pp=5,ep=1")
        #expect(tooDeep.exitCode != 0)
        #expect(tooDeep.output.contains("exceed the model's 4 layers"), "\(tooDeep.output)")
    }

    @Test func killedRankEndsTheJobAndSurvivorsSayWhereTheyWere() throws {
        let start = Date()
        let (run, _) = try generateDump("dsv3-tiny-fp32", ranks: 4, plan: "pp=2,ep=2", extra: ["--inject-fault", "kill:2:5", "--collective-timeout", "5"])
        #expect(!run.timedOut)
        #expect(run.exitCode != 0)
        #expect(Date().timeIntervalSince(start) < 5 + 10)
        #expect(run.output.contains("process rank 2"), "the launcher names the lost rank: \(run.output)")
        #expect(run.output.contains("was waiting in"), "survivors report their operation: \(run.output)")
        #expect(run.output.contains("[context: tick"), "survivors report tick / layer context")
    }

    @Test func badRuntimeInputGivesClearErrors() throws {
        let model = Fixtures.path("dsv3-tiny-fp32")
        for (prompt, message) in [("1,2,999", "outside the vocabulary 0..<200"), ("", "is empty"), ("1,x", "'x' (item 2) is not an integer")] {
            let run = try MoerunBinary.run(["generate", "--model", model, "--prompt-ids", prompt], ranks: 2, timeout: 60)
            #expect(run.exitCode != 0)
            #expect(run.output.contains(message), "\(prompt): \(run.output)")
        }
        let long = try MoerunBinary.run(["generate", "--model", model, "--prompt-ids", "1,2", "--max-new-tokens", "200000"], timeout: 60)
        #expect(long.exitCode != 0)
        #expect(long.output.contains("exceeds max_position_embeddings"))
        let missing = try MoerunBinary.run(["generate", "--model", "/nonexistent/model", "--prompt-ids", "1"], timeout: 60)
        #expect(missing.exitCode != 0)
        #expect(missing.output.contains("/nonexistent/model"))
    }
}
