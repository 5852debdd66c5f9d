// Minimal root command for the ckpt branch (the lead's Moerun.swift replaces it at merge; keep the subcommands).
import ArgumentParser

@main
struct Moerun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "moerun",
        abstract: "Serve DeepSeek-V3 / Kimi K2 MoE models across MPI ranks.",
        subcommands: [InspectCommand.self, SynthCommand.self])
}
