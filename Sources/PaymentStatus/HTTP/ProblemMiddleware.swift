import Hummingbird
import Logging
import NIOCore

/// The outermost middleware: whatever a handler or the router throws is
/// answered as problem+json, and nothing unexpected leaks its message.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch {
            return try problem(for: error, request: request, logger: context.logger).response(from: request, context: context)
        }
    }

    private func problem(for error: any Error, request: Request, logger: Logger) -> APIError {
        switch error {
        case let error as HTTPError:
            var problem = APIError(error.status, detail: error.body ?? defaultDetail(error.status, request))
            problem.headers = error.headers
            problem.headers[.contentType] = nil
            return problem
        case is NIOTooManyBytesError:
            return .bodyTooLarge()
        case let error as StoreUnavailable:
            logger.error("storage unavailable", metadata: ["error": "\(error)", "route": "\(request.uri.path.prefix(200))"])
            return .storageUnavailable()
        case let error as any StoreClassifiedError where error.meansStoreUnavailable:
            logger.error("storage unavailable", metadata: ["error": "\(error)", "route": "\(request.uri.path.prefix(200))"])
            return .storageUnavailable()
        case let error as any HTTPResponseError:
            return APIError(error.status, detail: error.status.reasonPhrase)
        default:
            logger.error("unexpected error", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            return APIError(.internalServerError, detail: "an unexpected error occurred; it has been logged")
        }
    }

    private func defaultDetail(_ status: HTTPResponse.Status, _ request: Request) -> String {
        switch status {
        case .notFound: "nothing is served at \(request.method) \(request.uri.path.prefix(200))"
        default: status.reasonPhrase
        }
    }

}
