import GRDB

extension SQLiteStore {
    /// The outbox: one message per enabled endpoint for `event`, inserted in
    /// the event's own transaction (the caller's), so a commit that holds the
    /// event holds its messages and a crash loses neither. `order` is the
    /// order right after the event. With no endpoint this is one indexed
    /// read of an empty table.
    static func enqueueWebhooks(for event: PaymentEvent, order: Order, _ db: Database) throws {
        let endpoints = try String.fetchAll(db.cachedStatement(sql: "SELECT id FROM webhook_endpoints WHERE status = 'enabled'"))
        guard !endpoints.isEmpty else { return }
        let data = WireFormat.webhookData(event: event, order: order)
        let statement = try db.cachedStatement(sql: outboxInsert)
        for endpoint in endpoints {
            try statement.execute(arguments: [
                OutboundMessage.generateID(at: event.at), endpoint, event.orderID, event.seq, data,
                event.at.millisecondsSince1970,
            ])
        }
    }

    /// A message's insert. It is due now, or when the order's pending message before it is next tried
    /// if that is later: it cannot go before it anyway (see the due index).
    /// The look-up names its index: left to itself SQLite takes the one on
    /// (endpoint_id, status), which walks every pending message of the
    /// endpoint, so while a receiver is down each transition got slower
    /// as its backlog grew (58 transitions/s after a few thousand).
    static let outboxInsert = """
        INSERT INTO webhook_messages (id, endpoint_id, order_id, seq, data, created_at, next_attempt_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, max(?6, coalesce((
            SELECT max(next_attempt_at) FROM webhook_messages INDEXED BY webhook_messages_order
            WHERE endpoint_id = ?2 AND order_id = ?3 AND status = 'pending'), ?6)))
        """
}
