import Hummingbird
import Logging

/// Gives each request an id (the caller's `X-Request-Id` when it is sane,
/// else a new one), echoes it in the response, puts it on the request's
/// logger, and writes one access-log line per request with the route's
/// parameters (`order_id`, `endpoint_id`, `message_id`). The line names the
/// route template, never the raw URL: stream tokens travel in query strings
/// and must not reach the logs.
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
        // Each under its own name (the router's internal captures start with `:`).
        for (name, value) in context.parameters where !name.hasPrefix(":") {
            metadata[String(name)] = Self.capped(value)
        }
        context.logger.info("request", metadata: metadata)
        return response
    }

    /// Capped: an id longer than any valid one (64) comes from a client that
    /// was refused, and must not fill the log.
    private static func capped(_ id: Substring) -> Logger.MetadataValue {
        "\(id.count > 64 ? id.prefix(64) + "…" : id)"
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
