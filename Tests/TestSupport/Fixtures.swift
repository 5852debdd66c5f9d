// Reference fixtures made by transformers (scripts/fixtures/make_fixtures.py): paths and reference.json access.
import Foundation

public struct FixtureCase: Sendable {
    public let prompt: [Int]
    public let logits: [[Float]]
    public let greedy: [Int]
    public let stepLogits: [[Float]]
}

public enum Fixtures {
    public static let root = MoerunBinary.packageRoot.appendingPathComponent("Tests/Fixtures")
    /// Checkpoints of the families other than DeepSeek-V3 / Kimi K2 (scripts/fixtures/make_family_fixtures.py).
    public static let families = ["qwen3-moe-tiny-fp32", "mixtral-tiny-fp32", "glm4-moe-tiny-fp32", "minimax-m2-tiny-fp32"]
    public static let all = ["dsv3-tiny-fp32", "dsv3-tiny-bf16", "dsv3-fp8", "dsv3-tiny-sharded", "kimi-k2-tiny-fp32"] + families

    public static func path(_ name: String) -> String { root.appendingPathComponent(name).path }

    /// Cases of `reference.json` (`key` = "cases" for the float32 run, "cases_bf16" for transformers' bf16 run).
    public static func cases(_ name: String, key: String = "cases") throws -> [FixtureCase] {
        let data = try Data(contentsOf: root.appendingPathComponent(name).appendingPathComponent("reference.json"))
        let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let raw = object[key] as! [[String: Any]]
        func rows(_ v: Any?) -> [[Float]] { (v as! [[NSNumber]]).map { $0.map(\.floatValue) } }
        return raw.map { c in
            FixtureCase(prompt: (c["prompt"] as! [NSNumber]).map(\.intValue), logits: rows(c["logits"]),
                        greedy: (c["greedy"] as! [NSNumber]).map(\.intValue), stepLogits: rows(c["step_logits"]))
        }
    }

    /// A --prompts file with every case's prompt, one per line.
    public static func promptsFile(_ name: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("moerun-prompts-\(name).txt").path
        let text = try cases(name).map { $0.prompt.map(String.init).joined(separator: ",") }.joined(separator: "\n") + "\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

/// Largest absolute difference between two lists of rows (shapes must match).
public func maxAbsDiff(_ a: [[Float]], _ b: [[Float]]) -> Float {
    precondition(a.count == b.count, "row counts \(a.count) vs \(b.count)")
    var m: Float = 0
    for (x, y) in zip(a, b) {
        precondition(x.count == y.count, "row widths \(x.count) vs \(y.count)")
        for (u, v) in zip(x, y) { m = max(m, abs(u - v)) }
    }
    return m
}
