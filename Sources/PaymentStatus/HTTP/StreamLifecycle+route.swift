/// The transitions the stream route drives, from its task: subscribing,
/// answering itself after all, handing the connection over.
extension StreamLifecycle {
    /// The route subscribed the connection to an order whose client has
    /// every event up to `lastSent`. False when a stream is already on it.
    mutating func open(_ kind: Kind, lastSent: Int) -> Bool {
        guard case .routing = phase else { return false }
        phase = .opening(kind, StreamBacklog(lastSent: lastSent), drainRequested: false)
        return true
    }

    /// The route answers the request itself after all (the history ended the
    /// stream, a long-poll found events, or the read failed): the connection
    /// goes back to serving requests, and so keeps for the next one.
    mutating func answeredByRoute() -> [Action] {
        switch phase {
        case .opening, .endedWhileOpening:
            phase = .routing
            return [.leaveHub]
        case .routing, .streaming, .holding, .closing, .closed:
            return []
        }
    }

    /// The route has written the response head and read the `history` (for
    /// a long-poll: found nothing); the connection is the stream's from now.
    /// Nil when it cannot be: the client left, or a stream's subscription
    /// ended meanwhile; the route then fails its response, which closes the
    /// connection, and the client resumes by `Last-Event-ID`.
    mutating func handOver(history: [Event], writable: Bool) -> [Action]? {
        switch phase {
        case .opening(.stream, var backlog, let drainRequested):
            var actions: [Action] = [.writePrelude]
            for event in history where event.seq > backlog.lastSent {
                actions.append(.write(event))
                backlog.markSent(event)
                if event.endsStream { return actions + finish(.terminal, writable: writable) }
            }
            phase = .streaming(Live(backlog: backlog, drainScheduled: drainRequested))
            actions += writeBacklog(writable: writable, wroteAlready: true)
            return actions + resumeAndDrain(drainRequested)
        case .opening(.longPoll, let backlog, let drainRequested):
            phase = .holding(Live(backlog: backlog, drainScheduled: drainRequested))
            let answer = answerIfReady(writable: writable)
            return answer + resumeAndDrain(drainRequested)
        case .endedWhileOpening(.longPoll, .lifetime):
            // Its wait ran out while the route read the events: it still
            // owes its answer, "nothing yet". A stream has ended for good.
            return finish(.lifetime, writable: writable, answer: [])
        case .routing, .endedWhileOpening, .streaming, .holding, .closing, .closed:
            return nil
        }
    }

    /// After the hand-over's writes: read on, unless the stream has ended
    /// already, and drain a shutdown that began during the opening.
    private func resumeAndDrain(_ drainRequested: Bool) -> [Action] {
        switch phase {
        case .streaming, .holding: [.resumeReading] + (drainRequested ? [.scheduleDrain] : [])
        case .routing, .opening, .endedWhileOpening, .closing, .closed: []
        }
    }
}
