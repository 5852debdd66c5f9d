// Text in and out through the real binary: tokenize / detokenize / chat-template on the reference fixtures,
// generate with text prompts on a synthetic model under mpirun (same text for every layout, stop strings),
// and every bad text input ending non-zero on every rank with a message that names the offender.
import Foundation
import Testing
import TestSupport

/// A tiny synthetic DeepSeek-V3-shaped checkpoint with its tokenizer, made once per test process.
let synthTextModel: String = {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("moerun-text-model-\(getpid())").path
    let run = try? MoerunBinary.run(["synth", "--preset", "deepseek-v3", "--size", "tiny", "--seed", "3", "--quiet", "--out", dir], timeout: 120)
    precondition(run?.exitCode == 0, "synth failed: \(run?.output ?? "did not start")")
    return dir
}()

/// A copy of the synthetic model's tokenizer files (no weights), with `edit` applied to one file.
func brokenTokenizerDir(_ file: String, _ edit: (String) -> String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("moerun-broken-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for name in ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
        var text = try String(contentsOfFile: synthTextModel + "/" + name, encoding: .utf8)
        if name == file { text = edit(text) }
        try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
    }
    return dir
}

let textFixtures = Fixtures.root.appendingPathComponent("text").path

@Suite(.serialized) struct TextCommandTests {
    @Test func tokenizeMatchesTheReferenceIdsAndDetokenizeInvertsIt() throws {
        for name in ["dsv3-bpe", "kimi-tiktoken"] {
            let dir = textFixtures + "/" + name
            // Line 2 of the corpus and the reference's ids for it (scripts/fixtures/gen_text_fixtures.py).
            let corpus = try String(contentsOfFile: textFixtures + "/corpus.txt", encoding: .utf8)
            let line = String(decoding: corpus.utf8.split(separator: 0x0A, omittingEmptySubsequences: false)[1], as: UTF8.self)
            let expected = try String(contentsOfFile: dir + "/expected.jsonl", encoding: .utf8).split(separator: "\n")[1]
            let reference = try JSONSerialization.jsonObject(with: Data(expected.utf8)) as! [String: Any]
            let ids = (reference["ids"] as! [Int]).map(String.init).joined(separator: ",")
            let raw = (reference["raw"] as! [Int]).map(String.init).joined(separator: ",")
            let json = try MoerunBinary.run(["tokenize", "--model", dir, "--text", line, "--json"], timeout: 60)
            #expect(json.exitCode == 0 && json.output == "{\"ids\":[\(ids)]}\n", "\(name): \(json.output)")
            let plain = try MoerunBinary.run(["tokenize", "--model", dir, "--text", line, "--raw"], timeout: 60)
            #expect(plain.output == raw + "\n", "\(name): \(plain.output)")
            let back = try MoerunBinary.run(["detokenize", "--model", dir, "--ids", raw], timeout: 60)
            #expect(back.exitCode == 0 && back.output == line, "\(name): \(back.output)")
        }
    }

    @Test func chatTemplatePrintsExactlyTheRenderedText() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("moerun-chat-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let messages = dir + "/m.json"
        try #"[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]"#.write(toFile: messages, atomically: true, encoding: .utf8)
        let run = try MoerunBinary.run(["chat-template", "--model", synthTextModel, "--messages", messages], timeout: 60)
        #expect(run.exitCode == 0, "\(run.output)")
        #expect(run.output == "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜>", "\(run.output)")
        let bare = try MoerunBinary.run(["chat-template", "--model", synthTextModel, "--messages", messages, "--no-generation-prompt"], timeout: 60)
        #expect(bare.output == "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi")
    }

    @Test(.enabled(if: MoerunBinary.hasMPIRun)) func textGenerationIsTheSameForEveryLayoutAndStops() throws {
        func generate(_ ranks: Int, _ plan: String, _ extra: [String]) throws -> ProcessResult {
            try MoerunBinary.run(["generate", "--model", synthTextModel, "--plan", plan, "--max-new-tokens", "12", "--ignore-eos",
                                  "--collective-timeout", "30", "--show-ids"] + extra, ranks: ranks, timeout: 120)
        }
        func generated(_ output: String) -> String {
            output.split(separator: "\n").first { $0.hasPrefix("prompt 0: [") }.map(String.init) ?? "none"
        }
        for input in [["--prompt", "The quick brown fox"], ["--chat", "Hello!", "--system", "Be brief."]] {
            let one = try generate(1, "pp=1,ep=1", input)
            #expect(one.exitCode == 0, "\(one.output)")
            #expect(one.output.contains("[12 tokens, length]"), "\(one.output)")
            let four = try generate(4, "pp=2,ep=2", input)
            #expect(four.exitCode == 0, "\(four.output)")
            #expect(generated(one.output) == generated(four.output) && generated(one.output) != "none")
        }
        // A stop string taken from the text the model produces ends the request there, unprinted.
        let free = try generate(1, "pp=1,ep=1", ["--prompt", "The quick brown fox"])
        let ids = generated(free.output).components(separatedBy: "-> ").last!.components(separatedBy: " (").first!
        let text = try MoerunBinary.run(["detokenize", "--model", synthTextModel, "--ids", ids, "--skip-special"], timeout: 60).output
        let scalars = Array(text.unicodeScalars)
        let stop = String(String.UnicodeScalarView(scalars[(scalars.count / 2)..<min(scalars.count / 2 + 3, scalars.count)]))
        let stopped = try generate(2, "pp=1,ep=2", ["--prompt", "The quick brown fox", "--stop", stop])
        #expect(stopped.exitCode == 0, "\(stopped.output)")
        #expect(stopped.output.contains(", stop: "), "\(stopped.output)")
        let shown = stopped.output.components(separatedBy: "\n")
        #expect(!shown.contains { $0.contains(stop) && !$0.hasPrefix("[") && !$0.hasPrefix("prompt 0") }, "stop text printed: \(stopped.output)")
    }

    @Test(.enabled(if: MoerunBinary.hasMPIRun)) func badTextInputEndsEveryRankWithAClearError() throws {
        func fails(_ args: [String], _ message: String, ranks: Int? = 2) throws {
            let mpi = args[0] == "generate" ? ["--collective-timeout", "20"] : []
            let run = try MoerunBinary.run(args + mpi, ranks: ranks, timeout: 90)
            #expect(!run.timedOut, "\(args): hung")
            #expect(run.exitCode != 0, "\(args): \(run.output)")
            #expect(run.output.contains(message), "\(args): expected '\(message)' in \(run.output)")
        }
        // No tokenizer files: which files were looked for, and that ids still work.
        let noTokenizer = Fixtures.path("dsv3-tiny-fp32")
        try fails(["generate", "--model", noTokenizer, "--prompt", "hello"], "tokenizer.json")
        try fails(["generate", "--model", noTokenizer, "--prompt", "hello"], "--prompt-ids")
        // Malformed tokenizer.json names the field; an unsupported pre-tokenizer names its type.
        let merges = try brokenTokenizerDir("tokenizer.json") { $0.replacingOccurrences(of: "\"merges\":[", with: "\"merges\":[7,") }
        try fails(["tokenize", "--model", merges, "--text", "hi"], "merges[0]", ranks: nil)
        let meta = try brokenTokenizerDir("tokenizer.json") { $0.replacingOccurrences(of: "\"type\":\"ByteLevel\",\"use_regex\"", with: "\"type\":\"Metaspace\",\"use_regex\"") }
        try fails(["tokenize", "--model", meta, "--text", "hi"], "Metaspace", ranks: nil)
        // A template syntax error gives line and column, on every rank of a generate run.
        let template = try brokenTokenizerDir("tokenizer_config.json") { text in
            text.replacingOccurrences(of: "\"chat_template\":\"", with: "\"chat_template\":\"line one\\n{% if %}")
        }
        let messages = FileManager.default.temporaryDirectory.appendingPathComponent("moerun-msg-\(UUID().uuidString).json").path
        try #"[{"role": "user", "content": "Hi"}]"#.write(toFile: messages, atomically: true, encoding: .utf8)
        try fails(["chat-template", "--model", template, "--messages", messages], ":2:", ranks: nil)
        // A prompt file that is not UTF-8 names the file and the byte offset.
        let prompts = FileManager.default.temporaryDirectory.appendingPathComponent("moerun-latin1-\(UUID().uuidString).txt").path
        try Data(Array("{\"prompt\": \"caf".utf8) + [0xE9, 0x22, 0x7D, 0x0A]).write(to: URL(fileURLWithPath: prompts))
        try fails(["generate", "--model", synthTextModel, "--prompts", prompts], "byte offset 15")
        // A text prompt longer than the context says how long it is and what the limit is.
        try fails(["generate", "--model", synthTextModel, "--prompt", "one two three four five", "--max-new-tokens", "163838"],
                  "more than the model's context of 163840")
    }
}
