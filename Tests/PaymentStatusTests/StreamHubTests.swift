import NIOCore
import Testing
@testable import PaymentStatus

@Suite("Stream hub")
struct StreamHubTests {
    static func event(_ order: String, _ seq: Int, _ status: PaymentStatus = .processing) -> PaymentEvent {
        PaymentEvent(orderID: order, seq: seq, status: status, previous: nil, source: .api, eventID: nil, reason: nil, at: .now())
    }

    /// Collects what a subscription delivers until it ends.
    static func drain(_ subscription: EventSubscription) async -> [StreamSignal] {
        var signals: [StreamSignal] = []
        for await signal in subscription.signals { signals.append(signal) }
        return signals
    }

    static func seqs(_ signals: [StreamSignal]) -> [Int] {
        signals.compactMap { if case .event(let event, _, _) = $0 { event.seq } else { nil } }
    }

    @Test func everySubscriberOfAnOrderGetsEveryEventAndNoOtherOrders() async {
        let hub = StreamHub()
        let a1 = hub.subscribe(orderID: "a")
        let a2 = hub.subscribe(orderID: "a")
        let b = hub.subscribe(orderID: "b")
        #expect(hub.openSubscriptions == 3)
        hub.publish(Self.event("a", 2))
        hub.publish(Self.event("b", 2))
        hub.publish(Self.event("a", 3))
        hub.closeAll()
        #expect(Self.seqs(await Self.drain(a1)) == [2, 3])
        #expect(Self.seqs(await Self.drain(a2)) == [2, 3])
        #expect(Self.seqs(await Self.drain(b)) == [2])
        #expect(hub.openSubscriptions == 0)
    }

    @Test func theFrameIsTheContractsStatusFrame() async {
        let hub = StreamHub()
        let subscription = hub.subscribe(orderID: "a")
        let event = Self.event("a", 2)
        hub.publish(event)
        subscription.cancel()
        guard case .event(_, let frame, _) = await Self.drain(subscription).first else {
            Issue.record("no event"); return
        }
        #expect(frame == SSEFrame.status(event))
    }

    @Test func cancellingRemovesTheSubscription() {
        let hub = StreamHub()
        let subscriptions = (0..<100).map { hub.subscribe(orderID: "o\($0 % 7)") }
        #expect(hub.openSubscriptions == 100)
        for subscription in subscriptions { subscription.cancel() }
        #expect(hub.openSubscriptions == 0)
        subscriptions[0].cancel()  // twice is harmless
        #expect(hub.openSubscriptions == 0)
    }

    @Test func aSubscriberThatFallsBehindIsClosedNotBufferedWithoutBound() async {
        let hub = StreamHub()
        let cut = Counter()
        let slow = hub.subscribe(orderID: "a", bufferCapacity: 4) { cut.increment() }
        for seq in 1...10 { hub.publish(Self.event("a", seq)) }
        #expect(hub.openSubscriptions == 0)
        #expect(cut.value == 1)  // its connection is cut once
        // What it had buffered is still delivered, oldest first; then it ends.
        #expect(Self.seqs(await Self.drain(slow)) == [1, 2, 3, 4])
    }

    @Test func heartbeatsComeFromTheTick() async throws {
        let hub = StreamHub(configuration: .init(heartbeatInterval: .milliseconds(1), maxLifetime: .seconds(3600)))
        let subscription = hub.subscribe(orderID: "a")
        try await Task.sleep(for: .milliseconds(5))
        hub.tick()
        #expect(hub.openSubscriptions == 1)
        subscription.cancel()
        let signals = await Self.drain(subscription)
        #expect(signals.count == 1)
        #expect(signals.contains { if case .heartbeat = $0 { true } else { false } })
    }

    @Test func theLifetimeEndsAStreamAtTheTick() async throws {
        let hub = StreamHub(configuration: .init(heartbeatInterval: .seconds(3600), maxLifetime: .milliseconds(1)))
        let subscription = hub.subscribe(orderID: "a")
        try await Task.sleep(for: .milliseconds(5))
        hub.tick()
        #expect(hub.openSubscriptions == 0)
        #expect(await Self.drain(subscription).isEmpty)
    }

    @Test func noSubscriptionsAfterClose() async {
        let hub = StreamHub()
        hub.closeAll()
        let late = hub.subscribe(orderID: "a")
        #expect(hub.openSubscriptions == 0)
        #expect(await Self.drain(late).isEmpty)
    }
}
