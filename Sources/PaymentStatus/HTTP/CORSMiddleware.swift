import HTTPTypes
import Hummingbird

/// CORS for checkout pages on other origins, limited to the order endpoints,
/// the stream and its long-poll, and the browser client's files (a module
/// script is fetched with CORS), and to the configured origins
/// (`PAYMENT_CORS_ORIGINS`). Other origins get no CORS headers, so browsers
/// keep them out.
struct CheckoutCORSMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Exact origins (`https://shop.example`), or `*` for any.
    let allowedOrigins: Set<String>

    private static var pathPrefixes: [String] { ["/v1/orders", "/client/"] }
    private static var allowMethods: String { "GET, POST" }
    private static var allowHeaders: String { "Authorization, Content-Type, Last-Event-ID" }
    private static var exposeHeaders: String { "Idempotent-Replayed, Retry-After, ETag" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard Self.pathPrefixes.contains(where: { path.hasPrefix($0) }), let origin = request.headers[.origin] else {
            return try await next(request, context)
        }
        let allowed = allowedOrigins.contains(origin) || allowedOrigins.contains("*")
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            // A preflight: answered here, before authentication (browsers send none with it).
            var headers: HTTPFields = [.vary: "Origin"]
            if allowed {
                headers[.accessControlAllowOrigin] = origin
                headers[.accessControlAllowMethods] = Self.allowMethods
                headers[.accessControlAllowHeaders] = Self.allowHeaders
                headers[.accessControlMaxAge] = "600"
            }
            return Response(status: .noContent, headers: headers)
        }
        var response = try await next(request, context)
        response.headers.append(HTTPField(name: .vary, value: "Origin"))
        if allowed {
            response.headers[.accessControlAllowOrigin] = origin
            response.headers[.accessControlExposeHeaders] = Self.exposeHeaders
        }
        return response
    }
}
