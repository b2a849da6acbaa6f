import CoreMetrics
import Prometheus
import Synchronization

/// The service's metrics, in its own Prometheus registry (not the process-wide
/// one), so that every application built in one process — tests build many —
/// reports only its own figures. Metrics are created through swift-metrics
/// with this registry's factory.
public final class ServiceMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    // Handles made once: recording runs per event and per stream, and making a
    // handle costs an allocation and a registry lookup under a lock.
    private let pushLatency: CoreMetrics.Timer
    private let streamRequests: CoreMetrics.Counter
    private let openStreams: CoreMetrics.Gauge
    private let openFeedStreams: CoreMetrics.Gauge
    private let feedStreams = Mutex(0)
    private let transitions: [String: CoreMetrics.Counter]
    private let webhookOutcomes: [String: CoreMetrics.Counter]
    private let ordersPruned: CoreMetrics.Counter
    private let eventsPruned: CoreMetrics.Counter
    private let webhookMessages: [String: CoreMetrics.Counter]
    private let webhookAttemptDuration: CoreMetrics.Timer
    private let webhookPending: CoreMetrics.Gauge
    private let webhookOldestPending: CoreMetrics.Gauge
    private let requestCounters = Mutex([String: (CoreMetrics.Counter, CoreMetrics.Timer)]())

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Sub-millisecond resolution where the push-latency target lies.
        factory.durationHistogramBuckets[Names.pushLatency] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
        ]
        self.factory = factory
        pushLatency = CoreMetrics.Timer(label: Names.pushLatency, factory: factory)
        streamRequests = CoreMetrics.Counter(label: Names.streamRequests, factory: factory)
        openStreams = CoreMetrics.Gauge(label: Names.openStreams, factory: factory)
        openFeedStreams = CoreMetrics.Gauge(label: Names.openFeedStreams, factory: factory)
        openFeedStreams.record(0)
        var transitions: [String: CoreMetrics.Counter] = [:]
        for status in PaymentStatus.allCases {
            for source in [ChangeSource.api, .webhook] {
                transitions[status.rawValue + "/" + source.rawValue] = Counter(
                    label: Names.transitions, dimensions: [("status", status.rawValue), ("source", source.rawValue)], factory: factory)
            }
        }
        self.transitions = transitions
        ordersPruned = CoreMetrics.Counter(label: Names.ordersPruned, factory: factory)
        eventsPruned = CoreMetrics.Counter(label: Names.eventsPruned, factory: factory)
        webhookMessages = Dictionary(uniqueKeysWithValues: ["delivered", "retried", "failed"].map {
            ($0, CoreMetrics.Counter(label: Names.webhookMessages, dimensions: [("outcome", $0)], factory: factory))
        })
        webhookAttemptDuration = CoreMetrics.Timer(label: Names.webhookAttemptDuration, factory: factory)
        webhookPending = CoreMetrics.Gauge(label: Names.webhookPending, factory: factory)
        webhookOldestPending = CoreMetrics.Gauge(label: Names.webhookOldestPending, factory: factory)
        webhookPending.record(0)
        webhookOldestPending.record(0)
        webhookOutcomes = Dictionary(uniqueKeysWithValues: WebhookOutcome.allCases.map {
            ($0.rawValue, CoreMetrics.Counter(label: Names.webhookOutcomes, dimensions: [("outcome", $0.rawValue)], factory: factory))
        })
    }

    enum Names {
        static let requests = "payment_status_http_requests_total"
        static let requestDuration = "payment_status_http_request_duration_seconds"
        static let streamRequests = "payment_status_stream_requests_total"
        static let openStreams = "payment_status_open_streams"
        static let openFeedStreams = "payment_status_open_feed_streams"
        static let transitions = "payment_status_transitions_total"
        static let webhookOutcomes = "payment_status_webhook_outcomes_total"
        static let pushLatency = "payment_status_push_latency_seconds"
        /// Webhooks to the merchant (the inbound provider's are `webhookOutcomes`).
        static let webhookMessages = "payment_status_webhook_messages_total"
        static let webhookAttemptDuration = "payment_status_webhook_attempt_duration_seconds"
        static let webhookPending = "payment_status_webhook_pending_messages"
        static let webhookOldestPending = "payment_status_webhook_oldest_pending_age_seconds"
        static let ordersPruned = "payment_status_orders_pruned_total"
        static let eventsPruned = "payment_status_events_pruned_total"
    }

    /// One answered request; `route` is the path template (`/v1/orders/{order_id}`), never the raw path.
    func requestServed(route: String, method: String, status: Int, duration: Duration) {
        let key = route + " " + method + " " + String(status)
        let (counter, timer) = requestCounters.withLock { cache in
            if let handles = cache[key] { return handles }
            let handles = (
                CoreMetrics.Counter(label: Names.requests, dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory),
                CoreMetrics.Timer(label: Names.requestDuration, dimensions: [("route", route)], factory: factory)
            )
            cache[key] = handles
            return handles
        }
        counter.increment()
        timer.record(duration: duration)
    }

    /// Any request to a stream, whatever its answer: a reconnect loop shows here.
    func streamRequested() {
        streamRequests.increment()
    }

    /// A merchant's feed stream opened or ended; the gauge follows at once
    /// (feed streams are also among `payment_status_open_streams`).
    func feedStreamOpened() {
        feedStreams.withLock { count in
            count += 1
            openFeedStreams.record(count)
        }
    }

    func feedStreamClosed() {
        feedStreams.withLock { count in
            count -= 1
            openFeedStreams.record(count)
        }
    }

    /// An event stored, by its status and who reported it (creation counts as `initiated`).
    func transitionStored(_ event: PaymentEvent) {
        transitions[event.status.rawValue + "/" + event.source.rawValue]?.increment()
    }

    func webhookAnswered(_ outcome: WebhookOutcome) {
        webhookOutcomes[outcome.rawValue]?.increment()
    }

    /// One attempt to deliver a message to the merchant, by what became of the message.
    func webhookAttempted(verdict: MessageVerdict, duration: Duration) {
        webhookMessages[verdict.name]?.increment()
        webhookAttemptDuration.record(duration: duration)
    }

    /// The outbox's pending messages and the age of the oldest.
    func webhookBacklog(_ backlog: OutboxBacklog, now: Timestamp) {
        webhookPending.record(backlog.pending)
        let age = backlog.oldestPendingCreatedAt.map { max(0, now.millisecondsSince1970 - $0.millisecondsSince1970) } ?? 0
        webhookOldestPending.record(Double(age) / 1000)
    }

    /// Finished orders deleted by retention, with their events.
    func pruned(orders: Int, events: Int) {
        ordersPruned.increment(by: orders)
        eventsPruned.increment(by: events)
    }

    /// Time from an event's commit to its bytes being written to one stream.
    func eventPushed(after latency: Duration) {
        pushLatency.record(duration: latency)
    }

    /// The Prometheus text exposition of everything above.
    func exposition(openStreams: Int) -> [UInt8] {
        self.openStreams.record(openStreams)
        return registry.emitToBuffer()
    }
}

/// What became of one webhook delivery.
enum WebhookOutcome: String, CaseIterable {
    case applied, duplicate, stale, conflict
    case unknownOrder = "unknown_order"
    case badSignature = "bad_signature"
    case malformed
}

extension CoreMetrics.Timer {
    func record(duration: Duration) {
        recordNanoseconds(duration.nanoseconds)
    }
}
