// OpenAI-shaped errors ({"error": {"message", "type", "param", "code"}}) and the middleware that turns every
// failure of a route, ours or Hummingbird's (unknown route, body too large), into one; plus the API-key check.
import Hummingbird
import Text

struct APIError: Error, Sendable {
    var status: HTTPResponse.Status
    /// OpenAI's error classes: invalid_request_error, authentication_error, not_found_error, rate_limit_error, ...
    var type: String
    var message: String
    /// The request field at fault (dotted / indexed path), when one is.
    var param: String?
    var code: String?
    var headers: HTTPFields = [:]

    static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: .badRequest, type: "invalid_request_error", message: message, param: param, code: code)
    }

    /// A field moerun does not implement: refused rather than ignored, so a client never gets silently different
    /// behaviour from what it asked for.
    static func unsupported(_ field: String, _ why: String? = nil) -> APIError {
        .invalid("unsupported field '\(field)'" + (why.map { ": \($0)" } ?? ""), param: field, code: "unsupported_field")
    }

    static func wrongType(_ field: String, _ expected: String) -> APIError {
        .invalid("'\(field)' must be \(expected)", param: field, code: "invalid_type")
    }

    static func unavailable(_ message: String) -> APIError {
        APIError(status: .serviceUnavailable, type: "service_unavailable_error", message: message, code: "service_unavailable")
    }

    static func internalError(_ message: String) -> APIError {
        APIError(status: .internalServerError, type: "api_error", message: message, code: "internal_error")
    }

    var json: JSONValue {
        .object(JSONObject([("error", .object(JSONObject([
            ("message", .string(message)), ("type", .string(type)),
            ("param", param.map(JSONValue.string) ?? .null), ("code", code.map(JSONValue.string) ?? .null),
        ])))]))
    }

    func response() -> Response {
        var r = jsonResponse(json, status: status)
        for field in headers { r.headers.append(field) }
        return r
    }
}

/// A JSON body with its content type (compact serialization, keys in the order built).
func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
    var h = headers
    h[.contentType] = "application/json"
    return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: value.serialized())))
}

/// Outermost middleware: whatever a route throws leaves as an OpenAI error body, never Hummingbird's empty one.
struct OpenAIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let e as APIError {
            return e.response()
        } catch let e as any HTTPResponseError {
            switch e.status {
            case .notFound:
                return APIError(status: .notFound, type: "not_found_error",
                                message: "no route \(request.method) \(request.uri.path)", code: "route_not_found").response()
            case .methodNotAllowed:
                return APIError(status: .methodNotAllowed, type: "invalid_request_error",
                                message: "\(request.method) is not allowed on \(request.uri.path)", code: "method_not_allowed").response()
            case .contentTooLarge:
                return APIError.tooLarge.response()
            default:
                let status = e.status
                return APIError(status: status, type: status.code >= 500 ? "api_error" : "invalid_request_error",
                                message: status.reasonPhrase, code: nil).response()
            }
        } catch is CancellationError {
            // The client is gone or the server is stopping; nobody reads this, but the writer needs a response.
            return APIError.unavailable("the request was cancelled").response()
        } catch {
            context.logger.error("unhandled error on \(request.uri.path): \(error)")
            return APIError.internalError("internal error: \(error)").response()
        }
    }
}

extension APIError {
    static let tooLarge = APIError(status: .contentTooLarge, type: "invalid_request_error",
                                   message: "request body exceeds the server's limit", code: "request_too_large")
}

/// Requires `Authorization: Bearer <key>` on the API routes; /health and /metrics stay open for probes and scrapers.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path.hasPrefix("/v1/") || path == "/tokenize" || path == "/detokenize" else {
            return try await next(request, context)
        }
        let header = request.headers[.authorization] ?? ""
        let given = header.hasPrefix("Bearer ") ? String(header.dropFirst(7)) : nil
        guard let given, Self.constantTimeEqual(given, key) else {
            var e = APIError(status: .unauthorized, type: "authentication_error",
                             message: given == nil ? "missing 'Authorization: Bearer <API key>' header" : "incorrect API key",
                             code: "invalid_api_key")
            e.headers[.wwwAuthenticate] = "Bearer"
            throw e
        }
        return try await next(request, context)
    }

    /// Comparison time does not depend on where the strings first differ (no key guessing byte by byte).
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return diff == 0
    }
}
