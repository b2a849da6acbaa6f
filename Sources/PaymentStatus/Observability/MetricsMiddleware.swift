import Hummingbird

/// Counts every answer by route template, method and status, and times it.
/// Sits outside the problem+json middleware so errors are counted with
/// the status the client saw.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServiceMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        // A stream's time is its whole life; only its opening is timed here.
        metrics.requestServed(
            route: context.endpointPath ?? "unmatched", method: request.method.rawValue,
            status: response.status.code, duration: ContinuousClock.now - start)
        return response
    }
}
