import Synchronization

/// The hub's side of one feed stream. The feed's order is the store's, not
/// the order in which events reach the hub (on PostgreSQL other instances'
/// notices come in their own order), so a signal carries no data here: it
/// wakes the stream's task, which reads the store from its cursor. Wake-ups
/// that come while the task is busy collapse into one.
final class FeedWakeups: StreamSink {
    /// What the stream owes besides reading: a keep-alive, or its end.
    struct Due {
        var heartbeat = false
        var end = false
    }

    private let due = Mutex(Due())
    private let holding = Mutex(false)
    /// Yields once per burst of signals.
    let signals: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        let (signals, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.signals = signals
        self.continuation = continuation
    }

    func receive(_ signal: StreamSignal) {
        if case .heartbeat = signal { due.withLock { $0.heartbeat = true } }
        continuation.yield()
    }

    func end() {
        due.withLock { $0.end = true }
        continuation.yield()
    }

    /// Read again without a signal (the stream's own timer).
    func wake() {
        continuation.yield()
    }

    /// Whether the last read found events waiting behind an older, still
    /// open transaction: the stream's timer then reads again soon.
    var held: Bool {
        get { holding.withLock { $0 } }
        set { holding.withLock { $0 = newValue } }
    }

    /// What is due now; the heartbeat is handed out once.
    func take() -> Due {
        due.withLock { due in
            defer { due.heartbeat = false }
            return due
        }
    }
}
