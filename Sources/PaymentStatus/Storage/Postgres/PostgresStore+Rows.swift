import PostgresNIO

/// The PostgreSQL codec: the only place where its rows become domain values.
extension PostgresStore {
    static let orderColumns = "o.id, o.status, o.amount, o.currency, o.metadata, o.version, o.created_at, o.updated_at"
    static let eventColumns = "e.order_id, e.seq, e.status, e.previous, e.source, e.event_id, e.reason, e.at"

    static func decodeEvents(_ rows: [PostgresRow]) throws -> [PaymentEvent] {
        try rows.map { row in
            var cells = Cells(row)
            return try cells.event()
        }
    }

    /// Reads a row's cells left to right, in the order of the column lists above.
    struct Cells {
        private let row: PostgresRandomAccessRow
        private var index = 0

        init(_ row: PostgresRow) {
            self.row = row.makeRandomAccess()
        }

        /// Whether the next cell is NULL (a LEFT JOIN that found nothing).
        var nextIsNull: Bool { index >= row.count || row[index].bytes == nil }

        mutating func next<T: PostgresDecodable>(_: T.Type = T.self) throws -> T {
            defer { index += 1 }
            return try row[index].decode(T.self)
        }

        mutating func order() throws -> Order {
            Order(
                id: try next(),
                status: try StoredValue.status(next()),
                amount: try next(),
                currency: try next(),
                metadata: try StoredValue.decodeMetadata(next()),
                version: try next(),
                createdAt: Timestamp(millisecondsSince1970: try next()),
                updatedAt: Timestamp(millisecondsSince1970: try next()))
        }

        mutating func event() throws -> PaymentEvent {
            PaymentEvent(
                orderID: try next(),
                seq: try next(),
                status: try StoredValue.status(next()),
                previous: try next(String?.self).map(StoredValue.status),
                source: try StoredValue.source(next()),
                eventID: try next(),
                reason: try next(),
                at: Timestamp(millisecondsSince1970: try next()))
        }
    }
}
