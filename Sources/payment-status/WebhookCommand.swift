import ArgumentParser
import Logging
import AsyncHTTPClient
import Foundation
import NIOCore
import PaymentStatus

/// Sends one signed webhook, the way a payment provider would, so a merchant
/// can try the flow locally (like the provider CLIs that forward test events).
struct WebhookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhook",
        abstract: "Sign and send one payment-status webhook, as the payment provider would.",
        discussion: """
            The secret is PAYMENT_WEBHOOK_SECRET (the first one, when it lists several) or, when that
            is unset, the secret the service generated and stored in --database.
            """)

    @Option(help: "Base URL of the service.")
    var url = "http://127.0.0.1:8080"

    @Option(help: "The order the provider reports on.")
    var order: String

    @Option(help: "initiated, processing, succeeded or failed.")
    var status: String

    @Option(help: "The provider's event id (default: a new random one).")
    var eventId: String?

    @Option(help: "A reason, e.g. a decline code.")
    var reason: String?

    @Option(help: "SQLite file to read a generated secret from (env PAYMENT_DB; default ./data/payments.sqlite).")
    var database: String?

    func run() async throws {
        let url = try CommandURL.validated(self.url, option: "--url")
        let secret = try await resolveSecret()
        var body: [String: String] = [
            "event_id": eventId ?? "evt_\(UUID().uuidString.lowercased())", "order_id": order, "status": status,
            "occurred_at": Timestamp.now().rfc3339,
        ]
        if let reason { body["reason"] = reason }
        let bytes = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        let timestamp = Int64(Date().timeIntervalSince1970)

        var request = HTTPClientRequest(url: url.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/v1/webhooks/payment-status")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Payment-Signature", value: WebhookSignature.header(body: bytes, timestamp: timestamp, secrets: [secret]))
        request.body = .bytes(ByteBuffer(bytes: bytes))

        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let answer = try await response.body.collect(upTo: 1 << 20)
        print("\(response.status.code) \(String(buffer: answer))")
        guard (200..<300).contains(response.status.code) else { throw ExitCode(1) }
    }

    private func resolveSecret() async throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let first = AppConfiguration.list(environment["PAYMENT_WEBHOOK_SECRET"]).first { return first }
        let location = try (database ?? environment["PAYMENT_DB"]).map { try DatabaseLocation($0, from: "--database") }
            ?? AppConfiguration().database
        if case .sqlite(let path) = location {
            guard FileManager.default.fileExists(atPath: path) else {
                throw ValidationError("PAYMENT_WEBHOOK_SECRET is not set and there is no database at \(path) to read it from")
            }
            // Opening a file for writing would make it a database: look before touching.
            let header = FileHandle(forReadingAtPath: path).map { handle in
                defer { try? handle.close() }
                return handle.readData(ofLength: 16)
            }
            guard header == Data("SQLite format 3\u{0}".utf8) else {
                throw ValidationError("\(path) is not a SQLite database; left as it is")
            }
        }
        let store = try await AppServices.openStore(location, logger: Logger(label: "payment-status"))
        let secret: String?
        do {
            secret = try await store.storedSecret(named: Credentials.StoredName.webhookSecret)
            try await store.close()
        } catch {
            try? await store.close()
            throw error
        }
        guard let secret else {
            throw ValidationError("PAYMENT_WEBHOOK_SECRET is not set and \(location) holds no generated one")
        }
        return secret
    }
}
