import GRDB

extension SQLiteStore {
    // MARK: - Writes

    public func createOrder(
        _ draft: OrderDraft, id: String, at time: Timestamp, committed: @escaping @Sendable (PaymentEvent) -> Void
    ) async throws -> CreateOrderOutcome {
        let metadata = try StoredValue.encodeMetadata(draft.metadata)
        return try await batcher.write(committed: { if case .created(_, let event) = $0 { committed(event) } }) { db in
            if let existing = try Self.fetchOrder(db, id: id) {
                return draft.matches(existing) ? .existing(existing) : .conflict(existing)
            }
            let order = Order(
                id: id, status: .initiated, amount: draft.amount, currency: draft.currency,
                metadata: draft.metadata, version: 1, createdAt: time, updatedAt: time)
            let event = PaymentEvent(
                orderID: id, seq: 1, status: .initiated, previous: nil, source: .api,
                eventID: nil, reason: nil, at: time)
            try db.cachedStatement(sql: """
                INSERT INTO orders (id, status, amount, currency, metadata, version, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [
                    id, order.status.rawValue, order.amount, order.currency, metadata,
                    order.version, time.millisecondsSince1970, time.millisecondsSince1970,
                ])
            try Self.insert(event, occurredAt: nil, db)
            try Self.enqueueWebhooks(for: event, order: order, db)
            return .created(order, event)
        }
    }

    public func apply(
        _ change: StatusChange, at time: Timestamp, committed: @escaping @Sendable (PaymentEvent) -> Void
    ) async throws -> ChangeOutcome {
        try await batcher.write(committed: { if case .applied(_, let event) = $0 { committed(event) } }) { db in
            guard let order = try Self.fetchOrder(db, id: change.orderID) else { return .orderNotFound }
            if let eventID = change.eventID,
                let original = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT * FROM events WHERE order_id = ? AND event_id = ?"),
                    arguments: [order.id, eventID]
                ).map(Self.decodeEvent)
            {
                return .duplicate(order: order, original: original)
            }
            let event: PaymentEvent
            switch order.nextEvent(for: change, at: time) {
            case .success(let next): event = next
            case .failure(let refused): return .refused(refused.verdict, order: order)
            }
            try Self.insert(event, occurredAt: change.occurredAt, db)
            try db.cachedStatement(sql: "UPDATE orders SET status = ?, version = ?, updated_at = ? WHERE id = ?")
                .execute(arguments: [event.status.rawValue, event.seq, time.millisecondsSince1970, order.id])
            try Self.enqueueWebhooks(for: event, order: order.asOf(event), db)
            return .applied(order: order.asOf(event), event: event)
        }
    }

    public func secret(named name: String, orStore candidate: String) async throws -> (value: String, created: Bool) {
        try await dbWriter.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO settings (name, value) VALUES (?, ?)", arguments: [name, candidate])
            let created = db.changesCount > 0
            let value = try String.fetchOne(db, sql: "SELECT value FROM settings WHERE name = ?", arguments: [name])
            return (value ?? candidate, created)
        }
    }

    /// Appends the event at the next feed position. SQLite has one writer and
    /// this runs in its write transaction, so positions are taken in commit
    /// order (see migrations/0002_event_feed.sql); the subquery is answered
    /// from the end of the `position` index.
    static func insert(_ event: PaymentEvent, occurredAt: Timestamp?, _ db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO events (order_id, seq, status, previous, source, event_id, reason, at, occurred_at, position)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, coalesce((SELECT max(position) FROM events), 0) + 1)
            """).execute(arguments: [
                event.orderID, event.seq, event.status.rawValue, event.previous?.rawValue, event.source.rawValue,
                event.eventID, event.reason, event.at.millisecondsSince1970, occurredAt?.millisecondsSince1970,
            ])
    }
}
