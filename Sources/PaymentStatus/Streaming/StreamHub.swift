import NIOCore
import ServiceLifecycle
import Synchronization

/// The in-process fan-out: per order, the set of open streams. One timer
/// (the `run()` loop) drives every stream's heartbeats and maximum lifetime,
/// rather than a timer per stream.
public final class StreamHub: EventBus, Service {
    /// Timing and buffering of the streams the hub serves.
    public struct Configuration: Sendable {
        /// How often an idle stream gets a keep-alive comment.
        public var heartbeatInterval: Duration
        /// How long a stream may stay open; its client then resumes by `Last-Event-ID`.
        public var maxLifetime: Duration
        /// Signals a stream may have waiting before it counts as fallen behind and is closed.
        public var bufferCapacity: Int

        public init(heartbeatInterval: Duration = .seconds(15), maxLifetime: Duration = .seconds(600), bufferCapacity: Int = 32) {
            self.heartbeatInterval = heartbeatInterval
            self.maxLifetime = maxLifetime
            self.bufferCapacity = bufferCapacity
        }
    }

    private struct Subscriber {
        let continuation: AsyncStream<StreamSignal>.Continuation
        let onFallBehind: @Sendable () -> Void
        let deadline: ContinuousClock.Instant
        var nextHeartbeat: ContinuousClock.Instant
    }

    private struct State {
        var byOrder: [String: [UInt64: Subscriber]] = [:]
        /// The highest `seq` published per watched order, for a relay that
        /// must re-read what it may have missed.
        var lastPublished: [String: Int] = [:]
        var lastID: UInt64 = 0
        var count = 0
        var closed = false

        mutating func remove(orderID: String, id: UInt64) -> Subscriber? {
            guard let subscriber = byOrder[orderID]?.removeValue(forKey: id) else { return nil }
            if byOrder[orderID]?.isEmpty == true {
                byOrder[orderID] = nil
                lastPublished[orderID] = nil
            }
            count -= 1
            return subscriber
        }
    }

    public let configuration: Configuration
    private let state = Mutex(State())
    private let clock = ContinuousClock()

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    public var openSubscriptions: Int { state.withLock { $0.count } }

    public func subscribe(orderID: String, onFallBehind: @escaping @Sendable () -> Void) -> EventSubscription {
        let (signals, continuation) = AsyncStream.makeStream(
            of: StreamSignal.self, bufferingPolicy: .bufferingOldest(configuration.bufferCapacity))
        let now = clock.now
        let id = state.withLock { state -> UInt64? in
            guard !state.closed else { return nil }
            state.lastID += 1
            return state.lastID
        }
        guard let id else {
            continuation.finish()
            return EventSubscription(signals: signals, onCancel: {})
        }
        // Set before the subscriber is visible, so that however the stream
        // ends (consumer cancelled, dropped, finished) it leaves the hub.
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.remove(orderID: orderID, id: id) }
        }
        state.withLock { state in
            state.byOrder[orderID, default: [:]][id] = Subscriber(
                continuation: continuation, onFallBehind: onFallBehind, deadline: now.advanced(by: configuration.maxLifetime),
                // The first keep-alive comes after a random part of the interval, so that
                // streams opened together (a reconnect storm, a bench) do not all
                // get theirs in the same tick, delaying the events behind them.
                nextHeartbeat: now.advanced(by: configuration.heartbeatInterval * Double.random(in: 0.25...1)))
            state.count += 1
        }
        return EventSubscription(signals: signals) { [weak self] in
            let removed = self?.state.withLock { $0.remove(orderID: orderID, id: id) }
            (removed ?? nil)?.continuation.finish()
        }
    }

    public func publish(_ event: PaymentEvent) {
        guard isWatching(event.orderID) else { return }
        let frame = SSEFrame.status(event)
        let publishedAt = clock.now
        let fallenBehind = state.withLock { state -> [Subscriber] in
            guard let subscribers = state.byOrder[event.orderID] else { return [] }
            state.lastPublished[event.orderID] = max(state.lastPublished[event.orderID] ?? 0, event.seq)
            var dropped: [Subscriber] = []
            for (id, subscriber) in subscribers {
                if case .dropped = subscriber.continuation.yield(.event(event, frame: frame, publishedAt: publishedAt)) {
                    dropped.append(state.remove(orderID: event.orderID, id: id)!)
                }
            }
            return dropped
        }
        Self.endFallenBehind(fallenBehind)
    }

    /// Whether any stream watches the order now.
    public func isWatching(_ orderID: String) -> Bool {
        state.withLock { $0.byOrder[orderID] != nil }
    }

    /// Every watched order with the highest `seq` published to it (0 when
    /// none yet): where a relay that lost its feed resumes reading.
    public func watermarks() -> [(orderID: String, seq: Int)] {
        state.withLock { state in state.byOrder.keys.map { ($0, state.lastPublished[$0] ?? 0) } }
    }

    /// Sends due heartbeats and closes streams past their lifetime.
    func tick() {
        let now = clock.now
        var fallenBehind: [Subscriber] = []
        let ending = state.withLock { state -> [Subscriber] in
            var ending: [Subscriber] = []
            for (orderID, subscribers) in state.byOrder {
                for (id, subscriber) in subscribers {
                    if subscriber.deadline <= now {
                        ending.append(state.remove(orderID: orderID, id: id)!)
                    } else if subscriber.nextHeartbeat <= now {
                        if case .dropped = subscriber.continuation.yield(.heartbeat) {
                            fallenBehind.append(state.remove(orderID: orderID, id: id)!)
                        } else {
                            state.byOrder[orderID]?[id]?.nextHeartbeat = now.advanced(by: configuration.heartbeatInterval)
                        }
                    }
                }
            }
            return ending
        }
        for subscriber in ending { subscriber.continuation.finish() }
        Self.endFallenBehind(fallenBehind)
    }

    /// Ends subscriptions whose reader stopped taking signals and lets their
    /// owners cut the connection. Called outside the lock: finishing runs
    /// `onTermination`, which takes it.
    private static func endFallenBehind(_ subscribers: [Subscriber]) {
        for subscriber in subscribers {
            subscriber.continuation.finish()
            subscriber.onFallBehind()
        }
    }

    /// Ends every stream and refuses new ones; their clients resume elsewhere by `Last-Event-ID`.
    public func closeAll() {
        let all = state.withLock { state -> [Subscriber] in
            state.closed = true
            let all = state.byOrder.values.flatMap(\.values)
            state.byOrder = [:]
            state.lastPublished = [:]
            state.count = 0
            return all
        }
        for subscriber in all { subscriber.continuation.finish() }
    }

    /// The timer loop; ends the streams when the service shuts down.
    public func run() async throws {
        let shortest = min(configuration.heartbeatInterval, configuration.maxLifetime)
        let interval = max(min(shortest / 4, .seconds(1)), .milliseconds(10))
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: interval)
                self.tick()
            }
        }
        closeAll()
    }
}
