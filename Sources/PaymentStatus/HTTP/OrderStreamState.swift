import NIOCore

/// What a handed-over connection streams, and how far it got.
struct OrderStreamState {
    struct Waiting {
        let event: PaymentEvent
        let frame: ByteBuffer
        let publishedAt: ContinuousClock.Instant
    }

    let orderID: String
    /// The last `seq` written (or, before the history, the client's `Last-Event-ID`).
    var lastSent: Int
    let store: any PaymentStore
    let metrics: ServiceMetrics
    var registration: StreamRegistration?
    /// Events received but not written yet: while the history is being read,
    /// or behind a gap.
    var waiting: [Waiting] = []
    var openingDone = false
    var catchingUp = false
    var ended = false

    init(orderID: String, lastSent: Int, store: any PaymentStore, metrics: ServiceMetrics) {
        self.orderID = orderID
        self.lastSent = lastSent
        self.store = store
        self.metrics = metrics
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
