import NIOCore
import ServiceLifecycle
import Synchronization

/// The in-process fan-out: per order, the set of open streams. One timer
/// (the `run()` loop) drives every stream's heartbeats and maximum lifetime,
/// rather than a timer per stream. Each tick touches only the streams due in
/// it (a timing wheel), and streams opened together have their keep-alives
/// spread over the interval, so that no tick wakes thousands of streams at
/// once while events wait behind them.
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

    private struct Key: Hashable {
        let orderID: String
        let id: UInt64
    }

    private struct State {
        var byOrder: [String: [UInt64: Subscriber]] = [:]
        /// Tick number → the streams due then (for a keep-alive or their end).
        /// Entries of streams gone meanwhile are skipped when their tick comes.
        var wheel: [Int: [Key]] = [:]
        /// The last tick whose entries were handled.
        var lastTick = 0
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
    private let origin: ContinuousClock.Instant
    /// How often `run()` ticks: a 150th of the shorter of the heartbeat interval
    /// and the lifetime, between 10 and 100 ms.
    let tickInterval: Duration

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
        origin = clock.now
        let shortest = min(configuration.heartbeatInterval, configuration.maxLifetime)
        tickInterval = max(min(shortest / 150, .milliseconds(100)), .milliseconds(10))
    }

    /// The first tick at or after `instant`.
    private func tick(at instant: ContinuousClock.Instant) -> Int {
        Int(((instant - origin) / tickInterval).rounded(.up))
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
        let subscriber = Subscriber(
            continuation: continuation, onFallBehind: onFallBehind, deadline: now.advanced(by: configuration.maxLifetime),
            // The first keep-alive comes after a random part of the interval, so that
            // streams opened together (a reconnect storm, a bench) do not all
            // get theirs in the same tick.
            nextHeartbeat: now.advanced(by: configuration.heartbeatInterval * Double.random(in: 0.25...1)))
        let due = tick(at: min(subscriber.nextHeartbeat, subscriber.deadline))
        state.withLock { state in
            state.byOrder[orderID, default: [:]][id] = subscriber
            state.wheel[max(due, state.lastTick + 1), default: []].append(Key(orderID: orderID, id: id))
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

    /// Sends due heartbeats and closes streams past their lifetime: the
    /// streams filed under the ticks that have come since the last call.
    func tick() {
        let now = clock.now
        let current = Int(((now - origin) / tickInterval).rounded(.down))
        var fallenBehind: [Subscriber] = []
        let ending = state.withLock { state -> [Subscriber] in
            guard current > state.lastTick else { return [] }
            var due: [Key] = []
            if current - state.lastTick <= state.wheel.count {
                for tick in (state.lastTick + 1)...current { due += state.wheel.removeValue(forKey: tick) ?? [] }
            } else {
                for tick in state.wheel.keys where tick <= current { due += state.wheel.removeValue(forKey: tick) ?? [] }
            }
            state.lastTick = current
            var ending: [Subscriber] = []
            for key in due {
                guard var subscriber = state.byOrder[key.orderID]?[key.id] else { continue }  // gone meanwhile
                if subscriber.deadline <= now {
                    ending.append(state.remove(orderID: key.orderID, id: key.id)!)
                    continue
                }
                if subscriber.nextHeartbeat <= now {
                    if case .dropped = subscriber.continuation.yield(.heartbeat) {
                        fallenBehind.append(state.remove(orderID: key.orderID, id: key.id)!)
                        continue
                    }
                    subscriber.nextHeartbeat = now.advanced(by: configuration.heartbeatInterval)
                    state.byOrder[key.orderID]?[key.id] = subscriber
                }
                let next = max(tick(at: min(subscriber.nextHeartbeat, subscriber.deadline)), current + 1)
                state.wheel[next, default: []].append(key)
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
            state.wheel = [:]
            state.count = 0
            return all
        }
        for subscriber in all { subscriber.continuation.finish() }
    }

    /// The timer loop; ends the streams when the service shuts down.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: self.tickInterval)
                self.tick()
            }
        }
        closeAll()
    }
}
