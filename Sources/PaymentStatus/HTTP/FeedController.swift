import Hummingbird
import NIOCore

/// `GET /v1/events`: the merchant's event feed, every committed event of every
/// order in commit order. A page of JSON (`?after=<cursor>&limit=<1–1000>`),
/// or with `Accept: text/event-stream` the same feed live (`FeedStream`).
/// Behind the merchant's bearer token.
struct FeedController {
    let store: any PaymentStore
    let bus: any EventBus
    /// The least `retry:` a stream is given; each gets a random value up to twice it.
    let retryMilliseconds: Int
    let maxStreams: Int
    /// Over which, on shutdown, open feed streams end at random moments.
    let drainPeriod: Duration
    let metrics: ServiceMetrics

    static let defaultLimit = 100
    static let limits = 1...1000

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get(use: events)
    }

    @Sendable func events(_ request: Request, context: AppRequestContext) async throws -> Response {
        let after = try Self.cursor(request.uri.queryParameters["after"].map(String.init), named: "after")
        let limit = try Self.limit(of: request)
        let accept = request.headers[.accept] ?? ""
        guard StreamResponseKind.quality(of: "text/event-stream", in: accept) > StreamResponseKind.quality(of: "application/json", in: accept) else {
            return try await page(after: after, limit: limit)
        }
        metrics.streamRequested()
        // The header wins, as on an order's stream: a browser's reconnect updates it, not the URL.
        let resume = try Self.cursor(request.headers[.lastEventID], named: "Last-Event-ID") ?? after
        guard bus.openSubscriptions < maxStreams else {
            if StreamResponseKind.namesEventStream(accept) { return StreamController.comeBackLater() }
            var error = APIError(
                .serviceUnavailable, type: APIError.problemType("too-many-streams"),
                detail: "this instance holds its maximum of \(maxStreams) open streams; retry shortly")
            error.headers[.retryAfter] = "5"
            throw error
        }
        let stream = FeedStream(store: store, metrics: metrics, drainPeriod: drainPeriod)
        return try await stream.open(
            after: resume, bus: bus, retryMilliseconds: Int.random(in: retryMilliseconds..<(2 * retryMilliseconds)),
            channel: context.channel)
    }

    private func page(after: FeedCursor?, limit: Int) async throws -> Response {
        let page = try await Self.readingCursor { try await store.feed(after: after, limit: limit) }
        return Response(
            status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: WireFormat.encode(page, after: after)))
    }

    /// A store that finds the cursor is not one of its own answers 400.
    static func readingCursor<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch is MalformedCursor {
            throw APIError.malformed("the cursor is not one this feed handed out")
        }
    }

    /// A cursor from a query parameter or header; absent or empty means none.
    static func cursor(_ text: String?, named name: String) throws -> FeedCursor? {
        guard let text = text?.trimmed, !text.isEmpty else { return nil }
        do {
            return try FeedCursor(parsing: text)
        } catch {
            throw APIError.malformed("\(name) must be a cursor from this feed, got '\(text.prefix(40))'")
        }
    }

    /// `?limit=`: a whole number from 1 to 1000, 100 when absent.
    static func limit(of request: Request) throws -> Int {
        guard let text = request.uri.queryParameters["limit"] else { return defaultLimit }
        guard let value = Int(text), limits.contains(value) else {
            throw APIError.malformed(
                "limit must be a whole number from \(limits.lowerBound) to \(limits.upperBound), got '\(text.prefix(40))'")
        }
        return value
    }
}
