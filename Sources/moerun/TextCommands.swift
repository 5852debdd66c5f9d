// `moerun tokenize | detokenize | chat-template`: the text layer on its own, from a checkpoint's config.json and
// tokenizer files only (no weights, no MPI), so a tokenizer can be checked without the model at hand.
import ArgumentParser
import Foundation
import Text

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of a text with the checkpoint's tokenizer (or measure its speed with --bench).",
        discussion: """
            Ids are those of encode(text) in Hugging Face tokenizers: the post-processor (e.g. BOS) applied unless --raw.
            Special-token strings inside the text become special tokens, as in the reference encoders.
            Example: moerun tokenize --model DIR --text "Hello world" --json
            """)

    @Option(help: "Checkpoint directory (config.json + tokenizer.json or tiktoken.model; no weights needed).")
    var model: String
    @Option(help: "Text to tokenize.")
    var text: String?
    @Option(help: "File whose whole content (UTF-8) is tokenized.")
    var file: String?
    @Flag(help: "No special tokens added (add_special_tokens=False).")
    var raw = false
    @Flag(help: "Print {\"ids\": [...]} instead of comma-separated ids.")
    var json = false
    @Flag(help: "Measure encode and decode throughput on one thread over --file (by lines and whole).")
    var bench = false
    @Option(help: "Repetitions of each --bench measurement (the median is reported).")
    var repetitions = 5

    func validate() throws {
        if bench {
            guard file != nil, text == nil else { throw ValidationError("--bench measures a --file (give --file F, not --text)") }
            guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
        } else if (text == nil) == (file == nil) {
            throw ValidationError("give exactly one of --text T or --file F")
        }
    }

    func run() throws {
        try reportingErrors {
            let tokenizer = try Tokenizer.load(directory: model)
            let input = try text ?? PromptFiles.readUTF8(file!)
            if bench {
                print(TokenizerBench.run(tokenizer, text: input, repetitions: repetitions, file: file!))
                return
            }
            let ids = tokenizer.encode(input, addSpecialTokens: !raw)
            print(json ? "{\"ids\":[\(ids.map(String.init).joined(separator: ","))]}" : ids.map(String.init).joined(separator: ","))
        }
    }
}

struct DetokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detokenize",
        abstract: "Print the text of token ids with the checkpoint's tokenizer.",
        discussion: "Example: moerun detokenize --model DIR --ids 0,19923,2058 --skip-special")

    @Option(help: "Checkpoint directory (config.json + tokenizer files; no weights needed).")
    var model: String
    @Option(help: "Comma-separated token ids.")
    var ids: String
    @Flag(help: "Leave special tokens out (skip_special_tokens=True).")
    var skipSpecial = false

    func run() throws {
        try reportingErrors {
            let tokenizer = try Tokenizer.load(directory: model)
            let list = try PromptFiles.parseIDs(ids, what: "--ids")
            if let bad = list.first(where: { $0 < 0 || $0 >= tokenizer.vocabularySize }) {
                throw TextError(.badInput, "--ids: token id \(bad) is outside the tokenizer's vocabulary 0..<\(tokenizer.vocabularySize)")
            }
            // The text exactly, without a newline of our own (so output can be compared byte for byte).
            FileHandle.standardOutput.write(Data(tokenizer.decode(list, skipSpecialTokens: skipSpecial).utf8))
        }
    }
}

struct ChatTemplateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-template",
        abstract: "Print a conversation rendered with the checkpoint's chat template, exactly (nothing appended).",
        discussion: """
            FILE.json holds an OpenAI-style messages array (or {"messages": [...], "tools": [...]}).
            Example: moerun chat-template --model DIR --messages chat.json --tools tools.json
            """)

    @Option(help: "Checkpoint directory (config.json + tokenizer_config.json / chat_template.jinja).")
    var model: String
    @Option(help: "JSON file: a messages array, or an object with \"messages\" (and optionally \"tools\").")
    var messages: String
    @Option(help: "JSON file with the tools array (OpenAI function-tool shape).")
    var tools: String?
    @Flag(help: "Leave out the generation prompt (add_generation_prompt=False).")
    var noGenerationPrompt = false
    @Option(help: "Extra template variable as NAME=JSON (repeatable), e.g. --set thinking=true.")
    var set: [String] = []

    func run() throws {
        try reportingErrors {
            let tokenizer = try Tokenizer.load(directory: model)
            let conversation = try Conversation.load(messagesFile: messages, toolsFile: tools)
            let text = try conversation.render(tokenizer: tokenizer, addGenerationPrompt: !noGenerationPrompt,
                                               extra: try Conversation.parseExtra(set))
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}

/// `tokenize --bench`: one thread, median of repetitions, MB/s of UTF-8 input and tokens/s.
enum TokenizerBench {
    static func run(_ tokenizer: Tokenizer, text: String, repetitions: Int, file: String) -> String {
        // Lines split on the byte "\n" (a String sees "\r\n" as one Character), as the reference bench does.
        let lines = text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        let bytes = Double(text.utf8.count)
        func median(_ body: () -> Int) -> (seconds: Double, tokens: Int) {
            var times: [Double] = []
            var tokens = 0
            for _ in 0..<repetitions {
                let start = DispatchTime.now().uptimeNanoseconds
                tokens = body()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            return (times.sorted()[times.count / 2], tokens)
        }
        let byLines = median { lines.reduce(0) { $0 + tokenizer.encode($1, addSpecialTokens: false).count } }
        let whole = median { tokenizer.encode(text, addSpecialTokens: false).count }
        let ids = tokenizer.encode(text, addSpecialTokens: false)
        let decoded = median { tokenizer.decode(ids).utf8.count }
        func row(_ what: String, _ m: (seconds: Double, tokens: Int)) -> String {
            what.padding(toLength: 18, withPad: " ", startingAt: 0) + String(format: " %8.2f MB/s %12.0f tokens/s  (%.4f s median of %d)", bytes / m.seconds / 1e6,
                   Double(ids.count) / m.seconds, m.seconds, repetitions)
        }
        return [
            "tokenizer: \(tokenizer.config.kind), \(tokenizer.vocabularySize) ids; input \(file): \(Int(bytes)) bytes, \(lines.count) lines, \(ids.count) tokens; 1 thread",
            row("encode (by lines)", byLines), row("encode (whole)", whole), row("decode (whole)", decoded),
        ].joined(separator: "\n")
    }
}
