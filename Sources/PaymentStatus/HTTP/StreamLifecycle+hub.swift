/// The transitions the hub and the store drive: events, heartbeats, the
/// subscription's end, a gap read back, the drain moment. `writable` is
/// whether the connection still takes bytes (below its high-water mark).
extension StreamLifecycle {
    /// A committed event for the order: it waits while the history is read
    /// or behind a gap, and is written (a long-poll: answered) in its turn.
    mutating func received(_ event: Event, writable: Bool) -> [Action] {
        switch phase {
        case .opening(let kind, var backlog, let drainRequested):
            backlog.add(event)
            phase = .opening(kind, backlog, drainRequested: drainRequested)
            return []
        case .streaming, .holding:
            updateLive { $0.backlog.add(event) }
            return writeWhatWaits(writable: writable)
        case .routing, .endedWhileOpening, .closing, .closed:
            return []
        }
    }

    /// Time for a keep-alive. Only a live stream gets one: not while a gap
    /// is read (the events come first), not after its end was written, and
    /// never a long-poll, whose answer is one JSON document.
    mutating func heartbeatDue(writable: Bool) -> [Action] {
        guard case .streaming(let live) = phase, !live.readingGap else { return [] }
        guard writable else { return cut(.slowReader) }
        return [.writeKeepAlive, .flush]
    }

    /// The hub ended the subscription: the stream's lifetime or a
    /// long-poll's wait ran out, or the hub shut down.
    mutating func hubEnded(writable: Bool) -> [Action] {
        switch phase {
        case .opening(let kind, _, _):
            phase = .endedWhileOpening(kind, .lifetime)
            return [.leaveHub]
        case .streaming:
            return finish(.lifetime, writable: writable)
        case .holding:
            return finish(.lifetime, writable: writable, answer: [])
        case .routing, .endedWhileOpening, .closing, .closed:
            return []
        }
    }

    /// The moment `scheduleDrain` chose has come: end now, and the client
    /// resumes elsewhere (a long-poll answers "nothing yet").
    mutating func drainDue(writable: Bool) -> [Action] {
        switch phase {
        case .streaming: finish(.drain, writable: writable)
        case .holding: finish(.drain, writable: writable, answer: [])
        case .routing, .opening, .endedWhileOpening, .closing, .closed: []
        }
    }

    /// The store's answer to `readGap`: the events after the gap's start, or
    /// nil when the read failed (the stream is cut; its client resumes).
    mutating func gapRead(_ missing: [Event]?, writable: Bool) -> [Action] {
        guard live?.readingGap == true else { return [] }  // ended meanwhile
        guard let missing else { return cut(.storeFailed) }
        updateLive { live in
            live.readingGap = false
            for event in missing { live.backlog.add(event) }
        }
        return writeWhatWaits(writable: writable)
    }

    // MARK: - Writing what waits

    /// A stream writes what follows; a long-poll answers with it.
    private mutating func writeWhatWaits(writable: Bool) -> [Action] {
        switch phase {
        case .streaming: writeBacklog(writable: writable)
        case .holding: answerIfReady(writable: writable)
        case .routing, .opening, .endedWhileOpening, .closing, .closed: []
        }
    }

    /// A stream writes the waiting events that follow without a gap and
    /// flushes once; the terminal one leaves with the end of the response,
    /// in one write; on a gap the missing events are read from the store.
    mutating func writeBacklog(writable: Bool, wroteAlready: Bool = false) -> [Action] {
        guard case .streaming(var live) = phase, !live.readingGap else { return [] }
        var writes: [Action] = []
        while true {
            switch live.backlog.next() {
            case .nothing:
                phase = .streaming(live)
                return writes + (writes.isEmpty && !wroteAlready ? [] : [.flush])
            case .gap:
                live.readingGap = true
                phase = .streaming(live)
                return writes + (writes.isEmpty && !wroteAlready ? [] : [.flush]) + [.readGap(after: live.backlog.lastSent)]
            case .event(let event):
                guard writable else { return cut(.slowReader) }
                writes.append(.write(event))
                if event.endsStream {
                    phase = .streaming(live)
                    return writes + finish(.terminal, writable: writable)
                }
            }
        }
    }

    /// A held long-poll answers with every event that follows without a
    /// gap, as soon as there is one; a gap is read from the store first.
    mutating func answerIfReady(writable: Bool) -> [Action] {
        guard case .holding(var live) = phase, !live.readingGap else { return [] }
        let run = live.backlog.nextRun()
        guard run.isEmpty else { return finish(.answered, writable: writable, answer: run) }
        guard !live.backlog.isEmpty else { return [] }
        live.readingGap = true
        phase = .holding(live)
        return [.readGap(after: live.backlog.lastSent)]
    }
}
