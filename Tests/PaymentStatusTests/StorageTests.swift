import Foundation
import GRDB
import Testing
@testable import PaymentStatus

@Suite("SQLite store and migrations")
struct StorageTests {
    /// A fresh database file in its own temporary folder.
    struct Scratch {
        let folder: String
        var path: String { folder + "/db.sqlite" }

        init() throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("ps-store-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }

        func migratedStore() async throws -> SQLiteStore {
            let store = try SQLiteStore(path: path)
            try await store.migrate(with: SQLMigrator(directory: TestService.migrations))
            return store
        }

        func remove() { try? FileManager.default.removeItem(atPath: folder) }
    }

    @Test func walWithFullSynchronousAndForeignKeys() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let store = try await scratch.migratedStore()
        #expect(try await store.pragma("journal_mode") == "wal")
        #expect(try await store.pragma("synchronous") == "2")  // FULL
        #expect(try await store.pragma("foreign_keys") == "1")
        try store.close()
    }

    @Test func migrationsApplyOnceInNameOrder() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let migrations = scratch.folder + "/migrations"
        try FileManager.default.createDirectory(atPath: migrations, withIntermediateDirectories: true)
        try "CREATE TABLE b (x INTEGER);".write(toFile: migrations + "/0002_b.sql", atomically: true, encoding: .utf8)
        try "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);".write(toFile: migrations + "/0001_a.sql", atomically: true, encoding: .utf8)
        try "not sql".write(toFile: migrations + "/README.txt", atomically: true, encoding: .utf8)
        let pool = try DatabasePool(path: scratch.path)
        let migrator = SQLMigrator(directory: migrations)
        #expect(try await migrator.migrate(pool) == ["0001_a.sql", "0002_b.sql"])
        #expect(try await migrator.migrate(pool) == [])
        // Applied once: the INSERT did not run twice.
        #expect(try await pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM a") } == 1)
        let recorded = try await pool.read { try String.fetchAll($0, sql: "SELECT name FROM schema_migrations ORDER BY name") }
        #expect(recorded == ["0001_a.sql", "0002_b.sql"])

        try "CREATE TABLE c (x INTEGER);".write(toFile: migrations + "/0003_c.sql", atomically: true, encoding: .utf8)
        #expect(try await migrator.migrate(pool) == ["0003_c.sql"])
    }

    @Test func anEditedAppliedMigrationStopsStartUpNamingTheFile() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let migrations = scratch.folder + "/migrations"
        try FileManager.default.createDirectory(atPath: migrations, withIntermediateDirectories: true)
        try "CREATE TABLE a (x INTEGER);".write(toFile: migrations + "/0001_a.sql", atomically: true, encoding: .utf8)
        let pool = try DatabasePool(path: scratch.path)
        try await SQLMigrator(directory: migrations).migrate(pool)
        try "CREATE TABLE a (x INTEGER, y TEXT);".write(toFile: migrations + "/0001_a.sql", atomically: true, encoding: .utf8)
        let error = await #expect(throws: MigrationError.self) { try await SQLMigrator(directory: migrations).migrate(pool) }
        #expect(error?.code == .checksumMismatch)
        #expect(error?.description.contains("0001_a.sql") == true)
    }

    @Test func aFailingMigrationIsNamedAndLeavesNothingHalfDone() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let migrations = scratch.folder + "/migrations"
        try FileManager.default.createDirectory(atPath: migrations, withIntermediateDirectories: true)
        try "CREATE TABLE a (x INTEGER);".write(toFile: migrations + "/0001_a.sql", atomically: true, encoding: .utf8)
        try "CREATE TABLE b (x INTEGER); SELEKT nonsense;".write(toFile: migrations + "/0002_b.sql", atomically: true, encoding: .utf8)
        let pool = try DatabasePool(path: scratch.path)
        let error = await #expect(throws: MigrationError.self) { try await SQLMigrator(directory: migrations).migrate(pool) }
        #expect(error?.code == .failed)
        #expect(error?.name == "0002_b.sql")
        let tables = try await pool.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") }
        #expect(!tables.contains("a") && !tables.contains("b"))
    }

    @Test func aMissingMigrationsFolderIsAnError() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pool = try DatabasePool(path: scratch.path)
        let error = await #expect(throws: MigrationError.self) { try await SQLMigrator(directory: scratch.folder + "/nope").migrate(pool) }
        #expect(error?.code == .directoryUnreadable)
    }

    @Test func createIsIdempotentOnTheSameIdAndConflictsOnDifferentTerms() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let store = try await scratch.migratedStore()
        let draft = try OrderDraft(id: "o1", amount: 500, currency: "EUR", metadata: ["k": "v"])
        let time = Timestamp(millisecondsSince1970: 1_000)
        guard case .created(let order, let event) = try await store.createOrder(draft, id: "o1", at: time) else {
            Issue.record("expected created"); return
        }
        #expect(order.status == .initiated && order.version == 1 && order.metadata == ["k": "v"])
        #expect(event.seq == 1 && event.status == .initiated && event.previous == nil)
        #expect(try await store.createOrder(draft, id: "o1", at: time) == .existing(order))
        let other = try OrderDraft(id: "o1", amount: 501, currency: "EUR", metadata: nil)
        #expect(try await store.createOrder(other, id: "o1", at: time) == .conflict(order))
        #expect(try await store.order(id: "o1") == order)
    }

    @Test func applyAppendsEventsAndBumpsTheVersionInOneTransaction() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let store = try await scratch.migratedStore()
        _ = try await store.createOrder(try OrderDraft(id: "o1", amount: 5, currency: "EUR", metadata: nil), id: "o1", at: .now())
        let change = StatusChange(orderID: "o1", status: .processing, source: .api, eventID: "e1", reason: "r")
        guard case .applied(let order, let event) = try await store.apply(change, at: .now()) else {
            Issue.record("expected applied"); return
        }
        #expect(order.version == 2 && order.status == .processing)
        #expect(event.seq == 2 && event.previous == .initiated && event.eventID == "e1" && event.reason == "r")

        // Same event id again: nothing changes, the original comes back.
        guard case .duplicate(let current, let original) = try await store.apply(change, at: .now()) else {
            Issue.record("expected duplicate"); return
        }
        #expect(original == event && current == order)
        // An event id is per order and whatever the status.
        let reused = StatusChange(orderID: "o1", status: .succeeded, source: .webhook, eventID: "e1")
        guard case .duplicate = try await store.apply(reused, at: .now()) else { Issue.record("expected duplicate"); return }

        #expect(try await store.apply(StatusChange(orderID: "o1", status: .processing, source: .api), at: .now())
            == .refused(.alreadyPassed, order: order))
        #expect(try await store.apply(StatusChange(orderID: "nope", status: .processing, source: .api), at: .now())
            == .orderNotFound)
        guard case .applied(let final, _) = try await store.apply(StatusChange(orderID: "o1", status: .failed, source: .webhook), at: .now()) else {
            Issue.record("expected applied"); return
        }
        #expect(try await store.apply(StatusChange(orderID: "o1", status: .succeeded, source: .webhook), at: .now())
            == .refused(.conflictingTerminal, order: final))

        let events = try await store.events(orderID: "o1", after: 0, limit: 100)
        #expect(events.map(\.seq) == [1, 2, 3])
        #expect(events.map(\.status) == [.initiated, .processing, .failed])
        #expect(try await store.events(orderID: "o1", after: 2, limit: 100).map(\.seq) == [3])
        #expect(try await store.latestEvent(orderID: "o1")?.seq == 3)
        #expect(try await store.order(id: "o1")?.version == 3)
    }

    @Test func concurrentTransitionsOnOneOrderNeverShareASeq() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let store = try await scratch.migratedStore()
        _ = try await store.createOrder(try OrderDraft(id: "o1", amount: 5, currency: "EUR", metadata: nil), id: "o1", at: .now())
        // Everyone races to move it on; exactly one move per step can win.
        let outcomes = try await withThrowingTaskGroup(of: ChangeOutcome.self) { group in
            for i in 0..<40 {
                let status: PaymentStatus = [.processing, .succeeded, .failed][i % 3]
                group.addTask { try await store.apply(StatusChange(orderID: "o1", status: status, source: .api), at: .now()) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let applied = outcomes.filter { if case .applied = $0 { true } else { false } }
        #expect((1...2).contains(applied.count))
        let seqs = try await store.events(orderID: "o1", after: 0, limit: 100).map(\.seq)
        #expect(seqs == Array(1...seqs.count))
        #expect(try await store.order(id: "o1")?.status.isTerminal == true)
    }

    @Test func secretsAreGeneratedOnceAndKept() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        var configuration = AppConfiguration()
        configuration.databasePath = scratch.path
        var announced: [String] = []
        let store = try await scratch.migratedStore()
        let first = try await Credentials.resolve(configuration, store: store) { announced.append($0) }
        let second = try await Credentials.resolve(configuration, store: store) { announced.append($0) }
        #expect(announced == [first.apiToken])  // printed once, on the first start only
        #expect(first.apiToken == second.apiToken && first.streamSecret == second.streamSecret)
        #expect(first.webhookSecrets == second.webhookSecrets)
        #expect(first.apiToken.count >= 43 && first.apiToken != first.streamSecret)

        configuration.apiToken = "from-env"
        let third = try await Credentials.resolve(configuration, store: store) { announced.append($0) }
        #expect(third.apiToken == "from-env" && announced.count == 1)
    }

    @Test func concurrentWritesShareCommitsAndEachIsKept() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let store = try await scratch.migratedStore()
        let orders = (0..<100).map { "g\($0)" }
        for order in orders {
            _ = try await store.createOrder(try OrderDraft(id: order, amount: 5, currency: "EUR", metadata: nil), id: order, at: .now())
        }
        let before = store.batcher.counts
        let applied = try await withThrowingTaskGroup(of: Int.self) { group in
            for order in orders {
                group.addTask {
                    var count = 0
                    for status: PaymentStatus in [.processing, .succeeded] {
                        if case .applied = try await store.apply(StatusChange(orderID: order, status: status, source: .api), at: .now()) {
                            count += 1
                        }
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(applied == 200)
        let after = store.batcher.counts
        #expect(after.writes - before.writes == 200)
        #expect(after.transactions - before.transactions < 200, "concurrent writes should share transactions")
        print("group commit: 200 transitions in \(after.transactions - before.transactions) transactions")
        for order in orders {
            #expect(try await store.events(orderID: order, after: 0, limit: 10).map(\.status) == [.initiated, .processing, .succeeded])
        }
    }

    @Test func aFailingWriteRollsBackAloneInItsGroup() async throws {
        struct Refused: Error {}
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pool = try DatabasePool(path: scratch.path)
        try await pool.write { try $0.execute(sql: "CREATE TABLE t (n INTEGER PRIMARY KEY)") }
        let batcher = WriteBatcher(writer: pool)
        let results = await withTaskGroup(of: (Int, Bool).self) { group in
            for n in 0..<60 {
                group.addTask {
                    do {
                        try await batcher.write { db in
                            try db.execute(sql: "INSERT INTO t (n) VALUES (?)", arguments: [n])
                            if n % 5 == 0 { throw Refused() }  // after its insert: the savepoint must undo it
                        }
                        return (n, true)
                    } catch {
                        return (n, false)
                    }
                }
            }
            return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        #expect(results.filter { $0.value }.count == 48)
        let stored = try await pool.read { try Int.fetchAll($0, sql: "SELECT n FROM t ORDER BY n") }
        #expect(stored == (0..<60).filter { $0 % 5 != 0 })
    }

    @Test func aDatabaseErrorFailsItsWholeGroupAndNothingAcknowledgedIsLost() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let pool = try DatabasePool(path: scratch.path)
        try await pool.write { try $0.execute(sql: "CREATE TABLE t (n INTEGER PRIMARY KEY); INSERT INTO t VALUES (-1)") }
        let batcher = WriteBatcher(writer: pool)
        let results = await withTaskGroup(of: (Int, Bool).self) { group in
            for n in 0..<200 {
                group.addTask {
                    do {
                        try await batcher.write { db in
                            try db.execute(sql: "INSERT INTO t (n) VALUES (?)", arguments: [n])
                            // Every 17th also hits a constraint: a database error, fatal to its group.
                            if n % 17 == 0 { try db.execute(sql: "INSERT INTO t (n) VALUES (-1)") }
                        }
                        return (n, true)
                    } catch {
                        return (n, false)
                    }
                }
            }
            return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        let stored = Set(try await pool.read { try Int.fetchAll($0, sql: "SELECT n FROM t WHERE n >= 0") })
        #expect(stored == Set(results.filter(\.value).map(\.key)), "stored rows must be exactly the acknowledged writes")
        #expect(results.filter { $0.key % 17 == 0 }.allSatisfy { !$0.value })
    }
}
