import Hummingbird
import NIOCore

/// The long-poll's query: `?after=<seq>&wait=<seconds>`.
struct LongPollRequest {
    /// The last `seq` the client has; nil: it has none and gets the current state.
    let after: Int?
    /// How long to hold the request when there is nothing after `after` yet.
    let wait: Int

    static let defaultWait = 25
    static let longestWait = 30

    init(_ request: Request) throws {
        after = try Self.integer("after", of: request, in: 0...Int(Int32.max))
        wait = try Self.integer("wait", of: request, in: 0...Self.longestWait) ?? Self.defaultWait
    }

    /// A query parameter that must be a whole number in `range` when present.
    private static func integer(_ name: String, of request: Request, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = request.uri.queryParameters[Substring(name)] else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw APIError.malformed("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text.prefix(40))'")
        }
        return value
    }
}

extension StreamController {
    /// Answers at once with the events after `after` (without one: the newest
    /// event, as a stream starts); when there is none yet, holds the request
    /// until one commits or the wait runs out. A held request is handed to the
    /// connection's `SSEConnectionHandler` like a stream, woken by the same
    /// hub (no polling of the database), and costs what an idle stream costs.
    func longPoll(_ poll: LongPollRequest, orderID id: String, context: AppRequestContext) async throws -> Response {
        guard let order = try await store.order(id: id) else { throw APIError.orderNotFound(id) }
        // An `after` this order never reached is treated as none, as a stream's Last-Event-ID is.
        let after = poll.after.flatMap { $0 <= order.version ? $0 : nil }
        guard let after, !order.status.isTerminal, poll.wait > 0 else {
            let events = try await Self.history(of: id, after: after, in: store)
            return Self.answer(order: order, events: events)
        }
        let stream = OrderStream(
            orderID: id, lastSent: after, kind: .longPoll(status: order.status, version: order.version),
            store: store, metrics: metrics, drainPeriod: drainPeriod)
        let channel = context.channel
        let (handler, events) = try await SSEConnectionHandler.open(stream, on: channel, bus: bus, lifetime: .seconds(poll.wait)) {
            try await store.events(orderID: id, after: after, limit: .max)
        }
        guard events.isEmpty else {
            try await SSEConnectionHandler.answeredByRoute(handler, on: channel)
            return Self.answer(order: order, events: events)
        }
        return Response(
            status: .ok, headers: Self.longPollHeaders,
            body: ResponseBody { _ in
                try await SSEConnectionHandler.handOver(handler, on: channel, prelude: nil, history: [])
            })
    }

    private static let longPollHeaders: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]

    /// An answer given at once: the order as of its newest event here.
    private static func answer(order: Order, events: [PaymentEvent]) -> Response {
        let body = WireFormat.encodeLongPoll(
            orderID: order.id, status: events.last?.status ?? order.status, version: events.last?.seq ?? order.version, events: events)
        return Response(status: .ok, headers: longPollHeaders, body: .init(byteBuffer: body))
    }
}
