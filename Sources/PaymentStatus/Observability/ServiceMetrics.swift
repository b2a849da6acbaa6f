import CoreMetrics
import Prometheus

/// The service's metrics, in its own Prometheus registry (not the process-wide
/// one), so that every application built in one process — tests build many —
/// reports only its own figures. Metrics are created through swift-metrics
/// with this registry's factory.
public final class ServiceMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

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
    }

    enum Names {
        static let requests = "payment_status_http_requests_total"
        static let requestDuration = "payment_status_http_request_duration_seconds"
        static let streamRequests = "payment_status_stream_requests_total"
        static let openStreams = "payment_status_open_streams"
        static let transitions = "payment_status_transitions_total"
        static let webhookOutcomes = "payment_status_webhook_outcomes_total"
        static let pushLatency = "payment_status_push_latency_seconds"
    }

    /// One answered request; `route` is the path template (`/v1/orders/{id}`), never the raw path.
    func requestServed(route: String, method: String, status: Int, duration: Duration) {
        let dimensions = [("route", route), ("method", method), ("status", String(status))]
        Counter(label: Names.requests, dimensions: dimensions, factory: factory).increment()
        Timer(label: Names.requestDuration, dimensions: [("route", route)], factory: factory).record(duration: duration)
    }

    /// Any request to a stream, whatever its answer: a reconnect loop shows here.
    func streamRequested() {
        Counter(label: Names.streamRequests, factory: factory).increment()
    }

    func setOpenStreams(_ count: Int) {
        Gauge(label: Names.openStreams, factory: factory).record(count)
    }

    /// An event stored, by its status and who reported it (creation counts as `initiated`).
    func transitionStored(_ event: PaymentEvent) {
        Counter(
            label: Names.transitions, dimensions: [("status", event.status.rawValue), ("source", event.source.rawValue)],
            factory: factory
        ).increment()
    }

    func webhookAnswered(_ outcome: WebhookOutcome) {
        Counter(label: Names.webhookOutcomes, dimensions: [("outcome", outcome.rawValue)], factory: factory).increment()
    }

    /// Time from an event's commit to its bytes being written to one stream.
    func eventPushed(after latency: Duration) {
        Timer(label: Names.pushLatency, factory: factory).record(duration: latency)
    }

    /// The Prometheus text exposition of everything above.
    func exposition(openStreams: Int) -> [UInt8] {
        setOpenStreams(openStreams)
        return registry.emitToBuffer()
    }
}

/// What became of one webhook delivery.
enum WebhookOutcome: String {
    case applied, duplicate, stale, conflict
    case unknownOrder = "unknown_order"
    case badSignature = "bad_signature"
    case malformed
}

extension Timer {
    func record(duration: Duration) {
        let (seconds, attoseconds) = duration.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
