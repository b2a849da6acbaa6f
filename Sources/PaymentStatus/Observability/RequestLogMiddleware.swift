import Hummingbird
import Logging

/// Gives each request an id (the caller's `X-Request-Id` when it is sane,
/// else a new one), echoes it in the response, puts it and the id the route names on
/// the request's logger, and writes one access-log line per request. The
/// line names the route template, never the raw URL: stream tokens travel
/// in query strings and must not reach the logs.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let requestID = request.headers[.xRequestID].flatMap { Self.isSane($0) ? $0 : nil } ?? Self.newID()
        var context = context
        context.logger[metadataKey: "request_id"] = "\(requestID)"
        let start = ContinuousClock.now
        var response = try await next(request, context)
        response.headers[.xRequestID] = requestID
        // Built only when it is written: every request passes here.
        guard context.logger.logLevel <= .info else { return response }
        var metadata: Logger.Metadata = [
            "method": "\(request.method.rawValue)",
            "route": "\(context.endpointPath ?? "unmatched")",
            "status": "\(response.status.code)",
            "duration_ms": "\(Self.milliseconds(ContinuousClock.now - start))",
        ]
        // Named for what the route's `{id}` is: an order, or a webhook endpoint.
        if let id = context.parameters.get("id") {
            metadata[Self.idLabel(route: context.endpointPath)] = Self.capped(id)
        }
        if let messageID = context.parameters.get("message_id") { metadata["message_id"] = Self.capped(messageID) }
        context.logger.info("request", metadata: metadata)
        return response
    }

    /// What the `{id}` of `route` names, as the log calls it.
    static func idLabel(route: String?) -> String {
        route?.hasPrefix("/v1/webhook-endpoints/") == true ? "endpoint_id" : "order_id"
    }

    /// Capped: an id longer than any valid one (64) comes from a client that
    /// was refused, and must not fill the log.
    private static func capped(_ id: String) -> Logger.MetadataValue {
        "\(id.count > 64 ? id.prefix(64) + "…" : id[...])"
    }

    private static func isSane(_ id: String) -> Bool {
        (1...64).contains(id.utf8.count) && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") }
    }

    private static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(generator.next() as UInt64, radix: 16)
    }

    /// Milliseconds with three decimals, e.g. `0.412`.
    private static func milliseconds(_ duration: Duration) -> String {
        let micros = duration.nanoseconds / 1000
        let fraction = String(micros % 1000)
        return "\(micros / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}
