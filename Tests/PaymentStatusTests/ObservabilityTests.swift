import Foundation
import HummingbirdTesting
import Testing
@testable import PaymentStatus

@Suite("Health and metrics", .timeLimit(.minutes(2)))
struct ObservabilityTests {
    /// The value of the sample whose name and labels match, from Prometheus text.
    static func sample(_ text: String, _ name: String, _ labels: [String: String] = [:]) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name) && !line.hasPrefix("#") {
            let head = line.prefix { $0 != " " }
            let rest = head.dropFirst(name.count)
            guard rest.isEmpty || rest.hasPrefix("{") else { continue }
            guard labels.allSatisfy({ rest.contains("\($0.key)=\"\($0.value)\"") }) else { continue }
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    @Test func metricsCountRequestsTransitionsAndWebhooks() async throws {
        try await TestService().withRouter { client, _ in
            try await client.createOrder(id: "o1")
            try await client.transition("o1", to: "processing")
            _ = try await client.get("/v1/orders/missing")
            _ = try await WebhookEndpointTests.deliver(client, ["event_id": "w1", "order_id": "o1", "status": "succeeded"])
            _ = try await WebhookEndpointTests.deliver(client, ["event_id": "w1", "order_id": "o1", "status": "succeeded"])
            _ = try await WebhookEndpointTests.deliver(client, ["event_id": "w2", "order_id": "o1", "status": "failed"])
            _ = try await WebhookEndpointTests.deliver(client, ["event_id": "w3", "order_id": "o1", "status": "failed"], secret: "wrong")
            _ = try await client.get("/v1/orders/o1/events?lastEventId=9")

            let response = try await client.get("/metrics", headers: [:])
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
            let text = String(buffer: response.body)
            #expect(Self.sample(text, "payment_status_transitions_total", ["status": "initiated", "source": "api"]) == 1)
            #expect(Self.sample(text, "payment_status_transitions_total", ["status": "processing", "source": "api"]) == 1)
            #expect(Self.sample(text, "payment_status_transitions_total", ["status": "succeeded", "source": "webhook"]) == 1)
            #expect(Self.sample(text, "payment_status_webhook_outcomes_total", ["outcome": "applied"]) == 1)
            #expect(Self.sample(text, "payment_status_webhook_outcomes_total", ["outcome": "duplicate"]) == 1)
            #expect(Self.sample(text, "payment_status_webhook_outcomes_total", ["outcome": "conflict"]) == 1)
            #expect(Self.sample(text, "payment_status_webhook_outcomes_total", ["outcome": "bad_signature"]) == 1)
            #expect(Self.sample(text, "payment_status_stream_requests_total") == 1)
            #expect(Self.sample(text, "payment_status_http_requests_total", ["route": "/v1/orders/{order_id}", "method": "GET", "status": "404"]) == 1)
            #expect(Self.sample(text, "payment_status_http_requests_total", ["route": "/v1/orders", "method": "POST", "status": "201"]) == 1)
            #expect(Self.sample(text, "payment_status_open_streams") == 0)
        }
    }

    @Test func pushLatencyAndOpenStreamsFromALiveStream() async throws {
        try await TestService().withLiveServer { live, services in
            try await live.client.createOrder(id: "o1")
            let stream = try await live.openStream(LiveStreamTests.path("o1", services))
            _ = try await stream.nextEvent()
            let during = String(buffer: try await live.client.get("/metrics", headers: [:]).body)
            #expect(Self.sample(during, "payment_status_open_streams") == 1)
            try await live.client.transition("o1", to: "succeeded")
            _ = try await stream.readToEnd()
            try await eventually(10, "the stream to leave the hub") { services.hub.openSubscriptions == 0 }
            let after = String(buffer: try await live.client.get("/metrics", headers: [:]).body)
            #expect(Self.sample(after, "payment_status_push_latency_seconds_count") == 1)
            #expect(Self.sample(after, "payment_status_open_streams") == 0)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func readinessRunsAQuery(store: StoreKind) async throws {
        try await TestService(store: store).withRouter { client, services in
            #expect(try await client.get("/readyz", headers: [:]).status == .ok)
            try await services.store.close()
            let closed = try await client.get("/readyz", headers: [:])
            #expect(closed.status == .serviceUnavailable)
            #expect(closed.headers[.contentType] == "application/problem+json")
            #expect(try await client.get("/healthz", headers: [:]).status == .ok)
        }
    }
}
