// Reads a JSON request body field by field: a wrong type names its field, null counts as absent (OpenAI's
// default for every optional field), and a field that no endpoint code read is refused by name.
import Hummingbird
import Text

struct RequestReader {
    let object: JSONObject
    private var consumed: Set<String> = []

    init(_ body: ByteBuffer) throws(APIError) {
        let bytes = Array(body.readableBytesView)
        let value: JSONValue
        do { value = try JSONValue.parse(bytes) } catch {
            throw .invalid("the request body is not valid JSON: \(error.message)", code: "invalid_json")
        }
        guard case .object(let o) = value else { throw .invalid("the request body must be a JSON object", code: "invalid_json") }
        object = o
    }

    /// The raw value, nil when absent or null; marks the field as handled.
    mutating func value(_ key: String) -> JSONValue? {
        consumed.insert(key)
        switch object[key] {
        case nil, .null?: return nil
        case let v?: return v
        }
    }

    mutating func string(_ key: String) throws(APIError) -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw .wrongType(key, "a string") }
        return s
    }

    mutating func bool(_ key: String) throws(APIError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw .wrongType(key, "a boolean") }
        return b
    }

    mutating func int(_ key: String, in range: ClosedRange<Int>? = nil) throws(APIError) -> Int? {
        guard let v = value(key) else { return nil }
        guard let i = Self.integer(v) else { throw .wrongType(key, "an integer") }
        if let range, !range.contains(i) { throw .invalid("'\(key)' must be in \(Self.describe(range)), got \(i)", param: key) }
        return i
    }

    mutating func double(_ key: String, in range: ClosedRange<Double>? = nil, exclusiveLow: Bool = false) throws(APIError) -> Double? {
        guard let v = value(key) else { return nil }
        let d: Double
        switch v {
        case .int(let i): d = Double(i)
        case .double(let x): d = x
        default: throw .wrongType(key, "a number")
        }
        if let range, !range.contains(d) || (exclusiveLow && d == range.lowerBound) {
            let low = exclusiveLow ? "(\(range.lowerBound)" : "[\(range.lowerBound)"
            throw .invalid("'\(key)' must be in \(low), \(range.upperBound)], got \(d)", param: key)
        }
        return d
    }

    /// An object field (stream_options, chat_template_kwargs).
    mutating func object(_ key: String) throws(APIError) -> JSONObject? {
        guard let v = value(key) else { return nil }
        guard case .object(let o) = v else { throw .wrongType(key, "an object") }
        return o
    }

    /// A field whose value is informational only and deliberately not acted on.
    mutating func ignore(_ key: String) { consumed.insert(key) }

    /// Refuses the first field (in the client's order) that was present, non-null and never read.
    func rejectUnread() throws(APIError) {
        for (key, v) in object where !consumed.contains(key) {
            if case .null = v { continue }
            throw .unsupported(key)
        }
    }

    /// JSON integers, and doubles with no fractional part (what JSON encoders of some languages write for 5).
    static func integer(_ v: JSONValue) -> Int? {
        switch v {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.0e18: return Int(d)
        default: return nil
        }
    }

    static func describe(_ r: ClosedRange<Int>) -> String {
        r.upperBound == Int.max ? "[\(r.lowerBound), ...)" : "[\(r.lowerBound), \(r.upperBound)]"
    }
}
