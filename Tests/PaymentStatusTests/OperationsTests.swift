import Foundation
import GRDB
import Synchronization
import HTTPTypes
import HummingbirdTesting
import Testing
@testable import PaymentStatus

/// Operating the embedded database with the real binary: `backup` under
/// load and under `kill -9`, `check` against hand-broken databases, and an
/// API token rotation across a restart.
@Suite("Operating it: backup, check, token rotation", .serialized, .timeLimit(.minutes(3)))
struct OperationsTests {
    typealias Folder = TemporaryFolder

    static func run(_ arguments: [String], in folder: Folder, environment: [String: String] = [:], within seconds: Double = 60)
        async throws -> (status: Int32, printed: String)
    {
        let process = try ServerProcess(arguments, environment: environment, directory: folder.path)
        let status = try await process.waitForExit(within: seconds)
        return (status, process.printed)
    }

    /// The copy is taken while transitions pour in: it holds every write
    /// acknowledged before the backup started, passes `check`, and serves.
    @Test func aBackupTakenUnderLoadHoldsEveryWriteAcknowledgedBeforeItPassesCheckAndServes() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let live = folder.path + "/data/payments.sqlite"
        // Enough history that the copy takes a while (100,000 events), so that the load runs through it.
        try await SeededDatabase.fill(live, orders: 33_334)
        let environment = ["PAYMENT_API_TOKEN": "tok", "LOG_LEVEL": "notice"]
        let server = try BinaryTests.serve(folder, environment)
        let port = try await server.port()

        let acknowledged = Acknowledgements()
        let stop = StopFlag()
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        // Bounded: at most 400 orders per worker, fewer when told to stop.
                        for i in 0..<400 where !stop.isSet {
                            let order = "load-\(worker)-\(i)"
                            guard (try? await BinaryTests.request(
                                port, "/v1/orders", method: .post, token: "tok", json: #"{"id":"\#(order)","amount":5,"currency":"EUR"}"#
                            ))?.status == .created else { continue }
                            acknowledged.record(order, seq: 1)
                            for (seq, status) in [(2, "processing"), (3, i % 2 == 0 ? "succeeded" : "failed")] {
                                guard (try? await BinaryTests.request(
                                    port, "/v1/orders/\(order)/transitions", method: .post, token: "tok", json: #"{"status":"\#(status)"}"#
                                ))?.status == .ok else { break }
                                acknowledged.record(order, seq: seq)
                            }
                        }
                    }
                }
            }
        }
        try await eventually(90, "the load to get going") { acknowledged.count >= 50 }
        let before = acknowledged.snapshot()
        let started = ContinuousClock.now
        let copy = folder.path + "/backups/copy.sqlite"
        try FileManager.default.createDirectory(atPath: folder.path + "/backups", withIntermediateDirectories: true)
        let backup = try await Self.run(["backup", "--to", copy, "--database", live], in: folder)
        let backupTook = ContinuousClock.now - started
        let duringBackup = acknowledged.count - before.values.reduce(0, +)
        stop.set()
        await load.value
        #expect(backup.status == 0, "\(backup.printed)")
        #expect(duringBackup > 0, "no write was acknowledged while the backup ran")
        print("backup under load: took \(backupTook) (process included), \(duringBackup) writes acknowledged meanwhile")

        // Every write acknowledged before the backup began is in the copy.
        let versions = try await DatabaseQueue(path: copy).read { db in
            try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT id, version FROM orders WHERE id LIKE 'load-%'").map {
                ($0["id"] as String, $0["version"] as Int)
            })
        }
        let lost = before.filter { order, seq in (versions[order] ?? 0) < seq }
        #expect(lost.isEmpty, "acknowledged before the backup but not in the copy: \(lost.prefix(5))")
        // The summary tells what the copy holds.
        let counts = try await SeededDatabase.inspect(copy)
        #expect(backup.printed.contains("orders:     \(counts.orders)"), "\(backup.printed)")
        #expect(backup.printed.contains("events:     \(counts.events)"), "\(backup.printed)")
        #expect(backup.printed.contains("size:") && backup.printed.contains("last event: 20"), "\(backup.printed)")
        #expect(counts.integrity == ["ok"])
        // No temporary file is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path + "/backups") == ["copy.sqlite"])

        let check = try await Self.run(["check", "--database", copy, "--migrations", TestService.migrations], in: folder)
        #expect(check.status == 0, "\(check.printed)")
        #expect(check.printed.contains("check ok") && check.printed.contains("orders: \(counts.orders)"), "\(check.printed)")
        server.terminate()
        try await server.waitForExit()

        // The copy serves: an order acknowledged before the backup reads back as it was.
        let restored = try BinaryTests.serve(folder, environment, ["--database", copy])
        let restoredPort = try await restored.port()
        let (order, seq) = try #require(before.first)
        let stored = try JSON(try #require(try await BinaryTests.request(restoredPort, "/v1/orders/\(order)", token: "tok").body))
        #expect((stored["version"].int ?? 0) >= seq)
        #expect(stored["events"].array.count == stored["version"].int)
        restored.terminate()
        #expect(try await restored.waitForExit() == 0)
    }

    /// `kill -9` in the middle of a copy leaves the live database as it was
    /// and nothing under the target name; the next backup succeeds.
    @Test func killDashNineDuringABackupLeavesTheDatabaseIntactAndNoFileUnderTheTargetName() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let live = folder.path + "/live.sqlite"
        try await SeededDatabase.fill(live, orders: 100_000)  // 300,000 events
        let before = try await SeededDatabase.counts(live)
        let target = folder.path + "/copy.sqlite"
        let backup = try ServerProcess(["backup", "--to", target, "--database", live], environment: [:], directory: folder.path)
        let partial = "\(target).partial-\(backup.pid)"
        // Kill once the copy is well under way: several MB of it written.
        try await eventually(30, "the copy to be under way") {
            !backup.isRunning || SQLiteFile.size(partial) > 4 << 20
        }
        let sizeAtKill = SQLiteFile.size(partial)
        backup.kill()
        try await backup.waitForExit()
        #expect(sizeAtKill > 4 << 20, "the backup finished before it could be killed: \(backup.printed)")
        #expect(!FileManager.default.fileExists(atPath: target), "a file under the target name after kill -9")
        let after = try await SeededDatabase.inspect(live)
        #expect(after.integrity == ["ok"])
        #expect(after.orders == before.orders && after.events == before.events && after.events == 300_000)

        // The next backup goes through, leftovers of the killed one notwithstanding.
        let again = try await Self.run(["backup", "--to", target, "--database", live], in: folder)
        #expect(again.status == 0, "\(again.printed)")
        #expect(again.printed.contains("events:     300000") && again.printed.contains("integrity_check: ok"), "\(again.printed)")
        #expect(try await SeededDatabase.counts(target) == (100_000, 300_000))
        print("kill -9 during a backup: killed with \(sizeAtKill) bytes copied; live database intact, target absent")
    }

    @Test func backupRefusesWhatItCannotCopyAndNamesPostgresTools() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let postgres = try await Self.run(
            ["backup", "--to", folder.path + "/x.dump", "--database", "postgres://user@127.0.0.1:1/payments"], in: folder)
        #expect(postgres.status != 0)
        #expect(postgres.printed.contains("pg_dump"), "\(postgres.printed)")
        let missing = try await Self.run(["backup", "--to", folder.path + "/x.sqlite", "--database", folder.path + "/none.sqlite"], in: folder)
        #expect(missing.status != 0 && missing.printed.contains("no database"), "\(missing.printed)")
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/none.sqlite"), "backup created the database it was to copy")
        try await SeededDatabase.fill(folder.path + "/db.sqlite", orders: 10)
        let itself = try await Self.run(["backup", "--to", folder.path + "/./db.sqlite", "--database", folder.path + "/db.sqlite"], in: folder)
        #expect(itself.status != 0 && itself.printed.contains("is the database itself"), "\(itself.printed)")
    }

    /// A database edited by hand to break each rule `check` checks fails it,
    /// with a report naming the rule and the order.
    @Test func checkCatchesEachBrokenRule() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let sound = folder.path + "/sound.sqlite"
        let store = try SQLiteStore(path: sound)
        try await store.migrate(migrations: TestService.migrations)
        for id in ["o1", "o2", "o3", "o4"] {
            _ = try await store.createOrder(try OrderDraft(id: id, amount: 5, currency: "EUR", metadata: nil), id: id, at: .now())
            _ = try await store.apply(StatusChange(orderID: id, status: .processing, source: .api), at: .now())
            _ = try await store.apply(StatusChange(orderID: id, status: .succeeded, source: .api), at: .now())
        }
        try store.close()
        // Enough rows for a corrupted page to land in a table's b-tree.
        try await SeededDatabase.fill(sound, orders: 3_000)

        let fine = try await Self.run(["check", "--database", sound, "--migrations", TestService.migrations], in: folder)
        #expect(fine.status == 0, "\(fine.printed)")
        #expect(fine.printed.contains("orders: 3004 (3004 final); events: 9012"), "\(fine.printed)")

        let breakages: [(name: String, sql: String, expected: [String])] = [
            ("version ≠ newest seq", "UPDATE orders SET version = 4 WHERE id = 'o1'", ["whose version is not their newest event's seq", "o1 has version 4"]),
            ("a seq gap", "UPDATE events SET seq = 4 WHERE order_id = 'o2' AND seq = 3; UPDATE orders SET version = 4 WHERE id = 'o2'",
             ["with a gap in their seqs", "o2 has 3 events for seqs 1…4; missing 3"]),
            ("a changed migration", "UPDATE schema_migrations SET checksum = 'feed' WHERE name = '0001_orders_and_events.sql'",
             ["migration 0001_orders_and_events.sql was applied with checksum feed"]),
            ("status ≠ newest event's", "UPDATE orders SET status = 'failed' WHERE id = 'o3'", ["whose status is not their newest event's", "o3 has status failed"]),
            ("an event without its order", "PRAGMA foreign_keys = OFF; INSERT INTO events (order_id, seq, status, source, at, position) VALUES ('ghost', 1, 'initiated', 'api', 0, (SELECT coalesce(max(position), 0) + 1 FROM events))",
             ["foreign_key_check: a row of events refers to a missing row of orders"]),
        ]
        for breakage in breakages {
            let broken = folder.path + "/broken.sqlite"
            try? FileManager.default.removeItem(atPath: broken)
            try FileManager.default.copyItem(atPath: sound, toPath: broken)
            let queue = try DatabaseQueue(path: broken)
            try await queue.writeWithoutTransaction { try $0.execute(sql: breakage.sql) }
            try queue.close()
            let result = try await Self.run(["check", "--database", broken, "--migrations", TestService.migrations], in: folder)
            #expect(result.status != 0, "\(breakage.name) passed the check: \(result.printed)")
            for text in breakage.expected {
                #expect(result.printed.contains(text), "\(breakage.name): no '\(text)' in \(result.printed)")
            }
        }

        // A migration file edited after it was applied, as `migrate` would refuse it.
        let edited = folder.path + "/migrations"
        try FileManager.default.copyItem(atPath: TestService.migrations, toPath: edited)
        let file = edited + "/0001_orders_and_events.sql"
        try (String(contentsOfFile: file, encoding: .utf8) + "\n-- edited\n").write(toFile: file, atomically: true, encoding: .utf8)
        let changed = try await Self.run(["check", "--database", sound, "--migrations", edited], in: folder)
        #expect(changed.status != 0, "an edited migration passed the check: \(changed.printed)")
        #expect(changed.printed.contains("migration 0001_orders_and_events.sql was applied with checksum"), "\(changed.printed)")

        // A page overwritten with garbage, as a failing disk would.
        let corrupt = folder.path + "/corrupt.sqlite"
        try FileManager.default.copyItem(atPath: sound, toPath: corrupt)
        let pageSize = 4096
        let pages = Int(SQLiteFile.size(corrupt)) / pageSize
        let handle = try #require(FileHandle(forWritingAtPath: corrupt))
        try handle.seek(toOffset: UInt64(pages / 2 * pageSize))
        handle.write(Data((0..<pageSize).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }))
        try handle.close()
        let damaged = try await Self.run(["check", "--database", corrupt, "--migrations", TestService.migrations], in: folder)
        #expect(damaged.status != 0, "a corrupted page passed the check: \(damaged.printed)")
        #expect(damaged.printed.contains("check FAILED") && damaged.printed.contains("integrity"), "\(damaged.printed)")
        print("check on a corrupted page:\n\(damaged.printed.prefix(600))")

        // A file that is not there is not created by looking at it.
        let missing = try await Self.run(["check", "--database", folder.path + "/none.sqlite", "--migrations", TestService.migrations], in: folder)
        #expect(missing.status != 0 && missing.printed.contains("no database"))
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/none.sqlite"))
    }

    /// During a rotation both tokens work; after the restart without the old
    /// one, it is refused.
    @Test func twoAPITokensBothWorkDuringARotationAndTheRemovedOneIs401AfterARestart() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let during = try BinaryTests.serve(folder, ["PAYMENT_API_TOKEN": "new-token, old-token", "LOG_LEVEL": "notice"])
        let port = try await during.port()
        #expect(try await BinaryTests.request(port, "/v1/orders", method: .post, token: "old-token", json: #"{"id":"r1","amount":5,"currency":"EUR"}"#).status == .created)
        #expect(try await BinaryTests.request(port, "/v1/orders", method: .post, token: "new-token", json: #"{"id":"r2","amount":5,"currency":"EUR"}"#).status == .created)
        #expect(try await BinaryTests.request(port, "/v1/orders/r1", token: "new-token").status == .ok)
        #expect(try await BinaryTests.request(port, "/v1/orders/r2", token: "old-token").status == .ok)
        #expect(try await BinaryTests.request(port, "/v1/orders/r1", token: "new-token,old-token").status == .unauthorized)
        #expect(try await BinaryTests.request(port, "/v1/orders/r1", token: "other").status == .unauthorized)
        during.terminate()
        #expect(try await during.waitForExit() == 0)

        let after = try BinaryTests.serve(folder, ["PAYMENT_API_TOKEN": "new-token", "LOG_LEVEL": "notice"])
        let port2 = try await after.port()
        #expect(try await BinaryTests.request(port2, "/v1/orders/r1", token: "old-token").status == .unauthorized)
        #expect(try await BinaryTests.request(port2, "/v1/orders/r1", token: "new-token").status == .ok)
        after.terminate()
        #expect(try await after.waitForExit() == 0)
    }
}

/// Tells load tasks to stop.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

/// The highest seq acknowledged per order, recorded by concurrent load tasks.
final class Acknowledgements: Sendable {
    private let storage = Mutex([String: Int]())

    func record(_ order: String, seq: Int) {
        storage.withLock { $0[order] = max($0[order] ?? 0, seq) }
    }

    /// Writes acknowledged so far (each order's seqs are acknowledged in order).
    var count: Int { storage.withLock { $0.values.reduce(0, +) } }

    func snapshot() -> [String: Int] { storage.withLock { $0 } }
}

/// Several API tokens at once, on the routes: each works everywhere the
/// bearer token does, and nothing else does.
@Suite("API token rotation", .timeLimit(.minutes(1)))
struct APITokenRotationTests {
    @Test func everyListedTokenIsAcceptedOnEveryMerchantRoute() async throws {
        try await TestService(configure: { $0.apiTokens = ["current", "previous"] }).withRouter { client, services in
            #expect(services.credentials.apiToken == "current")
            for token in ["current", "previous"] {
                let bearer: HTTPFields = [.authorization: "Bearer \(token)"]
                let id = "o-\(token)"
                let created = try await client.post("/v1/orders", json: ["id": id, "amount": 5, "currency": "EUR"], headers: bearer)
                #expect(created.status == .created)
                #expect(try await client.get("/v1/orders/\(id)", headers: bearer).status == .ok)
                // The stream takes the bearer token too (a final order answers at once).
                _ = try await client.post("/v1/orders/\(id)/transitions", json: ["status": "succeeded"], headers: bearer)
                #expect(try await client.get("/v1/orders/\(id)/events", headers: bearer).status == .ok)
            }
            for token in ["curren", "current,previous", "previous2", "other"] {
                #expect(try await client.get("/v1/orders/o-current", headers: [.authorization: "Bearer \(token)"]).status == .unauthorized)
            }
        }
    }

    @Test func theComparisonLooksAtEveryToken() {
        let credentials = Credentials(apiTokens: ["a-token", "b-token", "c-token"], streamSecret: "s", webhookSecrets: [])
        #expect(credentials.acceptsAPIToken("a-token") && credentials.acceptsAPIToken("b-token") && credentials.acceptsAPIToken("c-token"))
        #expect(!credentials.acceptsAPIToken("d-token") && !credentials.acceptsAPIToken(""))
        #expect(Credentials(apiToken: "only", streamSecret: "s", webhookSecrets: []).apiTokens == ["only"])
    }
}
