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
    /// Timing of the streams the hub serves.
    public struct Configuration: Sendable {
        /// How often an idle stream gets a keep-alive comment.
        public var heartbeatInterval: Duration
        /// How long a stream may stay open; its client then resumes by `Last-Event-ID`.
        public var maxLifetime: Duration
        /// On shutdown, each open stream ends at a random moment within this
        /// period, so that their clients reconnect elsewhere gradually.
        public var drainPeriod: Duration

        public init(heartbeatInterval: Duration = .seconds(15), maxLifetime: Duration = .seconds(600), drainPeriod: Duration = .zero) {
            self.heartbeatInterval = heartbeatInterval
            self.maxLifetime = maxLifetime
            self.drainPeriod = drainPeriod
        }
    }

    private struct Subscriber {
        let sink: any StreamSink
        var deadline: ContinuousClock.Instant
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

    /// The subscription key of the merchant's feed streams: they hear of
    /// every order's events (no order id has a `*`). A feed stream takes a
    /// signal as a cue to read the store from its cursor, not as its data.
    public static let allOrders = "*"

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

    public func subscribe(orderID: String, sink: any StreamSink, lifetime: Duration?) -> StreamRegistration {
        let now = clock.now
        let subscriber = Subscriber(
            sink: sink, deadline: now.advanced(by: lifetime.map { min($0, configuration.maxLifetime) } ?? configuration.maxLifetime),
            // The first keep-alive comes after a random part of the interval, so that
            // streams opened together (a reconnect storm, a bench) do not all
            // get theirs in the same tick.
            nextHeartbeat: now.advanced(by: configuration.heartbeatInterval * Double.random(in: 0.25...1)))
        let due = tick(at: min(subscriber.nextHeartbeat, subscriber.deadline))
        let id = state.withLock { state -> UInt64? in
            guard !state.closed else { return nil }
            state.lastID += 1
            state.byOrder[orderID, default: [:]][state.lastID] = subscriber
            state.wheel[max(due, state.lastTick + 1), default: []].append(Key(orderID: orderID, id: state.lastID))
            state.count += 1
            return state.lastID
        }
        guard let id else {
            sink.end()
            return StreamRegistration {}
        }
        return StreamRegistration { [weak self] in
            _ = self?.state.withLock { $0.remove(orderID: orderID, id: id) }
        }
    }

    public func publish(_ event: PaymentEvent) {
        guard isWatching(event.orderID) else { return }
        let signal = StreamSignal.event(event, frame: SSEFrame.status(event), publishedAt: clock.now)
        let sinks = state.withLock { state -> [any StreamSink] in
            let feeds = state.byOrder[Self.allOrders]?.values.map(\.sink) ?? []
            guard let subscribers = state.byOrder[event.orderID] else { return feeds }
            state.lastPublished[event.orderID] = max(state.lastPublished[event.orderID] ?? 0, event.seq)
            return subscribers.values.map(\.sink) + feeds
        }
        // Outside the lock: a sink may leave the hub from `receive`.
        for sink in sinks { sink.receive(signal) }
    }

    /// Whether any stream watches the order now (a feed stream watches them all).
    public func isWatching(_ orderID: String) -> Bool {
        state.withLock { $0.byOrder[orderID] != nil || $0.byOrder[Self.allOrders] != nil }
    }

    /// Every watched order with the highest `seq` published to it (0 when
    /// none yet): where a relay that lost its feed resumes reading.
    public func watermarks() -> [(orderID: String, seq: Int)] {
        state.withLock { state in
            state.byOrder.keys.filter { $0 != Self.allOrders }.map { ($0, state.lastPublished[$0] ?? 0) }
        }
    }

    /// Sends due heartbeats and closes streams past their lifetime: the
    /// streams filed under the ticks that have come since the last call.
    func tick() {
        let now = clock.now
        let current = Int(((now - origin) / tickInterval).rounded(.down))
        let (beating, ending) = state.withLock { state -> ([any StreamSink], [any StreamSink]) in
            guard current > state.lastTick else { return ([], []) }
            var due: [Key] = []
            if current - state.lastTick <= state.wheel.count {
                for tick in (state.lastTick + 1)...current { due += state.wheel.removeValue(forKey: tick) ?? [] }
            } else {
                for tick in state.wheel.keys where tick <= current { due += state.wheel.removeValue(forKey: tick) ?? [] }
            }
            state.lastTick = current
            var beating: [any StreamSink] = []
            var ending: [any StreamSink] = []
            for key in due {
                guard var subscriber = state.byOrder[key.orderID]?[key.id] else { continue }  // gone meanwhile
                if subscriber.deadline <= now {
                    ending.append(state.remove(orderID: key.orderID, id: key.id)!.sink)
                    continue
                }
                if subscriber.nextHeartbeat <= now {
                    beating.append(subscriber.sink)
                    subscriber.nextHeartbeat = now.advanced(by: configuration.heartbeatInterval)
                    state.byOrder[key.orderID]?[key.id] = subscriber
                }
                let next = max(tick(at: min(subscriber.nextHeartbeat, subscriber.deadline)), current + 1)
                state.wheel[next, default: []].append(key)
            }
            return (beating, ending)
        }
        for sink in beating { sink.receive(.heartbeat) }
        for sink in ending { sink.end() }
    }

    /// Ends every stream and refuses new ones; their clients resume elsewhere by `Last-Event-ID`.
    public func closeAll() {
        let all = state.withLock { state -> [any StreamSink] in
            state.closed = true
            let all = state.byOrder.values.flatMap(\.values).map(\.sink)
            state.byOrder = [:]
            state.lastPublished = [:]
            state.wheel = [:]
            state.count = 0
            return all
        }
        for sink in all { sink.end() }
    }

    /// Shutdown, gently: refuses new streams and gives each open one a
    /// deadline at random within the drain period, then keeps ticking until
    /// they have all ended or the period is over.
    func drain() async {
        let now = clock.now
        let period = configuration.drainPeriod
        state.withLock { state in
            state.closed = true
            for (orderID, subscribers) in state.byOrder {
                for (id, var subscriber) in subscribers {
                    subscriber.deadline = min(subscriber.deadline, now.advanced(by: period * Double.random(in: 0..<1)))
                    state.byOrder[orderID]?[id] = subscriber
                    state.wheel[max(tick(at: subscriber.deadline), state.lastTick + 1), default: []].append(Key(orderID: orderID, id: id))
                }
            }
        }
        let end = now.advanced(by: period)
        while clock.now < end, openSubscriptions > 0 {
            guard (try? await Task.sleep(for: tickInterval)) != nil else { break }
            tick()
        }
    }

    /// The timer loop; ends the streams, spread over the drain period, when
    /// the service shuts down.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: self.tickInterval)
                self.tick()
            }
        }
        await drain()
        closeAll()
    }
}
