import Hummingbird
import NIOCore

/// `GET /v1/orders/{order_id}/events`: the order's Server-Sent Events stream, or
/// its long-poll for a client whose `Accept` prefers JSON (see
/// `StreamController+longPoll.swift`). Both end on the connection's event
/// loop in `SSEConnectionHandler` once they wait for events.
struct StreamController {
    let store: any PaymentStore
    let bus: any EventBus
    let credentials: Credentials
    /// The least `retry:` a stream is given; each gets a random value up to twice it.
    let retryMilliseconds: Int
    let maxStreams: Int
    /// Over which, on shutdown, open streams end at random moments.
    let drainPeriod: Duration
    let metrics: ServiceMetrics

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("v1/orders/{order_id}/events", use: events)
    }

    @Sendable func events(_ request: Request, context: AppRequestContext) async throws -> Response {
        metrics.streamRequested()
        let id = try context.parameters.require("order_id")
        try authorize(request, orderID: id)
        if request.headers[.contentLength].map({ $0 != "0" }) ?? false || request.headers[.transferEncoding] != nil {
            // The stream is read until the client leaves; a body would sit unread under it.
            throw APIError.malformed("a stream request takes no body")
        }
        let accept = request.headers[.accept]
        let kind = StreamResponseKind(accept: accept)
        // Read before the cap, so that a malformed long-poll is a 400 whatever the load.
        let longPoll = kind == .longPoll ? try LongPollRequest(request) : nil
        guard bus.openSubscriptions < maxStreams else {
            if kind == .eventStream, StreamResponseKind.namesEventStream(accept) { return Self.comeBackLater() }
            var error = APIError(
                .serviceUnavailable, type: APIError.problemType("too-many-streams"),
                detail: "this instance holds its maximum of \(maxStreams) open streams; retry shortly")
            error.headers[.retryAfter] = "5"
            throw error
        }
        if let longPoll { return try await self.longPoll(longPoll, orderID: id, context: context) }
        return try await stream(request, orderID: id, context: context)
    }

    /// Over the cap, for EventSource: 200 with only a `retry:` line, at random
    /// between 5 and 15 s. The browser then reconnects by itself, where an
    /// error status would have stopped it for good.
    static func comeBackLater() -> Response {
        let milliseconds = Int.random(in: 5_000...15_000)
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/event-stream", .cacheControl: "no-cache", .xAccelBuffering: "no",
                .retryAfter: String(milliseconds / 1000),
            ],
            body: .init(byteBuffer: SSEFrame.retry(milliseconds: milliseconds)))
    }

    private func stream(_ request: Request, orderID id: String, context: AppRequestContext) async throws -> Response {
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
        // At random per stream, so that clients cut at the same moment come back spread out.
        let prelude = SSEFrame.retry(milliseconds: Int.random(in: retryMilliseconds..<(2 * retryMilliseconds)))
        let resumeAfter = lastEventID
        let (store, bus, metrics, drainPeriod) = (self.store, self.bus, self.metrics, self.drainPeriod)
        let channel = context.channel
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .xAccelBuffering: "no"],
            body: ResponseBody { writer in
                // A final order's stream is its history and nothing more: no subscription, no race.
                if order.status.isTerminal {
                    let history = try await Self.history(of: id, after: resumeAfter, in: store)
                    return try await Self.writeFinished(prelude: prelude, history: history, to: &writer)
                }
                let stream = OrderStream(
                    orderID: id, lastSent: resumeAfter ?? 0, kind: .stream, store: store, metrics: metrics, drainPeriod: drainPeriod)
                let (handler, history) = try await SSEConnectionHandler.open(stream, on: channel, bus: bus, lifetime: nil) {
                    try await Self.history(of: id, after: resumeAfter, in: store)
                }
                if history.last?.status.isTerminal == true {
                    // It became final meanwhile: answer here after all.
                    try await SSEConnectionHandler.answeredByRoute(handler, on: channel)
                    return try await Self.writeFinished(prelude: prelude, history: history, to: &writer)
                }
                // From here the connection's event loop writes the stream and this task ends.
                try await SSEConnectionHandler.handOver(handler, on: channel, prelude: prelude, history: history)
            })
    }

    /// A stream whose history ends with the terminal event, written whole by
    /// the request's task; the connection stays ready for the next request.
    private static func writeFinished(prelude: ByteBuffer, history: [PaymentEvent], to writer: inout some ResponseBodyWriter) async throws {
        try await writer.write(prelude)
        for event in history { try await writer.write(SSEFrame.status(event)) }
        try await writer.finish(nil)
    }

    /// What the client has not seen: every event after its `Last-Event-ID`,
    /// or without one the order's newest event (its current state).
    static func history(of orderID: String, after lastEventID: Int?, in store: any PaymentStore) async throws -> [PaymentEvent] {
        if let lastEventID {
            return try await store.events(orderID: orderID, after: lastEventID, limit: .max)
        }
        return try await store.latestEvent(orderID: orderID).map { [$0] } ?? []
    }

    /// A stream token for this order (`?token=`) or the merchant's bearer token.
    /// Both are checked before anything about the order is looked up, so an
    /// unauthenticated caller cannot learn which orders exist.
    private func authorize(_ request: Request, orderID: String) throws {
        if let token = request.uri.queryParameters["token"], !token.isEmpty {
            switch credentials.checkStreamToken(token, forOrder: orderID) {
            case .valid:
                return
            case .expired:
                throw APIError(
                    .unauthorized, type: APIError.problemType("token-expired"),
                    detail: "the stream token has expired; ask the merchant for a fresh one (POST /v1/orders/{id}/stream-token)")
            case .invalid:
                throw APIError.unauthorized("the stream token is not valid for this order", challenge: nil)
            }
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
