import NIOCore

/// The JSON of webhooks to the merchant: what is sent, and what the endpoint
/// routes answer.
extension WireFormat {
    /// The type of every message sent so far.
    static let webhookType = "payment_status.changed"

    /// A message's `data`: `{"event":…,"order":…}`, the order as it stood right
    /// after the event. Rendered once, in the event's transaction.
    static func webhookData(event: PaymentEvent, order: Order) -> String {
        var json = JSONWriter(capacity: 512)
        json.beginObject()
        json.key("event"); write(event, to: &json)
        json.key("order")
        json.beginObject()
        writeFields(of: order, to: &json)
        json.endObject()
        json.endObject()
        return String(buffer: json.buffer)
    }

    /// The body sent: `{"id","type","created_at","data"}`, the same bytes on every attempt.
    static func webhookBody(_ message: OutboundMessage) -> ByteBuffer {
        var json = JSONWriter(capacity: message.data.utf8.count + 128)
        json.beginObject()
        json.key("id"); json.string(message.id)
        json.key("type"); json.string(webhookType)
        json.key("created_at"); json.string(message.createdAt.rfc3339)
        json.key("data"); json.raw(ByteBuffer(string: message.data))
        json.endObject()
        return json.buffer
    }

    /// `{"id","url","description","status","created_at"}`, plus `secret` right
    /// after a create or a rotation (its only showings).
    static func write(_ endpoint: WebhookEndpoint, showingSecret: Bool, to json: inout JSONWriter) {
        json.beginObject()
        json.key("id"); json.string(endpoint.id)
        json.key("url"); json.string(endpoint.url)
        json.key("description"); json.string(endpoint.description)
        json.key("status"); json.string(endpoint.enabled ? "enabled" : "disabled")
        json.key("created_at"); json.string(endpoint.createdAt.rfc3339)
        if showingSecret { json.key("secret"); json.string(endpoint.secret) }
        json.endObject()
    }

    static func encode(_ endpoint: WebhookEndpoint, showingSecret: Bool) -> ByteBuffer {
        var json = JSONWriter(capacity: 384)
        write(endpoint, showingSecret: showingSecret, to: &json)
        return json.buffer
    }

    /// `{"endpoints":[…]}`, without secrets.
    static func encode(endpoints: [WebhookEndpoint]) -> ByteBuffer {
        list("endpoints", endpoints, bytesEach: 256) { endpoint, json in write(endpoint, showingSecret: false, to: &json) }
    }

    /// `{"<key>":[…]}`, each item written by `write`.
    private static func list<T>(
        _ key: StaticString, _ items: [T], bytesEach: Int, _ write: (T, inout JSONWriter) -> Void
    ) -> ByteBuffer {
        var json = JSONWriter(capacity: 64 + bytesEach * items.count)
        json.beginObject()
        json.key(key)
        json.beginArray()
        for item in items { write(item, &json) }
        json.endArray()
        json.endObject()
        return json.buffer
    }

    /// `{"messages":[{"id","order_id","seq","status","created_at","next_attempt_at","attempts":[…]}]}`
    static func encode(messages: [WebhookMessageRecord]) -> ByteBuffer {
        list("messages", messages, bytesEach: 384) { message, json in
            json.beginObject()
            json.key("id"); json.string(message.id)
            json.key("order_id"); json.string(message.orderID)
            json.key("seq"); json.integer(message.seq)
            json.key("status"); json.string(message.status.rawValue)
            json.key("created_at"); json.string(message.createdAt.rfc3339)
            json.key("next_attempt_at"); json.string(message.nextAttemptAt?.rfc3339)
            json.key("attempts")
            json.beginArray()
            for attempt in message.attempts {
                json.beginObject()
                json.key("at"); json.string(attempt.at.rfc3339)
                json.key("status_code")
                if let code = attempt.statusCode { json.integer(code) } else { json.null() }
                json.key("error"); json.string(attempt.error)
                json.key("duration_ms"); json.integer(attempt.durationMilliseconds)
                json.endObject()
            }
            json.endArray()
            json.endObject()
        }
    }
}
