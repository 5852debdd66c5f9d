// `moerun selftest`: verify every collective on this launch and print an all-to-all bandwidth table.
import ArgumentParser
import Runtime

struct SelftestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Check every collective (content-verified) on the world and split communicators; measure all-to-all.")

    @OptionGroup var mpi: MPIOptions

    @Option(help: ArgumentHelp("Test-only: inject a fault (hang: the last rank skips a collective).", visibility: .hidden))
    var inject: String?

    @Flag(help: "Skip the all-to-all bandwidth table.")
    var noBandwidth = false

    @Option(help: "Repetitions per bandwidth message size (median reported).")
    var repetitions = 20

    func validate() throws {
        if let inject, InjectedFault(rawValue: inject) == nil {
            throw ValidationError("unknown --inject '\(inject)'; supported: \(InjectedFault.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard repetitions > 0 else { throw ValidationError("--repetitions must be > 0") }
    }

    func run() throws {
        withWorld(mpi) { world in
            var options = SelfTestOptions()
            options.inject = inject.flatMap(InjectedFault.init(rawValue:))
            options.bandwidth = !noBandwidth
            options.repetitions = repetitions
            if options.inject == .hang && world.size < 2 {
                throw ValidationError("--inject hang needs at least 2 ranks (launch with mpirun -np 2 or more)")
            }
            return try SelfTest.run(world: world, options: options, print: emit) ? 0 : 1
        }
    }
}
