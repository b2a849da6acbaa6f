import Hummingbird

/// Turns the router's 404 for a known path asked with a method it does not
/// serve (any method: PUT, QUERY, PROPFIND, …) into 405 with an `Allow`
/// header. The router itself answers 404 in both cases.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Path templates as registered (`v1/orders/{order_id}`) and the methods each serves.
    let routes: [(path: String, methods: [HTTPRequest.Method])]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            guard let methods = allowedMethods(for: request.uri.path) else { throw error }
            let allow = methods.map(\.rawValue).joined(separator: ", ")
            var problem = APIError(.methodNotAllowed, detail: "\(request.method) is not served at this path; use \(allow)")
            problem.headers[.allow] = allow
            throw problem
        }
    }

    /// The methods of the route whose template matches `path`, `{…}` matching one segment.
    private func allowedMethods(for path: String) -> [HTTPRequest.Method]? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return routes.first { route in
            let template = route.path.split(separator: "/", omittingEmptySubsequences: true)
            return template.count == segments.count
                && zip(template, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }?.methods
    }
}
