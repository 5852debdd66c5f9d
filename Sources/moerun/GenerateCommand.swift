// `moerun generate`: load a checkpoint over the launched ranks (plan pp x ep), generate for one or more
// prompts, print tokens and tokens/s on rank 0, optionally dump logits and a Chrome trace.
import ArgumentParser
import Foundation
import Models
import Parallel
import Runtime
import Text

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate tokens from a Hugging Face checkpoint across the launched ranks.",
        discussion: """
            Example: mpirun -np 4 moerun generate --model DIR --plan pp=2,ep=2 --prompt-ids 185,175,484 --max-new-tokens 16
            """)

    @Option(help: "Checkpoint directory (config.json + safetensors).")
    var model: String
    @Option(help: "Parallel plan 'pp=P,ep=E' with P x E = launched ranks, or 'pp=P,dp=D,tp=T' (E = D x T: groups of T ranks split the attention, dense FFN, shared expert and head) (default: derived from the rank count); optional 'layers=a:b' / 'experts=x:y' sizes per stage / lane as written by moerun plan.")
    var plan: String?
    @Option(help: "Prompt text for a raw completion (encoded as the tokenizer's encode(text) does, BOS included).")
    var prompt: String?
    @Option(help: "A user message: the checkpoint's chat template is applied, with the generation prompt.")
    var chat: String?
    @Option(help: "System prompt for --chat.")
    var system: String?
    @Option(help: "JSON file with an OpenAI-style messages array (or {\"messages\": [...], \"tools\": [...]}), rendered with the chat template.")
    var messages: String?
    @Option(help: "Prompt as comma-separated token ids, e.g. 185,175,484.")
    var promptIds: String?
    @Option(help: "File with one prompt per line: comma-separated token ids, or JSON {\"prompt\": \"text\"} / {\"messages\": [...]}; blank lines and lines starting with # are skipped.")
    var prompts: String?
    @Option(help: "Stop when the generated text contains this string (repeatable; the string itself is not printed).")
    var stop: [String] = []
    @Flag(help: "Also print the prompt and generated token ids.")
    var showIds = false
    @Option(help: "Write one JSON line per prompt: {\"index\", \"prompt_tokens\", \"tokens\", \"text\", \"finish_reason\"}.")
    var output: String?
    @Option(help: "Tokens to generate per prompt.")
    var maxNewTokens = 16
    @Option(help: "Sampling temperature; 0 = greedy.")
    var temperature: Float = 0
    @Option(help: "Sample among the k most likely tokens (0 = all).")
    var topK = 0
    @Option(help: "Nucleus sampling threshold (1 = off).")
    var topP: Float = 1
    @Option(help: "Sampling seed.")
    var seed: UInt64 = 0
    @Flag(help: "Do not stop at the model's eos token ids.")
    var ignoreEos = false
    @Option(help: "Write generated tokens and full logits as JSON to this file.")
    var dumpLogits: String?
    @Option(help: "Sequences one lane holds at once (continuous batching refills freed slots).")
    var maxBatch = 16
    @Option(help: "Micro-batches in flight (default: one per pipeline stage).")
    var microBatches: Int?
    @OptionGroup var compute: ComputeOptions
    @Option(help: ArgumentHelp("Force one MLA form: naive or absorbed (default: naive prefill, absorbed decode).", visibility: .hidden))
    var attention: String?
    @Option(help: "Write a Chrome trace (open in Perfetto) of every rank's phases to this file.")
    var trace: String?
    @Option(help: ArgumentHelp("Test-only fault: 'kill:RANK:TICK' makes RANK SIGKILL itself at TICK.", visibility: .hidden))
    var injectFault: String?
    @Option(help: "Write expert-load statistics: PREFIX.csv, PREFIX.json, PREFIX-heatmap.svg, PREFIX-ranks.svg.")
    var expertLoad: String?
    @Flag(help: "Do not read all weights before the first step (they are then read on first use).")
    var noPreload = false
    @OptionGroup var mpi: MPIOptions

    var killAt: (rank: Int, tick: Int)? {
        guard let injectFault else { return nil }
        let parts = injectFault.split(separator: ":")
        guard parts.count == 3, parts[0] == "kill", let r = Int(parts[1]), let t = Int(parts[2]) else { return nil }
        return (r, t)
    }

    func validate() throws {
        let given = [prompt, chat, messages, promptIds, prompts].compactMap { $0 }.count
        guard given == 1 else { throw ValidationError("give exactly one of --prompt, --chat, --messages, --prompt-ids or --prompts") }
        if system != nil && chat == nil { throw ValidationError("--system goes with --chat (put a system message in --messages otherwise)") }
        guard maxNewTokens >= 1 else { throw ValidationError("--max-new-tokens must be at least 1") }
        guard maxBatch >= 1 else { throw ValidationError("--max-batch must be at least 1") }
        if let m = microBatches, m < 1 { throw ValidationError("--micro-batches must be at least 1") }
        if let a = attention, AttentionMode(rawValue: a) == nil { throw ValidationError("--attention must be naive or absorbed") }
        if injectFault != nil && killAt == nil { throw ValidationError("--inject-fault takes kill:RANK:TICK") }
        guard temperature >= 0, topK >= 0, topP > 0, topP <= 1 else { throw ValidationError("need temperature >= 0, top-k >= 0, 0 < top-p <= 1") }
    }

    /// The prompts as the user gave them, before tokenization.
    func readInputs() throws -> [PromptLine] {
        let single: PromptInput
        if let promptIds { single = .ids(try PromptFiles.parseIDs(promptIds, what: "--prompt-ids"), origin: "--prompt-ids") }
        else if let prompt { single = .text(prompt, origin: "--prompt") }
        else if let chat { single = .messages(Conversation.single(user: chat, system: system), origin: "--chat") }
        else if let messages { single = .messages(try Conversation.load(messagesFile: messages, toolsFile: nil), origin: messages) }
        else { return try PromptFiles.read(prompts!) }
        return [PromptLine(input: single, settings: PromptSettings())]
    }

    func run() throws {
        withWorld(mpi) { world in
            let say = { (line: String) in if world.rank == 0 { emit(line) } }
            // Input and plan errors are the same on every rank: rank 0 reports, all exit 2 before loading.
            var requests: [GenerationRequest] = []
            var tokenizer: Tokenizer?
            var tokenizerNote: String?
            guard let (opened, parallelPlan) = openModelAndPlan(world, model: model, plan: plan, check: { opened in
                let inputs = try readInputs()
                let defaults = SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: seed)
                (requests, tokenizer, tokenizerNote) = try TextRequests.make(inputs, model: model, maxNewTokens: maxNewTokens,
                                                                             sampling: defaults, maxContext: opened.config.maxPositionEmbeddings)
                try RequestValidation.check(requests, config: opened.config)
            }) else { return 2 }
            if !opened.unknownKeys.isEmpty { say("note: config.json keys not used by moerun: \(opened.unknownKeys.joined(separator: ", "))") }
            if let tokenizerNote { say(tokenizerNote) }
            parallelPlan.summary.forEach(say)

            var options = EngineOptions()
            options.sampling = SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: seed)
            options.keepLogits = dumpLogits != nil
            options.maxSequencesPerLane = maxBatch
            options.microBatches = microBatches
            compute.apply(to: &options, rank: world.rank)
            options.trace = trace != nil
            options.attention = attention.flatMap(AttentionMode.init(rawValue:))
            options.killAt = killAt
            let engine = try startEngine(world, opened: opened, plan: parallelPlan, options: options, preload: !noPreload)
            try printMemory(engine, world: world, say: say)

            // Generation config eos ids (a list for some models) when the tokenizer files give them, else config.json's.
            let eos: Set<Int> = ignoreEos ? [] : Set(tokenizer?.config.eosTokenIDs ?? opened.config.eosIDs)
            let output = TextOutput(tokenizer: tokenizer, requests: requests.count, stops: stop, showIDs: showIds)
            let results = try engine.generate(world.rank == 0 ? requests : [], eosTokens: eos) { request, token in
                output.received(request: request, token: token)
            }
            if let results {
                output.finish(results, say: say)
                if let path = self.output {
                    try output.jsonLines(results).write(toFile: path, atomically: true, encoding: .utf8)
                    say("wrote \(path)")
                }
                let s = engine.lastStats
                say(String(format: "generated %d tokens for %d prompt%@ in %.3f s: %.1f tokens/s overall; prefill %.1f tokens/s (first token after %.3f s), decode %.1f tokens/s",
                           s.generatedTokens, s.sequences, s.sequences == 1 ? "" : "s", s.seconds, Double(s.generatedTokens) / max(s.seconds, 1e-9),
                           s.prefillTokensPerSecond, s.firstTokenSeconds, s.decodeTokensPerSecond))
                if let dumpLogits {
                    try LogitsDump.json(results).write(toFile: dumpLogits, atomically: true, encoding: .utf8)
                    say("wrote \(dumpLogits)")
                }
            }
            if let expertLoad {
                // Collective on every rank; only rank 0 gets the report back.
                if let load = try engine.expertLoad() {
                    let paths = try load.write(prefix: expertLoad)
                    say(String(format: "expert load: balance (mean/max per rank) %.2f..%.2f over %d MoE layers; wrote %@",
                               load.balance.min() ?? 1, load.balance.max() ?? 1, load.layers.count, paths.joined(separator: ", ")))
                }
            }
            world.setContext("gathering resident memory")
            let rss = try world.allGather([Int64(residentMemoryBytes())])
            say("resident memory after generation: " + rss.enumerated().map { "rank \($0.offset) \(formatBytes(Int($0.element)))" }.joined(separator: ", "))
            if let trace {
                let spans = try ChromeTrace.gather(engine.tracer, world)
                if world.rank == 0 {
                    let labels = Dictionary(uniqueKeysWithValues: (0..<world.size).map { r in
                        (r, "rank \(r) (stage \(parallelPlan.stage(of: Rank(r))), lane \(parallelPlan.lane(of: Rank(r))))")
                    })
                    try ChromeTrace.json(spans, rankLabels: labels).write(to: URL(fileURLWithPath: trace))
                    say("wrote trace \(trace) (\(spans.count) spans; open in https://ui.perfetto.dev)")
                }
            }
            return 0
        }
    }
}
