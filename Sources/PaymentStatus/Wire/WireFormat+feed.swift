import NIOCore

/// The merchant's feed on the wire: a page, and an item as a stream frame.
extension WireFormat {
    /// An event as the feed gives it: the event JSON plus its `"cursor"`.
    static func write(_ item: FeedEvent, to json: inout JSONWriter) {
        json.beginObject()
        writeFields(of: item.event, to: &json)
        json.key("cursor"); json.string(item.cursor.description)
        json.endObject()
    }

    static func encode(_ item: FeedEvent) -> ByteBuffer {
        var json = JSONWriter(capacity: 224)
        write(item, to: &json)
        return json.buffer
    }

    /// `{"events":[…],"next_cursor","has_more"}`. `next_cursor` is the last
    /// event's cursor, or the one asked after (null from the start) when the page is empty.
    static func encode(_ page: FeedPage, after: FeedCursor?) -> ByteBuffer {
        var json = JSONWriter(capacity: 64 + 224 * page.events.count)
        json.beginObject()
        json.key("events")
        json.beginArray()
        for item in page.events { write(item, to: &json) }
        json.endArray()
        json.key("next_cursor"); json.string((page.events.last?.cursor ?? after)?.description)
        json.key("has_more"); json.bool(page.hasMore)
        json.endObject()
        return json.buffer
    }
}

extension SSEFrame {
    /// A feed item as the feed stream frames it: `id: <cursor>`, `event: status`,
    /// `data: <event JSON with its cursor>`.
    static func feed(_ item: FeedEvent) -> ByteBuffer {
        event(id: item.cursor.description, name: "status", data: WireFormat.encode(item))
    }
}
