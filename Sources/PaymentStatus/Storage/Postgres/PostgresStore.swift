import Logging
import PostgresNIO

/// The shared store for several instances: PostgreSQL through a pool of
/// connections. A write locks the order's row and announces its event on
/// `channel` with `pg_notify`, which PostgreSQL delivers to every listening
/// instance only once the transaction commits; status changes that arrive
/// together share a transaction (`ChangeQueue`).
/// With the default `synchronous_commit = on`, a returned write is on disk.
public final class PostgresStore: PaymentStore {
    /// The notification channel every instance listens on.
    public static let channel = "payment_events"

    let client: PostgresClient
    let location: PostgresLocation
    let logger: Logger
    /// Tells this instance's own notifications apart: its streams already
    /// got those events straight after the commit.
    let instanceID: String
    /// Payloads longer than this (PostgreSQL refuses 8000 bytes and more)
    /// carry the order id and `seq` only, and listeners read the event.
    let maxInlinePayload: Int
    /// How long a leased connection may go without answering before it is
    /// taken for dead (`withConnection`).
    let answerTimeout: Duration
    /// The status changes waiting for their group commit.
    let changes = ChangeQueue()
    private let running: Task<Void, Never>

    /// Starts the connection pool; it connects at the first query.
    public static func open(
        _ location: PostgresLocation, instanceID: String, logger: Logger, maxInlinePayload: Int = 7900,
        answerTimeout: Duration = .seconds(10)
    ) async throws -> PostgresStore {
        let client = PostgresClient(configuration: try location.clientConfiguration(), backgroundLogger: logger)
        // The pool must run before the first lease, or it warns at every start.
        let (started, signal) = AsyncStream<Void>.makeStream()
        let running = Task {
            signal.finish()
            await client.run()
        }
        for await _ in started {}
        return PostgresStore(
            client: client, running: running, location: location, logger: logger, instanceID: instanceID,
            maxInlinePayload: maxInlinePayload, answerTimeout: answerTimeout)
    }

    private init(
        client: PostgresClient, running: Task<Void, Never>, location: PostgresLocation, logger: Logger, instanceID: String,
        maxInlinePayload: Int, answerTimeout: Duration
    ) {
        self.client = client
        self.running = running
        self.location = location
        self.logger = logger
        self.instanceID = instanceID
        self.maxInlinePayload = maxInlinePayload
        self.answerTimeout = answerTimeout
    }

    public func close() async throws {
        running.cancel()
        await running.value
    }

    // MARK: - Reads

    public func order(id: String) async throws -> Order? {
        try await Self.translatingErrors {
            let rows = try await rows("SELECT \(unescaped: Self.orderColumns) FROM orders o WHERE o.id = \(id)")
            return try rows.first.map { row in
                var cells = Cells(row)
                return try cells.order()
            }
        }
    }

    public func orderWithEvents(id: String) async throws -> (Order, [PaymentEvent])? {
        // One statement, so one snapshot: the version and the newest event agree.
        try await Self.translatingErrors {
            let rows = try await rows("""
                SELECT \(unescaped: Self.orderColumns), \(unescaped: Self.eventColumns)
                FROM orders o LEFT JOIN events e ON e.order_id = o.id
                WHERE o.id = \(id) ORDER BY e.seq
                """)
            var order: Order?
            var events: [PaymentEvent] = []
            for row in rows {
                var cells = Cells(row)
                order = try cells.order()
                if !cells.nextIsNull { events.append(try cells.event()) }
            }
            return order.map { ($0, events) }
        }
    }

    public func events(orderID: String, after seq: Int, limit: Int) async throws -> [PaymentEvent] {
        try await Self.translatingErrors {
            try Self.decodeEvents(try await rows("""
                SELECT \(unescaped: Self.eventColumns) FROM events e
                WHERE e.order_id = \(orderID) AND e.seq > \(seq) ORDER BY e.seq LIMIT \(min(limit, Int(Int32.max)))
                """))
        }
    }

    /// Each listed order's events after the given `seq`, ordered by order
    /// and `seq`, in one query: what a listener re-reads after reconnecting.
    public func events(after watermarks: [(orderID: String, seq: Int)]) async throws -> [PaymentEvent] {
        guard !watermarks.isEmpty else { return [] }
        return try await Self.translatingErrors {
            let ids = watermarks.map(\.orderID)
            let seqs = watermarks.map(\.seq)
            return try Self.decodeEvents(try await rows("""
                SELECT \(unescaped: Self.eventColumns)
                FROM unnest(\(ids)::text[], \(seqs)::bigint[]) AS w(order_id, seq)
                JOIN events e ON e.order_id = w.order_id AND e.seq > w.seq
                ORDER BY e.order_id, e.seq
                """))
        }
    }

    public func latestEvent(orderID: String) async throws -> PaymentEvent? {
        try await Self.translatingErrors {
            try Self.decodeEvents(try await rows("""
                SELECT \(unescaped: Self.eventColumns) FROM events e WHERE e.order_id = \(orderID) ORDER BY e.seq DESC LIMIT 1
                """)).first
        }
    }

    public func storedSecret(named name: String) async throws -> String? {
        try await Self.translatingErrors {
            try await rows("SELECT value FROM settings WHERE name = \(name)").first.map { try $0.decode(String.self) }
        }
    }

    public func checkReadiness() async throws {
        try await Self.translatingErrors {
            _ = try await rows("SELECT count(*) FROM schema_migrations")
        }
    }
}
