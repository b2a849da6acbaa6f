import NIOCore
import Testing
@testable import PaymentStatus

@Suite("SSE framing")
struct SSEFramingTests {
    private func text(_ buffer: ByteBuffer) -> String { String(buffer: buffer) }

    @Test func eventHasIdNameDataAndBlankLine() {
        let frame = SSEFrame.event(id: "3", name: "status", data: ByteBuffer(string: #"{"a":1}"#))
        #expect(text(frame) == "id: 3\nevent: status\ndata: {\"a\":1}\n\n")
    }

    @Test("every line break style becomes its own data line", arguments: ["a\nb\nc", "a\r\nb\r\nc", "a\rb\rc", "a\nb\r\nc"])
    func multiLineData(_ data: String) {
        let frame = text(SSEFrame.event(id: "1", name: "status", data: ByteBuffer(string: data)))
        #expect(frame == "id: 1\nevent: status\ndata: a\ndata: b\ndata: c\n\n")
        var parser = SSEParser()
        #expect(parser.feed(frame) == [.event(id: "1", name: "status", data: "a\nb\nc")])
    }

    @Test func emptyAndTrailingLines() {
        #expect(text(SSEFrame.event(id: "1", name: "e", data: ByteBuffer(string: ""))) == "id: 1\nevent: e\ndata: \n\n")
        #expect(text(SSEFrame.event(id: "1", name: "e", data: ByteBuffer(string: "x\n"))) == "id: 1\nevent: e\ndata: x\ndata: \n\n")
    }

    @Test func commentsAndRetry() {
        #expect(text(SSEFrame.keepAlive) == ": keep-alive\n\n")
        #expect(text(SSEFrame.comment("two\nlines")) == ": two\n: lines\n\n")
        #expect(text(SSEFrame.retry(milliseconds: 3000)) == "retry: 3000\n\n")
        var parser = SSEParser()
        #expect(parser.feed(text(SSEFrame.comment("two\nlines"))) == [.comment("two"), .comment("lines")])
    }

    @Test func statusFrameCarriesTheEventJSONOnOneLine() throws {
        let event = PaymentEvent(
            orderID: "o1", seq: 2, status: .processing, previous: .initiated, source: .api,
            eventID: "evt\n\"quoted\"", reason: "line1\r\nline2\u{1}", at: Timestamp(millisecondsSince1970: 0))
        let frame = text(SSEFrame.status(event))
        let lines = frame.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 5)  // id, event, data, blank, end
        #expect(lines[0] == "id: 2")
        #expect(lines[1] == "event: status")
        let json = try JSON(String(lines[2].dropFirst("data: ".count)))
        #expect(json.keys == ["order_id", "seq", "status", "previous", "source", "event_id", "reason", "at"])
        #expect(json["event_id"].string == "evt\n\"quoted\"")
        #expect(json["reason"].string == "line1\r\nline2\u{1}")
        #expect(json["previous"].string == "initiated")
        #expect(json["at"].string == "1970-01-01T00:00:00.000Z")
    }

    @Test func nullFieldsAreJSONNull() throws {
        let event = PaymentEvent(
            orderID: "o1", seq: 1, status: .initiated, previous: nil, source: .api, eventID: nil, reason: nil,
            at: Timestamp(millisecondsSince1970: 0))
        let json = try JSON(WireFormat.encode(event))
        #expect(json["previous"].isNull && json["event_id"].isNull && json["reason"].isNull)
        #expect(json["seq"].int == 1)
    }

    @Test func jsonWriterEscapesEveryControlCharacter() throws {
        var writer = JSONWriter()
        let all = String((0..<32).map { Character(UnicodeScalar($0)!) }) + "\"\\/é😀"
        writer.string(all)
        #expect(!String(buffer: writer.buffer).contains("\n"))
        #expect(try JSON(writer.buffer).string == all)
    }
}
