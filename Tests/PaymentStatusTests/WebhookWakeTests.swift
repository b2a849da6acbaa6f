import Testing
@testable import PaymentStatus

/// Commits wake the webhook delivery loop only while an endpoint is enabled:
/// with none, a commit wrote no message, and a claim per commit was a
/// second write for every transition.
@Suite("Webhook delivery wake-ups", .timeLimit(.minutes(2)))
struct WebhookWakeTests {
    @Test func commitsWakeTheLoopOnlyWhileAnEndpointIsEnabled() async throws {
        let service = try TestService(store: .sqlite) {
            $0.webhooks.policy.allowHTTP = true
            $0.webhooks.policy.allowPrivateNetworks = true
            // No poll while it counts: a loaded machine makes the requests slow,
            // and each second of them was one more claim.
            $0.webhooks.pollInterval = .seconds(3600)
        }
        try await service.withLiveServer { live, services in
            let store = try #require(services.store as? SQLiteStore)
            let delivery = try #require(services.webhooks)
            try await eventually(10, "the loop to see that no endpoint is enabled") { !delivery.wakesOnCommit }
            let before = store.batcher.counts.writes
            for index in 0..<20 {
                try await live.client.createOrder(id: "o\(index)")
                try await live.client.transition("o\(index)", to: "processing")
            }
            // 40 writes of the requests, and nothing besides.
            let extra = store.batcher.counts.writes - before - 40
            #expect(extra < 10, "\(extra) writes besides the 40 transitions and orders")

            let created = try await live.client.post("/v1/webhook-endpoints", json: ["url": "http://127.0.0.1:9/hooks"])
            #expect(created.status == .created)
            #expect(delivery.wakesOnCommit, "a new endpoint did not make commits wake the loop")
        }
    }
}
