import NIOCore
import Testing
@testable import PaymentStatus

@Suite("Stream hub", .timeLimit(.minutes(2)))
struct StreamHubTests {
    static func event(_ order: String, _ seq: Int, _ status: PaymentStatus = .processing) -> PaymentEvent {
        PaymentEvent(orderID: order, seq: seq, status: status, previous: nil, source: .api, eventID: nil, reason: nil, at: .now())
    }

    @Test func everySubscriberOfAnOrderGetsEveryEventAndNoOtherOrders() {
        let hub = StreamHub()
        let (a1, a2, b) = (RecordingSink(), RecordingSink(), RecordingSink())
        _ = hub.subscribe(orderID: "a", sink: a1)
        _ = hub.subscribe(orderID: "a", sink: a2)
        _ = hub.subscribe(orderID: "b", sink: b)
        #expect(hub.openSubscriptions == 3)
        hub.publish(Self.event("a", 2))
        hub.publish(Self.event("b", 2))
        hub.publish(Self.event("a", 3))
        hub.closeAll()
        #expect(a1.seqs == [2, 3] && a2.seqs == [2, 3] && b.seqs == [2])
        #expect(a1.ended && a2.ended && b.ended)
        #expect(hub.openSubscriptions == 0)
    }

    @Test func theFrameIsTheContractsStatusFrameEncodedOnceForAllStreams() {
        let hub = StreamHub()
        let (first, second) = (RecordingSink(), RecordingSink())
        _ = hub.subscribe(orderID: "a", sink: first)
        _ = hub.subscribe(orderID: "a", sink: second)
        let event = Self.event("a", 2)
        hub.publish(event)
        guard case .event(_, let frame, _) = first.signals.first, case .event(_, let other, _) = second.signals.first else {
            Issue.record("no event"); return
        }
        #expect(frame == SSEFrame.status(event))
        // One buffer for both: the same storage, not a copy per stream.
        #expect(frame.withUnsafeReadableBytes { $0.baseAddress } == other.withUnsafeReadableBytes { $0.baseAddress })
    }

    @Test func cancellingRemovesTheSubscription() {
        let hub = StreamHub()
        let sinks = (0..<100).map { _ in RecordingSink() }
        let registrations = sinks.indices.map { hub.subscribe(orderID: "o\($0 % 7)", sink: sinks[$0]) }
        #expect(hub.openSubscriptions == 100)
        for registration in registrations { registration.cancel() }
        #expect(hub.openSubscriptions == 0)
        registrations[0].cancel()  // twice is harmless
        #expect(hub.openSubscriptions == 0)
        hub.publish(Self.event("o0", 2))
        #expect(sinks.allSatisfy { $0.signals.isEmpty && !$0.ended })
    }

    @Test func heartbeatsComeFromTheTick() async throws {
        let hub = StreamHub(configuration: .init(heartbeatInterval: .milliseconds(1), maxLifetime: .seconds(3600)))
        let sink = RecordingSink()
        _ = hub.subscribe(orderID: "a", sink: sink)
        // Past the first tick (ticks are at least 10 ms apart).
        try await Task.sleep(for: .milliseconds(30))
        hub.tick()
        #expect(hub.openSubscriptions == 1)
        #expect(sink.signals.count == 1)
        #expect(sink.signals.contains { if case .heartbeat = $0 { true } else { false } })
        #expect(!sink.ended)
    }

    @Test func theLifetimeEndsAStreamAtTheTick() async throws {
        let hub = StreamHub(configuration: .init(heartbeatInterval: .seconds(3600), maxLifetime: .milliseconds(1)))
        let sink = RecordingSink()
        _ = hub.subscribe(orderID: "a", sink: sink)
        // Past the first tick (ticks are at least 10 ms apart).
        try await Task.sleep(for: .milliseconds(30))
        hub.tick()
        #expect(hub.openSubscriptions == 0)
        #expect(sink.ended && sink.signals.isEmpty)
    }

    @Test func noSubscriptionsAfterClose() {
        let hub = StreamHub()
        hub.closeAll()
        let late = RecordingSink()
        _ = hub.subscribe(orderID: "a", sink: late)
        #expect(hub.openSubscriptions == 0)
        #expect(late.ended)
    }
}
