import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// `GET /v1/orders/{id}/events`: the order's Server-Sent Events stream.
struct StreamController {
    let store: any PaymentStore
    let bus: any EventBus
    let credentials: Credentials
    let retryMilliseconds: Int
    let maxStreams: Int
    let metrics: ServiceMetrics

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("v1/orders/{id}/events", use: stream)
    }

    @Sendable func stream(_ request: Request, context: AppRequestContext) async throws -> Response {
        metrics.streamRequested()
        let id = try context.parameters.require("id")
        try authorize(request, orderID: id)
        if request.headers[.contentLength].map({ $0 != "0" }) ?? false || request.headers[.transferEncoding] != nil {
            // The stream is read until the client leaves; a body would sit unread under it.
            throw APIError.malformed("a stream request takes no body")
        }
        guard bus.openSubscriptions < maxStreams else {
            var error = APIError(
                .serviceUnavailable, type: APIError.problemType("too-many-streams"),
                detail: "this instance holds its maximum of \(maxStreams) open streams; retry shortly")
            error.headers[.retryAfter] = "5"
            throw error
        }
        var lastEventID = try Self.lastEventID(of: request)
        guard let order = try await store.order(id: id) else { throw APIError.orderNotFound(id) }
        if order.status.isTerminal, let seen = lastEventID, seen >= order.version {
            // The client has seen the end; 204 is what stops EventSource reconnecting.
            return Response(status: .noContent)
        }
        if let seen = lastEventID, seen > order.version {
            // An id this order never issued (another order's, or a forged one): waiting
            // for it would leave the page blind, so start again from the current state.
            lastEventID = nil
        }
        let stream = OrderStream(store: store, orderID: id, lastEventID: lastEventID, retryMilliseconds: retryMilliseconds, metrics: metrics)
        let bus = self.bus
        let channel = context.channel
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .xAccelBuffering: "no"],
            body: ResponseBody { writer in
                // A reader that stopped taking events has a writer stuck on a client
                // that does not read: cut the connection; it resumes by Last-Event-ID.
                let subscription = bus.subscribe(orderID: id) { channel.close(promise: nil) }
                do {
                    try await withGracefulShutdownHandler {
                        try await request.body.consumeWithInboundCloseHandler { _ in
                            try await stream.write(to: &writer, subscription: subscription)
                        } onInboundClosed: {
                            subscription.cancel()
                        }
                    } onGracefulShutdown: {
                        subscription.cancel()
                    }
                } catch {
                    // The client went away mid-write: nothing more to send.
                    subscription.cancel()
                    return
                }
                try await writer.finish(nil)
            })
    }

    /// A stream token for this order (`?token=`) or the merchant's bearer token.
    /// Both are checked before anything about the order is looked up, so an
    /// unauthenticated caller cannot learn which orders exist.
    private func authorize(_ request: Request, orderID: String) throws {
        if let token = request.uri.queryParameters["token"], !token.isEmpty {
            guard credentials.acceptsStreamToken(token, forOrder: orderID) else {
                throw APIError.unauthorized("the stream token is not valid for this order", challenge: nil)
            }
            return
        }
        if let bearer = request.bearerToken {
            guard credentials.acceptsAPIToken(bearer) else { throw APIError.unauthorized("the API token is not valid") }
            return
        }
        throw APIError.unauthorized("pass the order's stream_token as ?token=, or the API token as a bearer token")
    }

    /// `Last-Event-ID` header, else `?lastEventId=`; the header wins because a
    /// browser's automatic reconnect updates it while the URL stays the same.
    static func lastEventID(of request: Request) throws -> Int? {
        let text = request.headers[.lastEventID] ?? request.uri.queryParameters["lastEventId"].map(String.init)
        guard let text = text?.trimmed, !text.isEmpty else { return nil }
        guard let value = Int(text), value >= 0 else {
            throw APIError.malformed("Last-Event-ID must be a non-negative integer (an event's seq)")
        }
        return value
    }
}
