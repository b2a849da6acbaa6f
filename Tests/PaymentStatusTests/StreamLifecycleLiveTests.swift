import Testing
@testable import PaymentStatus

/// The phases after the hand-over: a stream writing, a long-poll held, and
/// every way either ends. Pure values, no channel.
@Suite("Stream lifecycle: live, held and ending", .timeLimit(.minutes(2)))
struct StreamLifecycleLiveTests {
    typealias F = LifecycleFixture

    @Test func eventsAreWrittenInSeqOrderOnceEachAndRepeatsAreDropped() {
        var lifecycle = F.streaming(lastSent: 1)
        #expect(lifecycle.received(F.event(2), writable: true) == [.write(F.event(2)), .flush])
        #expect(lifecycle.received(F.event(2), writable: true) == [])
        #expect(lifecycle.received(F.event(1), writable: true) == [])
        #expect(lifecycle.received(F.event(3), writable: true) == [.write(F.event(3)), .flush])
    }

    @Test func aGapIsReadFromTheStoreAndNothingIsWrittenMeanwhile() {
        var lifecycle = F.streaming(lastSent: 1)
        #expect(lifecycle.received(F.event(3), writable: true) == [.readGap(after: 1)])
        #expect(lifecycle.received(F.event(4), writable: true) == [])
        #expect(lifecycle.heartbeatDue(writable: true) == [])  // the events come first
        // The store has 2 and 3; 3 waits already: each once, in order, then the end.
        let actions = lifecycle.gapRead([F.event(2), F.event(3)], writable: true)
        #expect(actions == [.write(F.event(2)), .write(F.event(3)), .write(F.event(4)), .flush])
        #expect(lifecycle.phase == .streaming(F.live(4)))
        #expect(lifecycle.gapRead([F.event(5)], writable: true) == [])  // none was asked for
    }

    @Test func aFailedGapReadCutsTheStream() {
        var lifecycle = F.streaming(lastSent: 1)
        _ = lifecycle.received(F.event(3), writable: true)
        #expect(lifecycle.gapRead(nil, writable: true) == [.leaveHub, .close])
        #expect(lifecycle.phase == .closed(.storeFailed))
    }

    @Test func theTerminalEventLeavesWithTheEndOfTheResponse() {
        var lifecycle = F.streaming(lastSent: 1)
        #expect(lifecycle.received(F.terminal(2), writable: true) == [.write(F.terminal(2)), .leaveHub, .endResponse])
        #expect(lifecycle.phase == .closing(.terminal))
        #expect(lifecycle.connectionClosed() == [])
        #expect(lifecycle.phase == .closed(.terminal))
    }

    @Test func aTerminalEventWithAHeartbeatPendingWritesNoKeepAliveAfterTheEnd() {
        var lifecycle = F.streaming(lastSent: 1)
        // The hub's tick had queued a heartbeat on the event loop behind the terminal event.
        _ = lifecycle.received(F.terminal(2), writable: true)
        #expect(lifecycle.heartbeatDue(writable: true) == [])
        // Nor anything else the hub still sends, nor its own end of the subscription.
        #expect(lifecycle.received(F.event(3), writable: true) == [])
        #expect(lifecycle.hubEnded(writable: true) == [])
        #expect(lifecycle.drainDue(writable: true) == [])
        #expect(lifecycle.phase == .closing(.terminal))
    }

    @Test func heartbeatsKeepALiveStreamOpen() {
        var lifecycle = F.streaming()
        #expect(lifecycle.heartbeatDue(writable: true) == [.writeKeepAlive, .flush])
        #expect(lifecycle.phase == .streaming(F.live(1)))
    }

    @Test func aClientThatStopsReadingIsCutAtTheNextWrite() {
        var heartbeat = F.streaming()
        #expect(heartbeat.heartbeatDue(writable: false) == [.leaveHub, .close])
        #expect(heartbeat.phase == .closed(.slowReader))
        var event = F.streaming()
        #expect(event.received(F.event(2), writable: false) == [.leaveHub, .close])
        // Even the end of the response would queue behind what it did not read.
        var ending = F.streaming()
        #expect(ending.hubEnded(writable: false) == [.leaveHub, .close])
        #expect(ending.phase == .closed(.slowReader))
    }

    @Test func theHubEndsAStreamAtItsLifetimeOrShutdown() {
        var lifecycle = F.streaming()
        #expect(lifecycle.hubEnded(writable: true) == [.leaveHub, .endResponse])
        #expect(lifecycle.phase == .closing(.lifetime))
    }

    @Test func shutdownEndsAStreamAtItsMomentWithinTheDrainPeriod() {
        var lifecycle = F.streaming()
        #expect(lifecycle.shutdownBegan() == [.scheduleDrain])
        #expect(lifecycle.shutdownBegan() == [])
        #expect(lifecycle.received(F.event(2), writable: true) == [.write(F.event(2)), .flush])  // it streams until then
        #expect(lifecycle.drainDue(writable: true) == [.leaveHub, .endResponse])
        #expect(lifecycle.phase == .closing(.drain))
    }

    @Test func aClientThatLeavesIsCutAndLeavesTheHub() {
        var closedItsSide = F.streaming()
        #expect(closedItsSide.clientLeft() == [.leaveHub, .close])
        #expect(closedItsSide.phase == .closed(.clientGone))
        #expect(closedItsSide.clientLeft() == [])
        var gone = F.streaming()
        #expect(gone.connectionClosed() == [.leaveHub])
        #expect(gone.phase == .closed(.clientGone))
    }

    @Test func aClientGoneMidWriteLeavesNothingToWriteWhenTheGapReadReturns() {
        var lifecycle = F.streaming(lastSent: 1)
        _ = lifecycle.received(F.event(3), writable: true)  // the read for 2 is under way
        #expect(lifecycle.connectionClosed() == [.leaveHub])
        #expect(lifecycle.gapRead([F.event(2), F.event(3)], writable: true) == [])
        #expect(lifecycle.phase == .closed(.clientGone))
    }

    @Test func aRequestPipelinedOnAStreamingConnectionClosesIt() {
        var lifecycle = F.streaming()
        #expect(lifecycle.requestPartArrived(isHead: false) == [])  // the rest of the first request: dropped
        #expect(lifecycle.readCompleted() == [.resumeReading])
        #expect(lifecycle.requestPartArrived(isHead: true) == [.leaveHub, .close])
        #expect(lifecycle.phase == .closed(.pipelinedRequest))
        #expect(lifecycle.requestPartArrived(isHead: true) == [])
    }

    @Test func hummingbirdsClosesAreRefusedFromTheHandOverToTheEnd() {
        var lifecycle = F.opened()
        #expect(!lifecycle.isHandedOver)
        _ = lifecycle.handOver(history: [], writable: true)
        #expect(lifecycle.isHandedOver)
        _ = lifecycle.received(F.terminal(2), writable: true)
        #expect(lifecycle.isHandedOver)  // closing: the stream closes it itself
        _ = lifecycle.connectionClosed()
        #expect(lifecycle.isHandedOver)
        let opened = lifecycle.open(.stream, lastSent: 0)
        #expect(!opened)
    }

    // MARK: - A held long-poll

    @Test func aHeldLongPollAnswersWithTheFirstRunOfEventsThenCloses() {
        var lifecycle = F.holding(after: 1)
        #expect(lifecycle.heartbeatDue(writable: true) == [])  // its answer is one JSON document
        let actions = lifecycle.received(F.event(2), writable: true)
        #expect(actions == [.leaveHub, .writeLongPollAnswer([F.event(2)]), .endResponse])
        #expect(lifecycle.phase == .closing(.answered))
        // The connection does not serve a request pipelined behind it: its
        // route's task has ended, so nothing would answer; it closes.
        #expect(lifecycle.requestPartArrived(isHead: true) == [])
        #expect(lifecycle.readCompleted() == [.resumeReading])
        let opened = lifecycle.open(.longPoll, lastSent: 2)
        #expect(!opened)
    }

    @Test func aHeldLongPollReadsAGapThenAnswersWithEverythingInOrder() {
        var lifecycle = F.holding(after: 1)
        #expect(lifecycle.received(F.event(3), writable: true) == [.readGap(after: 1)])
        #expect(lifecycle.received(F.event(4), writable: true) == [])
        #expect(lifecycle.gapRead([F.event(2), F.event(3)], writable: true)
            == [.leaveHub, .writeLongPollAnswer([F.event(2), F.event(3), F.event(4)]), .endResponse])
    }

    @Test func aHeldLongPollAnswersNothingYetWhenItsWaitRunsOutOrTheServerDrains() {
        var waited = F.holding()
        #expect(waited.hubEnded(writable: true) == [.leaveHub, .writeLongPollAnswer([]), .endResponse])
        #expect(waited.phase == .closing(.lifetime))
        var drained = F.holding()
        #expect(drained.shutdownBegan() == [.scheduleDrain])
        #expect(drained.drainDue(writable: true) == [.leaveHub, .writeLongPollAnswer([]), .endResponse])
        #expect(drained.phase == .closing(.drain))
    }

    @Test func aHeldLongPollWhoseEventWaitedDuringTheOpeningAnswersAtTheHandOver() {
        var lifecycle = F.opened(.longPoll, lastSent: 1)
        _ = lifecycle.received(F.event(2), writable: true)
        #expect(lifecycle.handOver(history: [], writable: true) == [.leaveHub, .writeLongPollAnswer([F.event(2)]), .endResponse])
    }
}
