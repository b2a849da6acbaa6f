import Synchronization

/// A subscription read as an `AsyncSequence`, for consumers that live in a
/// task (tools, tests). The open HTTP streams use `SSEConnectionHandler`,
/// which needs no task per stream.
public struct EventSubscription: Sendable {
    /// Signals in the order they were published; ends when the subscription does.
    public let signals: AsyncStream<StreamSignal>
    private let sink: AsyncSignalSink

    init(signals: AsyncStream<StreamSignal>, sink: AsyncSignalSink) {
        self.signals = signals
        self.sink = sink
    }

    /// Ends the subscription and removes it from the bus; what was already
    /// delivered can still be read.
    public func cancel() {
        sink.registration.withLock { $0 }?.cancel()
        sink.continuation.finish()
    }
}

extension EventBus {
    /// Subscribes with a buffer of `bufferCapacity` signals. A reader that
    /// lets it fill up has fallen behind: its subscription ends (what was
    /// buffered is still delivered) and `onFallBehind` is called once.
    public func subscribe(
        orderID: String, bufferCapacity: Int = 32, onFallBehind: @escaping @Sendable () -> Void = {}
    ) -> EventSubscription {
        let (signals, continuation) = AsyncStream.makeStream(of: StreamSignal.self, bufferingPolicy: .bufferingOldest(bufferCapacity))
        let sink = AsyncSignalSink(continuation: continuation, onFallBehind: onFallBehind)
        let registration = subscribe(orderID: orderID, sink: sink)
        sink.registration.withLock { $0 = registration }
        // However the reader stops (cancelled, dropped, finished), the sink leaves the bus.
        continuation.onTermination = { _ in registration.cancel() }
        return EventSubscription(signals: signals, sink: sink)
    }
}

/// Feeds an `AsyncStream`.
final class AsyncSignalSink: StreamSink {
    let continuation: AsyncStream<StreamSignal>.Continuation
    let onFallBehind: @Sendable () -> Void
    let registration = Mutex<StreamRegistration?>(nil)

    init(continuation: AsyncStream<StreamSignal>.Continuation, onFallBehind: @escaping @Sendable () -> Void) {
        self.continuation = continuation
        self.onFallBehind = onFallBehind
    }

    func receive(_ signal: StreamSignal) {
        if case .dropped = continuation.yield(signal) {
            registration.withLock { $0 }?.cancel()
            continuation.finish()
            onFallBehind()
        }
    }

    func end() {
        continuation.finish()
    }
}
