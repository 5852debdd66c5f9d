// Launch: the exact mpirun / srun lines for a plan and the hostfile, rankfile and Slurm host list they name.
// Ranks fill nodes in order (rank = stage * ep + lane), so a stage's lanes share a node whenever they can.
import Foundation

/// Commands as argument words (shell-quoted by `shellLine`) plus the files they reference.
public struct LaunchCommands: Sendable, Codable, Equatable {
    public var mpirun: [String]
    public var srun: [String]
    /// Environment srun needs (SLURM_HOSTFILE for unequal ranks per node).
    public var srunEnvironment: [String: String]
    /// File name (inside the launch directory) -> contents.
    public var files: [String: String]
    public var directory: String
}

public enum Launch {
    /// Arguments for `moerun generate` that realise the plan (the user appends prompts and sampling options).
    public static func generateArguments(spec: PlanSpec, workload: Workload, threads: Int, modelPath: String) -> [String] {
        var args = ["generate", "--model", modelPath, "--plan", spec.text, "--threads", "\(threads)",
                    "--max-batch", "\(workload.sequencesPerLane(ep: spec.ep))"]
        if let m = workload.microBatches { args += ["--micro-batches", "\(m)"] }
        return args
    }

    /// Core binding of rank `i` of `n` on a node (rankfile `slot=`), nil when ranks oversubscribe the cores.
    static func slot(_ node: NodeSpec, index i: Int) -> String? {
        let n = node.ranks
        guard n <= node.cores else { return nil }
        let per = node.cores / n
        let perSocket = node.cores / max(node.sockets, 1)
        if node.sockets > 1, node.cores % node.sockets == 0, perSocket % per == 0 {
            let first = i * per
            let socket = first / perSocket, local = first % perSocket
            return "\(socket):\(local)-\(local + per - 1)"
        }
        return "\(i * per)-\(i * per + per - 1)"
    }

    public static func commands(cluster: Cluster, spec: PlanSpec, workload: Workload, threads: Int, modelPath: String,
                                directory: String) -> LaunchCommands {
        let n = cluster.rankCount
        let generate = [cluster.launcher.binary] + generateArguments(spec: spec, workload: workload, threads: threads, modelPath: modelPath)
        var files: [String: String] = [:]
        files["hostfile"] = cluster.nodes.map { "\($0.host) slots=\($0.ranks)" }.joined(separator: "\n") + "\n"
        let bindable = cluster.nodes.allSatisfy { $0.ranks <= $0.cores }
        var mpirun = ["mpirun", "-np", "\(n)"]
        if cluster.isLocal {
            // One machine: no hostfile; bind each rank to its cores unless ranks outnumber them.
            mpirun += bindable ? ["--map-by", "slot:PE=\(threads)", "--bind-to", "core"] : ["--oversubscribe", "--bind-to", "none"]
        } else if bindable {
            var lines: [String] = []
            var rank = 0
            for node in cluster.nodes {
                for i in 0..<node.ranks {
                    lines.append("rank \(rank)=\(node.host) slot=\(slot(node, index: i)!)")
                    rank += 1
                }
            }
            files["rankfile"] = lines.joined(separator: "\n") + "\n"
            mpirun += ["--hostfile", "\(directory)/hostfile", "--rankfile", "\(directory)/rankfile", "--report-bindings"]
        } else {
            mpirun += ["--hostfile", "\(directory)/hostfile", "--map-by", "slot", "--oversubscribe", "--bind-to", "none"]
        }
        mpirun += cluster.launcher.mpirunArgs + generate

        var srun = ["srun", "--nodes=\(cluster.nodes.count)", "--ntasks=\(n)", "--cpus-per-task=\(threads)", "--mpi=pmix"]
        var env: [String: String] = [:]
        if Set(cluster.nodes.map(\.ranks)).count == 1 {
            srun += ["--ntasks-per-node=\(cluster.nodes[0].ranks)", "--distribution=block:block"]
        } else {
            // Unequal ranks per node: Slurm places rank i on line i of SLURM_HOSTFILE.
            files["slurm-hosts"] = cluster.nodes.flatMap { Array(repeating: $0.host, count: $0.ranks) }.joined(separator: "\n") + "\n"
            env["SLURM_HOSTFILE"] = "\(directory)/slurm-hosts"
            srun += ["--distribution=arbitrary"]
        }
        srun += [bindable ? "--cpu-bind=cores" : "--cpu-bind=none"] + cluster.launcher.srunArgs + generate
        return LaunchCommands(mpirun: mpirun, srun: srun, srunEnvironment: env, files: files, directory: directory)
    }

    /// Words joined into one shell line, quoting what needs it.
    public static func shellLine(_ words: [String], environment: [String: String] = [:]) -> String {
        let quote = { (w: String) -> String in
            w.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,@%+".contains($0) } && !w.isEmpty ? w : "'" + w.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }
        return (environment.sorted { $0.key < $1.key }.map { "\($0.key)=\(quote($0.value))" } + words.map(quote)).joined(separator: " ")
    }

    /// A runnable script for one launcher: fixed arguments from the plan, extra `generate` arguments from "$@".
    /// MOERUN_COMMAND=serve runs `moerun serve` with the same layout instead (both take the plan's options).
    public static func script(_ words: [String], environment: [String: String] = [:], note: String) -> String {
        let rest = shellLine(Array(words.dropFirst())).replacingOccurrences(of: " generate --model ", with: " \"${MOERUN_COMMAND:-generate}\" --model ")
        return """
        #!/usr/bin/env bash
        # \(note)
        # Usage: bash THIS_FILE [generate options, e.g. --prompts FILE --max-new-tokens 64]
        #        MOERUN_COMMAND=serve bash THIS_FILE [serve options, e.g. --port 8000]   (an OpenAI-compatible server)
        set -euo pipefail
        extra=()
        if [ "$(id -u)" -eq 0 ] && [ "\(words.first ?? "")" = mpirun ]; then extra+=(--allow-run-as-root); fi
        exec \(shellLine(Array(words.prefix(1)), environment: environment)) ${extra[@]+"${extra[@]}"} \(rest) "$@"

        """
    }
}
