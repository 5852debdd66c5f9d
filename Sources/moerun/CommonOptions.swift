// Options and error handling shared by every subcommand that runs under MPI.
import ArgumentParser
import Foundation
import Parallel
import Runtime

struct MPIOptions: ParsableArguments {
    @Option(name: .long, help: "Seconds a rank may wait in one collective or receive before the job is aborted.")
    var collectiveTimeout: Double = Watchdog.defaultTimeout

    func validate() throws {
        guard collectiveTimeout > 0 else { throw ValidationError("--collective-timeout must be > 0 (got \(collectiveTimeout))") }
    }
}

/// How a rank computes: threads, activation precision, weight layout (bench and generate).
struct ComputeOptions: ParsableArguments {
    @Option(help: "Compute threads per rank (default: cores / ranks on this node, at least 1).")
    var threads: Int?
    @Option(help: "Activations in products with BF16 weights: fp32 (default, exact to transformers' FP32) or bf16 (rounded, bf16 dot-product instructions, ~2x prefill; needs AVX-512 BF16).")
    var matmulPrecision = "fp32"
    @Option(help: "Projection weights in memory: interleaved (default with the AVX-512 kernels: copied into the decode kernels' read order, faster batch-1 decode, same results) or checkpoint (mapped as stored, no copy).")
    var weightLayout: String?

    func validate() throws {
        guard let precision = MatmulPrecision(rawValue: matmulPrecision) else {
            throw ValidationError("--matmul-precision must be fp32 or bf16")
        }
        if let weightLayout, WeightLayout(rawValue: weightLayout) == nil {
            throw ValidationError("--weight-layout must be interleaved or checkpoint")
        }
        if precision == .bf16 && !EngineOptions.bf16DotAvailable {
            throw ValidationError("--matmul-precision bf16 needs a CPU with AVX-512 BF16 (vdpbf16ps); this one has none")
        }
        guard (threads ?? 1) >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    /// Resolves the thread count for this node (rank 0 prints the policy's warning) and sets the engine options.
    func apply(to options: inout EngineOptions, rank: Int) {
        let policy = ThreadPolicy.resolve(requested: threads)
        if let warning = policy.warning, rank == 0 { printError(warning) }
        options.threads = policy.threads
        options.matmulPrecision = MatmulPrecision(rawValue: matmulPrecision) ?? .fp32
        if let layout = weightLayout.flatMap({ WeightLayout(rawValue: $0) }) { options.weightLayout = layout }
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
    } catch let failed as LoadFailed {
        // Every rank agreed that loading failed; each failing rank already printed its reason.
        if world.rank == 0 { reportError(failed) }
        code = 1
    } catch {
        MPIEnvironment.abort(message: "moerun: error on rank \(world.rank): \(error)", code: 1)
    }
    MPIEnvironment.finalize()
    exit(code)
}

/// Print an error the way users should see it: one message, a hint where the error has one, no stack.
func reportError(_ error: Error) {
    let text: String
    switch error {
    case let e as ValidationError: text = e.message
    default: text = String(describing: error)
    }
    printError("moerun: error: \(text)")
}

/// Run a step that can fail differently on different ranks (loading shards) and make every rank agree:
/// if any rank failed, the failing ranks report their error and every rank exits non-zero, none hangs.
func agreeOnLoad<T>(_ world: any Communicator, _ body: () throws -> T) throws -> T {
    var value: T?
    var failure: Error?
    do { value = try body() } catch { failure = error }
    world.setContext("agreeing on load status")
    let failedRanks = try world.allGather([Int32(failure == nil ? 0 : 1)]).enumerated().filter { $0.element != 0 }.map(\.offset)
    if let failure {
        FileHandle.standardError.write("moerun: error on rank \(world.rank): \(failure)\n".data(using: .utf8)!)
    }
    guard failedRanks.isEmpty, let value else {
        throw LoadFailed(ranks: failedRanks)
    }
    return value
}

struct LoadFailed: Error, CustomStringConvertible {
    let ranks: [Int]
    var description: String { "loading failed on rank\(ranks.count == 1 ? "" : "s") \(ranks.map(String.init).joined(separator: ", ")) (see the messages above)" }
}

/// Gather every rank's weight bytes and resident memory and print one line per rank on rank 0.
func printMemory(_ engine: Engine, world: any Communicator, say: (String) -> Void) throws {
    let m = engine.memory()
    let all = try world.allGather([Int64(m.routedExpertBytes), Int64(m.otherWeightBytes), Int64(m.residentBytes)])
    let plan = engine.plan
    for r in 0..<world.size {
        let s = plan.stage(of: Rank(r)), l = plan.lane(of: Rank(r))
        let layers = plan.stageLayers[s], experts = plan.laneExperts[l]
        say("  rank \(r): stage \(s) lane \(l), layers \(layers.lowerBound)..<\(layers.upperBound), experts \(experts.lowerBound)..<\(experts.upperBound): "
            + "routed-expert weights \(formatBytes(Int(all[3 * r]))), other weights \(formatBytes(Int(all[3 * r + 1]))), resident \(formatBytes(Int(all[3 * r + 2])))")
    }
}

func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(n), unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(n) B" : String(format: "%.2f %@", value, units[unit])
}

/// Open the checkpoint and build the plan for the launched ranks. Errors here are identical on every rank
/// (same files, same arguments), so rank 0 reports and every rank returns nil, before anything loads.
func openModelAndPlan(_ world: any Communicator, model: String, plan: String?,
                      check: (OpenedModel) throws -> Void = { _ in }) -> (OpenedModel, ParallelPlan)? {
    do {
        let opened = try ModelLoading.open(model)
        try check(opened)
        // Explicit layers= / experts= counts (from `moerun plan` for unequal nodes) are honoured as given.
        let spec = try plan.map { try ParallelPlan.parseSpec($0, ranks: world.size) }
            ?? { let d = ParallelPlan.defaultShape(ranks: world.size, model: opened.config.shape); return PlanSpec(pp: d.pp, ep: d.ep) }()
        return (opened, try ParallelPlan.make(model: opened.config.shape, ranks: world.size, spec: spec))
    } catch {
        if world.rank == 0 { reportError(error) }
        return nil
    }
}

/// Load this rank's shard (all ranks agree on success) and, unless `preload` is false, read its weights now
/// with a progress meter on rank 0.
func startEngine(_ world: any Communicator, opened: OpenedModel, plan: ParallelPlan, options: EngineOptions,
                 preload: Bool) throws -> Engine {
    // The interleaved layout copies every projection weight here (seconds per GB on a small VM): show it.
    let copying = options.copiesWeights
    var meter: ProgressMeter?
    let engine = try agreeOnLoad(world) {
        try Engine(world: world, config: opened.config, source: opened.checkpoint, plan: plan, options: options) { done, total in
            if meter == nil {
                meter = ProgressMeter(label: copying ? "preparing layers (rank 0)" : "mapping layers (rank 0)", total: total,
                                      enabled: world.rank == 0, format: ProgressMeter.count)
            }
            meter?.update(done)
        }
    }
    let parts = "\(plan.stageLayers[engine.stage].count) decoder layers" + (engine.stage == plan.pp - 1 ? " and the head" : "")
    meter?.finish(copying ? "\(parts), projection weights copied into the interleaved decode layout (--weight-layout checkpoint maps them as stored)"
                          : "\(parts) mapped")
    if preload {
        let meter = ProgressMeter(label: "loading weights (rank 0)", total: engine.weightBytes, enabled: world.rank == 0)
        engine.preload { done, _ in meter.update(done) }
        world.setContext("waiting for every rank to load")
        try world.barrier()
        meter.finish("read \(ProgressMeter.bytes(engine.weightBytes)) of weights")
    }
    return engine
}
