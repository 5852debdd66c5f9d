// `moerun plan (--model DIR | --preset NAME) --cluster FILE [...]`: placement, per-rank memory, predicted tokens/s
// and launch lines (logic in Parallel.ClusterPlanner); `--calibrate` measures this machine into a cluster file.
import ArgumentParser
import Foundation
import Models
import Parallel
import Runtime

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Plan a model on a cluster: pp x ep, ranks on nodes, per-rank memory, predicted tokens/s, launch lines.",
        discussion: """
            Example: moerun plan --preset deepseek-v3 --cluster clusters/cpu16-100g.yaml --batch 32 --context 8192
            Calibrate: launch/local.sh 2 plan --calibrate --cluster-out clusters/local.yaml
            Exit status: 0 when the plan fits, 1 when it does not (the reasons and alternatives are printed).
            """)

    @Option(help: "Hugging Face checkpoint directory (only config.json is read).") var model: String?
    @Option(help: ArgumentHelp("A built-in real-model config: \(AnyPreset.names.joined(separator: " | ")).")) var preset: String?
    @Option(help: "Cluster description (YAML, see clusters/README.md).") var cluster: String?
    @Option(help: "Pipeline stages (default: chosen; with --ep alone, derived).") var pp: Int?
    @Option(help: "Expert-parallel ranks per stage (default: chosen).") var ep: Int?
    @Option(help: "Ranks per tensor-parallel group among a stage's ranks (default: chosen among 1 and the divisors of the ranks per stage up to 8 and up to the (KV) heads; 1: none).") var tp: Int?
    @Option(help: "Sequences served at once.") var batch = 1
    @Option(help: "Tokens per sequence the KV cache holds (prompt + generated).") var context = 4096
    @Option(help: "Prompt tokens prefilled per sequence (default: --context).") var prompt: Int?
    @Option(help: "Micro-batch groups in flight (default: one per stage, as generate).") var microBatches: Int?
    @Option(help: "Weight storage: fp8 | bf16 (default: the checkpoint's; fp8 for presets).") var dtype: String?
    @Option(help: "Compute threads per rank (default: the node's cores / ranks).") var threads: Int?
    @Option(help: "Override ranks on every node of the cluster file.") var ranksPerNode: Int?
    @Option(help: "Write hostfile, rankfile, Slurm host list and mpirun.sh / srun.sh into this directory.") var writeLaunch: String?
    @Option(help: "moerun binary named in the launch lines (default: the cluster file's, or moerun).") var binary: String?
    @Flag(help: "Machine-readable JSON output.") var json = false
    @Flag(help: "Measure this machine (linear GEMM rate, bandwidth, all-to-all under the launched ranks) into --cluster-out.") var calibrate = false
    @Option(help: "With --calibrate: the cluster file to write.") var clusterOut: String?
    @Flag(help: ArgumentHelp("With --calibrate: fewer repetitions (tests).", visibility: .hidden)) var quick = false
    @OptionGroup var mpi: MPIOptions

    func validate() throws {
        if calibrate {
            guard clusterOut != nil else { throw ValidationError("--calibrate needs --cluster-out FILE") }
            return
        }
        if (model == nil) == (preset == nil) { throw ValidationError("give either --model DIR or --preset NAME") }
        guard cluster != nil else { throw ValidationError("--cluster FILE is required (see clusters/)") }
        guard batch >= 1, context >= 1, (prompt ?? 1) >= 1 else { throw ValidationError("--batch, --context and --prompt must be at least 1") }
        if let p = prompt, p > context { throw ValidationError("--prompt \(p) exceeds --context \(context)") }
        if let d = dtype, WeightDType(rawValue: d) == nil { throw ValidationError("--dtype must be fp8 or bf16") }
        for (name, v) in [("--pp", pp), ("--ep", ep), ("--threads", threads), ("--micro-batches", microBatches), ("--ranks-per-node", ranksPerNode)] {
            if let v, v < 1 { throw ValidationError("\(name) must be at least 1") }
        }
    }

    func readCluster(_ path: String) throws -> Cluster {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read cluster file '\(path)' (see clusters/ for examples)")
        }
        var c = try Cluster.decode(yaml: String(decoding: data, as: UTF8.self), file: path)
        if let n = ranksPerNode {
            for i in c.nodes.indices {
                guard n <= c.nodes[i].slots else {
                    throw ClusterError(code: .tooManyRanks, file: path, field: "nodes[\(i)].ranks", line: nil,
                                       message: "--ranks-per-node \(n) exceeds the \(c.nodes[i].slots) slots of \(c.nodes[i].host)",
                                       hint: "raise `slots:` in the cluster file to oversubscribe")
                }
                c.nodes[i].ranks = n
            }
        }
        if let binary { c.launcher.binary = binary }
        return c
    }

    func run() throws {
        if calibrate { runCalibration() }
        try reportingErrors {
            let config: any FamilyConfiguration
            let name: String
            if let preset {
                let p = try AnyPreset.named(preset)
                config = p.decoded.config
                name = p.name
            } else {
                let path = model! + "/config.json"
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw ValidationError("cannot read \(path); --model takes a Hugging Face checkpoint directory")
                }
                config = try ModelFamilies.decode(data, file: path).config
                name = model!
            }
            let cluster = try readCluster(self.cluster!)
            let request = PlanRequest(model: config.shape, specs: config.mainTensorSpecs, modelName: name, modelPath: model ?? "MODEL_DIR",
                                      dtype: dtype.flatMap(WeightDType.init(rawValue:)) ?? (config.isFP8 ? .fp8 : .bf16), cluster: cluster,
                                      workload: Workload(batch: batch, context: context, prompt: prompt, microBatches: microBatches),
                                      pp: pp, ep: ep, tp: tp, threads: threads, launchDirectory: writeLaunch ?? "plan")
            let report = try ClusterPlanner.plan(request)
            if let dir = writeLaunch { try write(report.launch, to: dir, note: "\(name) on \(cluster.name): plan \(report.planSpec)") }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                print(report.render())
            }
            if !report.fits { throw ExitCode(1) }
        }
    }

    func write(_ launch: LaunchCommands, to dir: String, note: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (file, text) in launch.files { try text.write(toFile: dir + "/" + file, atomically: true, encoding: .utf8) }
        try Launch.script(launch.mpirun, note: "written by moerun plan: " + note).write(toFile: dir + "/mpirun.sh", atomically: true, encoding: .utf8)
        try Launch.script(launch.srun, environment: launch.srunEnvironment, note: "written by moerun plan: " + note + " (run inside a Slurm allocation)")
            .write(toFile: dir + "/srun.sh", atomically: true, encoding: .utf8)
    }

    /// Runs under mpirun (or as a singleton): measures, and rank 0 writes the calibrated cluster file.
    func runCalibration() -> Never {
        withWorld(mpi) { world in
            #if DEBUG
            // A debug build's kernels run ~100x slower: its rates would make every prediction wrong.
            if world.rank == 0 && !quick {
                emit("warning: this is a debug build; calibrate with the release build (swift build -c release) for rates the planner can use")
            }
            #endif
            let result = try Calibration.measure(world: world, quick: quick, progress: { if world.rank == 0 { emit($0) } })
            guard world.rank == 0 else { return 0 }
            let base = try cluster.map { try readCluster($0) }
            let calibrated = Calibration.apply(result, to: base)
            try calibrated.yaml().write(toFile: clusterOut!, atomically: true, encoding: .utf8)
            emit(calibrated.calibration ?? "")
            emit("wrote \(clusterOut!)")
            return 0
        }
    }
}
