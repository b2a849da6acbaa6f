import Foundation
import NIOCore
import Testing
@testable import PaymentStatus

/// Randomised properties of the parsers and encoders that face the network.
/// Seeded, so a failure names the seed that reproduces it; CI runs a few
/// thousand cases, `PROPERTY_CASES=200000 swift test --filter Property` runs a long campaign.
@Suite("Properties")
struct PropertyTests {
    static let cases = ProcessInfo.processInfo.environment["PROPERTY_CASES"].flatMap(Int.init) ?? 2000
    static let seed = ProcessInfo.processInfo.environment["PROPERTY_SEED"].flatMap(UInt64.init) ?? 0x5EED_1234

    /// SplitMix64: small, fast and reproducible.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Text that favours what breaks parsers: line breaks, quotes, controls, multi-byte characters.
    static func text(_ random: inout Generator, maxLength: Int = 40) -> String {
        let pieces: [String] = ["\n", "\r", "\r\n", "\"", "\\", ":", " ", "\u{0}", "\u{1F}", "é", "😀", "data: ", "id: ", "a", "Z", "0", "{", "}", ",", "="]
        return (0..<Int.random(in: 0...maxLength, using: &random)).map { _ in
            Bool.random(using: &random) ? pieces.randomElement(using: &random)! : String(UnicodeScalar(UInt8.random(in: 0x20...0x7E, using: &random)))
        }.joined()
    }

    @Test func sseDataSurvivesFramingAndParsing() {
        var random = Generator(state: Self.seed)
        for _ in 0..<Self.cases {
            let data = Self.text(&random)
            let frame = String(buffer: SSEFrame.event(id: "7", name: "status", data: ByteBuffer(string: data)))
            var parser = SSEParser()
            let expected = data.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            #expect(parser.feed(frame) == [.event(id: "7", name: "status", data: expected)], "data \(data.debugDescription)")
        }
    }

    @Test func jsonStringsRoundTrip() throws {
        var random = Generator(state: Self.seed &+ 1)
        for _ in 0..<Self.cases {
            let value = Self.text(&random)
            var writer = JSONWriter()
            writer.beginArray()
            writer.string(value)
            writer.endArray()
            let parsed = try JSONSerialization.jsonObject(with: Data(writer.buffer.readableBytesView)) as? [String]
            #expect(parsed == [value], "value \(value.debugDescription)")
        }
    }

    static func event(_ random: inout Generator) -> PaymentEvent {
        PaymentEvent(
            orderID: "o\(random.next() % 1000)", seq: Int(random.next() % 1_000_000) + 1,
            status: PaymentStatus.allCases.randomElement(using: &random)!,
            previous: Bool.random(using: &random) ? PaymentStatus.allCases.randomElement(using: &random) : nil,
            source: Bool.random(using: &random) ? .api : .webhook,
            eventID: Bool.random(using: &random) ? Self.text(&random) : nil,
            reason: Bool.random(using: &random) ? Self.text(&random) : nil,
            at: Timestamp(millisecondsSince1970: Int64(random.next() % 4_102_444_800_000)))
    }

    @Test func eventsRoundTripThroughTheirWireFormat() throws {
        var random = Generator(state: Self.seed &+ 2)
        for _ in 0..<Self.cases {
            let event = Self.event(&random)
            let json = try JSON(WireFormat.encode(event))
            #expect(json["order_id"].string == event.orderID && json["seq"].int == event.seq)
            #expect(json["status"].string == event.status.rawValue && json["previous"].string == event.previous?.rawValue)
            #expect(json["event_id"].string == event.eventID && json["reason"].string == event.reason)
            #expect(json["at"].string.flatMap(Timestamp.init(rfc3339:)) == event.at)
        }
    }

    /// What instances tell each other through PostgreSQL: any event survives
    /// the payload, a payload too long for a notification drops the event but
    /// keeps where to read it, and garbage (anyone who can NOTIFY can send it)
    /// is refused, never a crash.
    @Test func eventNoticesRoundTripAndGarbageIsRefused() throws {
        var random = Generator(state: Self.seed &+ 6)
        for _ in 0..<Self.cases {
            let event = Self.event(&random)
            let notice = EventNotice(instance: "i1", event: event)
            #expect(try EventNotice(payload: notice.payload(maxLength: 7900)).paymentEvent() == event)
            let bare = try EventNotice(payload: notice.payload(maxLength: 20))
            #expect(bare.event == nil && bare.orderID == event.orderID && bare.seq == event.seq && bare.instance == "i1")
            let garbage = Self.text(&random, maxLength: 80)
            if let parsed = try? EventNotice(payload: garbage) {
                _ = try? parsed.paymentEvent()  // whatever parsed must not crash when read
            }
        }
    }

    /// A relay drops its own instance's notices unread by their prefix: every
    /// payload an instance writes has it, full or bare, and no other
    /// instance's does, not even one whose id starts with the same letters.
    @Test func anInstancesOwnNoticesAreKnownByTheirPrefixAndNoOtherIs() {
        var random = Generator(state: Self.seed &+ 7)
        let own = "8F0C1B7E-5C55-4C1D-9A57-2E1F6F5A0D11"
        let prefix = EventNotice.ownPrefix(instance: own)
        for _ in 0..<Self.cases {
            let event = Self.event(&random)
            for maxLength in [7900, 20] {
                #expect(EventNotice(instance: own, event: event).payload(maxLength: maxLength).hasPrefix(prefix))
                for other in [own + "0", String(own.dropLast()), "i1", ""] {
                    #expect(!EventNotice(instance: other, event: event).payload(maxLength: maxLength).hasPrefix(prefix))
                }
            }
        }
    }

    @Test func signatureHeadersParseWhatIsSignedAndNeverCrashOnGarbage() {
        var random = Generator(state: Self.seed &+ 3)
        for _ in 0..<Self.cases {
            let body = Array(Self.text(&random).utf8)
            let timestamp = Int64(random.next() % 4_000_000_000)
            let secret = Self.text(&random, maxLength: 12)
            let header = WebhookSignature.header(body: body, timestamp: timestamp, secrets: [secret])
            let parsed = WebhookSignature(header: header)
            #expect(parsed?.timestamp == timestamp)
            #expect(parsed?.verify(body: body, secrets: [secret], now: timestamp, tolerance: 0) == true)
            #expect(parsed?.verify(body: body + [1], secrets: [secret], now: timestamp, tolerance: 0) == false)
            // Garbage, and the real header with one byte flipped: parsed or refused, never a crash or a pass.
            _ = WebhookSignature(header: Self.text(&random))
            var bytes = Array(header.utf8)
            bytes[Int(random.next() % UInt64(bytes.count))] ^= UInt8(1 << (random.next() % 7))
            if let mutated = WebhookSignature(header: String(decoding: bytes, as: UTF8.self)), mutated != parsed {
                #expect(!mutated.verify(body: body, secrets: [secret], now: mutated.timestamp, tolerance: 0))
            }
        }
    }

    @Test func requestDecodersAnswerEveryInputWithAValueOrAProblem() {
        var random = Generator(state: Self.seed &+ 4)
        let seeds = [
            #"{"id":"a","amount":5,"currency":"EUR","metadata":{"k":"v"}}"#, #"{"status":"processing","event_id":"e","reason":"r"}"#,
            #"{"event_id":"e","order_id":"o","status":"succeeded","occurred_at":"2026-11-25T07:00:00Z"}"#,
        ]
        for _ in 0..<Self.cases {
            // Mutate a valid body: flip, drop or insert bytes.
            var bytes = Array(seeds.randomElement(using: &random)!.utf8)
            for _ in 0...(random.next() % 4) {
                let index = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 3 {
                case 0: bytes[index] = UInt8(truncatingIfNeeded: random.next())
                case 1: bytes.remove(at: index)
                default: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: index)
                }
                if bytes.isEmpty { bytes = [0x7B] }
            }
            let buffer = ByteBuffer(bytes: bytes)
            _ = try? decodeBody(CreateOrderBody.self, from: buffer).draft()
            _ = try? decodeBody(TransitionBody.self, from: buffer).change(orderID: "o")
            _ = try? decodeBody(WebhookBody.self, from: buffer).change()
        }
    }

    @Test func base64URLMatchesFoundationsBase64AndRoundTrips() {
        var random = Generator(state: Self.seed)
        for _ in 0..<Self.cases {
            let bytes = (0..<Int.random(in: 0...70, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let encoded = Base64URL.encode(bytes)
            let reference = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            #expect(encoded == reference, "bytes \(bytes)")
            #expect(Base64URL.decode(Substring(encoded)) == bytes)
        }
    }

    @Test func timestampsRoundTrip() {
        var random = Generator(state: Self.seed &+ 5)
        for _ in 0..<Self.cases {
            let time = Timestamp(millisecondsSince1970: Int64(random.next() % 253_402_300_799_999))  // up to year 9999
            #expect(Timestamp(rfc3339: time.rfc3339) == time, "\(time.millisecondsSince1970)")
            _ = Timestamp(rfc3339: Self.text(&random))
        }
    }
}
