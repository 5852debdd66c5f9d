// `moerun bench`: prefill and decode throughput of a checkpoint under the launched layout (any pp x ep),
// medians over repetitions, phase shares, all-to-all bytes per token, bandwidth probe; --json for machines.
import ArgumentParser
import Foundation
import Models
import Parallel
import Runtime

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure prefill and decode tokens/s of a checkpoint under the launched layout.",
        discussion: """
            Example: moerun synth --preset deepseek-v3 --size small --out /tmp/ds-small
                     mpirun -np 4 moerun bench --model /tmp/ds-small --plan pp=2,ep=2 --trace t.json
            """)

    @Option(help: "Checkpoint directory (e.g. made by `moerun synth`).")
    var model: String
    @Option(help: "Parallel plan 'pp=P,ep=E' or 'pp=P,dp=D,tp=T' (tensor-parallel groups of T ranks; default: derived from the rank count).")
    var plan: String?
    @Option(help: "Prompt lengths for prefill, comma-separated.")
    var promptLengths = "32,128"
    @Option(help: "Batch sizes for decode, comma-separated.")
    var batchSizes = "1,4,16"
    @Option(help: "Tokens generated per sequence in decode runs.")
    var decodeTokens = 16
    @Option(help: "Measured repetitions per point (median reported).")
    var repetitions = 3
    @Option(help: "Warm-up runs per point.")
    var warmup = 1
    @OptionGroup var compute: ComputeOptions
    @Flag(help: "Print the report as JSON.")
    var json = false
    @Option(help: "Also run the whole benchmark traced and write a Chrome trace (open in Perfetto) here.")
    var trace: String?
    @Flag(help: "Do not read all weights before the first step (they are then read on first use).")
    var noPreload = false
    @OptionGroup var mpi: MPIOptions

    func list(_ text: String, _ name: String) throws -> [Int] {
        let values = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 >= 1 }) else { throw ValidationError("\(name) needs positive integers, e.g. 1,4,16") }
        return values
    }

    func validate() throws {
        _ = try list(promptLengths, "--prompt-lengths")
        _ = try list(batchSizes, "--batch-sizes")
        guard decodeTokens >= 2, repetitions >= 1, warmup >= 0 else {
            throw ValidationError("need --decode-tokens >= 2, --repetitions >= 1, --warmup >= 0")
        }
    }

    func run() throws {
        withWorld(mpi) { world in
            let say = { (line: String) in if world.rank == 0 { emit(line) } }
            guard let (opened, parallelPlan) = openModelAndPlan(world, model: model, plan: plan) else { return 2 }
            var options = EngineOptions()
            compute.apply(to: &options, rank: world.rank)
            options.maxSequencesPerLane = 1 << 16
            let engine = try startEngine(world, opened: opened, plan: parallelPlan, options: options, preload: !noPreload)
            // With --json, stdout carries only the report (the plan summary goes to stderr).
            parallelPlan.summary.forEach { line in
                if json { if world.rank == 0 { printError(line) } } else { say(line) }
            }
            var bench = BenchOptions()
            bench.promptLengths = try list(promptLengths, "--prompt-lengths")
            bench.batchSizes = try list(batchSizes, "--batch-sizes")
            bench.decodeTokens = decodeTokens
            bench.repetitions = repetitions
            bench.warmup = warmup
            let progress: (String) -> Void = { line in
                if world.rank == 0 && !json { printError(line) }
            }
            let report = try Bench.run(engine: engine, world: world, options: bench, progress: progress)
            if let trace {
                // A traced pass over the same points, written as one Chrome trace.
                // Start together, so rank 0's bandwidth probe does not show up as everyone else waiting.
                try world.barrier()
                engine.tracer.clear()
                engine.tracer.isEnabled = true
                for length in bench.promptLengths {
                    _ = try engine.generate(world.rank == 0 ? [GenerationRequest(prompt: Array(repeating: 1, count: length), maxNewTokens: 1)] : [], eosTokens: [])
                }
                for batch in bench.batchSizes {
                    let requests = (0..<batch).map { _ in GenerationRequest(prompt: [1, 2, 3, 4], maxNewTokens: decodeTokens) }
                    _ = try engine.generate(world.rank == 0 ? requests : [], eosTokens: [])
                }
                engine.tracer.isEnabled = false
                let spans = try ChromeTrace.gather(engine.tracer, world)
                if world.rank == 0 {
                    let labels = Dictionary(uniqueKeysWithValues: (0..<world.size).map { r in
                        (r, "rank \(r) (stage \(parallelPlan.stage(of: Rank(r))), lane \(parallelPlan.lane(of: Rank(r))))")
                    })
                    try ChromeTrace.json(spans, rankLabels: labels).write(to: URL(fileURLWithPath: trace))
                }
            }
            if let report {
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    emit(String(decoding: try encoder.encode(report), as: UTF8.self))
                } else {
                    Bench.render(report).forEach(emit)
                    if let trace { emit("wrote trace \(trace)") }
                }
            }
            return 0
        }
    }
}
