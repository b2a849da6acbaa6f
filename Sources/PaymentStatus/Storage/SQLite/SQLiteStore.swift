import GRDB

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The embedded store: one SQLite file in WAL mode with `synchronous=FULL`,
/// so that a returned write has been fsynced and survives a power cut.
public struct SQLiteStore: PaymentStore {
    let dbWriter: DatabasePool
    /// The database file, for the checkpointing connection.
    public let path: String
    /// Transitions and creations go through here: concurrent ones share a commit.
    let batcher: WriteBatcher

    /// Opens (creating if needed) the database at `path`. Its folder is created too.
    public init(path: String) throws {
        self.path = path
        let folder = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !folder.isEmpty {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        // A second process (`migrate` while serving) holds the write lock for a
        // moment; wait for it rather than failing the request.
        configuration.busyMode = .timeout(10)
        dbWriter = try DatabasePool(path: path, configuration: configuration)
        // WAL + FULL: the WAL is fsynced at every commit. Set on the writer after
        // the pool is open, because opening a pool in WAL mode sets NORMAL
        // (which survives a crash of the process but not a power cut), and
        // checked, because a 2xx promises the change is on disk.
        let synchronous = try dbWriter.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // Checkpoints run beside the writer (SQLiteCheckpointer), not inside a commit.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
            // When the WAL starts over, a file that a long reader let grow is cut back to 64 MiB.
            try db.execute(sql: "PRAGMA journal_size_limit = 67108864")
            // Each write of a group commit runs in a savepoint of its own, so
            // one that fails leaves the others in; a savepoint keeps the
            // prior image of every page it changes that the batch had changed
            // already (the outbox's and the feed's last pages, written by
            // every write). On a file, past 64 KiB, that was 14 KB of writes
            // per event, not synced but written; in memory it is a copy, and
            // it is emptied when the savepoint ends.
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
            return try Int.fetchOne(db, sql: "PRAGMA synchronous")
        }
        guard synchronous == 2 else {
            throw DatabaseError(message: "could not set PRAGMA synchronous = FULL on \(path) (got \(synchronous.map(String.init) ?? "nothing"))")
        }
        batcher = WriteBatcher(writer: dbWriter)
    }

    /// Applies the SQL files of `migrator` that this database has not seen.
    @discardableResult
    public func migrate(with migrator: SQLMigrator) async throws -> [String] {
        try await migrator.migrate(dbWriter)
    }

    /// SQLite's files are the top level of the migrations folder.
    @discardableResult
    public func migrate(migrations: String) async throws -> [String] {
        try await migrate(with: SQLMigrator(directory: migrations))
    }

    /// Checkpoints the WAL and closes every connection.
    public func close() throws {
        try dbWriter.close()
    }

    // MARK: - Reads

    public func order(id: String) async throws -> Order? {
        try await dbWriter.read { db in try Self.fetchOrder(db, id: id) }
    }

    public func orderWithEvents(id: String) async throws -> (Order, [PaymentEvent])? {
        try await dbWriter.read { db in
            guard let order = try Self.fetchOrder(db, id: id) else { return nil }
            return (order, try Self.fetchEvents(db, orderID: id, after: 0, limit: .max))
        }
    }

    public func events(orderID: String, after seq: Int, limit: Int) async throws -> [PaymentEvent] {
        try await dbWriter.read { db in try Self.fetchEvents(db, orderID: orderID, after: seq, limit: limit) }
    }

    public func latestEvent(orderID: String) async throws -> PaymentEvent? {
        try await dbWriter.read { db in
            let statement = try db.cachedStatement(sql: """
                SELECT * FROM events WHERE order_id = ? ORDER BY seq DESC LIMIT 1
                """)
            return try Row.fetchOne(statement, arguments: [orderID]).map(Self.decodeEvent)
        }
    }

    /// The feed by `position`: a reader's snapshot holds every position up to
    /// the highest it sees, because positions are taken by the one writer.
    public func feed(after cursor: FeedCursor?, limit: Int) async throws -> FeedPage {
        let after = cursor ?? FeedCursor(transaction: 0, position: 0)
        guard after.transaction == 0 else { throw MalformedCursor() }
        let limit = max(1, min(limit, Int(Int32.max) - 1))
        return try await dbWriter.read { db in
            let statement = try db.cachedStatement(sql: "SELECT * FROM events WHERE position > ? ORDER BY position LIMIT ?")
            let rows = try Row.fetchAll(statement, arguments: [after.position, limit + 1])
            let events = try rows.prefix(limit).map { row in
                FeedEvent(cursor: FeedCursor(transaction: 0, position: row["position"]), event: try Self.decodeEvent(row))
            }
            return FeedPage(events: events, hasMore: rows.count > limit)
        }
    }

    public func storedSecret(named name: String) async throws -> String? {
        try await dbWriter.read { db in try String.fetchOne(db, sql: "SELECT value FROM settings WHERE name = ?", arguments: [name]) }
    }

    public func checkReadiness() async throws {
        _ = try await dbWriter.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM schema_migrations") }
    }

    /// The value of a pragma on the connection that writes, for tests that
    /// check the durability settings (readers' settings do not matter).
    public func pragma(_ name: String) async throws -> String? {
        try await dbWriter.writeWithoutTransaction { db in try String.fetchOne(db, sql: "PRAGMA \(name)") }
    }
}
