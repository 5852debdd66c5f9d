// `moerun inspect MODEL_DIR | --preset NAME | --compare NAME... [--json]`: figures, tensor accounting and the
// side-by-side comparison of architectures (logic in Runtime.Inspector).
import ArgumentParser
import Foundation
import Models
import Runtime

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show model type, layer kinds, parameters, bytes and KV-cache size of a checkpoint or preset.")

    @Argument(help: "Hugging Face checkpoint directory (config.json + *.safetensors).")
    var modelDir: String?

    @Option(help: ArgumentHelp("Inspect a built-in real-model config instead: \(AnyPreset.names.joined(separator: " | "))."))
    var preset: String?

    @Option(parsing: .upToNextOption, help: "Compare presets and checkpoint directories side by side ('all': every preset).")
    var compare: [String] = []

    @Option(help: "Context length for --compare's KV-cache column.")
    var context = 32768

    @Option(help: "With --compare: also write a picture (SVG) of active parameters against KV-cache bytes per token here.")
    var svg: String?

    @Flag(help: "Machine-readable JSON output.")
    var json = false

    @Flag(help: "Fail unless the MTP layers the config declares are present.")
    var requireMtp = false

    @Option(help: ArgumentHelp("Read the tensors matching this regex and report resident memory.", visibility: .hidden))
    var touch: String?

    func validate() throws {
        if !compare.isEmpty {
            if modelDir != nil || preset != nil { throw ValidationError("--compare takes its models itself: list presets or directories after it") }
            if context < 1 { throw ValidationError("--context must be at least 1") }
            return
        }
        if svg != nil { throw ValidationError("--svg goes with --compare") }
        if (modelDir == nil) == (preset == nil) { throw ValidationError("give either MODEL_DIR, --preset NAME or --compare NAME...") }
        if touch != nil && modelDir == nil { throw ValidationError("--touch needs MODEL_DIR") }
    }

    func run() throws {
        try reportingErrors {
            if !compare.isEmpty {
                let comparison = try Inspector.compare(compare, context: context)
                print(json ? try encode(comparison) : Inspector.render(comparison))
                if let svg {
                    try Inspector.svg(comparison).write(toFile: svg, atomically: true, encoding: .utf8)
                    if !json { print("wrote \(svg)") }
                }
                return
            }
            if let pattern = touch, let dir = modelDir {
                let report = try Inspector.touch(directory: dir, pattern: pattern)
                print(json ? try encode(report) : Inspector.render(report))
                return
            }
            let report = try preset.map { try Inspector.inspect(preset: $0) }
                ?? Inspector.inspect(directory: modelDir!, requireMTP: requireMtp)
            print(json ? try encode(report) : Inspector.render(report))
        }
    }

    private func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
