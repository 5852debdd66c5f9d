// The output parsers on their own: the fixture tokenizers' token sequences for DeepSeek-V3 and Kimi K2 tool calls and
// `<think>` reasoning become the right events, incrementally, and cut-off or malformed output never traps.
@testable import MoerunServer
import Testing
import Text

/// What the model writes, per format: text before the calls, two calls, and the calls' expected fields.
struct ToolScript: Sendable, CustomTestStringConvertible {
    var name: String
    var tokenizer: Tokenizer
    var text: String
    var content: String
    /// (name, arguments, id when the model writes it)
    var calls: [(name: String, arguments: String, id: String?)]
    var testDescription: String { name }

    static let weather = #"{"city": "Paris", "unit": "celsius"}"#
    static let time = #"{"zone": "東京 🕒", "format": "24h"}"#

    static let deepseek = ToolScript(
        name: "DeepSeek-V3", tokenizer: ToolFixtures.deepseek,
        text: "Let me check.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n\(weather)\n```<｜tool▁call▁end｜>"
            + "\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n\(time)\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        content: "Let me check.", calls: [("get_weather", weather, nil), ("get_time", time, nil)])

    static let kimi = ToolScript(
        name: "Kimi K2", tokenizer: ToolFixtures.kimi,
        text: "Let me check.<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>\(weather)<|tool_call_end|>"
            + "<|tool_call_begin|> functions.get_time:1 <|tool_call_argument_begin|> \(time)\n<|tool_call_end|><|tool_calls_section_end|>",
        content: "Let me check.", calls: [("get_weather", weather, "functions.get_weather:0"), ("get_time", time, "functions.get_time:1")])

    static let all = [deepseek, kimi]

    var tokens: [Int] { ToolFixtures.ids(text, tokenizer) }
    var splitting: OutputSplitting {
        OutputSplitting(tools: ToolCallFormat.detect(tokenizer), think: ThinkTokens.detect(tokenizer), startsInReasoning: false)
    }
}

/// Runs the parser over `tokens` one by one, as the server does.
func parse(_ tokens: [Int], _ tokenizer: Tokenizer, _ splitting: OutputSplitting,
           skipSpecial: Bool = true) -> (events: [OutputEvent], output: AssembledOutput, calls: Int) {
    var parser = ChatOutputParser(tokenizer: tokenizer, splitting: splitting, skipSpecialTokens: skipSpecial)
    var events: [OutputEvent] = []
    for t in tokens { events += parser.push(t) }
    events += parser.finish()
    var output = AssembledOutput()
    for e in events { output.add(e) }
    return (events, output, parser.toolCallCount)
}

@Suite struct OutputParserTests {
    @Test func formatsAreFoundFromTheTokenizer() throws {
        let ds = ToolFixtures.deepseek
        let deepseek = try #require(ToolCallFormat.detect(ds))
        guard case .deepseekV3(let section, let t) = deepseek else { Issue.record("not DeepSeek: \(deepseek)"); return }
        #expect(section.begin == ds.id(forToken: "<｜tool▁calls▁begin｜>") && section.end == ds.id(forToken: "<｜tool▁calls▁end｜>"))
        #expect(t.separator == ds.id(forToken: "<｜tool▁sep｜>"))
        let kimi = try #require(ToolCallFormat.detect(ToolFixtures.kimi))
        guard case .kimiK2(_, let k) = kimi else { Issue.record("not Kimi: \(kimi)"); return }
        #expect(k.argumentBegin == ToolFixtures.kimi.id(forToken: "<|tool_call_argument_begin|>"))
        // Neither fixture has think tokens; the thinking copies have them as single tokens.
        #expect(ThinkTokens.detect(ds) == nil && ThinkTokens.detect(ToolFixtures.kimi) == nil)
        for tokenizer in [ToolFixtures.deepseekThinking, ToolFixtures.kimiThinking] {
            let think = try #require(ThinkTokens.detect(tokenizer))
            #expect(ToolFixtures.ids("<think>x</think>", tokenizer).first == think.begin)
            #expect(ToolFixtures.ids("<think>x</think>", tokenizer).last == think.end)
        }
    }

    @Test(arguments: ToolScript.all) func markersAreSingleTokens(_ s: ToolScript) {
        let markers = s.name == "Kimi K2"
            ? ["<|tool_calls_section_begin|>", "<|tool_call_begin|>", "<|tool_call_argument_begin|>", "<|tool_call_end|>", "<|tool_calls_section_end|>"]
            : ["<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", "<｜tool▁call▁end｜>", "<｜tool▁calls▁end｜>"]
        for m in markers { #expect(ToolFixtures.ids(m, s.tokenizer) == [s.tokenizer.id(forToken: m)!], "\(m)") }
    }

    @Test(arguments: ToolScript.all) func twoCallsAfterText(_ s: ToolScript) {
        let (events, output, count) = parse(s.tokens, s.tokenizer, s.splitting)
        #expect(output.content == s.content)
        #expect(output.reasoning == "")
        #expect(count == 2)
        #expect(output.toolCalls.map(\.name) == s.calls.map(\.name))
        #expect(output.toolCalls.map(\.arguments) == s.calls.map(\.arguments))
        for (call, expected) in zip(output.toolCalls, s.calls) {
            if let id = expected.id { #expect(call.id == id) } else { #expect(call.id.hasPrefix("chatcmpl-tool-") && call.id.count == 46) }
        }
        // Arguments really stream: several fragments per call, none empty, no broken character.
        let fragments = events.compactMap { if case .arguments(_, let f) = $0 { f } else { nil } }
        #expect(fragments.count > 4)
        #expect(!fragments.contains { $0.isEmpty || $0.contains("\u{FFFD}") })
        // Each call starts before its arguments.
        let firstStart = events.firstIndex { if case .toolCall(0, _, _) = $0 { true } else { false } }
        let firstArgs = events.firstIndex { if case .arguments(0, _) = $0 { true } else { false } }
        #expect(firstStart != nil && firstArgs != nil && firstStart! < firstArgs!)
    }

    /// max_tokens can end the output anywhere: what was parsed stays, nothing traps, nothing is invented.
    @Test(arguments: ToolScript.all) func cutAfterEveryToken(_ s: ToolScript) {
        let tokens = s.tokens
        var callsSeen = 0
        for n in 0...tokens.count {
            let (_, output, _) = parse(Array(tokens.prefix(n)), s.tokenizer, s.splitting)
            func clean(_ t: String) -> String { t.hasSuffix("\u{FFFD}") ? String(t.dropLast()) : t }
            #expect(s.content.hasPrefix(clean(output.content)), "cut at \(n): content \(output.content)")
            #expect(output.toolCalls.count <= s.calls.count)
            for (call, expected) in zip(output.toolCalls, s.calls) {
                #expect(call.name == expected.name, "cut at \(n)")
                #expect(expected.arguments.hasPrefix(clean(call.arguments)), "cut at \(n): \(call.arguments)")
            }
            callsSeen = max(callsSeen, output.toolCalls.count)
        }
        #expect(callsSeen == 2)
    }

    @Test func kimiNamesAndIDs() {
        #expect(KimiK2ToolCalls.name(fromID: "functions.get_weather:0") == "get_weather")
        #expect(KimiK2ToolCalls.name(fromID: "functions.ns.search:12") == "ns.search")
        #expect(KimiK2ToolCalls.name(fromID: "functions.a:b:3") == "a:b")
        #expect(KimiK2ToolCalls.name(fromID: "lookup:0") == "lookup")
        #expect(KimiK2ToolCalls.name(fromID: "functions.:0") == nil)
    }

    @Test func malformedCallsDoNotTrap() {
        let ds = ToolScript.deepseek
        // No json fence: the arguments are taken bare. No newline after the name: a call without arguments.
        let bare = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n{\"a\": 1}<｜tool▁call▁end｜>"
            + "<｜tool▁call▁begin｜>function<｜tool▁sep｜>g<｜tool▁call▁end｜><｜tool▁sep｜>junk<｜tool▁calls▁end｜>after"
        let (_, out, _) = parse(ToolFixtures.ids(bare, ds.tokenizer), ds.tokenizer, ds.splitting)
        #expect(out.toolCalls.map(\.name) == ["f", "g"])
        #expect(out.toolCalls.map(\.arguments) == [#"{"a": 1}"#, ""])
        #expect(out.content == "after")
        // Kimi: a call with no argument marker has no name and is dropped; its index is not used up.
        let k = ToolScript.kimi
        let kimi = "<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_end|>"
            + "<|tool_call_begin|>functions.g:1<|tool_call_argument_begin|>{}<|tool_call_end|><|tool_call_begin|>functions.h"
        let (events, kout, count) = parse(ToolFixtures.ids(kimi, k.tokenizer), k.tokenizer, k.splitting)
        #expect(kout.toolCalls.map(\.name) == ["g"] && count == 1)
        #expect(events.contains(.toolCall(index: 0, id: "functions.g:1", name: "g")))
        // A section that only opens.
        let (_, open, _) = parse(ToolFixtures.ids("Hi<｜tool▁calls▁begin｜>", ds.tokenizer), ds.tokenizer, ds.splitting)
        #expect(open.content == "Hi" && open.toolCalls.isEmpty)
    }

    @Test(arguments: ToolScript.all) func withoutToolsTheMarkupIsContent(_ s: ToolScript) {
        let (events, output, count) = parse(s.tokens, s.tokenizer, .none)
        #expect(count == 0 && output.toolCalls.isEmpty)
        #expect(!events.contains { if case .content = $0 { false } else { true } })
        // Exactly the plain decode: DeepSeek's tool tokens are not special and stay, Kimi's are dropped.
        #expect(output.content == s.tokenizer.decode(s.tokens, skipSpecialTokens: true))
    }

    @Test func reasoningThenContent() throws {
        let tokenizer = ToolFixtures.deepseekThinking
        let think = try #require(ThinkTokens.detect(tokenizer))
        let splitting = OutputSplitting(tools: ToolCallFormat.detect(tokenizer), think: think)
        let (_, out, _) = parse(ToolFixtures.ids("<think>2 + 2 is 4, 答えは四。</think>The answer is 4.", tokenizer), tokenizer, splitting)
        #expect(out.reasoning == "2 + 2 is 4, 答えは四。" && out.content == "The answer is 4.")
        // The prompt opened the reasoning: the output starts inside it.
        var open = splitting
        open.startsInReasoning = true
        let (_, inside, _) = parse(ToolFixtures.ids("Hmm.</think>Four.", tokenizer), tokenizer, open)
        #expect(inside.reasoning == "Hmm." && inside.content == "Four.")
        // Cut before </think>: all of it is reasoning.
        let (_, cut, _) = parse(ToolFixtures.ids("Still thinking", tokenizer), tokenizer, open)
        #expect(cut.reasoning == "Still thinking" && cut.content == "")
        // Stray markers are text: DeepSeek marks them non-special, so they stay visible.
        let (_, stray, _) = parse(ToolFixtures.ids("a</think>b<think>c<think>d</think>e", tokenizer), tokenizer, splitting)
        #expect(stray.content == "a</think>be" && stray.reasoning == "c<think>d")
        // Without think tokens in the vocabulary, <think> is plain text and no reasoning is split off.
        let plain = ToolFixtures.deepseek
        let (_, none, _) = parse(ToolFixtures.ids("<think>x</think>y", plain), plain, ToolScript.deepseek.splitting)
        #expect(none.content == "<think>x</think>y" && none.reasoning == "")
    }

    @Test func prefillDecidesWhereTheOutputStarts() throws {
        let tokenizer = ToolFixtures.deepseekThinking
        let think = try #require(ThinkTokens.detect(tokenizer))
        #expect(think.isOpen(after: ToolFixtures.ids("<｜Assistant｜><think>\n", tokenizer)))
        #expect(!think.isOpen(after: ToolFixtures.ids("<think>old</think><｜Assistant｜>", tokenizer)))
        #expect(!think.isOpen(after: ToolFixtures.ids("<｜Assistant｜>", tokenizer)))
    }

    @Test func kimiThinkingEndsAtTheToolSection() throws {
        let tokenizer = ToolFixtures.kimiThinking
        let splitting = OutputSplitting(tools: ToolCallFormat.detect(tokenizer), think: ThinkTokens.detect(tokenizer))
        let call = "<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{\"x\": 1}<|tool_call_end|><|tool_calls_section_end|>"
        for text in ["<think>I should call f.</think>" + call, "<think>I should call f." + call] {
            let (_, out, _) = parse(ToolFixtures.ids(text, tokenizer), tokenizer, splitting)
            #expect(out.reasoning == "I should call f.", "\(text)")
            #expect(out.content == "")
            #expect(out.toolCalls == [.init(id: "functions.f:0", name: "f", arguments: #"{"x": 1}"#)])
        }
    }

    @Test func coalescing() {
        let events: [OutputEvent] = [.content("a"), .content("b"), .reasoning("c"), .arguments(index: 0, "d"),
                                     .arguments(index: 0, "e"), .arguments(index: 1, "f"), .content("g")]
        #expect(coalesced(events) == [.content("ab"), .reasoning("c"), .arguments(index: 0, "de"), .arguments(index: 1, "f"), .content("g")])
    }
}
