import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization
import Testing
@testable import PaymentStatus

/// Pins what the stream hand-over relies on in Hummingbird (see
/// `ConnectionHandedOver`), against Hummingbird's real HTTP/1.1 server
/// over loopback, with a bare handler in `SSEConnectionHandler`'s place so
/// that only Hummingbird's part is under test. If an upgrade changes any of
/// it, these fail, and open streams would otherwise have started to
/// (a) end with a stray end of response or error status after the head,
/// (b) keep a task each until they close, or (c) close at the hand-over.
///
/// Guarded: a response body ended by `ConnectionHandedOver.endResponseBody()`
/// after the head was written gets nothing more from Hummingbird; the
/// connection's task then ends without waiting for the connection to close;
/// every close it asks for on the way reaches the handler, which can refuse
/// it; the refused connection stays open, and the handler can still write
/// the response and end it. And, the other way round, unrefused, that same
/// exit closes the connection (so the refusal is what keeps it).
@Suite("Hummingbird under the stream hand-over", .timeLimit(.minutes(2)))
struct HummingbirdHandOverTests {
    @Test func aHandedOverConnectionOutlivesItsTaskAndStaysTheHandlers() async throws {
        try await Self.request("/held") { connection, record in
            try await eventually(10, "the handler's first bytes") { connection.text.contains("taken over\n") }
            let channel = try #require(record.takenOver)
            try await eventually(10, "the connection's task to end") { record.taskEnded(channel) }
            // Anything Hummingbird would still write comes now.
            try await Task.sleep(for: .milliseconds(200))

            let text = connection.text
            #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"), "the route's head, written by Hummingbird, comes first")
            // One chunk, the handler's: no error status, no end of the response.
            #expect(Self.afterHead(text) == "b\r\ntaken over\n\r\n")
            #expect(!connection.isClosedByServer)
            #expect(try await channel.eventLoop.submit { channel.isActive }.get())
            #expect(record.refusedCloses.contains(.all), "the task's close came through the handler: \(record.refusedCloses)")

            // The connection is still the handler's to write on and to end.
            try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.handler(type: HandOverProbe.self).endResponse()
            }.get()
            try await eventually(10, "the handler to close the connection") { connection.isClosedByServer }
            #expect(Self.afterHead(connection.text) == "b\r\ntaken over\n\r\n5\r\nlast\n\r\n0\r\n\r\n")
        }
    }

    @Test func unrefusedTheSameExitWritesNothingMoreAndClosesTheConnection() async throws {
        try await Self.request("/released") { connection, record in
            try await eventually(10, "the server to close the connection") { connection.isClosedByServer }
            #expect(record.takenOver == nil && record.refusedCloses.isEmpty)
            // The head, and then nothing: no end of the response, no error status.
            #expect(connection.text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(Self.afterHead(connection.text) == "")
        }
    }

    /// What came after the first response head (the chunked body as sent), nil before a head.
    static func afterHead(_ text: String) -> String? {
        text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) }
    }

    /// Sends `GET path` to a fresh server (see `serve`) on a raw connection, then runs `test`.
    static func request(
        _ path: String, _ test: @escaping @Sendable (RawConnection, HandOverRecord) async throws -> Void
    ) async throws {
        let record = HandOverRecord()
        try await serve(record) { port in
            let connection = try await RawConnection.open(port: port)
            defer { Task { await connection.close() } }
            try await connection.send("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n")
            do {
                try await test(connection, record)
            } catch {
                // An open connection would keep the server from shutting
                // down: a failing test would hang instead of failing.
                for channel in record.connections {
                    try? await channel.eventLoop.submit {
                        try channel.pipeline.syncOperations.handler(type: HandOverProbe.self).release()
                    }.get()
                }
                throw error
            }
        }
    }

    /// Runs Hummingbird's HTTP/1.1 server with `HandOverProbe` where the
    /// service has `SSEConnectionHandler`, and two routes that end their
    /// body as the stream route does: `/held` after the probe took the
    /// connection over, `/released` without.
    static func serve(_ record: HandOverRecord, _ test: @escaping @Sendable (Int) async throws -> Void) async throws {
        let router = Router(context: AppRequestContext.self)
        for (path, takeOver) in [("held", true), ("released", false)] {
            router.get(RouterPath(path)) { _, context -> Response in
                let channel = context.channel
                return Response(
                    status: .ok, headers: [.contentType: "text/event-stream"],
                    body: ResponseBody { _ in
                        if takeOver {
                            try await channel.eventLoop.submit {
                                try channel.pipeline.syncOperations.handler(type: HandOverProbe.self).takeOver()
                            }.get()
                        }
                        try ConnectionHandedOver.endResponseBody()
                    })
            }
        }
        var logger = Logger(label: "hand-over-tests")
        logger.logLevel = .warning
        let server = HTTPServerBuilder { responder in
            ObservedChannel(
                inner: HTTP1Channel(responder: responder, configuration: .init(additionalChannelHandlers: [HandOverProbe(record: record)])),
                record: record)
        }
        let app = Application(router: router, server: server, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
        try await app.test(.live) { client in try await test(try #require(client.port)) }
    }
}

/// What the test sees: the connection taken over (the test client may open
/// others), the closes refused on it, and which connections' tasks have returned.
final class HandOverRecord: Sendable {
    private struct State {
        var takenOver: (any Channel)?
        var refusedCloses: [CloseMode] = []
        var endedTasks: Set<ObjectIdentifier> = []
        var connections: [any Channel] = []
    }

    private let state = Mutex(State())
    var takenOver: (any Channel)? { state.withLock { $0.takenOver } }
    var refusedCloses: [CloseMode] { state.withLock { $0.refusedCloses } }
    var connections: [any Channel] { state.withLock { $0.connections } }
    func accepted(_ channel: any Channel) { state.withLock { $0.connections.append(channel) } }
    func taskEnded(_ channel: any Channel) -> Bool { state.withLock { $0.endedTasks.contains(ObjectIdentifier(channel)) } }
    func tookOver(_ channel: any Channel) { state.withLock { $0.takenOver = channel } }
    func refused(_ mode: CloseMode) { state.withLock { $0.refusedCloses.append(mode) } }
    func ended(_ channel: any Channel) { _ = state.withLock { $0.endedTasks.insert(ObjectIdentifier(channel)) } }
}

/// Hummingbird's connection channel, noting each connection and when the task that serves it returns.
struct ObservedChannel<Inner: ServerChildChannel>: ServerChildChannel {
    let inner: Inner
    let record: HandOverRecord

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Inner.Value> {
        record.accepted(channel)
        return inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Inner.Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
        record.ended(value.channel)
    }
}

/// `SSEConnectionHandler`'s contract with Hummingbird and nothing else:
/// once taken over it writes from its own context, reads nothing on to
/// Hummingbird, and refuses every close that comes from behind it.
final class HandOverProbe: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let record: HandOverRecord
    private var context: ChannelHandlerContext?
    private var takenOver = false

    init(record: HandOverRecord) {
        self.record = record
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    /// What `goLive` does: the connection is the handler's, and it writes at once.
    func takeOver() {
        takenOver = true
        context.map { record.tookOver($0.channel) }
        context?.writeAndFlush(wrapOutboundOut(.body(ByteBuffer(string: "taken over\n"))), promise: nil)
    }

    /// What a stream's end does: its last bytes, the end of the response, the close.
    func endResponse() {
        guard let context else { return }
        context.write(wrapOutboundOut(.body(ByteBuffer(string: "last\n"))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// After a failed test: closes the connection whatever Hummingbird's task still waits for.
    func release() {
        takenOver = false
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !takenOver else { return }
        context.fireChannelRead(data)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard takenOver else { return context.close(mode: mode, promise: promise) }
        record.refused(mode)
        promise?.fail(ConnectionHandedOver())
    }
}
