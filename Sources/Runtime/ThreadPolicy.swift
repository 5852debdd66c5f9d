// ThreadPolicy: compute threads per rank. Default: the node's cores shared evenly by the ranks on the node
// (no oversubscription); an explicit --threads that oversubscribes the node gets a warning, not a refusal.
import Foundation

public enum ThreadPolicy {
    /// Ranks of this job on this node, from the launcher's environment (Open MPI, MPICH/Hydra, Slurm); 1 if unknown.
    public static func localRanks(_ env: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        for key in ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"] {
            if let v = env[key].flatMap({ Int($0.split(separator: "(").first ?? "") }), v >= 1 { return v }
        }
        return 1
    }

    /// Cores this process may run on.
    public static var cores: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// Threads to use and an optional warning: `requested` wins when given; otherwise max(1, cores / localRanks).
    public static func resolve(requested: Int?, cores: Int = cores, localRanks: Int = localRanks()) -> (threads: Int, warning: String?) {
        guard let requested else { return (max(1, cores / max(localRanks, 1)), nil) }
        if requested * localRanks > cores {
            return (requested, "warning: --threads \(requested) x \(localRanks) rank\(localRanks == 1 ? "" : "s") on this node = "
                        + "\(requested * localRanks) threads on \(cores) cores (oversubscribed: threads will time-share and slow each other down; "
                        + "the default is \(max(1, cores / max(localRanks, 1))))")
        }
        return (requested, nil)
    }
}
