import Testing
@testable import PaymentStatus

/// An event as the lifecycle sees it: a `seq`, and whether it ends the stream.
struct TestEvent: SequencedEvent, Equatable, CustomStringConvertible {
    let seq: Int
    let endsStream: Bool
    var description: String { endsStream ? "#\(seq)(end)" : "#\(seq)" }
}

typealias Lifecycle = StreamLifecycle<TestEvent>

/// Shorthands for the lifecycle tests.
enum LifecycleFixture {
    static func event(_ seq: Int) -> TestEvent { TestEvent(seq: seq, endsStream: false) }
    static func terminal(_ seq: Int) -> TestEvent { TestEvent(seq: seq, endsStream: true) }

    /// A lifecycle opened for `kind` whose client has everything up to `lastSent`.
    static func opened(_ kind: Lifecycle.Kind = .stream, lastSent: Int = 1) -> Lifecycle {
        var lifecycle = Lifecycle()
        let opened = lifecycle.open(kind, lastSent: lastSent)
        #expect(opened)
        return lifecycle
    }

    /// A stream handed over with no history: live, nothing waiting.
    static func streaming(lastSent: Int = 1) -> Lifecycle {
        var lifecycle = opened(lastSent: lastSent)
        #expect(lifecycle.handOver(history: [], writable: true) == [.writePrelude, .flush, .resumeReading])
        return lifecycle
    }

    /// A long-poll handed over with nothing to answer yet.
    static func holding(after: Int = 1) -> Lifecycle {
        var lifecycle = opened(.longPoll, lastSent: after)
        #expect(lifecycle.handOver(history: [], writable: true) == [.resumeReading])
        return lifecycle
    }

    static func live(_ lastSent: Int, readingGap: Bool = false, drainScheduled: Bool = false) -> Lifecycle.Live {
        Lifecycle.Live(backlog: StreamBacklog(lastSent: lastSent), readingGap: readingGap, drainScheduled: drainScheduled)
    }
}

/// The phases up to the hand-over: what the route drives, and what happens
/// on the connection and the hub while it reads the history. Pure values,
/// no channel.
@Suite("Stream lifecycle: opening and hand-over", .timeLimit(.minutes(2)))
struct StreamLifecycleOpeningTests {
    typealias F = LifecycleFixture

    @Test func beforeAStreamEverythingGoesToTheRouter() {
        var lifecycle = Lifecycle()
        #expect(lifecycle.phase == .routing && !lifecycle.isHandedOver)
        #expect(lifecycle.requestPartArrived(isHead: true) == [.passOn])
        #expect(lifecycle.readCompleted() == [.passOn])
        #expect(lifecycle.shutdownBegan() == [.passOn])
        #expect(lifecycle.clientLeft() == [.passOn])
        #expect(lifecycle.connectionClosed() == [])
        // Nothing from a hub reaches a connection that streams nothing.
        #expect(lifecycle.received(F.event(2), writable: true) == [])
        #expect(lifecycle.heartbeatDue(writable: true) == [])
        #expect(lifecycle.hubEnded(writable: true) == [])
        #expect(lifecycle.handOver(history: [], writable: true) == nil)
        #expect(lifecycle.phase == .routing)
    }

    @Test func aConnectionOpensOneStreamAtATime() {
        var lifecycle = F.opened(lastSent: 3)
        #expect(lifecycle.phase == .opening(.stream, StreamBacklog(lastSent: 3), drainRequested: false))
        let opened = lifecycle.open(.stream, lastSent: 0)
        #expect(!opened)
        #expect(!lifecycle.isHandedOver)
    }

    @Test func whileTheHistoryIsReadTheRouteStillOwnsTheConnection() {
        var lifecycle = F.opened()
        #expect(lifecycle.requestPartArrived(isHead: false) == [.passOn])
        #expect(lifecycle.readCompleted() == [.passOn])
        #expect(lifecycle.clientLeft() == [.passOn])
        #expect(lifecycle.heartbeatDue(writable: true) == [])
        #expect(!lifecycle.isHandedOver)
    }

    @Test func eventsThatCommitWhileTheHistoryIsReadWaitAndFollowItOnceEach() {
        var lifecycle = F.opened(lastSent: 1)
        for seq in [3, 2, 3, 4] { #expect(lifecycle.received(F.event(seq), writable: true) == []) }
        // The history has 2 already; 3 and 4 follow it, each once, in one flush.
        let actions = lifecycle.handOver(history: [F.event(2)], writable: true)
        #expect(actions == [.writePrelude, .write(F.event(2)), .write(F.event(3)), .write(F.event(4)), .flush, .resumeReading])
        #expect(lifecycle.phase == .streaming(LifecycleFixture.live(4)))
        #expect(lifecycle.isHandedOver)
    }

    @Test func withoutLastEventIDTheHistoryIsTheNewestEventAloneAndNoGap() {
        var lifecycle = F.opened(lastSent: 0)
        #expect(lifecycle.handOver(history: [F.event(5)], writable: true) == [.writePrelude, .write(F.event(5)), .flush, .resumeReading])
        #expect(lifecycle.received(F.event(6), writable: true) == [.write(F.event(6)), .flush])
    }

    @Test func aTerminalEventThatWaitedEndsTheStreamAtTheHandOver() {
        var lifecycle = F.opened(lastSent: 1)
        _ = lifecycle.received(F.terminal(3), writable: true)
        let actions = lifecycle.handOver(history: [F.event(2)], writable: true)
        #expect(actions == [.writePrelude, .write(F.event(2)), .write(F.terminal(3)), .leaveHub, .endResponse])
        #expect(lifecycle.phase == .closing(.terminal))
    }

    @Test func aHistoryThatEndsWithTheTerminalEventEndsTheStreamThere() {
        // The route answers such a history itself; handed one anyway, nothing follows it.
        var lifecycle = F.opened(lastSent: 1)
        _ = lifecycle.received(F.event(4), writable: true)
        let actions = lifecycle.handOver(history: [F.event(2), F.terminal(3)], writable: true)
        #expect(actions == [.writePrelude, .write(F.event(2)), .write(F.terminal(3)), .leaveHub, .endResponse])
        #expect(lifecycle.phase == .closing(.terminal))
    }

    @Test func aGapBehindTheHistoryIsReadFromTheStore() {
        var lifecycle = F.opened(lastSent: 1)
        _ = lifecycle.received(F.event(4), writable: true)
        #expect(lifecycle.handOver(history: [F.event(2)], writable: true)
            == [.writePrelude, .write(F.event(2)), .flush, .readGap(after: 2), .resumeReading])
    }

    @Test func theRouteAnswersItselfAndTheConnectionServesTheNextRequest() {
        var lifecycle = F.opened(.longPoll, lastSent: 1)
        _ = lifecycle.received(F.event(2), writable: true)
        #expect(lifecycle.answeredByRoute() == [.leaveHub])
        #expect(lifecycle.phase == .routing)
        // The next request on the kept-alive connection goes to the router, and may open a stream.
        #expect(lifecycle.requestPartArrived(isHead: true) == [.passOn])
        let opened = lifecycle.open(.stream, lastSent: 2)
        #expect(opened)
        #expect(lifecycle.answeredByRoute() == [.leaveHub])
        #expect(lifecycle.answeredByRoute() == [])
    }

    @Test func shutdownDuringTheHistoryDrainsOnceHandedOver() {
        var lifecycle = F.opened()
        // Hummingbird hears of it too, in case the route answers itself.
        #expect(lifecycle.shutdownBegan() == [.passOn])
        #expect(lifecycle.handOver(history: [], writable: true) == [.writePrelude, .flush, .resumeReading, .scheduleDrain])
        #expect(lifecycle.shutdownBegan() == [])  // drained once
        #expect(lifecycle.drainDue(writable: true) == [.leaveHub, .endResponse])
        #expect(lifecycle.phase == .closing(.drain))
    }

    @Test func aStreamWhoseSubscriptionEndedWhileOpeningIsNotHandedOver() {
        var lifecycle = F.opened()
        #expect(lifecycle.hubEnded(writable: true) == [.leaveHub])
        #expect(lifecycle.phase == .endedWhileOpening(.stream, .lifetime))
        #expect(lifecycle.received(F.event(2), writable: true) == [])
        #expect(lifecycle.handOver(history: [], writable: true) == nil)
        #expect(!lifecycle.isHandedOver)  // the route fails the response; Hummingbird closes
    }

    @Test func aLongPollWhoseWaitRanOutWhileOpeningStillAnswersNothingYet() {
        var lifecycle = F.opened(.longPoll)
        _ = lifecycle.hubEnded(writable: true)
        #expect(lifecycle.handOver(history: [], writable: true) == [.leaveHub, .writeLongPollAnswer([]), .endResponse])
        #expect(lifecycle.phase == .closing(.lifetime) && lifecycle.isHandedOver)
    }

    @Test func aClientGoneWhileOpeningIsNotHandedOver() {
        for kind in [Lifecycle.Kind.stream, .longPoll] {
            var lifecycle = F.opened(kind)
            #expect(lifecycle.connectionClosed() == [.leaveHub])
            #expect(lifecycle.phase == .endedWhileOpening(kind, .clientGone))
            #expect(lifecycle.handOver(history: [], writable: true) == nil)
            // The route may still answer itself (its write then fails).
            #expect(lifecycle.answeredByRoute() == [.leaveHub])
            #expect(lifecycle.phase == .routing)
        }
    }

    @Test func aConnectionThatStopsTakingBytesAtTheHandOverIsCut() {
        var lifecycle = F.opened()
        _ = lifecycle.received(F.event(2), writable: true)
        #expect(lifecycle.handOver(history: [], writable: false) == [.writePrelude, .leaveHub, .close])
        #expect(lifecycle.phase == .closed(.slowReader))
    }
}
