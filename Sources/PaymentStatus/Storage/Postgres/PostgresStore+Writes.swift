import PostgresNIO

extension PostgresStore {
    public func createOrder(
        _ draft: OrderDraft, id: String, at time: Timestamp, committed: @escaping @Sendable (PaymentEvent) -> Void
    ) async throws -> CreateOrderOutcome {
        let metadata = try StoredValue.encodeMetadata(draft.metadata)
        let ms = time.millisecondsSince1970
        let event = PaymentEvent(
            orderID: id, seq: 1, status: .initiated, previous: nil, source: .api, eventID: nil, reason: nil, at: time)
        let payload = notice(event)
        let initial = Order(
            id: id, status: .initiated, amount: draft.amount, currency: draft.currency,
            metadata: draft.metadata, version: 1, createdAt: time, updatedAt: time)
        let data = WireFormat.webhookData(event: event, order: initial)
        // One statement, so one transaction and one round trip: the order,
        // its first event, its webhook messages and the announcement, or nothing when the id
        // exists (a concurrent create of the same id waits for the other
        // transaction, then finds its row).
        let created = try await rows("""
            WITH created AS (
                INSERT INTO orders (id, status, amount, currency, metadata, version, created_at, updated_at)
                VALUES (\(id), 'initiated', \(draft.amount), \(draft.currency), \(metadata), 1, \(ms), \(ms))
                ON CONFLICT (id) DO NOTHING RETURNING id
            ), first_event AS (
                INSERT INTO events (order_id, seq, status, source, at)
                SELECT id, 1, 'initiated', 'api', \(ms) FROM created
            ), outbox AS (
                \(unescaped: Self.outboxInsert)
                SELECT \(unescaped: Self.newMessageID), w.id, c.id, 1, \(data), \(ms), \(ms)
                FROM created c CROSS JOIN webhook_endpoints w WHERE w.status = 'enabled'
            )
            SELECT pg_notify(\(Self.channel), \(payload)) FROM created
            """)
        if !created.isEmpty {
            committed(event)
            return .created(initial, event)
        }
        guard let existing = try await order(id: id) else {
            throw StoreUnavailable("order \(id) was neither inserted nor found")
        }
        return draft.matches(existing) ? .existing(existing) : .conflict(existing)
    }

    public func apply(
        _ change: StatusChange, at time: Timestamp, committed: @escaping @Sendable (PaymentEvent) -> Void
    ) async throws -> ChangeOutcome {
        try await changes.apply(change, at: time, committed: committed) { batch in
            try await self.transaction { connection in try await self.apply(batch, on: connection) }
        }
    }

    /// One status change inside a transaction the caller opened on
    /// `connection` (and commits). Tests hold such a transaction open to
    /// commit it late.
    func apply(_ change: StatusChange, at time: Timestamp, on connection: PostgresConnection) async throws -> ChangeOutcome {
        try await apply([ChangeQueue.Change(change: change, time: time)], on: connection)[0]
    }

    public func secret(named name: String, orStore candidate: String) async throws -> (value: String, created: Bool) {
        try await transaction { [logger] connection in
            let inserted = try await connection.query("""
                INSERT INTO settings (name, value) VALUES (\(name), \(candidate)) ON CONFLICT (name) DO NOTHING RETURNING value
                """, logger: logger).collect()
            if !inserted.isEmpty { return (candidate, true) }
            let rows = try await connection.query("SELECT value FROM settings WHERE name = \(name)", logger: logger).collect()
            return (try rows.first?.decode(String.self) ?? candidate, false)
        }
    }

    /// The outbox's insert, which a write's statement feeds with one row per
    /// enabled endpoint, so that its messages commit with its event.
    static let outboxInsert = "INSERT INTO webhook_messages (id, endpoint_id, order_id, seq, data, created_at, next_attempt_at)"
    /// A message id made by the database, one per row: `msg_` and 32 hex digits.
    static let newMessageID = "'msg_' || replace(gen_random_uuid()::text, '-', '')"

    /// The `NOTIFY` payload announcing `event` to the other instances.
    func notice(_ event: PaymentEvent) -> String {
        EventNotice(instance: instanceID, event: event).payload(maxLength: maxInlinePayload)
    }

    /// `transaction` within the store's `answerTimeout` (see `withConnection`).
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await transaction(answerWithin: answerTimeout, body)
    }

    /// Runs `body` in a transaction on a pooled connection: committed when
    /// it returns, rolled back when it throws. `answerWithin` as `withConnection`'s.
    func transaction<T: Sendable>(
        answerWithin answerTimeout: Duration?, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let logger = self.logger
        return try await withConnection(answerWithin: answerTimeout) { connection in
            try await connection.withTransaction(logger: logger) { connection in try await body(connection) }
        }
    }

    /// Connection and server failures become `StoreUnavailable` (503, retry);
    /// anything else is a bug and stays as it is.
    static func translatingErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PSQLError where isUnavailable(error) {
            throw StoreUnavailable("PostgreSQL is unavailable: \(error.code) \(error.serverInfo?[.sqlState] ?? "")")
        } catch let error as PostgresTransactionError {
            if let inner = error.closureError as? PSQLError, !isUnavailable(inner) { throw inner }
            if let inner = error.closureError, !(inner is PSQLError) { throw inner }
            throw StoreUnavailable("PostgreSQL transaction failed: \(error)")
        }
    }

    private static func isUnavailable(_ error: PSQLError) -> Bool {
        switch error.code {
        case .server:
            // Connection exceptions, insufficient resources (disk full), operator
            // intervention (shutdown, terminated backend), serialization failures.
            let state = error.serverInfo?[.sqlState] ?? ""
            return ["08", "53", "57", "40"].contains(String(state.prefix(2)))
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed,
            .sslUnsupported, .failedToAddSSLHandler, .queryCancelled:
            return true
        default:
            return false
        }
    }
}
