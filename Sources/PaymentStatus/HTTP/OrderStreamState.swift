import NIOCore

/// What a handed-over connection streams, and how far it got.
struct OrderStreamState {
    struct Waiting {
        let event: PaymentEvent
        let frame: ByteBuffer
        let publishedAt: ContinuousClock.Instant
    }

    /// What the connection answers with.
    enum Kind {
        /// Server-Sent Events, until the terminal event.
        case stream
        /// A held long-poll: one JSON answer with the first events after
        /// `lastSent`, or with none (and the order as it was, `status` at
        /// `version`) when its wait runs out.
        case longPoll(status: PaymentStatus, version: Int)
    }

    let orderID: String
    /// The last `seq` written (or, before the history, the client's `Last-Event-ID`).
    var lastSent: Int
    let kind: Kind
    let store: any PaymentStore
    let metrics: ServiceMetrics
    /// On shutdown the stream ends at a random moment within this period.
    let drainPeriod: Duration
    var registration: StreamRegistration?
    /// Events received but not written yet: while the history is being read,
    /// or behind a gap.
    var waiting: [Waiting] = []
    var openingDone = false
    var catchingUp = false
    var ended = false
    /// The server began shutting down before the stream was handed over.
    var quiesced = false
    /// A long-poll's answer has been written.
    var answered = false

    init(
        orderID: String, lastSent: Int, kind: Kind = .stream, store: any PaymentStore, metrics: ServiceMetrics,
        drainPeriod: Duration = .zero
    ) {
        self.orderID = orderID
        self.lastSent = lastSent
        self.kind = kind
        self.store = store
        self.metrics = metrics
        self.drainPeriod = drainPeriod
    }

    var isLongPoll: Bool {
        if case .longPoll = kind { return true }
        return false
    }
}

/// Thrown by the stream route once the connection is handed over: it ends the
/// request's task without ending the response.
struct StreamHandedOver: Error {}

/// The hub's side of a handed-over connection: hops every signal to its event loop.
final class ConnectionSink: StreamSink {
    let handler: NIOLoopBound<SSEConnectionHandler>

    init(handler: NIOLoopBound<SSEConnectionHandler>) {
        self.handler = handler
    }

    func receive(_ signal: StreamSignal) {
        let handler = self.handler
        handler.eventLoop.execute { handler.value.receive(signal) }
    }

    func end() {
        let handler = self.handler
        handler.eventLoop.execute { handler.value.finish() }
    }
}
