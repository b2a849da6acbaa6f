import Foundation
import GRDB
import HummingbirdTesting
import NIOCore
import Testing
@testable import PaymentStatus

/// Hostile and broken clients, storage faults and reconnect storms, against
/// the real server on a loopback port.
@Suite("Reliability and security", .timeLimit(.minutes(3)))
struct ReliabilityTests {
    @Test func theStreamCapAnswers503WithRetryAfterAndFreesUp() async throws {
        try await TestService(configure: { $0.maxStreams = 3 }).withLiveServer { live, services in
            try await live.client.createOrder(id: "o1")
            let path = LiveStreamTests.path("o1", services)
            var streams: [SSEConnection] = []
            for _ in 0..<3 {
                let stream = try await live.openStream(path)
                _ = try await stream.nextEvent()
                streams.append(stream)
            }
            let refused = try await live.client.get(path, headers: [:])
            try RouterTests.expectProblem(refused, .serviceUnavailable)
            #expect(refused.headers[.retryAfter] == "5")
            // Bad credentials still get 401 first: the cap reveals nothing.
            try RouterTests.expectProblem(try await live.client.get("/v1/orders/o1/events?token=x", headers: [:]), .unauthorized)
            // The other clients are unaffected.
            try await live.client.transition("o1", to: "processing")
            for stream in streams { #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 2) }
            await streams[0].close()
            try await eventually(10, "a slot to free up") { services.hub.openSubscriptions < 3 }
            let again = try await live.openStream(path)
            #expect(try await again.head().status == .ok)
        }
    }

    @Test func connectionsThatNeverFinishTheirHeadersAreClosedAndOthersAreServed() async throws {
        try await TestService(heartbeat: .milliseconds(200), configure: { $0.idleTimeout = .seconds(2) }).withLiveServer { live, services in
            // Fresh connections throughout: the idle timeout also closes the shared
            // client's keep-alive connection whenever the machine is slow to use it.
            let created = try await BinaryTests.request(
                live.port, "/v1/orders", method: .post, token: TestService.apiToken, json: #"{"id":"o1","amount":5,"currency":"EUR"}"#)
            #expect(created.status == .created)
            // An open stream lives longer than the idle timeout: it is not idle.
            let stream = try await live.openStream(LiveStreamTests.path("o1", services))
            _ = try await stream.nextEvent()
            var slow: [RawConnection] = []
            for _ in 0..<20 {
                let connection = try await RawConnection.open(port: live.port)
                try await connection.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                slow.append(connection)
            }
            #expect(try await BinaryTests.request(live.port, "/healthz").status == .ok)
            for connection in slow {
                try await eventually(15, "the server to close a stalled connection") { connection.isClosedByServer }
                #expect(!connection.text.contains("200 OK"))
            }
            let transition = try await BinaryTests.request(
                live.port, "/v1/orders/o1/transitions", method: .post, token: TestService.apiToken, json: #"{"status":"succeeded"}"#)
            #expect(transition.status == .ok)
            #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 2)
        }
    }

    @Test func oversizedHeadersAreRefusedAndTheServerStaysUp() async throws {
        try await TestService().withLiveServer { live, _ in
            for size in [20_000, 100_000] {
                let connection = try await RawConnection.open(port: live.port)
                try? await connection.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: \(String(repeating: "a", count: size))\r\n\r\n")
                try await eventually(15, "the server to refuse the request") { connection.isClosedByServer || connection.text.contains("HTTP/1.1 4") }
                #expect(!connection.text.contains("200 OK"))
                await connection.close()
            }
            let many = try await RawConnection.open(port: live.port)
            let headers = (0..<500).map { "X-H\($0): v\r\n" }.joined()
            try? await many.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\(headers)\r\n")
            try await eventually(15, "the server to refuse 500 headers") { many.isClosedByServer || many.text.contains("HTTP/1.1 4") }
            #expect(!many.text.contains("200 OK"))
            #expect(try await live.client.get("/healthz", headers: [:]).status == .ok)
        }
    }

    @Test func bruteForcedTokensAreAll401AndRevealNothing() async throws {
        try await TestService().withLiveServer { live, services in
            try await live.client.createOrder(id: "real-order")
            let genuine = services.credentials.streamToken(forOrder: "real-order")
            var bodies = Set<String>()
            for attempt in 0..<300 {
                let order = attempt % 2 == 0 ? "real-order" : "no-such-order-\(attempt)"
                var token = Array(genuine)
                token[attempt % token.count] = token[attempt % token.count] == "A" ? "B" : "A"  // one character off
                let guess = attempt % 3 == 0 ? Credentials.generateSecret() : String(token)
                let stream = try await live.client.get("/v1/orders/\(order)/events?token=\(guess)", headers: [:])
                #expect(stream.status == .unauthorized)
                bodies.insert(String(buffer: stream.body))
                let bearer = try await live.client.get("/v1/orders/\(order)", headers: [.authorization: "Bearer \(guess)"])
                #expect(bearer.status == .unauthorized)
            }
            // Existing and unknown orders get the very same answer.
            #expect(bodies.count == 1)
            #expect(try await live.client.get("/healthz", headers: [:]).status == .ok)
        }
    }

    @Test func aFullDiskAnswers503LeavesNoPartialStateAndRecovers() async throws {
        try await TestService().withLiveServer { live, services in
            try await live.client.createOrder(id: "before")
            // Cap the database at its current size: the next pages cannot be written.
            let pages = try await services.sqlite.dbWriter.write { db in try Int.fetchOne(db, sql: "PRAGMA page_count")! }
            try await services.sqlite.dbWriter.write { db in try db.execute(sql: "PRAGMA max_page_count = \(pages)") }
            var acknowledged: [String] = []
            var refused = 0
            for i in 0..<300 {
                let metadata = ["filler": String(repeating: "x", count: 2000)]
                let response = try await live.client.post("/v1/orders", json: ["id": "full-\(i)", "amount": 5, "currency": "EUR", "metadata": metadata])
                if response.status == .created {
                    acknowledged.append("full-\(i)")
                } else {
                    try RouterTests.expectProblem(response, .serviceUnavailable)
                    #expect(response.headers[.retryAfter] != nil)
                    refused += 1
                }
            }
            #expect(refused > 0, "the capped database should have filled up")
            // Nothing half-written: exactly the acknowledged orders exist, each with its first event.
            let stored = try await services.sqlite.dbWriter.read { db in
                try String.fetchAll(db, sql: "SELECT id FROM orders WHERE id LIKE 'full-%' ORDER BY id")
            }
            #expect(Set(stored) == Set(acknowledged))
            let orphans = try await services.sqlite.dbWriter.read { db in
                try Int.fetchOne(db, sql: "SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.order_id = o.id)")
            }
            #expect(orphans == 0)
            #expect(try await live.client.get("/healthz", headers: [:]).status == .ok)

            // Space comes back: writes work again.
            try await services.sqlite.dbWriter.write { db in try db.execute(sql: "PRAGMA max_page_count = 1073741823") }
            #expect(try await live.client.post("/v1/orders", json: ["id": "after", "amount": 5, "currency": "EUR"]).status == .created)
            #expect(try await live.client.transition("before", to: "succeeded").status == .ok)
            let integrity = try await services.sqlite.dbWriter.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") }
            #expect(integrity == "ok")
        }
    }

    @Test func reconnectStormsLoseNothingAndDuplicateNothing() async throws {
        try await TestService().withLiveServer { live, services in
            let orders = (0..<25).map { "storm-\($0)" }
            for order in orders { try await live.client.createOrder(id: order) }
            let received = try await withThrowingTaskGroup(of: (String, [Int]).self) { group in
                for order in orders {
                    for _ in 0..<8 {
                        group.addTask {
                            // One reader that drops its connection at random and resumes from Last-Event-ID.
                            var seen: [Int] = []
                            var reconnects = 0
                            while seen.last != 3 {
                                let lastEventID = seen.last ?? 0
                                let stream = try await live.openStream(
                                    LiveStreamTests.path(order, services), headers: [("Last-Event-ID", String(lastEventID))])
                                if try await stream.head().status == .noContent { break }
                                while let event = try await stream.nextEvent() {
                                    seen.append(try LiveStreamTests.seq(event))
                                    if Bool.random() && seen.last != 3 { break }  // drop mid-stream
                                }
                                await stream.close()
                                reconnects += 1
                                #expect(reconnects < 50, "no progress for \(order)")
                                if reconnects >= 50 { break }
                                try await Task.sleep(for: .milliseconds(Int.random(in: 0...15)))
                            }
                            return (order, seen)
                        }
                    }
                    group.addTask {
                        try await Task.sleep(for: .milliseconds(Int.random(in: 0...40)))
                        #expect(try await live.client.transition(order, to: "processing").status == .ok)
                        try await Task.sleep(for: .milliseconds(Int.random(in: 0...40)))
                        #expect(try await live.client.transition(order, to: "succeeded").status == .ok)
                        return (order, [])
                    }
                }
                return try await group.reduce(into: [(String, [Int])]()) { if !$1.1.isEmpty { $0.append($1) } }
            }
            #expect(received.count == orders.count * 8)
            for (order, seqs) in received {
                #expect(seqs == [1, 2, 3], "\(order) saw \(seqs)")
            }
            try await eventually(15, "every stream to leave the hub") { services.hub.openSubscriptions == 0 }
        }
    }
}
