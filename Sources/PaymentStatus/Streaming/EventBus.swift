import NIOCore

/// Carries committed events to the streams watching their order. The
/// in-process `StreamHub` is one bus; one that spans instances can feed it.
public protocol EventBus: Sendable {
    /// Hands a committed event to every stream of its order. Call only after
    /// the event's commit has returned.
    func publish(_ event: PaymentEvent)

    /// Starts receiving the order's events. The subscription ends when the
    /// stream falls behind, reaches its maximum lifetime, the service shuts
    /// down, or `cancel()` is called. `onFallBehind` is called when it ends
    /// because its reader stopped taking signals: the writer is then likely
    /// stuck on a client that does not read, and only closing the
    /// connection frees it.
    func subscribe(orderID: String, onFallBehind: @escaping @Sendable () -> Void) -> EventSubscription

    /// How many subscriptions are open now.
    var openSubscriptions: Int { get }
}

extension EventBus {
    public func subscribe(orderID: String) -> EventSubscription {
        subscribe(orderID: orderID, onFallBehind: {})
    }
}

/// What a stream receives from the bus.
public enum StreamSignal: Sendable {
    /// A committed event with its SSE frame, encoded once for all streams,
    /// and when it was published (right after its commit returned).
    case event(PaymentEvent, frame: ByteBuffer, publishedAt: ContinuousClock.Instant)
    /// Time to write a keep-alive comment.
    case heartbeat
}

/// One stream's view of the bus.
public struct EventSubscription: Sendable {
    /// Signals in the order they were published; ends when the subscription does.
    public let signals: AsyncStream<StreamSignal>
    private let onCancel: @Sendable () -> Void

    public init(signals: AsyncStream<StreamSignal>, onCancel: @escaping @Sendable () -> Void) {
        self.signals = signals
        self.onCancel = onCancel
    }

    /// Ends the subscription and removes it from the bus.
    public func cancel() {
        onCancel()
    }
}
