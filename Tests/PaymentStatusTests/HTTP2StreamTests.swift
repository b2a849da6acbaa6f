import Foundation
import NIOHTTP2
import Testing
@testable import PaymentStatus

/// Live streams as HTTP/2 streams: several on one connection, each with the
/// framing, resume, heartbeats and ends of a stream over HTTP/1.1, and each
/// ending alone.
@Suite("Event streams over HTTP/2", .timeLimit(.minutes(2)))
struct HTTP2StreamTests {
    static func path(_ order: String, _ services: AppServices, query: String = "") -> String {
        LiveStreamTests.path(order, services, query: query)
    }

    static func status(_ event: (id: String?, name: String?, data: String)?) throws -> String? {
        try JSON(try #require(event).data)["status"].string
    }

    @Test func streamsOnOneConnectionEndEachOnItsOwn() async throws {
        let (service, _) = try TestService.https()
        try await service.withHTTPSServer { https, services in
            for order in ["a", "b", "c"] { try await https.client.createOrder(id: order) }
            let connection = try await https.connect()
            defer { Task { await connection.close() } }
            let a = try await connection.openStream(Self.path("a", services))
            let a2 = try await connection.openStream(Self.path("a", services))
            let b = try await connection.openStream(Self.path("b", services))
            let c = try await connection.openStream(Self.path("c", services))
            for stream in [a, a2, b, c] {
                let head = try await stream.head()
                #expect(head.status == .ok)
                #expect(head.headers["content-type"] == ["text/event-stream"])
                #expect(head.headers["cache-control"] == ["no-cache"])
                guard case .item(.retry) = try await stream.next() else { Issue.record("no retry: first"); return }
                #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 1)
            }

            // Order a reaches a terminal status: both of its streams end properly (END_STREAM)...
            try await https.client.transition("a", to: "succeeded")
            for stream in [a, a2] {
                let last = try await stream.nextEvent()
                #expect(try LiveStreamTests.seq(last) == 2 && Self.status(last) == "succeeded")
                let rest = try await stream.readToEnd()
                #expect(rest.ended && rest.events.isEmpty)
                #expect(stream.resetCode == nil)
            }
            // ...and nothing else: the connection and the other streams go on.
            #expect(connection.isActive && !b.isClosed && !c.isClosed)
            try await https.client.transition("b", to: "processing")
            try await https.client.transition("c", to: "processing")
            #expect(try Self.status(try await b.nextEvent()) == "processing")
            #expect(try Self.status(try await c.nextEvent()) == "processing")

            // A new stream on the same connection, then b ends too.
            let b2 = try await connection.openStream(Self.path("b", services))
            #expect(try LiveStreamTests.seq(try await b2.nextEvent()) == 2)
            try await https.client.transition("b", to: "failed")
            for stream in [b, b2] {
                #expect(try Self.status(try await stream.nextEvent()) == "failed")
                #expect(try await stream.readToEnd().ended)
            }
            // c is still served; the client resetting it leaves the connection usable.
            #expect(!c.isClosed)
            await c.cancel()
            try await eventually(10, "the server to drop c's subscription") { services.hub.openSubscriptions == 0 }
            #expect(try await connection.request(.get, "/healthz").response.status == .ok)
        }
    }

    @Test func resumeHeartbeatsAndTheEndAsOverHTTP1() async throws {
        let (service, _) = try TestService.https(heartbeat: .milliseconds(100))
        try await service.withHTTPSServer { https, services in
            try await https.client.createOrder(id: "o1")
            try await https.client.transition("o1", to: "processing")
            let connection = try await https.connect()
            defer { Task { await connection.close() } }

            // Last-Event-ID: the stored history after it, then live.
            let resumed = try await connection.openStream(Self.path("o1", services), headers: [("Last-Event-ID", "0")])
            #expect(try LiveStreamTests.seq(try await resumed.nextEvent()) == 1)
            #expect(try LiveStreamTests.seq(try await resumed.nextEvent()) == 2)
            // Heartbeats while nothing happens.
            var comments = 0
            while comments < 2 {
                guard let part = try await resumed.next(within: 5) else { break }
                if case .item(.comment(let text)) = part, text == "keep-alive" { comments += 1 }
            }
            #expect(comments == 2)
            // The query form, for clients that cannot set the header.
            let byQuery = try await connection.openStream(Self.path("o1", services, query: "&lastEventId=1"))
            #expect(try LiveStreamTests.seq(try await byQuery.nextEvent()) == 2)

            try await https.client.transition("o1", to: "succeeded")
            for stream in [resumed, byQuery] {
                #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 3)
                #expect(try await stream.readToEnd().ended)
            }
            // A reconnect that has seen the end: 204, and nothing reconnects.
            let done = try await connection.openStream(Self.path("o1", services), headers: [("Last-Event-ID", "3")])
            #expect(try await done.head().status == .noContent)
            #expect(try await done.readToEnd().ended)
            #expect(connection.isActive)
        }
    }

    @Test func aStreamsLifetimeEndsThatStreamOnly() async throws {
        let (service, _) = try TestService.https(streamTimeout: .seconds(2))
        try await service.withHTTPSServer { https, services in
            try await https.client.createOrder(id: "x")
            try await https.client.createOrder(id: "y")
            let connection = try await https.connect()
            defer { Task { await connection.close() } }
            let first = try await connection.openStream(Self.path("x", services))
            _ = try await first.nextEvent()
            try await Task.sleep(for: .milliseconds(1200))
            let second = try await connection.openStream(Self.path("y", services))
            _ = try await second.nextEvent()

            // The first reaches its lifetime and ends properly, the client resumes it by Last-Event-ID.
            let ended = try await first.readToEnd(within: 10)
            #expect(ended.ended)
            #expect(!second.isClosed && connection.isActive)
            try await https.client.transition("y", to: "processing")
            #expect(try Self.status(try await second.nextEvent()) == "processing")
            #expect(try await second.readToEnd(within: 10).ended)
            #expect(connection.isActive)
        }
    }

    /// A stream whose client stops reading it (its window never reopens) is
    /// cut, with RST_STREAM; the connection's other stream, read as usual,
    /// goes on.
    @Test func aStalledStreamIsCutAloneWhileItsNeighbourIsServed() async throws {
        let (service, _) = try TestService.https(heartbeat: .milliseconds(10))
        try await service.withHTTPSServer { https, services in
            try await https.client.createOrder(id: "stalled")
            try await https.client.createOrder(id: "read")
            // The server may send 256 bytes on a stream before the client reads them.
            let connection = try await https.connect(initialWindowSize: 256)
            defer { Task { await connection.close() } }
            // The stream that is read gets a window it never exhausts, so that
            // on a busy machine a late window update of this client's is not
            // mistaken for a reader that fell behind.
            let read = try await connection.openStream(Self.path("read", services), extraWindow: 1 << 20)
            #expect(try LiveStreamTests.seq(try await read.nextEvent()) == 1)
            let stalled = try await connection.openStream(Self.path("stalled", services), reading: false)
            try await eventually(5, "both streams to be open") { services.hub.openSubscriptions == 2 }

            // Heartbeats pile up in the stalled stream until the server cuts it.
            try await eventually(60, "the server to cut the stalled stream") { stalled.isClosed }
            #expect(stalled.resetCode == .cancel)
            #expect(services.hub.openSubscriptions == 1)
            #expect(connection.isActive && !read.isClosed)
            try await https.client.transition("read", to: "processing")
            #expect(try Self.status(try await read.nextEvent()) == "processing")
        }
    }
}
