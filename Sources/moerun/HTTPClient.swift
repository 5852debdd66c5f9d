// A small blocking HTTP/1.1 client over POSIX sockets for `moerun bench-serve`: one request per connection,
// body bytes handed over as they arrive (chunked transfer decoded), server-sent events split into data payloads.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What went wrong talking to the server, in words that name the address and the step.
struct HTTPClientError: Error, CustomStringConvertible {
    var description: String
}

/// `http://HOST[:PORT][/PREFIX]`: where the server is and the path prefix requests go under.
struct HTTPEndpoint: Sendable, CustomStringConvertible {
    var host: String
    var port: Int
    /// Without a trailing slash; "" for the root.
    var prefix: String

    init(_ url: String) throws {
        // TLS is out of scope: the benchmark talks to a server on the same network, as vLLM's usually does.
        guard url.hasPrefix("http://") else {
            throw HTTPClientError(description: "--url '\(url)' must start with http:// (https is not supported)")
        }
        let rest = url.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        var path = String(rest.dropFirst(authority.count))
        while path.hasSuffix("/") { path.removeLast() }
        prefix = path
        // [v6::addr]:port, host:port, or host.
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            port = after.hasPrefix(":") ? Int(after.dropFirst()) ?? -1 : 80
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            port = Int(authority[authority.index(after: colon)...]) ?? -1
        } else {
            host = String(authority)
            port = 80
        }
        guard !host.isEmpty, (1...65535).contains(port) else {
            throw HTTPClientError(description: "--url '\(url)' has no usable host and port")
        }
    }

    var description: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(prefix)" }
}

/// Status and lower-cased header names of a response.
struct HTTPResponseHead: Sendable {
    var status: Int
    var headers: [String: String]
}

/// One TCP connection (one request, `Connection: close`); owned by a single thread.
final class HTTPConnection {
    private let fd: Int32
    private let endpoint: HTTPEndpoint

    /// Resolves the host (name or literal address, IPv4 or IPv6) and connects to the first address that answers.
    init(_ endpoint: HTTPEndpoint, timeoutSeconds: Int) throws {
        self.endpoint = endpoint
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(endpoint.host, String(endpoint.port), &hints, &list)
        guard rc == 0, let first = list else {
            throw HTTPClientError(description: "cannot resolve \(endpoint.host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError: Int32 = 0
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let a = node {
            let s = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            if s >= 0 {
                if connect(s, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 {
                    // A stuck server must not hang the benchmark: every read and write gives up after the timeout.
                    var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
                    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                    var one: Int32 = 1
                    setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                    fd = s
                    return
                }
                lastError = errno
                close(s)
            } else {
                lastError = errno
            }
            node = a.pointee.ai_next
        }
        throw HTTPClientError(description: "cannot connect to \(endpoint): \(String(cString: strerror(lastError)))")
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else {
                throw HTTPClientError(description: "sending to \(endpoint) failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// Up to 64 KiB; empty at end of stream.
    func receive() throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n >= 0 else {
            let why = errno == EAGAIN || errno == EWOULDBLOCK ? "no data within the timeout" : String(cString: strerror(errno))
            throw HTTPClientError(description: "reading from \(endpoint) failed: \(why)")
        }
        return Array(buffer[..<n])
    }
}

enum HTTPClient {
    /// Sends one request and hands every piece of the (de-chunked) body to `onBody` as it arrives; returns the head.
    /// `onBody` returns false to stop reading early.
    static func send(_ method: String, _ path: String, to endpoint: HTTPEndpoint, json: String? = nil,
                     headers: [String: String] = [:], timeoutSeconds: Int = 600,
                     onHead: (HTTPResponseHead) -> Void = { _ in },
                     onBody: ([UInt8]) throws -> Bool) throws -> HTTPResponseHead {
        let connection = try HTTPConnection(endpoint, timeoutSeconds: timeoutSeconds)
        let host = endpoint.host.contains(":") ? "[\(endpoint.host)]" : endpoint.host
        var head = "\(method) \(endpoint.prefix)\(path) HTTP/1.1\r\nHost: \(host):\(endpoint.port)\r\n"
            + "Connection: close\r\nAccept: */*\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if let json { head += "Content-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n" }
        try connection.send(Array((head + "\r\n" + (json ?? "")).utf8))

        // The head: everything up to the first blank line.
        var pending: [UInt8] = []
        var cut: Int?
        while cut == nil {
            let got = try connection.receive()
            if got.isEmpty { throw HTTPClientError(description: "\(endpoint) closed the connection before a response to \(method) \(path)") }
            let searchFrom = max(0, pending.count - 3)
            pending += got
            cut = findHeadEnd(pending, from: searchFrom)
        }
        let response = try parseHead(pending[..<cut!], endpoint: endpoint)
        onHead(response)
        var framing: BodyFraming
        if response.headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            framing = .chunked(ChunkedDecoder())
        } else if let length = response.headers["content-length"].flatMap({ Int($0) }) {
            framing = .length(length)
        } else {
            framing = .untilClose
        }
        var bytes = Array(pending[(cut! + 4)...])
        while true {
            let (piece, finished) = try framing.take(bytes)
            if !piece.isEmpty, try !onBody(piece) { return response }
            if finished { return response }
            bytes = try connection.receive()
            if bytes.isEmpty {
                if case .untilClose = framing { return response }
                throw HTTPClientError(description: "\(endpoint) closed the connection in the middle of the response to \(method) \(path)")
            }
        }
    }

    /// A whole response: status and body.
    static func fetch(_ method: String, _ path: String, to endpoint: HTTPEndpoint, json: String? = nil,
                      headers: [String: String] = [:], timeoutSeconds: Int = 60) throws -> (status: Int, body: [UInt8]) {
        var body: [UInt8] = []
        let head = try send(method, path, to: endpoint, json: json, headers: headers, timeoutSeconds: timeoutSeconds) {
            body += $0
            return true
        }
        return (head.status, body)
    }

    static func findHeadEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= 4 else { return nil }
        var i = start
        while i + 3 < bytes.count {
            if bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { return i }
            i += 1
        }
        return nil
    }

    static func parseHead(_ bytes: ArraySlice<UInt8>, endpoint: HTTPEndpoint) throws -> HTTPResponseHead {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        let parts = lines.first?.split(separator: " ") ?? []
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
            throw HTTPClientError(description: "\(endpoint) did not answer with HTTP (first line: '\(lines.first ?? "")')")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" })
        }
        return HTTPResponseHead(status: status, headers: headers)
    }
}

/// How the end of a body is known.
enum BodyFraming {
    case chunked(ChunkedDecoder)
    case length(Int)
    case untilClose

    /// The body bytes in `bytes` and whether the body is complete.
    mutating func take(_ bytes: [UInt8]) throws -> ([UInt8], Bool) {
        switch self {
        case .chunked(var decoder):
            let out = try decoder.push(bytes)
            self = .chunked(decoder)
            return (out, decoder.isDone)
        case .length(let left):
            let n = min(left, bytes.count)
            self = .length(left - n)
            return (Array(bytes[..<n]), left - n == 0)
        case .untilClose:
            return (bytes, false)
        }
    }
}

/// Incremental `Transfer-Encoding: chunked` decoding: bytes in as they come off the socket, body bytes out, so a
/// streamed event is seen when its chunk arrives rather than when the response ends.
struct ChunkedDecoder {
    private enum State { case size, data(Int), dataEnd, trailer, done }
    private var state = State.size
    private var buffer: [UInt8] = []

    var isDone: Bool { if case .done = state { return true } else { return false } }

    mutating func push(_ bytes: [UInt8]) throws -> [UInt8] {
        buffer += bytes
        var out: [UInt8] = []
        var i = 0
        func lineEnd(from start: Int) -> Int? {
            var j = start
            while j + 1 < buffer.count {
                if buffer[j] == 13 && buffer[j + 1] == 10 { return j }
                j += 1
            }
            return nil
        }
        loop: while true {
            switch state {
            case .size:
                guard let end = lineEnd(from: i) else { break loop }
                let text = String(decoding: buffer[i..<end], as: UTF8.self)
                let digits = String(text.split(separator: ";", omittingEmptySubsequences: false)[0].filter { $0 != " " && $0 != "\t" })
                guard let size = Int(digits, radix: 16), size >= 0 else {
                    throw HTTPClientError(description: "bad chunk size line '\(text)' in a chunked response")
                }
                i = end + 2
                state = size == 0 ? .trailer : .data(size)
            case .data(let left):
                let n = min(left, buffer.count - i)
                if n == 0 { break loop }
                out += buffer[i..<(i + n)]
                i += n
                state = left - n == 0 ? .dataEnd : .data(left - n)
            case .dataEnd:
                guard buffer.count - i >= 2 else { break loop }
                guard buffer[i] == 13 && buffer[i + 1] == 10 else {
                    throw HTTPClientError(description: "a chunk of a chunked response does not end in CRLF")
                }
                i += 2
                state = .size
            case .trailer:
                // Trailer fields (rare) end with a blank line; the body is complete then.
                guard let end = lineEnd(from: i) else { break loop }
                state = end == i ? .done : .trailer
                i = end + 2
            case .done:
                break loop
            }
        }
        buffer.removeFirst(i)
        return out
    }
}

/// Splits a text/event-stream body into the `data:` payloads of its events (several `data:` lines of one event are
/// joined with a newline, comments and other fields skipped), whatever the network's cuts.
struct ServerSentEvents {
    private var line: [UInt8] = []
    private var data: [String] = []
    private var hasData = false

    mutating func push(_ bytes: [UInt8]) -> [String] {
        var events: [String] = []
        for b in bytes {
            if b != 10 {
                line.append(b)
                continue
            }
            if line.last == 13 { line.removeLast() }
            if line.isEmpty {
                if hasData { events.append(data.joined(separator: "\n")) }
                data = []
                hasData = false
            } else if line.starts(with: Self.dataField) {
                var value = line.dropFirst(Self.dataField.count)
                if value.first == 32 { value = value.dropFirst() }
                data.append(String(decoding: value, as: UTF8.self))
                hasData = true
            }
            line = []
        }
        return events
    }

    /// An event the stream ended without its blank line (vLLM's client also takes a trailing `data: [DONE]`).
    mutating func finish() -> [String] { push([10, 10]) }

    private static let dataField = Array("data:".utf8)
}
