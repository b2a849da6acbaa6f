import Hummingbird

/// Requires `Authorization: Bearer <PAYMENT_API_TOKEN>` on the merchant endpoints.
struct MerchantAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let credentials: Credentials

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = request.bearerToken else {
            throw APIError.unauthorized("send the API token as 'Authorization: Bearer <token>'")
        }
        guard credentials.acceptsAPIToken(token) else {
            throw APIError.unauthorized("the API token is not valid")
        }
        return try await next(request, context)
    }
}

extension Request {
    /// The token of an `Authorization: Bearer …` header, if there is one.
    var bearerToken: Substring? {
        guard let value = headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].drop(while: { $0 == " " })
    }
}
