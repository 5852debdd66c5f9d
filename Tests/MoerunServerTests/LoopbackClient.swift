// A minimal HTTP/1.1 client over a loopback TCP socket (blocking calls on a thread of their own): whole
// responses with chunked bodies decoded, server-sent events split, and a raw connection a test can drop mid-stream.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Text

struct HTTPResult: Sendable {
    var status: Int
    /// Lower-cased names.
    var headers: [String: String]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: JSONValue { (try? JSONValue.parse(body)) ?? .null }

    /// The `data:` payloads of a text/event-stream body, in order.
    var events: [String] {
        text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { event in
            event.hasPrefix("data: ") ? String(event.dropFirst(6)) : "<not a data line: \(event)>"
        }
    }
    /// The JSON events before [DONE].
    var jsonEvents: [JSONValue] { events.filter { $0 != "[DONE]" }.map { (try? JSONValue.parse($0)) ?? .string($0) } }
}

struct ClientError: Error, CustomStringConvertible { var description: String }

/// One TCP connection to 127.0.0.1:port.
final class RawConnection: @unchecked Sendable {
    // Only one test task uses a connection at a time; the fd is not shared.
    private let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClientError(description: "socket() failed") }
        var tv = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw ClientError(description: "connect to port \(port) failed") }
    }

    func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw ClientError(description: "write failed") }
            off += n
        }
    }

    /// Up to 64 KiB, empty at EOF.
    func receive() throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n >= 0 else { throw ClientError(description: "read failed or timed out") }
        return Array(buf[..<n])
    }

    /// Reads until `needle` appears in what was received so far (or EOF); returns everything received.
    func receive(until needle: String) throws -> String {
        var got: [UInt8] = []
        while !String(decoding: got, as: UTF8.self).contains(needle) {
            let chunk = try receive()
            if chunk.isEmpty { break }
            got += chunk
        }
        return String(decoding: got, as: UTF8.self)
    }

    func closeNow() { close(fd) }

    static func requestBytes(_ method: String, _ path: String, body: String?, headers: [String: String]) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if let body {
            head += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        }
        return Array((head + "\r\n" + (body ?? "")).utf8)
    }
}

/// Sends one request and reads the whole response (the server closes the connection after it).
func http(_ method: String, _ path: String, port: Int, body: String? = nil,
          headers: [String: String] = [:]) async throws -> HTTPResult {
    try await withCheckedThrowingContinuation { (k: CheckedContinuation<HTTPResult, any Error>) in
        Thread.detachNewThread {
            do {
                let c = try RawConnection(port: port)
                defer { c.closeNow() }
                try c.send(RawConnection.requestBytes(method, path, body: body, headers: headers))
                var raw: [UInt8] = []
                while true {
                    let chunk = try c.receive()
                    if chunk.isEmpty { break }
                    raw += chunk
                }
                k.resume(returning: try parseResponse(raw))
            } catch {
                k.resume(throwing: error)
            }
        }
    }
}

func parseResponse(_ raw: [UInt8]) throws -> HTTPResult {
    let sep: [UInt8] = Array("\r\n\r\n".utf8)
    guard let cut = (0...max(0, raw.count - 4)).first(where: { Array(raw[$0..<min($0 + 4, raw.count)]) == sep }) else {
        throw ClientError(description: "no complete response head in \(raw.count) bytes")
    }
    let lines = String(decoding: raw[..<cut], as: UTF8.self).components(separatedBy: "\r\n")
    let statusParts = lines[0].split(separator: " ")
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw ClientError(description: "bad status line \(lines[0])") }
    var headers: [String: String] = [:]
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    var body = Array(raw[(cut + 4)...])
    if headers["transfer-encoding"]?.lowercased() == "chunked" { body = try dechunk(body) }
    return HTTPResult(status: status, headers: headers, body: body)
}

func dechunk(_ data: [UInt8]) throws -> [UInt8] {
    var out: [UInt8] = [], i = 0
    while i < data.count {
        guard let lineEnd = (i..<data.count - 1).first(where: { data[$0] == 13 && data[$0 + 1] == 10 }) else { break }
        let sizeText = String(decoding: data[i..<lineEnd], as: UTF8.self).split(separator: ";")[0]
        guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
            throw ClientError(description: "bad chunk size '\(sizeText)'")
        }
        if size == 0 { break }
        out += data[(lineEnd + 2)..<(lineEnd + 2 + size)]
        i = lineEnd + 2 + size + 2
    }
    return out
}
