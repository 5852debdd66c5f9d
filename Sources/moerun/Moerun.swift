// moerun CLI root: subcommands are thin wrappers over Runtime / Models / Parallel.
import ArgumentParser
import Runtime

@main
struct Moerun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "moerun",
        abstract: "Serve DeepSeek-V3 / Kimi K2-class Mixture-of-Experts models across MPI ranks.",
        discussion: """
            Launch under mpirun (or srun) for several ranks; a plain invocation runs as rank 0 of 1.
            Example: mpirun -np 4 --oversubscribe moerun selftest
            """,
        subcommands: [GenerateCommand.self, BenchCommand.self, PlanCommand.self, InspectCommand.self, SynthCommand.self,
                      SelftestCommand.self, ReportCommand.self,
                      TokenizeCommand.self, DetokenizeCommand.self, ChatTemplateCommand.self, ServeCommand.self, BenchServeCommand.self]
    )

    static func main() {
        AllocatorTuning.configure()
        main(nil)
    }
}
