#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What one instance tells the others after a commit: which order moved to
/// which `seq`, and the event itself when it fits in a notification.
/// Carried as compact JSON in a PostgreSQL `NOTIFY` payload.
struct EventNotice: Codable, Equatable, Sendable {
    /// The instance that committed the event.
    var instance: String
    var orderID: String
    var seq: Int
    var event: Event?

    /// The event's fields, as stored.
    struct Event: Codable, Equatable, Sendable {
        var status: String
        var previous: String?
        var source: String
        var eventID: String?
        var reason: String?
        var at: Int64
    }

    enum CodingKeys: String, CodingKey {
        case instance = "i", orderID = "o", seq = "s", event = "e"
    }

    init(instance: String, orderID: String, seq: Int, event: Event?) {
        self.instance = instance
        self.orderID = orderID
        self.seq = seq
        self.event = event
    }

    init(instance: String, event: PaymentEvent) {
        self.init(
            instance: instance, orderID: event.orderID, seq: event.seq,
            event: Event(
                status: event.status.rawValue, previous: event.previous?.rawValue, source: event.source.rawValue,
                eventID: event.eventID, reason: event.reason, at: event.at.millisecondsSince1970))
    }

    /// The JSON payload; without the event when the whole would be longer than `maxLength` bytes.
    func payload(maxLength: Int) -> String {
        let encoder = JSONEncoder()
        if let data = try? encoder.encode(self), data.count <= maxLength {
            return String(decoding: data, as: UTF8.self)
        }
        var bare = self
        bare.event = nil
        return String(decoding: (try? encoder.encode(bare)) ?? Data(), as: UTF8.self)
    }

    init(payload: String) throws {
        self = try JSONDecoder().decode(EventNotice.self, from: Data(payload.utf8))
    }

    /// The event, when the notice carries it.
    func paymentEvent() throws -> PaymentEvent? {
        guard let event else { return nil }
        return PaymentEvent(
            orderID: orderID, seq: seq, status: try StoredValue.status(event.status),
            previous: try event.previous.map(StoredValue.status), source: try StoredValue.source(event.source),
            eventID: event.eventID, reason: event.reason, at: Timestamp(millisecondsSince1970: event.at))
    }
}
