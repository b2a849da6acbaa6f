import NIOCore

/// The JSON shapes of the contract: the only place where domain values
/// become the bytes of a response body or of an SSE event's data, for the
/// routes and the stream framing alike.
enum WireFormat {
    /// `{"order_id","seq","status","previous","source","event_id","reason","at"}` on one line.
    static func write(_ event: PaymentEvent, to json: inout JSONWriter) {
        json.beginObject()
        writeFields(of: event, to: &json)
        json.endObject()
    }

    /// The event's fields, inside an object the caller has opened, so that
    /// the feed can add the event's `cursor`.
    static func writeFields(of event: PaymentEvent, to json: inout JSONWriter) {
        json.key("order_id"); json.string(event.orderID)
        json.key("seq"); json.integer(event.seq)
        json.key("status"); json.string(event.status.rawValue)
        json.key("previous"); json.string(event.previous?.rawValue)
        json.key("source"); json.string(event.source.rawValue)
        json.key("event_id"); json.string(event.eventID)
        json.key("reason"); json.string(event.reason)
        json.key("at"); json.string(event.at.rfc3339)
    }

    static func encode(_ event: PaymentEvent) -> ByteBuffer {
        var json = JSONWriter(capacity: 192)
        write(event, to: &json)
        return json.buffer
    }

    /// The order's fields, inside an object the caller has opened, so that
    /// `GET /v1/orders/{id}` can append its `events`.
    static func writeFields(of order: Order, stream grant: StreamGrant, to json: inout JSONWriter) {
        writeFields(of: order, to: &json)
        json.key("stream_token"); json.string(grant.token)
        json.key("stream_url"); json.string(streamURL(orderID: order.id, token: grant.token))
        json.key("stream_token_expires_at"); json.string(grant.expiresAt.rfc3339)
    }

    /// The order's own fields, without the stream grant: also what a webhook
    /// to the merchant carries, which must not hand out a checkout page's token.
    static func writeFields(of order: Order, to json: inout JSONWriter) {
        json.key("id"); json.string(order.id)
        json.key("status"); json.string(order.status.rawValue)
        json.key("amount"); json.integer(order.amount)
        json.key("currency"); json.string(order.currency)
        json.key("metadata")
        json.beginObject()
        for (key, value) in order.metadata.sorted(by: { $0.key < $1.key }) {
            json.key(key)
            json.string(value)
        }
        json.endObject()
        json.key("version"); json.integer(order.version)
        json.key("created_at"); json.string(order.createdAt.rfc3339)
        json.key("updated_at"); json.string(order.updatedAt.rfc3339)
    }

    /// `{"id", "status", …, "stream_token", "stream_url", "stream_token_expires_at"}`
    static func encode(_ order: Order, stream grant: StreamGrant) -> ByteBuffer {
        var json = JSONWriter(capacity: 576)
        json.beginObject()
        writeFields(of: order, stream: grant, to: &json)
        json.endObject()
        return json.buffer
    }

    /// A long-poll's answer: `{"order_id","status","version","final","events":[…]}`.
    static func encodeLongPoll(orderID: String, status: PaymentStatus, version: Int, events: [PaymentEvent]) -> ByteBuffer {
        var json = JSONWriter(capacity: 128 + 256 * events.count)
        json.beginObject()
        json.key("order_id"); json.string(orderID)
        json.key("status"); json.string(status.rawValue)
        json.key("version"); json.integer(version)
        json.key("final"); json.bool(status.isTerminal)
        json.key("events")
        json.beginArray()
        for event in events { write(event, to: &json) }
        json.endArray()
        json.endObject()
        return json.buffer
    }

    /// `{"stream_token", "stream_url", "expires_at"}`: a fresh token for a page whose token expired.
    static func encode(_ grant: StreamGrant, orderID: String) -> ByteBuffer {
        var json = JSONWriter(capacity: 256)
        json.beginObject()
        json.key("stream_token"); json.string(grant.token)
        json.key("stream_url"); json.string(streamURL(orderID: orderID, token: grant.token))
        json.key("expires_at"); json.string(grant.expiresAt.rfc3339)
        json.endObject()
        return json.buffer
    }

    /// Relative, so it is right behind any proxy or host name; the token
    /// alphabet (base64url) needs no escaping in a query.
    static func streamURL(orderID: String, token: String) -> String {
        "/v1/orders/\(orderID)/events?token=\(token)"
    }
}
