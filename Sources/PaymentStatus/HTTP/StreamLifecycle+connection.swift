/// The transitions the connection drives: what the client sends, the
/// server's shutdown, the connection failing or closing. Until the hand-over
/// all of it is Hummingbird's (`passOn`); from then on the stream's.
extension StreamLifecycle {
    /// A part of a request arrived. Once handed over, a new request cannot
    /// be answered in order: the connection closes, and the client sends it
    /// again elsewhere; the rest of a request is dropped unread.
    mutating func requestPartArrived(isHead: Bool) -> [Action] {
        switch phase {
        case .routing, .opening, .endedWhileOpening: [.passOn]
        case .streaming, .holding: isHead ? cut(.pipelinedRequest) : []
        case .closing, .closed: []
        }
    }

    /// The socket has no more to read for now. The route's task reads no
    /// more once handed over, so the stream asks for the next read itself.
    func readCompleted() -> [Action] {
        isHandedOver ? [.resumeReading] : [.passOn]
    }

    /// The server began shutting down. A handed-over stream ends at a random
    /// moment within the drain period; one still opening is drained once
    /// handed over (and Hummingbird hears of it too, should the route answer itself).
    mutating func shutdownBegan() -> [Action] {
        switch phase {
        case .opening(let kind, let backlog, _):
            phase = .opening(kind, backlog, drainRequested: true)
            return [.passOn]
        case .routing, .endedWhileOpening:
            return [.passOn]
        case .streaming(let live), .holding(let live):
            guard !live.drainScheduled else { return [] }
            updateLive { $0.drainScheduled = true }
            return [.scheduleDrain]
        case .closing, .closed:
            return []
        }
    }

    /// The client closed its side, or the connection reported an error:
    /// nobody reads the stream any more.
    mutating func clientLeft() -> [Action] {
        switch phase {
        case .routing, .opening, .endedWhileOpening: [.passOn]
        case .streaming, .holding: cut(.clientGone)
        case .closing, .closed: []
        }
    }

    /// The connection has closed (`channelInactive`), whoever closed it.
    mutating func connectionClosed() -> [Action] {
        switch phase {
        case .opening(let kind, _, _):
            phase = .endedWhileOpening(kind, .clientGone)
            return [.leaveHub]
        case .streaming, .holding:
            phase = .closed(.clientGone)
            return [.leaveHub]
        case .closing(let reason):
            phase = .closed(reason)
            return []
        case .routing, .endedWhileOpening, .closed:
            return []
        }
    }
}
