import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing
@testable import PaymentStatus

/// The handler that writes a handed-over stream, on a testing channel with a
/// real hub and a real SQLite store: what it writes, in which order, and
/// when it ends the response and closes the connection.
@Suite("Stream connection handler", .timeLimit(.minutes(2)))
struct SSEConnectionHandlerTests {
    /// A store holding order `o1` with `initiated → processing → succeeded`, and those events.
    static func storeWithHistory() async throws -> (SQLiteStore, [PaymentEvent], StorageTests.Scratch) {
        let scratch = try StorageTests.Scratch()
        let store = try await scratch.migratedStore()
        guard case .created(_, let first) = try await store.createOrder(
            try OrderDraft(id: "o1", amount: 5, currency: "EUR", metadata: nil), id: "o1", at: .now())
        else { throw TestFailure("not created") }
        var events = [first]
        for status in [PaymentStatus.processing, .succeeded] {
            guard case .applied(_, let event) = try await store.apply(StatusChange(orderID: "o1", status: status, source: .api), at: .now())
            else { throw TestFailure("not applied") }
            events.append(event)
        }
        return (store, events, scratch)
    }

    struct TestFailure: Error {
        let what: String
        init(_ what: String) { self.what = what }
    }

    /// An active testing channel with the handler, and the handler opened on `o1` from `lastSent`.
    static func openStream(
        lastSent: Int, store: SQLiteStore, hub: StreamHub
    ) async throws -> (NIOAsyncTestingChannel, NIOLoopBound<SSEConnectionHandler>) {
        let channel = try await NIOAsyncTestingChannel(handler: SSEConnectionHandler())
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
        let state = OrderStream(orderID: "o1", lastSent: lastSent, store: store, metrics: ServiceMetrics())
        let handler = try await channel.testingEventLoop.executeInContext {
            try channel.pipeline.syncOperations.handler(type: SSEConnectionHandler.self).open(state, bus: hub)
        }
        return (channel, try #require(handler))
    }

    static func goLive(_ handler: NIOLoopBound<SSEConnectionHandler>, on channel: NIOAsyncTestingChannel, history: [PaymentEvent]) async throws {
        let live = try await channel.testingEventLoop.executeInContext {
            handler.value.goLive(prelude: SSEFrame.retry(milliseconds: 3000), history: history)
        }
        #expect(live)
    }

    /// The next part written, as text for a body part, `<end>` for the end of the response.
    /// Polls, so that a write that never comes fails the test instead of hanging it.
    static func nextPart(of channel: NIOAsyncTestingChannel) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            switch try await channel.readOutbound(as: HTTPResponsePart.self) {
            case .body(let buffer): return String(buffer: buffer)
            case .end: return "<end>"
            case .head: return "<head>"
            case nil: try await Task.sleep(for: .milliseconds(2))
            }
        }
        throw TestFailure("the handler wrote nothing within 10 s")
    }

    static func frame(_ event: PaymentEvent) -> String { String(buffer: SSEFrame.status(event)) }

    /// Polls, so that a connection that never closes fails the test instead of hanging it.
    static func waitUntilClosed(_ channel: NIOAsyncTestingChannel) async throws {
        try await eventually(10, "the connection to close") {
            try await !channel.testingEventLoop.executeInContext { channel.isActive }
        }
    }

    @Test func aGapIsFilledFromTheStoreThenTheTerminalEventEndsTheResponseAndTheConnection() async throws {
        let (store, events, scratch) = try await Self.storeWithHistory()
        defer { try? store.close(); scratch.remove() }
        let hub = StreamHub()
        let (channel, handler) = try await Self.openStream(lastSent: 0, store: store, hub: hub)
        try await Self.goLive(handler, on: channel, history: [events[0]])
        #expect(try await Self.nextPart(of: channel) == "retry: 3000\n\n")
        #expect(try await Self.nextPart(of: channel) == Self.frame(events[0]))

        // Event 3 arrives before event 2 was published: 2 is read from the store first.
        hub.publish(events[2])
        #expect(try await Self.nextPart(of: channel) == Self.frame(events[1]))
        #expect(try await Self.nextPart(of: channel) == Self.frame(events[2]))
        #expect(try await Self.nextPart(of: channel) == "<end>")
        try await Self.waitUntilClosed(channel)
        #expect(hub.openSubscriptions == 0)
        // Event 2 published late changes nothing: no subscription, nothing written.
        hub.publish(events[1])
        #expect(hub.openSubscriptions == 0)
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await channel.readOutbound(as: HTTPResponsePart.self) == nil)
    }

    @Test func eventsThatCommitWhileTheHistoryIsReadWaitAndAreWrittenOnce() async throws {
        let (store, events, scratch) = try await Self.storeWithHistory()
        defer { try? store.close(); scratch.remove() }
        let hub = StreamHub()
        let (channel, handler) = try await Self.openStream(lastSent: 0, store: store, hub: hub)
        // Published after the subscription, before the route has the history (which has it too).
        hub.publish(events[1])
        try await Self.goLive(handler, on: channel, history: [events[0], events[1]])
        #expect(try await Self.nextPart(of: channel) == "retry: 3000\n\n")
        #expect(try await Self.nextPart(of: channel) == Self.frame(events[0]))
        #expect(try await Self.nextPart(of: channel) == Self.frame(events[1]))
        hub.publish(events[1])  // a repeat (a relay's catch-up read, say)
        hub.publish(events[2])
        #expect(try await Self.nextPart(of: channel) == Self.frame(events[2]))
        #expect(try await Self.nextPart(of: channel) == "<end>")
        try await Self.waitUntilClosed(channel)
    }

    @Test func heartbeatsAreWrittenAndTheRequestsCloseIsRefusedUntilTheHubEndsTheStream() async throws {
        let (store, _, scratch) = try await Self.storeWithHistory()
        defer { try? store.close(); scratch.remove() }
        let hub = StreamHub(configuration: .init(heartbeatInterval: .milliseconds(10), maxLifetime: .seconds(3600)))
        let (channel, handler) = try await Self.openStream(lastSent: 1, store: store, hub: hub)
        try await Self.goLive(handler, on: channel, history: [])
        #expect(try await Self.nextPart(of: channel) == "retry: 3000\n\n")

        try await Task.sleep(for: .milliseconds(30))
        hub.tick()
        #expect(try await Self.nextPart(of: channel) == ": keep-alive\n\n")

        // The request's task lets go by closing; the stream keeps the connection.
        await #expect(throws: ConnectionHandedOver.self) { try await channel.close() }
        #expect(try await channel.testingEventLoop.executeInContext { channel.isActive })
        #expect(hub.openSubscriptions == 1)

        // Shutdown: the stream ends properly, then the connection closes.
        hub.closeAll()
        #expect(try await Self.nextPart(of: channel) == "<end>")
        try await Self.waitUntilClosed(channel)
    }

    @Test func aClientThatStopsReadingIsCutInsteadOfBufferedWithoutBound() async throws {
        let (store, events, scratch) = try await Self.storeWithHistory()
        defer { try? store.close(); scratch.remove() }
        let hub = StreamHub()
        let (channel, handler) = try await Self.openStream(lastSent: 1, store: store, hub: hub)
        try await Self.goLive(handler, on: channel, history: [])
        #expect(try await Self.nextPart(of: channel) == "retry: 3000\n\n")
        // Its unsent bytes reached the high-water mark: the channel reports itself unwritable.
        channel.isWritable = false
        hub.publish(events[1])
        // Closed at once: no event and no end of response queued behind the ones it did not read.
        try await Self.waitUntilClosed(channel)
        #expect(try await channel.readOutbound(as: HTTPResponsePart.self) == nil)
        #expect(hub.openSubscriptions == 0)
    }

    @Test func aClientThatLeavesLeavesTheHub() async throws {
        let (store, _, scratch) = try await Self.storeWithHistory()
        defer { try? store.close(); scratch.remove() }
        let hub = StreamHub()
        let (channel, handler) = try await Self.openStream(lastSent: 1, store: store, hub: hub)
        try await Self.goLive(handler, on: channel, history: [])
        #expect(hub.openSubscriptions == 1)
        // The peer closed: the channel goes inactive.
        channel.pipeline.fireChannelInactive()
        try await eventually(10, "the stream to leave the hub") { hub.openSubscriptions == 0 }
    }
}
