// A client that goes away (mid-stream or while its request still waits in the queue) cancels its engine request;
// a graceful shutdown lets open streams finish.
import Foundation
import MoerunServer
import Testing
import Text

@Suite struct CancellationTests {
    /// Opens a connection, sends `body` to `path`, reads until `until` shows up, then drops it.
    static func dropAfter(_ path: String, _ body: String, port: Int, until: String) async throws -> String {
        try await withCheckedThrowingContinuation { (k: CheckedContinuation<String, any Error>) in
            Thread.detachNewThread {
                do {
                    let c = try RawConnection(port: port)
                    try c.send(RawConnection.requestBytes("POST", path, body: body, headers: [:]))
                    let seen = try c.receive(until: until)
                    c.closeNow()
                    k.resume(returning: seen)
                } catch {
                    k.resume(throwing: error)
                }
            }
        }
    }

    @Test func disconnectMidStreamCancels() async throws {
        let engine = ScriptedEngine { _ in .init(tokens: Array(repeating: Fixture.ids("a")[0], count: 200), delay: .milliseconds(20)) }
        try await withServer(engine) { port in
            let seen = try await Self.dropAfter("/v1/chat/completions", body(["messages": user("x"), "stream": true, "max_tokens": 200]),
                                                port: port, until: "\"content\":\"a")
            #expect(seen.contains("HTTP/1.1 200"))
            #expect(await engine.wait(timeout: .seconds(3)) { $0.cancelled.contains(1) })
        }
    }

    @Test(arguments: [false, true]) func disconnectWhileQueuedCancels(stream: Bool) async throws {
        let engine = ScriptedEngine { _ in .init(tokens: [1], queued: true) }
        try await withServer(engine) { port in
            let c = try RawConnection(port: port)
            try c.send(RawConnection.requestBytes("POST", "/v1/completions", body: body(["prompt": "x", "stream": .bool(stream)]),
                                                  headers: [:]))
            // Dropped only once the request waits in the engine: nothing of the response has been written.
            #expect(await engine.wait { $0.submitted.count == 1 })
            c.closeNow()
            #expect(await engine.wait(timeout: .seconds(3)) { $0.cancelled.contains(1) })
        }
    }

    @Test func shutdownLetsOpenStreamsFinish() async throws {
        let text = "one two three four five six"
        let engine = ScriptedEngine { _ in .init(tokens: Fixture.ids(text) + [Fixture.eos], delay: .milliseconds(30)) }
        let config = ServerConfiguration(port: 0, servedModelName: Fixture.model, modelRoot: Fixture.directory, maxModelLength: 256)
        let server = OpenAIServer(configuration: config, engine: engine, tokenizer: Fixture.tokenizer)
        let run = Task.detached { try await server.run() }
        let port = try #require(await server.listeningPort())
        let response = Task { try await http("POST", "/v1/completions", port: port, body: body(["prompt": "x", "stream": true])) }
        #expect(await engine.wait { $0.submitted.count == 1 })
        server.shutdown()
        let r = try await response.value
        try await run.value
        #expect(r.jsonEvents.compactMap { $0.at("choices.0.text")?.stringValue }.joined() == text)
        #expect(r.events.last == "[DONE]")
        #expect(engine.cancelled.isEmpty)
        // No longer accepting.
        await #expect(throws: (any Error).self) { try await http("GET", "/health", port: port) }
    }
}
