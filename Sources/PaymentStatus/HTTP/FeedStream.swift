import Hummingbird
import NIOCore
import ServiceLifecycle

/// One live feed stream: the feed from a cursor, then every event as it
/// commits, with no gap and no duplicate however events commit around its
/// opening, because everything it writes is read from the store after its
/// cursor (`PaymentStore.feed`); the hub only says when to read again.
///
/// Held by its request's task with a `ResponseBody` writer, not handed over
/// to the connection's `SSEConnectionHandler` as an order's stream is. That
/// machinery writes one order's events by `seq` as the hub pushes them; the
/// feed's order is the store's (on PostgreSQL, notices arrive in another
/// order), so a feed stream awaits reads between writes, which a task does
/// plainly. It costs a task per stream, and feed streams are few: one per
/// merchant back end. Heartbeats and the lifetime come from the hub, as for
/// an order's stream; it never ends at a terminal event.
struct FeedStream {
    let store: any PaymentStore
    let metrics: ServiceMetrics
    /// On shutdown the stream ends at a random moment within this period.
    let drainPeriod: Duration

    /// Events per read.
    static let pageSize = 1000
    /// A read without a signal this often, in case one was missed (a notice
    /// lost while PostgreSQL's listening connection reconnects).
    static let idlePoll: Duration = .seconds(1)
    /// And this often while events wait behind an older open transaction,
    /// which may end without an event that would signal it.
    static let heldPoll: Duration = .milliseconds(20)

    /// Subscribes, reads the first page (a cursor the store rejects is a
    /// 400 before any stream bytes), and answers with the stream.
    func open(after: FeedCursor?, bus: any EventBus, retryMilliseconds: Int, channel: any Channel) async throws -> Response {
        let wakeups = FeedWakeups()
        // Subscribed before the first read, so that what commits in between wakes the stream at once.
        let registration = bus.subscribe(orderID: StreamHub.allOrders, sink: wakeups, lifetime: nil)
        let first: FeedPage
        do {
            first = try await FeedController.readingCursor { try await store.feed(after: after, limit: Self.pageSize) }
        } catch {
            registration.cancel()
            throw error
        }
        let prelude = SSEFrame.retry(milliseconds: retryMilliseconds)
        let (metrics, drainPeriod) = (self.metrics, self.drainPeriod)
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .xAccelBuffering: "no"],
            body: ResponseBody { writer in
                metrics.feedStreamOpened()
                defer {
                    registration.cancel()
                    metrics.feedStreamClosed()
                }
                try await withGracefulShutdownHandler {
                    try await run(from: first, after: after, prelude: prelude, wakeups: wakeups, channel: channel, to: &writer)
                } onGracefulShutdown: {
                    // Spread out, so that the feed readers of every instance do not all reconnect at once.
                    let delay = drainPeriod * Double.random(in: 0..<1)
                    Task {
                        try? await Task.sleep(for: delay)
                        wakeups.end()
                    }
                }
                guard channel.isActive else { return }
                try await writer.finish(nil)
            })
    }

    /// Writes pages until the stream is due to end, the client has left or the store fails
    /// (the client resumes from its last cursor, here or on another instance).
    private func run(
        from first: FeedPage, after: FeedCursor?, prelude: ByteBuffer, wakeups: FeedWakeups, channel: any Channel,
        to writer: inout some ResponseBodyWriter
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while true {
                    try await Task.sleep(for: wakeups.held ? Self.heldPoll : Self.idlePoll)
                    wakeups.wake()
                }
            }
            defer { group.cancelAll() }
            var signals = wakeups.signals.makeAsyncIterator()
            var page = first
            var cursor = after
            var out = prelude
            while true {
                for item in page.events { out.writeImmutableBuffer(SSEFrame.feed(item)) }
                cursor = page.events.last?.cursor ?? cursor
                if out.readableBytes > 0 {
                    do {
                        try await writer.write(out)
                    } catch where !channel.isActive {
                        return  // the client left
                    }
                    out.clear()
                }
                wakeups.held = page.held
                if !page.hasMore {
                    guard await signals.next() != nil else { return }
                    let due = wakeups.take()
                    if due.end || !channel.isActive { return }
                    if due.heartbeat { out.writeImmutableBuffer(SSEFrame.keepAlive) }
                }
                guard let next = try? await store.feed(after: cursor, limit: Self.pageSize) else { return }
                page = next
            }
        }
    }
}
