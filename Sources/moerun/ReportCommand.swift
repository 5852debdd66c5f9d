// `moerun report TRACE`: summarise a Chrome trace written by `generate --trace` or `bench --trace`.
import ArgumentParser
import Runtime

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Where did the time go: per rank and phase, idle per stage, slowest rank per collective.")

    @Argument(help: "Trace file written with --trace.")
    var trace: String

    func run() throws {
        try reportingErrors {
            try TraceReport.read(path: trace).render().forEach(emit)
        }
    }
}
