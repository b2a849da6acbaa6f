import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing
@testable import PaymentStatus

/// The executable as an operator runs it: first start with no configuration,
/// restarts, the operator commands and a clean stop.
@Suite("The payment-status binary", .serialized, .timeLimit(.minutes(3)))
struct BinaryTests {
    /// The binary's working directory (its ./data folder goes here).
    typealias Folder = TemporaryFolder

    static func serve(_ folder: Folder, _ environment: [String: String] = [:], _ extra: [String] = []) throws -> ServerProcess {
        try ServerProcess(
            ["serve", "--port", "0", "--migrations", TestService.migrations] + extra,
            environment: environment, directory: folder.path)
    }

    /// One request over loopback with the HummingbirdTesting client.
    static func request(
        _ port: Int, _ path: String, method: HTTPRequest.Method = .get, token: String? = nil, json: String? = nil
    ) async throws -> TestClient.Response {
        try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            var headers: HTTPFields = [:]
            if let token { headers[.authorization] = "Bearer \(token)" }
            return try await client.execute(.init(path, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) }))
        }
    }

    static func printedToken(_ output: String) -> String? {
        guard let range = output.range(of: "'Authorization: Bearer <token>':") else { return nil }
        return output[range.upperBound...].split(whereSeparator: \.isWhitespace).first.map(String.init)
    }

    @Test func firstStartWorksWithNoConfigurationAndTheTokenIsShownOnce() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let first = try Self.serve(folder)
        let port = try await first.port()
        let token = try #require(Self.printedToken(first.printed), "no token in: \(first.printed)")
        #expect(FileManager.default.fileExists(atPath: folder.path + "/data/payments.sqlite"))  // the default database path
        #expect(try await Self.request(port, "/healthz").status == .ok)
        #expect(try await Self.request(port, "/v1/orders", method: .post, json: #"{"id":"o1","amount":5,"currency":"EUR"}"#).status == .unauthorized)
        #expect(try await Self.request(port, "/v1/orders", method: .post, token: token, json: #"{"id":"o1","amount":5,"currency":"EUR"}"#).status == .created)
        first.terminate()
        #expect(try await first.waitForExit() == 0)

        // Restart on the same database: the same token works and is not printed again.
        let second = try Self.serve(folder)
        let port2 = try await second.port()
        #expect(Self.printedToken(second.printed) == nil)
        #expect(!second.printed.contains(token))
        let order = try await Self.request(port2, "/v1/orders/o1", token: token)
        #expect(order.status == .ok)
        second.terminate()
        #expect(try await second.waitForExit() == 0)
    }

    @Test func theWebhookCommandSignsWithTheConfiguredSecret() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let server = try Self.serve(folder, ["PAYMENT_API_TOKEN": "tok"])
        let port = try await server.port()
        #expect(try await Self.request(port, "/v1/orders", method: .post, token: "tok", json: #"{"id":"o1","amount":5,"currency":"EUR"}"#).status == .created)

        // No PAYMENT_WEBHOOK_SECRET: the command reads the secret the service generated.
        let send = try ServerProcess(
            ["webhook", "--url", "http://127.0.0.1:\(port)", "--order", "o1", "--status", "processing", "--event-id", "cli-1"],
            environment: [:], directory: folder.path)
        #expect(try await send.waitForExit() == 0, "\(send.printed)")
        #expect(send.printed.contains(#""applied":true"#))
        let again = try ServerProcess(
            ["webhook", "--url", "http://127.0.0.1:\(port)", "--order", "o1", "--status", "processing", "--event-id", "cli-1"],
            environment: [:], directory: folder.path)
        #expect(try await again.waitForExit() == 0)
        #expect(again.printed.contains(#""reason":"duplicate""#))
        let wrong = try ServerProcess(
            ["webhook", "--url", "http://127.0.0.1:\(port)", "--order", "o1", "--status", "succeeded"],
            environment: ["PAYMENT_WEBHOOK_SECRET": "not-the-secret"], directory: folder.path)
        #expect(try await wrong.waitForExit() != 0)
        #expect(wrong.printed.contains("401"))

        let order = try JSON(try #require(try await Self.request(port, "/v1/orders/o1", token: "tok").body))
        #expect(order["events"].array.map { $0["source"].string } == ["api", "webhook"])
        server.terminate()
        try await server.waitForExit()
    }

    @Test func migrateAppliesOnceAndAnEditedMigrationStopsStartUp() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let migrations = folder.path + "/migrations"
        try FileManager.default.copyItem(atPath: TestService.migrations, toPath: migrations)
        let database = ["PAYMENT_DB": folder.path + "/db.sqlite", "PAYMENT_MIGRATIONS_DIR": migrations]
        let first = try ServerProcess(["migrate"], environment: database, directory: folder.path)
        #expect(try await first.waitForExit() == 0)
        #expect(first.printed.contains("applied 0001_orders_and_events.sql"))
        let second = try ServerProcess(["migrate"], environment: database, directory: folder.path)
        #expect(try await second.waitForExit() == 0)
        #expect(second.printed.contains("up to date"))

        let file = migrations + "/0001_orders_and_events.sql"
        try (String(contentsOfFile: file, encoding: .utf8) + "\n-- edited\n").write(toFile: file, atomically: true, encoding: .utf8)
        let serve = try ServerProcess(["serve", "--port", "0"], environment: database, directory: folder.path)
        #expect(try await serve.waitForExit() != 0)
        #expect(serve.printed.contains("0001_orders_and_events.sql"))
    }

    @Test func anInvalidSettingStopsStartUpNamingIt() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        for (environment, name) in [
            (["PORT": "eighty"], "PORT"), (["PAYMENT_HEARTBEAT_SECONDS": "0"], "PAYMENT_HEARTBEAT_SECONDS"),
            (["PAYMENT_STREAM_TIMEOUT_SECONDS": "soon"], "PAYMENT_STREAM_TIMEOUT_SECONDS"),
        ] {
            let server = try Self.serve(folder, environment)
            #expect(try await server.waitForExit() != 0)
            #expect(server.printed.contains(name), "\(server.printed)")
        }
    }

    @Test func sigtermWithAThousandOpenStreamsEndsThemCommitsInFlightWritesAndExitsCleanly() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let environment = ["PAYMENT_API_TOKEN": "tok", "LOG_LEVEL": "notice", "PAYMENT_DRAIN_SECONDS": "4"]
        let server = try Self.serve(folder, environment)
        let port = try await server.port()
        let orders = (0..<50).map { "o\($0)" }
        for order in orders {
            #expect(try await Self.request(port, "/v1/orders", method: .post, token: "tok", json: #"{"id":"\#(order)","amount":5,"currency":"EUR"}"#).status == .created)
        }
        let beforeStreams = try ProcStatus(pid: server.pid)
        var streams: [SSEConnection] = []
        for batch in 0..<10 {
            try await withThrowingTaskGroup(of: SSEConnection.self) { group in
                for i in 0..<100 {
                    group.addTask {
                        let stream = try await SSEConnection.open(
                            port: port, path: "/v1/orders/o\((batch * 100 + i) % 50)/events", headers: [("Authorization", "Bearer tok")])
                        _ = try await stream.nextEvent()
                        return stream
                    }
                }
                for try await stream in group { streams.append(stream) }
            }
        }
        #expect(streams.count == 1000)
        // An open stream is its connection and a hub entry, not a task holding
        // the stack its request needed: the old design took about 49 KB each in
        // a debug build (35 KB in release), this one about a fifth of that.
        let perStreamKB = Double(try ProcStatus(pid: server.pid).rssKB - beforeStreams.rssKB) / 1000
        print("RSS per open stream (debug build, 1000 streams): \(perStreamKB) KB")
        #expect(perStreamKB < 24, "an open stream costs \(perStreamKB) KB of server memory")

        // Writes in flight while the signal arrives: each one answered 2xx must be stored.
        let acknowledgements = Counter()
        let writes = Task {
            await withTaskGroup(of: [(String, String)].self) { group in
                for order in orders {
                    group.addTask {
                        var acknowledged: [(String, String)] = []
                        for status in ["processing", "succeeded"] {
                            let response = try? await Self.request(
                                port, "/v1/orders/\(order)/transitions", method: .post, token: "tok", json: #"{"status":"\#(status)"}"#)
                            guard response?.status == .ok else { break }
                            acknowledged.append((order, status))
                            acknowledgements.increment()
                        }
                        return acknowledged
                    }
                }
                return await group.reduce(into: [String: String]()) { result, pairs in
                    for (order, status) in pairs { result[order] = status }
                }
            }
        }
        // Signal once the flow is under way: some writes answered, others still on the wire.
        try await eventually(30, "the first writes to be acknowledged") { acknowledgements.value >= 10 }
        let start = ContinuousClock.now
        server.terminate()
        // Every stream is read at once, so that when each one ended is seen.
        let ends = try await withThrowingTaskGroup(of: (Bool, Duration).self) { group in
            for stream in streams {
                group.addTask {
                    let rest = try await stream.readToEnd(within: 15)
                    return (rest.ended, ContinuousClock.now - start)
                }
            }
            return try await group.reduce(into: [(Bool, Duration)]()) { $0.append($1) }
        }
        let acknowledged = await writes.value
        let cut = ends.filter { !$0.0 }.count
        #expect(cut == 0, "\(cut) streams were cut instead of ended")
        // Spread over the drain period (4 s here), not all at once: the middle
        // half of the ends alone spans well over a second.
        let times = ends.map(\.1).sorted()
        let middleHalf = times[times.count * 3 / 4] - times[times.count / 4]
        print("SIGTERM drain: streams ended from \(times.first!) to \(times.last!) after the signal; middle half over \(middleHalf)")
        #expect(middleHalf > .seconds(1), "the streams ended within \(middleHalf) of one another")
        #expect(try await server.waitForExit(within: 15) == 0)
        let elapsed = ContinuousClock.now - start
        print("SIGTERM with 1000 open streams: exited 0 after \(elapsed); \(acknowledgements.value) of \(orders.count * 2) transitions acknowledged")
        #expect(elapsed < .seconds(10), "shutdown must finish within 10 s")
        #expect(server.printed.contains("database closed"))

        // Restart: every acknowledged write is there.
        let again = try Self.serve(folder, environment)
        let port2 = try await again.port()
        var lost = 0
        for (order, status) in acknowledged {
            let stored = try JSON(try #require(try await Self.request(port2, "/v1/orders/\(order)", token: "tok").body))
            if stored["status"].string != status { lost += 1 }
            #expect(stored["status"].string == status, "acknowledged transition of \(order) to \(status) was lost")
        }
        print("after the restart: \(acknowledged.count - lost) of \(acknowledged.count) orders at their last acknowledged status")
        again.terminate()
        try await again.waitForExit()
    }

    @Test func jsonLogsCarryTheRequestIDAndEachRouteParameterByName() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let server = try Self.serve(folder, ["PAYMENT_API_TOKEN": "tok", "LOG_FORMAT": "json"])
        let port = try await server.port()
        #expect(try await Self.request(port, "/v1/orders", method: .post, token: "tok", json: #"{"id":"logged-1","amount":5,"currency":"EUR"}"#).status == .created)
        let answer = try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            try await client.execute(.init("/v1/orders/logged-1?token=secret-in-url", method: .get, headers: [.authorization: "Bearer tok", .init("X-Request-Id")!: "req-42"]))
        }
        #expect(answer.headers[.init("X-Request-Id")!] == "req-42")
        // Each route parameter is logged under its own name: an endpoint's id is not an order's.
        let endpoint = try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            try await client.execute(.init("/v1/webhook-endpoints/we_unknown", method: .get, headers: [.authorization: "Bearer tok", .init("X-Request-Id")!: "req-43"]))
        }
        #expect(endpoint.status == .notFound)
        let retry = try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            try await client.execute(.init("/v1/webhook-endpoints/we_unknown/messages/msg_unknown/retry", method: .post, headers: [.authorization: "Bearer tok", .init("X-Request-Id")!: "req-44"]))
        }
        #expect(retry.status == .notFound)
        server.terminate()
        try await server.waitForExit()
        let lines = server.printed.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(!lines.isEmpty)
        let entries = try lines.map { try JSON(String($0)) }
        #expect(entries.allSatisfy { $0["time"].string != nil && $0["level"].string != nil && $0["message"].string != nil })
        let access = try #require(entries.first { $0["request_id"].string == "req-42" })
        #expect(access["order_id"].string == "logged-1")
        #expect(access["route"].string == "/v1/orders/{order_id}")
        #expect(access["status"].string == "200")
        let endpointAccess = try #require(entries.first { $0["request_id"].string == "req-43" })
        #expect(endpointAccess["endpoint_id"].string == "we_unknown")
        #expect(endpointAccess["order_id"].string == nil)
        #expect(endpointAccess["route"].string == "/v1/webhook-endpoints/{endpoint_id}")
        let retryAccess = try #require(entries.first { $0["request_id"].string == "req-44" })
        #expect(retryAccess["endpoint_id"].string == "we_unknown")
        #expect(retryAccess["message_id"].string == "msg_unknown")
        #expect(retryAccess["route"].string == "/v1/webhook-endpoints/{endpoint_id}/messages/{message_id}/retry")
        #expect(!server.printed.contains("secret-in-url"), "raw URLs must not reach the logs")
    }

    /// A second process writing the same database — `migrate` with a new
    /// migration while the service takes writes — corrupts nothing and causes no 5xx.
    @Test func migrateWhileServingCausesNo5xx() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let migrations = folder.path + "/migrations"
        try FileManager.default.copyItem(atPath: TestService.migrations, toPath: migrations)
        let environment = ["PAYMENT_API_TOKEN": "tok", "LOG_LEVEL": "notice", "PAYMENT_MIGRATIONS_DIR": migrations]
        let server = try Self.serve(folder, environment, ["--migrations", migrations])
        let port = try await server.port()
        let statuses = Task {
            await withTaskGroup(of: [Int].self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var codes: [Int] = []
                        for i in 0..<40 {
                            let order = "m\(worker)-\(i)"
                            let created = try? await Self.request(
                                port, "/v1/orders", method: .post, token: "tok", json: #"{"id":"\#(order)","amount":5,"currency":"EUR"}"#)
                            codes.append(created.map { Int($0.status.code) } ?? -1)
                            let moved = try? await Self.request(
                                port, "/v1/orders/\(order)/transitions", method: .post, token: "tok", json: #"{"status":"succeeded"}"#)
                            codes.append(moved.map { Int($0.status.code) } ?? -1)
                        }
                        return codes
                    }
                }
                return await group.reduce(into: []) { $0 += $1 }
            }
        }
        // Meanwhile an operator applies a new migration, and runs migrate again and again.
        try "CREATE INDEX orders_by_status ON orders (status, updated_at);"
            .write(toFile: migrations + "/0002_orders_by_status.sql", atomically: true, encoding: .utf8)
        for _ in 0..<5 {
            let migrate = try ServerProcess(
                ["migrate", "--migrations", migrations], environment: ["PAYMENT_DB": folder.path + "/data/payments.sqlite"], directory: folder.path)
            #expect(try await migrate.waitForExit() == 0, "\(migrate.printed)")
        }
        let codes = await statuses.value
        #expect(codes.allSatisfy { $0 == 200 || $0 == 201 }, "answers other than 200/201: \(Set(codes))")
        server.terminate()
        #expect(try await server.waitForExit() == 0)
        let pool = try DatabasePool(path: folder.path + "/data/payments.sqlite")
        #expect(try await pool.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") } == "ok")
        #expect(try await pool.read { try String.fetchAll($0, sql: "SELECT name FROM schema_migrations ORDER BY name") }
            == (try FileManager.default.contentsOfDirectory(atPath: TestService.migrations).filter { $0.hasSuffix(".sql") }
                + ["0002_orders_by_status.sql"]).sorted())
        #expect(try await pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM orders WHERE status = 'succeeded'") } == 320)
    }

    /// kill -9 in the middle of concurrent transitions and webhooks, twenty
    /// times over on one database: every write that was answered 2xx is
    /// there after each restart, each order's seqs run without holes, and
    /// SQLite's integrity check passes.
    @Test func killDashNineMidLoadLosesNothingAcknowledged() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let environment = ["PAYMENT_API_TOKEN": "tok", "PAYMENT_WEBHOOK_SECRET": "whsec", "LOG_LEVEL": "notice"]
        var acknowledged: [String: Int] = [:]  // order → highest seq answered 2xx
        var totals = (requests: 0, acknowledged: 0)
        for cycle in 0..<20 {
            let server = try Self.serve(folder, environment)
            let port = try await server.port()
            // Everything acknowledged before must have survived the last kill.
            for (order, seq) in acknowledged {
                let stored = try JSON(try #require(try await Self.request(port, "/v1/orders/\(order)", token: "tok").body))
                let seqs = stored["events"].array.compactMap { $0["seq"].int }
                #expect(seqs == Array(1...max(seqs.count, 1)), "holes in \(order): \(seqs)")
                #expect((stored["version"].int ?? 0) >= seq, "cycle \(cycle): \(order) lost seq \(seq)")
            }
            let orders = (0..<30).map { "c\(cycle)-\($0)" }
            let ackCount = Counter()
            let load = Task {
                await withTaskGroup(of: [(String, Int)].self) { group in
                    for (index, order) in orders.enumerated() {
                        group.addTask {
                            var done: [(String, Int)] = []
                            let created = try? await Self.request(
                                port, "/v1/orders", method: .post, token: "tok", json: #"{"id":"\#(order)","amount":5,"currency":"EUR"}"#)
                            guard created?.status == .created else { return done }
                            done.append((order, 1)); ackCount.increment()
                            let processing = try? await Self.request(
                                port, "/v1/orders/\(order)/transitions", method: .post, token: "tok", json: #"{"status":"processing"}"#)
                            guard processing?.status == .ok else { return done }
                            done.append((order, 2)); ackCount.increment()
                            // The provider settles it by webhook.
                            let body = #"{"event_id":"e-\#(order)","order_id":"\#(order)","status":"\#(index % 2 == 0 ? "succeeded" : "failed")"}"#
                            let signature = WebhookSignature.header(body: Array(body.utf8), timestamp: Int64(Date().timeIntervalSince1970), secrets: ["whsec"])
                            let settled = try? await TestClient.withClient(host: "127.0.0.1", port: port) { client in
                                try await client.execute(.init(
                                    "/v1/webhooks/payment-status", method: .post, headers: [.init("Payment-Signature")!: signature],
                                    body: ByteBuffer(string: body)))
                            }
                            if settled?.status == .ok, let data = settled?.body, String(buffer: data).contains(#""applied":true"#) {
                                done.append((order, 3)); ackCount.increment()
                            }
                            return done
                        }
                    }
                    return await group.reduce(into: []) { $0 += $1 }
                }
            }
            // Kill once the load is under way, with writes still on the wire.
            try await eventually(30, "writes to be acknowledged") { ackCount.value >= 10 }
            server.kill()
            try await server.waitForExit()
            for (order, seq) in await load.value { acknowledged[order] = max(acknowledged[order] ?? 0, seq) }
            totals.requests += orders.count * 3
            totals.acknowledged += ackCount.value
        }
        // A last start: the final cycle's acknowledgements, and the file itself.
        let server = try Self.serve(folder, environment)
        let port = try await server.port()
        var lost = 0
        for (order, seq) in acknowledged {
            let stored = try JSON(try #require(try await Self.request(port, "/v1/orders/\(order)", token: "tok").body))
            if (stored["version"].int ?? 0) < seq { lost += 1 }
            #expect((stored["version"].int ?? 0) >= seq, "\(order) lost seq \(seq)")
        }
        server.terminate()
        try await server.waitForExit()
        let pool = try DatabasePool(path: folder.path + "/data/payments.sqlite")
        let integrity = try await pool.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") }
        #expect(integrity == "ok")
        let holes = try await pool.read { db in
            try Int.fetchOne(db, sql: """
                SELECT count(*) FROM orders o
                WHERE o.version != (SELECT count(*) FROM events e WHERE e.order_id = o.id)
                   OR o.version != (SELECT max(seq) FROM events e WHERE e.order_id = o.id)
                """)
        }
        #expect(holes == 0)
        print("kill -9: 20 cycles, \(totals.requests) writes attempted, \(totals.acknowledged) acknowledged; \(acknowledged.count - lost) of \(acknowledged.count) orders hold their acknowledged seq, \(holes ?? -1) with holes; integrity_check \(integrity ?? "?")")
    }
}

/// A count shared by concurrent tasks.
final class Counter: Sendable {
    private let storage = Mutex(0)
    func increment() { storage.withLock { $0 += 1 } }
    var value: Int { storage.withLock { $0 } }
}
