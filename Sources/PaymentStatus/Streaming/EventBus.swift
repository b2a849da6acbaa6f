import NIOCore

/// Carries committed events to the streams watching their order. The
/// in-process `StreamHub` is one bus; one that spans instances can feed it.
public protocol EventBus: Sendable {
    /// Hands a committed event to every stream of its order. Call only after
    /// the event's commit has returned.
    func publish(_ event: PaymentEvent)

    /// Starts handing the order's signals to `sink` until the registration is
    /// cancelled, the subscription reaches its lifetime (`lifetime`, or the
    /// bus's maximum for a stream when nil) or the service shuts down (the
    /// last two call `sink.end()`).
    func subscribe(orderID: String, sink: any StreamSink, lifetime: Duration?) -> StreamRegistration

    /// How many subscriptions are open now.
    var openSubscriptions: Int { get }
}

extension EventBus {
    /// A stream's subscription, with the bus's maximum lifetime.
    public func subscribe(orderID: String, sink: any StreamSink) -> StreamRegistration {
        subscribe(orderID: orderID, sink: sink, lifetime: nil)
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

/// The receiving end of a subscription: one open stream. The bus calls it
/// from any thread, in publication order, and never waits on it, so an
/// implementation only hands the signal to where it is written (an event
/// loop, a buffer) and returns.
public protocol StreamSink: AnyObject, Sendable {
    /// A signal for the stream.
    func receive(_ signal: StreamSignal)
    /// The bus ended the subscription (lifetime reached, shutdown): finish
    /// the stream; the client resumes by `Last-Event-ID`.
    func end()
}

/// A subscription's handle: cancelling removes the sink from the bus.
public struct StreamRegistration: Sendable {
    private let onCancel: @Sendable () -> Void

    public init(onCancel: @escaping @Sendable () -> Void) {
        self.onCancel = onCancel
    }

    /// Removes the sink; harmless when it was already removed.
    public func cancel() {
        onCancel()
    }
}
