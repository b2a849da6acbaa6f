/// The life of one HTTP connection's order stream or held long-poll, from
/// the route's subscription to the connection's close: every phase by
/// name, and pure transitions that return what the connection must do.
/// `SSEConnectionHandler` feeds it what happens on the connection, on the
/// hub and in the store, and applies the actions to NIO; this type knows
/// neither NIO nor the domain, so every path is tested without a channel.
///
///     routing ──open──▶ opening ──handOver──▶ streaming ──┬─ ends ─▶ closing(why) ─▶ closed(why)
///        ▲               │ │ │                             │
///        │               │ │ └──handOver──▶ holding ───────┤
///        └answeredByRoute┘ │   (a long-poll)               └─ cut ─────────────────▶ closed(why)
///                          └─ hub ended it, client gone ─▶ endedWhileOpening
///
/// Before the hand-over the route's task owns the connection: request
/// parts, events and closes go on to Hummingbird (`passOn`). From the
/// hand-over on, this type does: the route's task has ended and the
/// connection serves no further request (see `ConnectionHandedOver`).
struct StreamLifecycle<Event: SequencedEvent> {
    /// What the connection answers with.
    enum Kind: Equatable {
        /// Server-Sent Events until the terminal event.
        case stream
        /// One JSON answer with the first events, or with none when its wait runs out.
        case longPoll
    }

    /// Why a stream ended.
    enum EndReason: Equatable {
        /// Its terminal event was written.
        case terminal
        /// The hub ended it: its lifetime (a long-poll's wait) ran out, or the hub shut down.
        case lifetime
        /// The server is shutting down; it ended at its moment within the drain period.
        case drain
        /// A long-poll's answer was written.
        case answered
        /// The client stopped reading: its unsent bytes reached the high-water mark.
        case slowReader
        /// The client left: it closed its side, or the connection failed or closed.
        case clientGone
        /// Another request came on the streaming connection; it cannot be answered in order.
        case pipelinedRequest
        /// Reading a gap from the store failed; the client resumes by `Last-Event-ID`.
        case storeFailed
    }

    /// A handed-over stream or long-poll, while it waits for or writes events.
    struct Live {
        var backlog: StreamBacklog<Event>
        /// A store read fills a gap; nothing is written until it returns.
        var readingGap = false
        /// Shutdown began: `scheduleDrain` has been asked for.
        var drainScheduled = false
    }

    /// Where the connection is in the stream's life; each phase carries
    /// only what its transitions need.
    enum Phase {
        /// No stream: requests go to the router; also after a route answered
        /// its request itself, so the connection serves the next one.
        case routing
        /// The route subscribed and reads the history; events wait. Shutdown
        /// that began meanwhile is drained once handed over.
        case opening(Kind, StreamBacklog<Event>, drainRequested: Bool)
        /// The hub ended the subscription or the client left while the route
        /// read the history; the route finds out at the hand-over.
        case endedWhileOpening(Kind, EndReason)
        /// Handed over: writes events as they come.
        case streaming(Live)
        /// A handed-over long-poll waiting for its first events.
        case holding(Live)
        /// The end of the response is on its way; the connection closes once
        /// it has left (or after a grace period).
        case closing(EndReason)
        /// Closed, or asked to close at once.
        case closed(EndReason)
    }

    /// What the connection must do, in order.
    enum Action {
        /// Hand what arrived to the next handler, and so to Hummingbird.
        case passOn
        /// The `retry:` line the route chose.
        case writePrelude
        /// An event's frame.
        case write(Event)
        /// The keep-alive comment.
        case writeKeepAlive
        /// A long-poll's answer with these events; with none, the order as it was.
        case writeLongPollAnswer([Event])
        /// Send what was written.
        case flush
        /// Read the events after this `seq` from the store; the result comes back as `gapRead`.
        case readGap(after: Int)
        /// Call `drainDue` at a random moment within the drain period.
        case scheduleDrain
        /// Cancel the hub subscription.
        case leaveHub
        /// Read from the socket: reading on is how a client that leaves is noticed.
        case resumeReading
        /// Write and flush the end of the response, then close the connection
        /// once it is written or after the grace period.
        case endResponse
        /// Close the connection now; nothing queued is worth sending.
        case close
    }

    /// Where the connection is. Changed by the transitions alone (they live
    /// in extensions in other files, so the setter cannot be private).
    var phase: Phase = .routing

    /// Whether the route's task has let go of the connection: from then on
    /// Hummingbird's requests to close it are refused, and the connection
    /// closes when the stream ends.
    var isHandedOver: Bool {
        switch phase {
        case .routing, .opening, .endedWhileOpening: false
        case .streaming, .holding, .closing, .closed: true
        }
    }

    /// The handed-over stream's or long-poll's progress, while it has one.
    var live: Live? {
        switch phase {
        case .streaming(let live), .holding(let live): live
        case .routing, .opening, .endedWhileOpening, .closing, .closed: nil
        }
    }

    /// Changes that progress in place; nothing in any other phase.
    mutating func updateLive(_ change: (inout Live) -> Void) {
        switch phase {
        case .streaming(var live):
            change(&live)
            phase = .streaming(live)
        case .holding(var live):
            change(&live)
            phase = .holding(live)
        case .routing, .opening, .endedWhileOpening, .closing, .closed:
            break
        }
    }

    // MARK: - Endings shared by the transitions

    /// Ends the response properly: a long-poll's `answer` first, then the
    /// end of the response. A client that stopped reading is cut instead.
    mutating func finish(_ reason: EndReason, writable: Bool, answer: [Event]? = nil) -> [Action] {
        guard writable else { return cut(.slowReader) }
        phase = .closing(reason)
        return [.leaveHub] + (answer.map { [.writeLongPollAnswer($0)] } ?? []) + [.endResponse]
    }

    /// Closes at once: the client would not read what is queued.
    mutating func cut(_ reason: EndReason) -> [Action] {
        phase = .closed(reason)
        return [.leaveHub, .close]
    }
}

extension StreamLifecycle.Live: Equatable where Event: Equatable {}
extension StreamLifecycle.Phase: Equatable where Event: Equatable {}
extension StreamLifecycle.Action: Equatable where Event: Equatable {}
