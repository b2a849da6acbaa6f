import GRDB

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension SQLiteStore: PruningStore {
    /// Runs as one more write of the group commit, so it queues behind the
    /// requests' writes and shares their transaction instead of holding the
    /// write lock on a connection of its own. The orders are found through the
    /// partial index `orders_finished` (migrations/0003_finished_orders.sql),
    /// so a batch reads only what it deletes.
    ///
    /// Freed pages go to SQLite's free list and are reused by later writes: the
    /// file stops growing once retention runs, but does not shrink (that would
    /// take a `VACUUM`, which holds the write lock for the whole copy).
    public func deleteFinishedOrders(finishedBefore cutoff: Timestamp, limit: Int) async throws -> PrunedOrders {
        try await batcher.write { db in
            let ids = try String.fetchAll(db.cachedStatement(sql: """
                SELECT id FROM orders
                WHERE status IN ('succeeded', 'failed') AND updated_at < ?
                ORDER BY updated_at, id LIMIT ?
                """), arguments: [cutoff.millisecondsSince1970, limit])
            guard !ids.isEmpty else { return PrunedOrders(orders: 0, events: 0) }
            let list = String(decoding: try JSONEncoder().encode(ids), as: UTF8.self)
            do {
                try db.cachedStatement(sql: "DELETE FROM events WHERE order_id IN (SELECT value FROM json_each(?))")
                    .execute(arguments: [list])
                let events = db.changesCount
                try db.cachedStatement(sql: "DELETE FROM orders WHERE id IN (SELECT value FROM json_each(?))")
                    .execute(arguments: [list])
                return PrunedOrders(orders: db.changesCount, events: events)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                // Not a database error to the group commit: this batch rolls back
                // alone (its savepoint) and the writes it shares a commit with go on.
                throw PruningRefused(description: "deleting finished orders was refused: \(error.message ?? "\(error)")")
            }
        }
    }
}
