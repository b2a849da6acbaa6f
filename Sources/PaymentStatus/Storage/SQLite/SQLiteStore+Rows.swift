import GRDB

/// The SQL codec: the only place where rows become domain values and back.
extension SQLiteStore {
    static func fetchOrder(_ db: Database, id: String) throws -> Order? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM orders WHERE id = ?"), arguments: [id])
            .map(decodeOrder)
    }

    static func fetchEvents(_ db: Database, orderID: String, after seq: Int, limit: Int) throws -> [PaymentEvent] {
        let statement = try db.cachedStatement(sql: "SELECT * FROM events WHERE order_id = ? AND seq > ? ORDER BY seq LIMIT ?")
        return try Row.fetchAll(statement, arguments: [orderID, seq, limit]).map(decodeEvent)
    }

    static func decodeOrder(_ row: Row) throws -> Order {
        let metadataText: String = row["metadata"]
        return Order(
            id: row["id"],
            status: try StoredValue.status(row["status"]),
            amount: row["amount"],
            currency: row["currency"],
            metadata: try StoredValue.decodeMetadata(metadataText),
            version: row["version"],
            createdAt: Timestamp(millisecondsSince1970: row["created_at"]),
            updatedAt: Timestamp(millisecondsSince1970: row["updated_at"]))
    }

    static func decodeEvent(_ row: Row) throws -> PaymentEvent {
        let previous: String? = row["previous"]
        return PaymentEvent(
            orderID: row["order_id"],
            seq: row["seq"],
            status: try StoredValue.status(row["status"]),
            previous: try previous.map(StoredValue.status),
            source: try StoredValue.source(row["source"]),
            eventID: row["event_id"],
            reason: row["reason"],
            at: Timestamp(millisecondsSince1970: row["at"]))
    }
}
