import NIOCore

/// Server-Sent Events framing (WHATWG HTML, "Server-sent events"): the few
/// line formats this service writes. A frame ends with a blank line.
public enum SSEFrame {
    /// `retry: <ms>`: how long a browser waits before reconnecting.
    public static func retry(milliseconds: Int) -> ByteBuffer {
        ByteBuffer(string: "retry: \(milliseconds)\n\n")
    }

    /// An event with `id:`, `event:` and one `data:` line per line of `data`
    /// (a browser joins them back with "\n"). `id` and `name` must be single lines.
    public static func event(id: String, name: String, data: ByteBuffer) -> ByteBuffer {
        precondition(!id.contains(where: \.isNewline) && !name.contains(where: \.isNewline), "SSE id and name are single lines")
        var out = ByteBufferAllocator().buffer(capacity: data.readableBytes + id.utf8.count + name.utf8.count + 24)
        out.writeStaticString("id: ")
        out.writeString(id)
        out.writeStaticString("\nevent: ")
        out.writeString(name)
        out.writeStaticString("\n")
        writeLines(of: data, prefix: "data: ", into: &out)
        out.writeStaticString("\n")
        return out
    }

    /// A comment (`: text`), which clients ignore; used as a keep-alive so
    /// proxies and browsers see traffic on an idle stream.
    public static func comment(_ text: String) -> ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: text.utf8.count + 4)
        writeLines(of: ByteBuffer(string: text), prefix: ": ", into: &out)
        out.writeStaticString("\n")
        return out
    }

    /// The keep-alive comment, built once.
    public static let keepAlive = comment("keep-alive")

    /// Writes each line of `data` behind `prefix`. CRLF, CR and LF all end a
    /// line in SSE, so each becomes a new prefixed line; nothing in the
    /// payload can end the frame early.
    private static func writeLines(of data: ByteBuffer, prefix: StaticString, into out: inout ByteBuffer) {
        let bytes = data.readableBytesView
        var lineStart = bytes.startIndex
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                out.writeStaticString(prefix)
                out.writeBytes(bytes[lineStart..<index])
                out.writeStaticString("\n")
                if byte == UInt8(ascii: "\r"), index + 1 < bytes.endIndex, bytes[index + 1] == UInt8(ascii: "\n") {
                    index += 1
                }
                lineStart = index + 1
            }
            index += 1
        }
        out.writeStaticString(prefix)
        out.writeBytes(bytes[lineStart..<bytes.endIndex])
        out.writeStaticString("\n")
    }
}

extension SSEFrame {
    /// A status event as the contract frames it: `id: <seq>`, `event: status`,
    /// `data: <event JSON>`.
    public static func status(_ event: PaymentEvent) -> ByteBuffer {
        self.event(id: String(event.seq), name: "status", data: WireFormat.encode(event))
    }
}
