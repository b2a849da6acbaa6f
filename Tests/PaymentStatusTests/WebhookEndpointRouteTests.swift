import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing
@testable import PaymentStatus

/// `/v1/webhook-endpoints…` through the router, on both stores: the
/// endpoint's life, its secret shown only twice, the URL rules, inspection
/// and replay answers. Deliveries themselves are tested against the binary
/// and a real receiver by scripts/webhook-test.
@Suite("Webhook endpoints", .timeLimit(.minutes(2)))
struct WebhookEndpointRouteTests {
    static let auth: HTTPFields = [.authorization: "Bearer \(TestService.apiToken)"]

    static let refusedURLs: [String] = [
        "http://example.com/hooks",  // plain http without PAYMENT_WEBHOOK_ALLOW_HTTP
        "ftp://example.com/hooks",
        "hooks.example.com/no-scheme",
        "https:///no-host",
        "https://user:password@example.com/hooks",
        "https://127.0.0.1/hooks",  // loopback
        "https://127.1/hooks",  // loopback, short form
        "https://2130706433/hooks",  // loopback, one number
        "https://0x7f000001/hooks",  // loopback, hex
        "https://localhost/hooks",  // a name that resolves to loopback
        "https://10.1.2.3/hooks",  // private
        "https://172.16.0.1/hooks",
        "https://192.168.1.1/hooks",
        "https://100.64.0.1/hooks",  // shared address space (CGNAT)
        "https://169.254.169.254/latest/meta-data",  // link-local: cloud metadata
        "https://0.0.0.0/hooks",  // unspecified
        "https://224.0.0.1/hooks",  // multicast
        "https://255.255.255.255/hooks",  // broadcast
        "https://240.0.0.1/hooks",  // reserved
        "https://192.0.2.10/hooks",  // documentation
        "https://[::1]/hooks",  // IPv6 loopback
        "https://[::]/hooks",  // IPv6 unspecified
        "https://[::ffff:127.0.0.1]/hooks",  // IPv4-mapped IPv6
        "https://[::ffff:8.8.8.8]/hooks",  // IPv4-mapped, even of a public address
        "https://[fe80::1]/hooks",  // link-local
        "https://[fc00::1]/hooks",  // unique-local
        "https://[fd12:3456::1]/hooks",
        "https://[ff02::1]/hooks",  // multicast
        "https://[64:ff9b::7f00:1]/hooks",  // NAT64 of 127.0.0.1
        "https://[2001:db8::1]/hooks",  // documentation
        "https://8.8.8.8:99999/hooks",  // port out of range
        "https://8.8.8.8/hooks#fragment",
        "https://8.8.8.8/hooks with space",
        "https://8.8.8.8/" + String(repeating: "a", count: 2100),
        "https://no-such-host.invalid/hooks",  // does not resolve
    ]

    static func register(_ client: some TestClientProtocol, _ url: String, description: String? = nil) async throws -> TestResponse {
        var body: [String: Any] = ["url": url]
        if let description { body["description"] = description }
        return try await client.post("/v1/webhook-endpoints", json: body)
    }

    @Test(arguments: StoreKind.allCases)
    func anEndpointIsCreatedListedReadRotatedAndDeleted(_ kind: StoreKind) async throws {
        try await TestService(store: kind).withRouter { client, _ in
            let created = try await Self.register(client, "https://8.8.8.8/hooks", description: "shipping")
            #expect(created.status == .created)
            let endpoint = try JSON(created.body)
            #expect(endpoint.keys == ["id", "url", "description", "status", "created_at", "secret"])
            #expect(endpoint["url"].string == "https://8.8.8.8/hooks")
            #expect(endpoint["description"].string == "shipping")
            #expect(endpoint["status"].string == "enabled")
            let secret = try #require(endpoint["secret"].string)
            #expect(secret.hasPrefix("whsec_"))
            let key = try #require(Data(base64Encoded: String(secret.dropFirst(6))))
            #expect((24...64).contains(key.count))
            let id = try #require(endpoint["id"].string)

            let listed = try JSON(try await client.get("/v1/webhook-endpoints").body)
            #expect(listed["endpoints"].array.map { $0["id"].string } == [id])
            #expect(listed["endpoints"][0]["secret"].isNull, "the list shows the secret")
            let read = try await client.get("/v1/webhook-endpoints/\(id)")
            #expect(read.status == .ok)
            #expect(try JSON(read.body).keys == ["id", "url", "description", "status", "created_at"])

            let rotated = try await client.post("/v1/webhook-endpoints/\(id)/rotate-secret", json: [:])
            #expect(rotated.status == .ok)
            let newSecret = try #require(try JSON(rotated.body)["secret"].string)
            #expect(newSecret.hasPrefix("whsec_") && newSecret != secret)

            let deleted = try await client.execute(uri: "/v1/webhook-endpoints/\(id)", method: .delete, headers: Self.auth)
            #expect(deleted.status == .noContent)
            for response in [
                try await client.get("/v1/webhook-endpoints/\(id)"),
                try await client.execute(uri: "/v1/webhook-endpoints/\(id)", method: .delete, headers: Self.auth),
                try await client.post("/v1/webhook-endpoints/\(id)/rotate-secret", json: [:]),
                try await client.get("/v1/webhook-endpoints/\(id)/messages"),
                try await client.post("/v1/webhook-endpoints/\(id)/recover", json: ["since": "2026-01-01T00:00:00Z"]),
            ] {
                try RouterTests.expectProblem(response, .notFound)
            }
        }
    }

    @Test func everyRefusedKindOfURLIs422() async throws {
        try await TestService().withRouter { client, _ in
            for url in Self.refusedURLs {
                let response = try await Self.register(client, url)
                try RouterTests.expectProblem(response, .unprocessableContent)
                let problem = try JSON(response.body)
                #expect(problem["field"].string == "url", "\(url)")
                #expect(problem["type"].string?.hasSuffix("webhook-url-refused") == true, "\(url): \(problem["detail"].string ?? "")")
            }
            #expect(try JSON(try await client.get("/v1/webhook-endpoints").body)["endpoints"].array.isEmpty)
        }
    }

    /// The two allow settings open exactly what they name.
    @Test func theAllowSettingsLetLocalURLsIn() async throws {
        let httpOnly = try TestService { $0.webhooks.policy.allowHTTP = true }
        try await httpOnly.withRouter { client, _ in
            #expect(try await Self.register(client, "http://8.8.8.8/hooks").status == .created)
            try RouterTests.expectProblem(try await Self.register(client, "http://127.0.0.1:9/hooks"), .unprocessableContent)
            try RouterTests.expectProblem(try await Self.register(client, "http://localhost:9/hooks"), .unprocessableContent)
        }
        let both = try TestService {
            $0.webhooks.policy.allowHTTP = true
            $0.webhooks.policy.allowPrivateNetworks = true
        }
        try await both.withRouter { client, _ in
            for url in ["http://127.0.0.1:9/hooks", "http://localhost:9/hooks", "https://[::1]:9/hooks", "https://10.0.0.1/hooks"] {
                #expect(try await Self.register(client, url).status == .created, "\(url)")
            }
            try RouterTests.expectProblem(try await Self.register(client, "ftp://127.0.0.1/hooks"), .unprocessableContent)
        }
    }

    @Test func badBodiesAndQueriesAre4xxProblems() async throws {
        try await TestService().withRouter { client, _ in
            let id = try #require(try JSON(try await Self.register(client, "https://8.8.8.8/hooks").body)["id"].string)
            try RouterTests.expectProblem(try await client.post("/v1/webhook-endpoints", json: [:]), .unprocessableContent)
            try RouterTests.expectProblem(try await client.post("/v1/webhook-endpoints", json: ["url": 5]), .unprocessableContent)
            try RouterTests.expectProblem(
                try await Self.register(client, "https://8.8.8.8/", description: String(repeating: "d", count: 600)), .unprocessableContent)
            try RouterTests.expectProblem(
                try await client.execute(uri: "/v1/webhook-endpoints", method: .post, headers: Self.auth, body: ByteBuffer(string: "{")),
                .badRequest)
            try RouterTests.expectProblem(try await client.get("/v1/webhook-endpoints/\(id)/messages?status=lost"), .badRequest)
            try RouterTests.expectProblem(try await client.get("/v1/webhook-endpoints/\(id)/messages?limit=0"), .badRequest)
            try RouterTests.expectProblem(
                try await client.post("/v1/webhook-endpoints/\(id)/recover", json: ["since": "yesterday"]), .unprocessableContent)
            try RouterTests.expectProblem(try await client.post("/v1/webhook-endpoints/\(id)/messages/msg_x/retry", json: [:]), .notFound)
            try RouterTests.expectProblem(
                try await client.execute(uri: "/v1/webhook-endpoints/\(id)", method: .put, headers: Self.auth), .methodNotAllowed)
            for headers: HTTPFields in [[:], [.authorization: "Bearer wrong"]] {
                try RouterTests.expectProblem(try await client.get("/v1/webhook-endpoints", headers: headers), .unauthorized)
                try RouterTests.expectProblem(
                    try await client.post("/v1/webhook-endpoints", json: ["url": "https://8.8.8.8/"], headers: headers), .unauthorized)
            }
        }
    }

    /// Messages as the merchant inspects them: one per event, newest first,
    /// filtered by status; `recover` counts what it queued.
    @Test(arguments: StoreKind.allCases)
    func messagesAreListedNewestFirstAndFilteredByStatus(_ kind: StoreKind) async throws {
        try await TestService(store: kind).withRouter { client, _ in
            let id = try #require(try JSON(try await Self.register(client, "https://8.8.8.8/hooks").body)["id"].string)
            let order = try #require(try await client.createOrder()["id"].string)
            try await client.transition(order, to: "processing")
            let all = try JSON(try await client.get("/v1/webhook-endpoints/\(id)/messages").body)["messages"].array
            #expect(all.map { $0["seq"].int } == [2, 1])
            #expect(all.allSatisfy { $0["order_id"].string == order })
            #expect(all[0].keys == ["id", "order_id", "seq", "status", "created_at", "next_attempt_at", "attempts"])
            for status in ["pending", "delivered", "failed"] {
                let listed = try await client.get("/v1/webhook-endpoints/\(id)/messages?status=\(status)")
                #expect(listed.status == .ok)
                let messages = try JSON(listed.body)["messages"].array
                #expect(messages.allSatisfy { $0["status"].string == status })
            }
            let recovered = try await client.post("/v1/webhook-endpoints/\(id)/recover", json: ["since": "2000-01-01T00:00:00Z"])
            #expect(recovered.status == .accepted)
            #expect(try JSON(recovered.body)["queued"].int == 0)
            let messageID = try #require(all[0]["id"].string)
            #expect(try await client.post("/v1/webhook-endpoints/\(id)/messages/\(messageID)/retry", json: [:]).status == .accepted)
        }
    }
}
