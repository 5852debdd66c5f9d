// Real chat templates (DeepSeek-V3, Kimi K2, Qwen3, GLM-4.5) must render byte-identical to transformers 5.23.

import Testing
@testable import Text

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum TemplateFixtures {
    /// Tests/TextTests/X.swift -> Tests/Fixtures/text/templates
    static let dir: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)
        return parts.joined(separator: "/") + "/Fixtures/text/templates"
    }()

    static func read(_ name: String) -> String? {
        guard let f = fopen(dir + "/" + name, "rb") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    struct Entry: Sendable, CustomStringConvertible {
        var template: String
        var cases: String
        var special: [String: String]
        var description: String { template }
    }

    static let manifest: [Entry] = {
        guard let text = read("manifest.json"), let json = try? JSONValue.parse(text),
              case .array(let items) = json else { return [] }
        return items.compactMap { item -> Entry? in
            guard let t = item["template"]?.stringValue, let c = item["cases"]?.stringValue,
                  let s = item["special_tokens"]?.objectValue else { return nil }
            var special: [String: String] = [:]
            for (k, v) in s { special[k] = v.stringValue }
            return Entry(template: t, cases: c, special: special)
        }
    }()
}

@Test func fixtureManifestListsFiveTemplates() {
    #expect(TemplateFixtures.manifest.map(\.template).sorted()
            == ["deepseek-v3.jinja", "glm-4.5.jinja", "kimi-k2-instruct.jinja", "kimi-k2-thinking.jinja", "qwen3.jinja"])
}

@Test(arguments: TemplateFixtures.manifest)
func templateRendersLikeTransformers(_ entry: TemplateFixtures.Entry) throws {
    let source = try #require(TemplateFixtures.read(entry.template))
    let template = try ChatTemplate(source: source, name: entry.template)
    let casesText = try #require(TemplateFixtures.read(entry.cases))
    guard case .array(let cases) = try JSONValue.parse(casesText) else {
        Issue.record("\(entry.cases) is not a JSON array")
        return
    }
    #expect(cases.count >= 20)
    for (i, c) in cases.enumerated() {
        let messages = try #require(c["messages"])
        var extra: [String: JSONValue] = [:]
        for (k, v) in c["extra"]?.objectValue ?? JSONObject() { extra[k] = v }
        let agp = c["add_generation_prompt"] == .bool(true)
        let result = Result { () throws(TextError) -> String in
            try template.render(messages: messages, tools: c["tools"], addGenerationPrompt: agp,
                                specialTokens: entry.special, extra: extra)
        }
        if let expected = c["expected"]?.stringValue {
            switch result {
            case .success(let got):
                #expect(got == expected, "\(entry.template) case \(i)")
            case .failure(let e):
                Issue.record("\(entry.template) case \(i) failed: \(e)")
            }
        } else {
            let pyError = c["error"]?.stringValue ?? ""
            switch result {
            case .success(let got):
                Issue.record("\(entry.template) case \(i) should fail with \(pyError), rendered \(got.prefix(80))")
            case .failure(let e):
                #expect(e.code == .template)
                #expect(e.message.hasSuffix(pyError), "\(entry.template) case \(i): \(e.message) vs \(pyError)")
            }
        }
    }
}

@Test func templateRenderIsFast() throws {
    let source = try #require(TemplateFixtures.read("qwen3.jinja"))
    let template = try ChatTemplate(source: source)
    var messages: [JSONValue] = [.object(JSONObject([("role", .string("system")), ("content", .string("Be brief."))]))]
    for i in 0..<19 {
        messages.append(.object(JSONObject([("role", .string(i % 2 == 0 ? "user" : "assistant")),
                                            ("content", .string("Message number \(i) with some text."))])))
    }
    let conv = JSONValue.array(messages)
    let clock = ContinuousClock()
    let n = 200
    var total = 0
    let elapsed = try clock.measure {
        for _ in 0..<n { total += try template.render(messages: conv, addGenerationPrompt: true).utf8.count }
    }
    #expect(total > 0)
    // Loose bound so debug builds pass; release renders this in well under a millisecond.
    #expect(elapsed / n < .milliseconds(20), "\(elapsed / n) per render")
}
