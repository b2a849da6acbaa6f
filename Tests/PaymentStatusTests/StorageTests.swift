import Foundation
import GRDB
import Testing
@testable import PaymentStatus

@Suite("SQLite store and migrations", .timeLimit(.minutes(2)))
struct StorageTests {
    /// A fresh database file in its own temporary folder.
    struct Scratch {
        let folder: String
        var path: String { folder + "/db.sqlite" }

        init() throws {
            folder = try TemporaryFolder("ps-store").path
        }

        func migratedStore() async throws -> SQLiteStore {
            let store = try SQLiteStore(path: path)
            try await store.migrate(migrations: TestService.migrations)
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
        // No checkpoint inside a commit: SQLiteCheckpointer does them beside the writer.
        #expect(try await store.pragma("wal_autocheckpoint") == "0")
        #expect(try await store.pragma("journal_size_limit") == "67108864")
        // The savepoints of a group commit keep their page images in memory, not in a temporary file.
        #expect(try await store.pragma("temp_store") == "2")
        try store.close()
    }

    /// The outbox's frequent queries go down the index made for them: a
    /// message's insert finds the order's pending messages through the
    /// order's index, not by walking all of the endpoint's pending ones
    /// (which made every transition slower as a down receiver's backlog
    /// grew); the gauges count the pending messages alone; a listing reads one
    /// status's newest messages without sorting them all.
    @Test func theOutboxQueriesReadOnlyWhatTheyNeed() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let store = try await scratch.migratedStore()
        func plan(_ sql: String, _ arguments: StatementArguments = []) async throws -> [String] {
            try await store.dbWriter.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { row -> String in row["detail"] }
            }
        }
        let insert = try await plan(SQLiteStore.outboxInsert, ["m", "e", "o", 1, "{}", 0])
        #expect(insert.contains { $0.contains("USING INDEX webhook_messages_order (endpoint_id=? AND order_id=?)") }, "\(insert)")
        #expect(!insert.contains { $0.contains("webhook_messages_endpoint") }, "\(insert)")
        let backlog = try await plan(SQLiteStore.backlogQuery)
        #expect(backlog.contains { $0.contains("COVERING INDEX webhook_messages_due") }, "\(backlog)")
        let page = try await plan(SQLiteStore.pageOfStatus, ["e", "failed", 100])
        #expect(page.contains { $0.contains("webhook_messages_endpoint (endpoint_id=? AND status=?)") }, "\(page)")
        #expect(!page.contains { $0 == "USE TEMP B-TREE FOR ORDER BY" }, "\(page)")
        try store.close()
    }

    @Test func theCheckpointerCopiesTheWALWhileWritesGoOn() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let store = try await scratch.migratedStore()
        let checkpointer = try SQLiteCheckpointer(store: store, logger: TestService.logger)
        let draft = try OrderDraft(id: nil, amount: 5, currency: "EUR", metadata: nil)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for index in 0..<300 { _ = try await store.createOrder(draft, id: "c\(index)", at: .now()) }
            }
            // Checkpoints while the writes commit: neither waits for the other.
            // One that finds the file busy past its 1 s (a loaded machine) is
            // tried again, as the service's loop does; most must get through.
            group.addTask {
                var copied = 0
                for _ in 0..<20 {
                    if (try? await checkpointer.checkpoint()) != nil { copied += 1 }
                    try await Task.sleep(for: .milliseconds(5))
                }
                #expect(copied >= 10, "\(copied) of 20 checkpoints got through while the writes went on")
            }
            try await group.waitForAll()
        }
        let (frames, copied) = try #require(try await checkpointer.checkpoint())
        #expect(frames > 0 && copied == frames, "WAL frames \(frames), copied \(copied)")
        #expect(try await store.order(id: "c299") != nil)
        try store.close()
        // Reopened, every write is there.
        let reopened = try SQLiteStore(path: scratch.path)
        #expect(try await reopened.order(id: "c0") != nil)
        #expect(try await reopened.order(id: "c299") != nil)
        try reopened.close()
    }

    /// Under writes that do not pause, no pass of the checkpointer ends with
    /// nothing appended meanwhile, and SQLite starts the WAL over only after
    /// one that does: the WAL grew by every write. Past its bound the writer
    /// copies the last frames between two batches, and the WAL starts over.
    @Test func theWALStartsOverWhileWritesGoOn() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let store = try await scratch.migratedStore()
        let checkpointer = try SQLiteCheckpointer(store: store, restartAtFrames: 64, logger: TestService.logger)
        let draft = try OrderDraft(id: nil, amount: 5, currency: "EUR", metadata: nil)
        let writers = 16, ordersEach = 400
        let before = try #require(try await checkpointer.checkpoint()).walFrameCount
        let largest = try await withThrowingTaskGroup(of: Int.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    for index in 0..<ordersEach { _ = try await store.createOrder(draft, id: "w\(writer)-\(index)", at: .now()) }
                    return 0
                }
            }
            group.addTask {
                var largest = 0
                while try await store.order(id: "w0-\(ordersEach - 1)") == nil {
                    largest = max(largest, try await checkpointer.checkpoint()?.walFrameCount ?? 0)
                    try await Task.sleep(for: .milliseconds(5))
                }
                return largest
            }
            return try await group.reduce(0, max)
        }
        let (frames, copied) = try #require(try await checkpointer.checkpoint())
        let written = store.batcher.counts.transactions
        // A commit appends several frames (about 20 here): a WAL that never
        // started over held 20 times as many frames as there were commits.
        #expect(largest < written, "\(written) commits, while the WAL held up to \(largest) frames (\(before) at the start)")
        #expect(store.batcher.walTailCopies > 0, "the writer never copied the WAL's tail")
        #expect(copied == frames)
        try store.close()
        let reopened = try SQLiteStore(path: scratch.path)
        #expect(try await reopened.order(id: "w\(writers - 1)-\(ordersEach - 1)") != nil)
        try reopened.close()
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
