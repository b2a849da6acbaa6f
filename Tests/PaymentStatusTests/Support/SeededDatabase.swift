import Foundation
import GRDB
@testable import PaymentStatus

/// Migrated SQLite files filled by SQL, for the operator commands' tests:
/// a few hundred thousand events in a second or two, where the API would
/// take minutes.
enum SeededDatabase {
    /// Creates (or adds to) the database at `path`: `orders` final orders named
    /// `<prefix>-0000001`…, each with three events (initiated, processing,
    /// succeeded) at `time`.
    static func fill(_ path: String, orders: Int, prefix: String = "seed", at time: Timestamp = .now()) async throws {
        let store = try SQLiteStore(path: path)
        try await store.migrate(migrations: TestService.migrations)
        let ms = time.millisecondsSince1970
        try await store.dbWriter.write { db in
            try db.execute(
                sql: """
                    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                    INSERT INTO orders (id, status, amount, currency, metadata, version, created_at, updated_at)
                    SELECT printf('%s-%07d', ?, i), 'succeeded', 100 + i, 'EUR', '{}', 3, ?, ? FROM n
                    """, arguments: [orders, prefix, ms, ms])
            try db.execute(
                sql: """
                    INSERT INTO events (order_id, seq, status, previous, source, event_id, reason, at, position)
                    SELECT o.id, s.seq, s.status, s.previous, 'api', NULL, NULL, ?,
                           (SELECT coalesce(max(position), 0) FROM events) + row_number() OVER (ORDER BY o.id, s.seq)
                    FROM orders o, (SELECT 1 AS seq, 'initiated' AS status, NULL AS previous
                                    UNION ALL SELECT 2, 'processing', 'initiated'
                                    UNION ALL SELECT 3, 'succeeded', 'processing') s
                    WHERE o.id LIKE ? || '-%'
                    ORDER BY o.id, s.seq
                    """, arguments: [ms, prefix])
        }
        try store.close()
    }

    /// The counts of orders and events, read on a connection of its own.
    static func counts(_ path: String) async throws -> (orders: Int, events: Int) {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try await queue.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM orders") ?? -1, try Int.fetchOne(db, sql: "SELECT count(*) FROM events") ?? -1)
        }
    }

    /// `PRAGMA integrity_check` and the counts of orders and events, read on a
    /// connection of its own.
    static func inspect(_ path: String) async throws -> (integrity: [String], orders: Int, events: Int) {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try await queue.read { db in
            (
                try String.fetchAll(db, sql: "PRAGMA integrity_check"),
                try Int.fetchOne(db, sql: "SELECT count(*) FROM orders") ?? -1,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM events") ?? -1
            )
        }
    }
}
