import GRDB

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

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
            status: try decodeStatus(row["status"]),
            amount: row["amount"],
            currency: row["currency"],
            metadata: try decodeMetadata(metadataText),
            version: row["version"],
            createdAt: Timestamp(millisecondsSince1970: row["created_at"]),
            updatedAt: Timestamp(millisecondsSince1970: row["updated_at"]))
    }

    static func decodeEvent(_ row: Row) throws -> PaymentEvent {
        let previous: String? = row["previous"]
        let sourceText: String = row["source"]
        guard let source = ChangeSource(rawValue: sourceText) else {
            throw StoreError.corruptRow("unknown source \(sourceText)")
        }
        return PaymentEvent(
            orderID: row["order_id"],
            seq: row["seq"],
            status: try decodeStatus(row["status"]),
            previous: try previous.map(decodeStatus),
            source: source,
            eventID: row["event_id"],
            reason: row["reason"],
            at: Timestamp(millisecondsSince1970: row["at"]))
    }

    static func decodeStatus(_ text: String) throws -> PaymentStatus {
        guard let status = PaymentStatus(rawValue: text) else { throw StoreError.corruptRow("unknown status \(text)") }
        return status
    }

    static func encodeMetadata(_ metadata: [String: String]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(metadata), as: UTF8.self)
    }

    static func decodeMetadata(_ text: String) throws -> [String: String] {
        try JSONDecoder().decode([String: String].self, from: Data(text.utf8))
    }
}

/// A stored value the code cannot read back, which only a hand edit of the database produces.
public enum StoreError: Error, Sendable {
    case corruptRow(String)
}
