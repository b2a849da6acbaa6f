import Hummingbird

/// An error answered as RFC 9457 `application/problem+json`:
/// `{"type","title","status","detail"}` plus optional extension members.
public struct APIError: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    /// A URI naming the kind of problem; `about:blank` when the status says it all.
    public let type: String
    public let detail: String
    public var headers: HTTPFields = [:]
    /// Extra members for machines, e.g. the order's current status on a 409.
    public var extensions: [(key: String, value: String)] = []

    public init(_ status: HTTPResponse.Status, type: String = "about:blank", detail: String) {
        self.status = status
        self.type = type
        self.detail = detail
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = headers
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }

    /// The problem document, also written by the connection's own handlers
    /// when they answer without a route.
    var body: ByteBuffer {
        var json = JSONWriter(capacity: 256)
        json.beginObject()
        json.key("type"); json.string(type)
        json.key("title"); json.string(status.reasonPhrase)
        json.key("status"); json.integer(status.code)
        json.key("detail"); json.string(detail)
        for (key, value) in extensions {
            json.key(key)
            json.string(value)
        }
        json.endObject()
        return json.buffer
    }
}

extension APIError {
    static func problemType(_ slug: String) -> String { "urn:payment-status:problem:\(slug)" }

    static func unauthorized(_ detail: String, challenge: String? = "Bearer") -> APIError {
        var error = APIError(.unauthorized, detail: detail)
        if let challenge { error.headers[.wwwAuthenticate] = challenge }
        return error
    }

    static func orderNotFound(_ id: String) -> APIError {
        APIError(.notFound, type: problemType("order-not-found"), detail: "no order has the id '\(id.prefix(80))'")
    }

    static func malformed(_ detail: String) -> APIError {
        APIError(.badRequest, type: problemType("malformed-request"), detail: detail)
    }

    static func invalid(_ error: InputError) -> APIError {
        var problem = APIError(.unprocessableContent, type: problemType("invalid-field"), detail: error.description)
        problem.extensions = [("field", error.field)]
        return problem
    }

    static func bodyTooLarge() -> APIError {
        APIError(.contentTooLarge, detail: "request bodies are limited to \(RequestBodyLimit.bytes) bytes")
    }

    static func storageUnavailable() -> APIError {
        var error = APIError(
            .serviceUnavailable, type: problemType("storage-unavailable"),
            detail: "the database cannot take writes right now; nothing was changed, retry later")
        error.headers[.retryAfter] = "5"
        return error
    }
}
