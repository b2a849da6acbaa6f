import Hummingbird

/// `/healthz` (the process answers) and `/readyz` (the database answers).
struct HealthController {
    let store: any PaymentStore

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
    }

    private static func plain(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: .init(string: text)))
    }
}
