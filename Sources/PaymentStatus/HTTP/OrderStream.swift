import NIOCore

/// What a connection's handed-over stream or long-poll serves, fixed when
/// the route opens it; how far it got is its `StreamLifecycle`'s.
struct OrderStream {
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
    /// The client's `Last-Event-ID` (a long-poll's `after`), 0 for none.
    let lastSent: Int
    let kind: Kind
    let store: any PaymentStore
    let metrics: ServiceMetrics
    /// On shutdown the stream ends at a random moment within this period.
    let drainPeriod: Duration

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

    /// The lifecycle's view of the kind.
    var lifecycleKind: StreamLifecycle<OutgoingEvent>.Kind {
        if case .longPoll = kind { return .longPoll }
        return .stream
    }
}

/// An event on its way to one client: its frame, encoded once by the hub
/// for every stream, and when it was published, for the push latency (nil
/// for the history, which was read rather than pushed).
struct OutgoingEvent: SequencedEvent {
    let event: PaymentEvent
    let frame: ByteBuffer
    let publishedAt: ContinuousClock.Instant?

    var seq: Int { event.seq }
    var endsStream: Bool { event.status.isTerminal }

    /// An event read from the store, framed here; `publishedAt` as above.
    init(read event: PaymentEvent, publishedAt: ContinuousClock.Instant?) {
        self.init(event, frame: SSEFrame.status(event), publishedAt: publishedAt)
    }

    /// An event as the hub pushed it.
    init(_ event: PaymentEvent, frame: ByteBuffer, publishedAt: ContinuousClock.Instant?) {
        self.event = event
        self.frame = frame
        self.publishedAt = publishedAt
    }
}
