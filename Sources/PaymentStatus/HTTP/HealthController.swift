import Hummingbird

/// `/healthz` (the process answers), `/readyz` (the database answers) and
/// `/metrics` (Prometheus text).
struct HealthController {
    let store: any PaymentStore
    let hub: StreamHub
    let metrics: ServiceMetrics

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("healthz") { _, _ in Self.plain("ok\n") }
        router.get("readyz") { _, _ in
            do {
                try await store.checkReadiness()
            } catch {
                throw APIError(.serviceUnavailable, detail: "the database is not reachable")
            }
            return Self.plain("ready\n")
        }
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition(openStreams: hub.openSubscriptions))))
        }
    }

    private static func plain(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: .init(string: text)))
    }
}
