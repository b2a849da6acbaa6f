import Foundation
import HummingbirdTesting
import Logging
import Testing
@testable import PaymentStatus

/// Several instances on one PostgreSQL: a stream held by instance A receives
/// what was posted to instance B, in order and without loss, also while A's
/// listening connection is cut.
@Suite("Two instances on one PostgreSQL", .timeLimit(.minutes(3)))
struct ScaleOutTests {
    /// Instances A and B, each a real server on its own loopback port, sharing a fresh database.
    static func withTwoInstances(
        _ body: @escaping @Sendable (_ a: LiveClient, _ aServices: AppServices, _ b: LiveClient, _ bServices: AppServices) async throws -> Void
    ) async throws {
        try await TestService(store: .postgres).withDatabase { configuration in
            let a = try await AppServices.open(configuration, logger: TestService.logger)
            let b = try await AppServices.open(configuration, logger: TestService.logger)
            try await buildApplication(a, logger: TestService.logger).test(.live) { clientA in
                try await buildApplication(b, logger: TestService.logger).test(.live) { clientB in
                    try await body(
                        LiveClient(client: clientA, port: clientA.port!), a, LiveClient(client: clientB, port: clientB.port!), b)
                }
            }
        }
    }

    /// Opens `count` streams of `order` on `live` and reads each one's first event (the current state).
    static func openStreams(_ count: Int, _ order: String, on live: LiveClient, _ services: AppServices) async throws -> [SSEConnection] {
        var streams: [SSEConnection] = []
        for _ in 0..<count {
            let stream = try await live.openStream(LiveStreamTests.path(order, services))
            #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 1)
            streams.append(stream)
        }
        return streams
    }

    /// Reads each stream to its end and checks it saw exactly `expected`, in order.
    static func expectRest(_ streams: [String: [SSEConnection]], _ expected: [Int]) async throws {
        for (order, orderStreams) in streams {
            for stream in orderStreams {
                let transcript = try await stream.readToEnd(within: 30)
                #expect(transcript.ended)
                let seqs = try transcript.events.map { try JSON($0.data)["seq"].int ?? -1 }
                #expect(seqs == expected, "a stream of \(order) saw \(seqs)")
            }
        }
    }

    @Test func aLongPollHeldByOneInstanceIsWokenByACommitOnTheOther() async throws {
        try await Self.withTwoInstances { a, aServices, b, _ in
            try await b.client.createOrder(id: "lp")
            let path = LongPollTests.path("lp", aServices, "&after=1&wait=20")
            let started = ContinuousClock.now
            async let held = a.once(path, method: .get, headers: LongPollTests.json)
            try await eventually(10, "the long-poll to be held on A") { aServices.hub.openSubscriptions == 1 }
            #expect(try await b.client.transition("lp", to: "processing").status == .ok)
            let answer = try JSON(try await held.body)
            #expect(LongPollTests.seqs(answer) == [2] && answer["status"].string == "processing")
            #expect(ContinuousClock.now - started < .seconds(15), "woken by B's commit, not by its wait")
        }
    }

    @Test func streamsOnOneInstanceGetWhatIsPostedToTheOther() async throws {
        try await Self.withTwoInstances { a, aServices, b, bServices in
            // Same secrets from the shared database: a token made by B opens a stream on A.
            #expect(aServices.credentials.checkStreamToken(Substring(bServices.credentials.streamToken(forOrder: "x")), forOrder: "x") == .valid)
            let orders = (0..<20).map { "scale-\($0)" }
            var streams: [String: [SSEConnection]] = [:]
            for order in orders {
                try await b.client.createOrder(id: order)
                streams[order] = try await Self.openStreams(3, order, on: a, aServices)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, order) in orders.enumerated() {
                    group.addTask {
                        #expect(try await b.client.transition(order, to: "processing", eventID: "p-\(order)").status == .ok)
                        if index % 2 == 0 {
                            let delivered = try await WebhookEndpointTests.deliver(
                                b.client, ["event_id": "w-\(order)", "order_id": order, "status": "succeeded"])
                            #expect(delivered.status == .ok)
                        } else {
                            #expect(try await b.client.transition(order, to: "failed", reason: "declined").status == .ok)
                        }
                    }
                }
                try await group.waitForAll()
            }
            try await Self.expectRest(streams, [2, 3])
            // A stream opened on A afterwards replays from Last-Event-ID what B stored.
            let late = try await a.openStream(LiveStreamTests.path(orders[0], aServices), headers: [("Last-Event-ID", "1")])
            #expect(try await late.readToEnd().events.compactMap { try JSON($0.data)["seq"].int } == [2, 3])
        }
    }

    @Test func nothingIsLostWhenTheListeningConnectionIsKilledMidFlow() async throws {
        try await Self.withTwoInstances { a, aServices, b, _ in
            let relay = try #require(aServices.relay)
            let orders = (0..<12).map { "cut-\($0)" }
            var streams: [String: [SSEConnection]] = [:]
            for order in orders {
                try await b.client.createOrder(id: order)
                streams[order] = try await Self.openStreams(2, order, on: a, aServices)
            }
            // Each round cuts A's listening connection, then posts to B at once, while A reconnects.
            let rounds: [(orders: ArraySlice<String>, status: String, webhook: Bool)] = [
                (orders[...], "processing", false),
                (orders[..<6], "succeeded", true),
                (orders[6...], "failed", false),
            ]
            var terminated = 0
            for round in rounds {
                try await eventually(30, "A's listening connection to be up, to cut it") {
                    (try? await TestPostgres.terminate(applicationName: relay.applicationName)) ?? 0 > 0
                }
                terminated += 1
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for order in round.orders {
                        group.addTask {
                            if round.webhook {
                                let delivered = try await WebhookEndpointTests.deliver(
                                    b.client, ["event_id": "w-\(order)", "order_id": order, "status": round.status])
                                #expect(delivered.status == .ok)
                            } else {
                                #expect(try await b.client.transition(order, to: round.status).status == .ok)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            try await Self.expectRest(streams, [2, 3])
            #expect(terminated == 3)
            // Each cut was followed by a new connection.
            #expect(relay.connections >= 4)
        }
    }

    @Test func anEventTooLongForANotificationIsReadFromTheTable() async throws {
        let database = try await TestDatabase.make(.postgres)
        let writer = try await database.store(instanceID: "writer", maxInlinePayload: 10) as! PostgresStore
        let reader = try await database.store(instanceID: "reader") as! PostgresStore
        try await writer.migrate(migrations: TestService.migrations)
        let hub = StreamHub()
        let relay = PostgresRelay(store: reader, hub: hub, logger: TestService.logger)
        _ = try await writer.createOrder(try OrderDraft(id: "o1", amount: 5, currency: "EUR", metadata: nil), id: "o1", at: .now())
        let sink = RecordingSink()
        let subscription = hub.subscribe(orderID: "o1", sink: sink)
        let running = Task { try await relay.run() }
        // Listening and caught up (event 1) before the long event is written:
        // from here only the notification can bring it, not the catch-up read.
        try await eventually(20, "the relay to listen and catch up") { relay.catchUpsDone == 1 }
        #expect(sink.seqs == [1])
        guard case .applied(_, let event) = try await writer.apply(
            StatusChange(orderID: "o1", status: .failed, source: .webhook, eventID: "e1", reason: String(repeating: "r", count: 900)),
            at: .now())
        else {
            Issue.record("expected applied"); return
        }
        try await eventually(20, "the event to be relayed") { sink.seqs.contains(2) }
        let received = sink.events
        #expect(received.last == event)
        #expect(relay.connections == 1 && relay.catchUpsDone == 1, "the event must come by its notification, not by a reconnection's catch-up")
        #expect(EventNotice(instance: "writer", event: event).payload(maxLength: 10).contains("\"e\"") == false)
        subscription.cancel()
        running.cancel()
        _ = await running.result
        try await writer.close()
        try await reader.close()
        await database.remove()
    }

    @Test func twoBinariesOnOneDatabaseShareSecretsAndStreams() async throws {
        try await TestService(store: .postgres).withDatabase { configuration in
            let folder = try BinaryTests.Folder()
            defer { folder.remove() }
            guard case .postgres(let server) = configuration.database else { Issue.record("not PostgreSQL"); return }
            let url = "postgres://\(server.username):\(server.password ?? "")@\(server.host):\(server.port)/\(server.database)?sslmode=disable"
            let environment = ["PAYMENT_DB": url, "PAYMENT_STREAM_SECRET": "shared-stream-secret"]

            let migrate = try ServerProcess(["migrate", "--migrations", TestService.migrations], environment: environment, directory: folder.path)
            #expect(try await migrate.waitForExit() == 0, "\(migrate.printed)")
            #expect(migrate.printed.contains("applied 0001_orders_and_events.sql"))

            let a = try BinaryTests.serve(folder, environment)
            let aPort = try await a.port()
            let token = try #require(BinaryTests.printedToken(a.printed), "no token in: \(a.printed)")
            #expect(a.printed.contains("postgres://\(server.username):***@"))  // where the token is kept, without the password
            let b = try BinaryTests.serve(folder, environment)
            let bPort = try await b.port()
            #expect(BinaryTests.printedToken(b.printed) == nil)  // generated once, for the whole deployment

            let created = try await BinaryTests.request(bPort, "/v1/orders", method: .post, token: token, json: #"{"id":"o1","amount":5,"currency":"EUR"}"#)
            #expect(created.status == .created)
            let streamToken = Credentials(apiToken: token, streamSecret: "shared-stream-secret", webhookSecrets: []).streamToken(forOrder: "o1")
            let stream = try await SSEConnection.open(port: aPort, path: "/v1/orders/o1/events?token=\(streamToken)")
            #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 1)

            let moved = try await BinaryTests.request(
                bPort, "/v1/orders/o1/transitions", method: .post, token: token, json: #"{"status":"processing"}"#)
            #expect(moved.status == .ok)
            #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 2)
            // The webhook command finds the generated webhook secret in PostgreSQL.
            let send = try ServerProcess(
                ["webhook", "--url", "http://127.0.0.1:\(bPort)", "--order", "o1", "--status", "succeeded", "--event-id", "cli-1"],
                environment: ["PAYMENT_DB": url], directory: folder.path)
            #expect(try await send.waitForExit() == 0, "\(send.printed)")
            #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 3)
            #expect(try await stream.readToEnd().ended)

            for process in [a, b] {
                process.terminate()
                #expect(try await process.waitForExit() == 0, "\(process.printed)")
                #expect(!process.printed.contains(":\(server.password ?? "")@"))  // the password is never printed
            }
        }
    }

    @Test func writesAnswer503WhileTheDatabaseRefusesConnectionsAndRecover() async throws {
        try await TestService(store: .postgres).withLiveServer { live, services in
            guard case .postgres(let server) = services.configuration.database else { Issue.record("not PostgreSQL"); return }
            try await live.client.createOrder(id: "o1")
            // The database goes away: new connections refused, open ones cut.
            try await TestPostgres.admin { connection in
                _ = try await connection.query(
                    "ALTER DATABASE \(unescaped: server.database) WITH ALLOW_CONNECTIONS false", logger: TestService.logger).collect()
                _ = try await connection.query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(server.database)",
                    logger: TestService.logger).collect()
            }
            try RouterTests.expectProblem(try await live.client.transition("o1", to: "processing"), .serviceUnavailable)
            try RouterTests.expectProblem(try await live.client.get("/readyz", headers: [:]), .serviceUnavailable)
            #expect(try await live.client.get("/healthz", headers: [:]).status == .ok)

            try await TestPostgres.admin { connection in
                _ = try await connection.query(
                    "ALTER DATABASE \(unescaped: server.database) WITH ALLOW_CONNECTIONS true", logger: TestService.logger).collect()
            }
            try await eventually(30, "the service to reach the database again") {
                (try? await live.client.get("/readyz", headers: [:]).status) == .ok
            }
            // Nothing half-done: the refused transition left no trace, and it can be sent again.
            #expect(try await live.client.transition("o1", to: "processing").status == .ok)
            #expect(try JSON(try await live.client.get("/v1/orders/o1").body)["version"].int == 2)
        }
    }
}
