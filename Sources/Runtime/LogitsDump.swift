// LogitsDump: the JSON written by `generate --dump-logits` — the format outside checks read, identical for
// every layout. One prompt: {"prompt", "tokens", "logits", "step_logits"}; several: {"results": [ ...same... ]}.
// "tokens" = generated ids only; "logits" = one full-vocabulary row per prompt position; "step_logits" = the row
// that produced each generated token. Floats are written in Swift's shortest round-trip form.
import Foundation

public enum LogitsDump {
    public static func json(_ results: [GenerationResult]) -> String {
        var out = ""
        out.reserveCapacity(results.reduce(0) { $0 + ($1.promptLogits.count + $1.stepLogits.count) * ($1.stepLogits.first?.count ?? 0) * 12 })
        func ints(_ v: [Int]) { out += "[" + v.map(String.init).joined(separator: ",") + "]" }
        func rows(_ m: [[Float]]) {
            out += "["
            for (i, row) in m.enumerated() {
                if i > 0 { out += ",\n  " }
                out += "["
                for (j, x) in row.enumerated() {
                    if j > 0 { out += "," }
                    out += x.isFinite ? "\(x)" : (x.isNaN ? "null" : (x > 0 ? "1e39" : "-1e39"))
                }
                out += "]"
            }
            out += "]"
        }
        func object(_ r: GenerationResult) {
            out += "{\"prompt\": "
            ints(r.prompt)
            out += ",\n \"tokens\": "
            ints(r.tokens)
            out += ",\n \"finish_reason\": \"\(r.finishReason)\",\n \"logits\": "
            rows(r.promptLogits)
            out += ",\n \"step_logits\": "
            rows(r.stepLogits)
            out += "}"
        }
        if results.count == 1 {
            object(results[0])
        } else {
            out += "{\"results\": ["
            for (i, r) in results.enumerated() {
                if i > 0 { out += ",\n" }
                object(r)
            }
            out += "]}"
        }
        return out + "\n"
    }
}
