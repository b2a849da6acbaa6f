#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore

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

    /// The JSON payload; without the event when the whole would be longer
    /// than `maxLength` bytes. Written by hand, keys always in the same order
    /// with the instance first (JSONEncoder's order changes from one process
    /// to the next), so that an instance knows its own by their prefix.
    func payload(maxLength: Int) -> String {
        let full = encoded(withEvent: true)
        return full.readableBytes <= maxLength ? String(buffer: full) : String(buffer: encoded(withEvent: false))
    }

    private func encoded(withEvent: Bool) -> ByteBuffer {
        var json = JSONWriter(capacity: 192)
        json.beginObject()
        json.key("i"); json.string(instance)
        json.key("o"); json.string(orderID)
        json.key("s"); json.integer(seq)
        if withEvent, let event {
            json.key("e")
            json.beginObject()
            json.key("status"); json.string(event.status)
            if let previous = event.previous { json.key("previous"); json.string(previous) }
            json.key("source"); json.string(event.source)
            if let eventID = event.eventID { json.key("eventID"); json.string(eventID) }
            if let reason = event.reason { json.key("reason"); json.string(reason) }
            json.key("at"); json.integer(event.at)
            json.endObject()
        }
        json.endObject()
        return json.buffer
    }

    init(payload: String) throws {
        self = try JSONDecoder().decode(EventNotice.self, from: Data(payload.utf8))
    }

    /// How the payloads `instance` writes begin: `{"i":"<instance>",`. Every
    /// instance hears its own notices too, and on a busy one decoding them
    /// only to drop them is a few per cent of its CPU; a payload with this
    /// prefix is dropped unread.
    static func ownPrefix(instance: String) -> String {
        var json = JSONWriter(capacity: 64)
        json.beginObject()
        json.key("i"); json.string(instance)
        return String(buffer: json.buffer) + ","
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
