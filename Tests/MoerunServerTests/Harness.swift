// Shared setup for the HTTP-layer tests: the fixture tokenizer, a server on a free loopback port around each
// test body, and request bodies built as JSON text.
import Foundation
import MoerunServer
import Testing
import Text

enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/text/dsv3-bpe").path
    static let tokenizer: Tokenizer = {
        do { return try Tokenizer.load(directory: directory) } catch { fatalError("fixture tokenizer: \(error)") }
    }()
    static let model = "test-model"
    static let maxModelLength = 256
    static var eos: Int { tokenizer.config.eosTokenIDs[0] }

    /// Token ids of `text` without BOS, as the scripted engine "generates" them.
    static func ids(_ text: String) -> [Int] { tokenizer.encode(text, addSpecialTokens: false) }
}

/// Runs `body` against a live server on 127.0.0.1 (free port), then shuts the server down gracefully.
func withServer<T>(_ engine: ScriptedEngine, tokenizer: Tokenizer = Fixture.tokenizer,
                   configure: (inout ServerConfiguration) -> Void = { _ in },
                   _ body: (Int) async throws -> T) async throws -> T {
    var config = ServerConfiguration(host: "127.0.0.1", port: 0, servedModelName: Fixture.model,
                                     modelRoot: Fixture.directory, maxModelLength: Fixture.maxModelLength)
    configure(&config)
    let server = OpenAIServer(configuration: config, engine: engine, tokenizer: tokenizer)
    let run = Task.detached { try await server.run() }
    guard let port = await server.listeningPort() else {
        try await run.value
        throw ClientError(description: "the server stopped before it listened")
    }
    do {
        let result = try await body(port)
        server.shutdown()
        try await run.value
        return result
    } catch {
        server.shutdown()
        _ = try? await run.value
        throw error
    }
}

/// A JSON body from key/value pairs, in order.
func body(_ pairs: KeyValuePairs<String, JSONValue>) -> String {
    JSONValue.object(JSONObject(pairs.map { ($0.key, $0.value) })).serialized()
}

func user(_ text: String) -> JSONValue {
    .array([.object(JSONObject([("role", .string("user")), ("content", .string(text))]))])
}

extension JSONValue {
    /// Path lookup for assertions: "choices.0.delta.content".
    func at(_ path: String) -> JSONValue? {
        var v: JSONValue? = self
        for part in path.split(separator: ".") {
            if let i = Int(part), case .array(let a)? = v { v = i < a.count ? a[i] : nil } else { v = v?[String(part)] }
        }
        return v
    }
    var int: Int? { if case .int(let i) = self { return i } else { return nil } }
}

// Literals keep the request bodies in the tests readable (test target only: Text's API stays as it is).
extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}
