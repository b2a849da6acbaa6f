import PostgresNIO

extension PostgresStore: PruningStore {
    /// One statement, so one transaction and one round trip: the batch's
    /// orders are locked (`SKIP LOCKED`: instances pruning at the same time
    /// take different orders instead of waiting on one another), then their
    /// events and they are deleted. The foreign key from events to orders is
    /// checked at the end of the statement, when both are gone. Found through
    /// the partial index `orders_finished` (migrations/postgres/0003_finished_orders.sql).
    public func deleteFinishedOrders(finishedBefore cutoff: Timestamp, limit: Int) async throws -> PrunedOrders {
        let rows = try await rows("""
            WITH doomed AS (
                SELECT id FROM orders
                WHERE status IN ('succeeded', 'failed') AND updated_at < \(cutoff.millisecondsSince1970)
                ORDER BY updated_at, id LIMIT \(Int64(limit))
                FOR UPDATE SKIP LOCKED
            ), events_gone AS (
                DELETE FROM events e USING doomed d WHERE e.order_id = d.id RETURNING 1
            ), orders_gone AS (
                DELETE FROM orders o USING doomed d WHERE o.id = d.id RETURNING 1
            )
            SELECT (SELECT count(*) FROM orders_gone), (SELECT count(*) FROM events_gone)
            """)
        guard let (orders, events) = try rows.first?.decode((Int64, Int64).self) else {
            return PrunedOrders(orders: 0, events: 0)
        }
        return PrunedOrders(orders: Int(orders), events: Int(events))
    }
}
