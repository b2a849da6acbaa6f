import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
@testable import PaymentStatus

@Suite("Webhook signatures")
struct WebhookSignatureTests {
    // Known answers computed independently (Python's hmac module).
    static let body = #"{"event_id":"evt_1","order_id":"order-42","status":"succeeded"}"#
    static let timestamp: Int64 = 1_764_052_492
    static let mac = "5aed48f3e9cfcb7cd9419d57a6555a9174ddb4a976cd7b8227562d5f8733c599"
    static let oldMac = "9ca440ecf519abc348a999202940cd12c09949bd4d189b4a0c428ef07f7083da"

    @Test func knownAnswers() {
        #expect(WebhookSignature.sign(body: Array(Self.body.utf8), timestamp: Self.timestamp, secret: "whsec_test") == Self.mac)
        #expect(WebhookSignature.sign(body: Array(Self.body.utf8), timestamp: Self.timestamp, secret: "whsec_old") == Self.oldMac)
        #expect(WebhookSignature.header(body: Array(Self.body.utf8), timestamp: Self.timestamp, secrets: ["whsec_test", "whsec_old"])
            == "t=\(Self.timestamp),v1=\(Self.mac),v1=\(Self.oldMac)")
    }

    /// The worked example in the README is this very vector.
    @Test func readmeExampleMatches() throws {
        let readme = try String(contentsOfFile: URL(fileURLWithPath: TestService.migrations).deletingLastPathComponent().appendingPathComponent("README.md").path, encoding: .utf8)
        #expect(readme.contains("secret:    whsec_test"))
        #expect(readme.contains("timestamp: \(Self.timestamp)"))
        #expect(readme.contains("body:      \(Self.body)"))
        #expect(readme.contains("Payment-Signature: t=\(Self.timestamp),v1=\(Self.mac)"))
    }

    @Test func verifiesWithinTheToleranceOnly() throws {
        let signature = try #require(WebhookSignature(header: "t=\(Self.timestamp),v1=\(Self.mac)"))
        let body = Array(Self.body.utf8)
        #expect(signature.verify(body: body, secrets: ["whsec_test"], now: Self.timestamp, tolerance: 300))
        #expect(signature.verify(body: body, secrets: ["whsec_test"], now: Self.timestamp + 300, tolerance: 300))
        #expect(signature.verify(body: body, secrets: ["whsec_test"], now: Self.timestamp - 300, tolerance: 300))
        #expect(!signature.verify(body: body, secrets: ["whsec_test"], now: Self.timestamp + 301, tolerance: 300))
        #expect(!signature.verify(body: body, secrets: ["whsec_test"], now: Self.timestamp - 301, tolerance: 300))
        #expect(!signature.verify(body: body + [0x20], secrets: ["whsec_test"], now: Self.timestamp, tolerance: 300))
        #expect(!signature.verify(body: body, secrets: ["other"], now: Self.timestamp, tolerance: 300))
        // Rotation: either secret configured, either signature sent.
        #expect(signature.verify(body: body, secrets: ["whsec_new", "whsec_test"], now: Self.timestamp, tolerance: 300))
        let both = try #require(WebhookSignature(header: "t=\(Self.timestamp),v1=\(String(repeating: "0", count: 64)),v1=\(Self.oldMac)"))
        #expect(both.verify(body: body, secrets: ["whsec_old"], now: Self.timestamp, tolerance: 300))
    }

    @Test func parsesTheHeaderStrictly() {
        let mac = Self.mac
        #expect(WebhookSignature(header: "t=1,v1=\(mac)")?.timestamp == 1)
        #expect(WebhookSignature(header: " t=1 , v1=\(mac.uppercased()) ")?.signatures.count == 1)
        #expect(WebhookSignature(header: "t=1,v0=abc,v1=\(mac)")?.signatures.count == 1)  // unknown schemes skipped
        for bad in ["", "t=1", "v1=\(mac)", "t=x,v1=\(mac)", "t=-1,v1=\(mac)", "t=1,v1=abc", "t=1,v1=\(mac.dropLast())z",
                    "t=1,t=2,v1=\(mac)", "t=1,v1", "garbage", "t=1;v1=\(mac)"] {
            #expect(WebhookSignature(header: bad) == nil, "\(bad)")
        }
    }
}

/// Over a real loopback socket against the real server.
@Suite("Webhook endpoint and CORS", .timeLimit(.minutes(2)))
struct WebhookEndpointTests {
    static func signed(_ body: [String: Any], secret: String = "test-webhook-secret", at offset: Int64 = 0) throws -> (HTTPFields, ByteBuffer) {
        let data = try JSONSerialization.data(withJSONObject: body)
        let now = Int64(Date().timeIntervalSince1970) + offset
        let header = WebhookSignature.header(body: Array(data), timestamp: now, secrets: [secret])
        return ([.init("Payment-Signature")!: header], ByteBuffer(bytes: data))
    }

    static func deliver(_ client: some TestClientProtocol, _ body: [String: Any], secret: String = "test-webhook-secret") async throws -> TestResponse {
        let (headers, buffer) = try signed(body, secret: secret)
        return try await client.execute(uri: "/v1/webhooks/payment-status", method: .post, headers: headers, body: buffer)
    }

    @Test func everyOutcome() async throws {
        try await TestService().withLiveServer { live, _ in
            let client = live.client
            try await client.createOrder(id: "o1")
            let applied = try await Self.deliver(client, ["event_id": "w1", "order_id": "o1", "status": "processing", "occurred_at": "2026-11-25T07:00:00Z"])
            #expect(applied.status == .ok)
            let body = try JSON(applied.body)
            #expect(body.keys == ["applied", "event"])
            #expect(body["applied"].bool == true)
            #expect(body["event"]["source"].string == "webhook" && body["event"]["event_id"].string == "w1")
            #expect(body["event"]["seq"].int == 2 && body["event"]["previous"].string == "initiated")

            let duplicate = try await Self.deliver(client, ["event_id": "w1", "order_id": "o1", "status": "processing"])
            #expect(duplicate.status == .ok)
            #expect(try JSON(duplicate.body)["applied"].bool == false && JSON(duplicate.body)["reason"].string == "duplicate")

            #expect(try JSON(try await Self.deliver(client, ["event_id": "w2", "order_id": "o1", "status": "succeeded"]).body)["applied"].bool == true)
            // Late: processing after succeeded.
            let stale = try await Self.deliver(client, ["event_id": "w0", "order_id": "o1", "status": "processing"])
            #expect(try stale.status == .ok && JSON(stale.body)["reason"].string == "stale")
            let staleSame = try await Self.deliver(client, ["event_id": "w3", "order_id": "o1", "status": "succeeded"])
            #expect(try JSON(staleSame.body)["reason"].string == "stale")
            // Contradicting: failed after succeeded.
            let conflict = try await Self.deliver(client, ["event_id": "w4", "order_id": "o1", "status": "failed"])
            #expect(try conflict.status == .ok && JSON(conflict.body).keys == ["applied", "reason"])
            #expect(try JSON(conflict.body)["reason"].string == "conflict")

            // Nothing of the refused ones was stored.
            let order = try JSON(try await client.get("/v1/orders/o1").body)
            #expect(order["status"].string == "succeeded" && order["version"].int == 3)
            #expect(order["events"].array.map { $0["source"].string } == ["api", "webhook", "webhook"])

            let unknown = try await Self.deliver(client, ["event_id": "w5", "order_id": "not-yet", "status": "processing"])
            try RouterTests.expectProblem(unknown, .notFound)
        }
    }

    @Test func badSignaturesAre401BeforeTheBodyIsRead() async throws {
        try await TestService().withLiveServer { live, _ in
            let client = live.client
            try await client.createOrder(id: "o1")
            let body: [String: Any] = ["event_id": "w1", "order_id": "o1", "status": "processing"]
            let uri = "/v1/webhooks/payment-status"
            // Missing header.
            let (_, buffer) = try Self.signed(body)
            try RouterTests.expectProblem(try await client.execute(uri: uri, method: .post, body: buffer), .unauthorized)
            // Wrong secret.
            try RouterTests.expectProblem(try await Self.deliver(client, body, secret: "wrong"), .unauthorized)
            // Tampered body.
            let (headers, _) = try Self.signed(body)
            let tampered = try JSONSerialization.data(withJSONObject: ["event_id": "w1", "order_id": "o1", "status": "succeeded"])
            try RouterTests.expectProblem(try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(bytes: tampered)), .unauthorized)
            // Expired and future timestamps (the exact boundary is unit-tested with a fixed
            // clock; here a second may tick between signing and checking).
            for offset: Int64 in [-310, 310, -86_400] {
                let (old, oldBody) = try Self.signed(body, at: offset)
                try RouterTests.expectProblem(try await client.execute(uri: uri, method: .post, headers: old, body: oldBody), .unauthorized)
            }
            // Garbage headers.
            for header in ["", "nonsense", "t=1", "v1=00"] {
                try RouterTests.expectProblem(
                    try await client.execute(uri: uri, method: .post, headers: [.init("Payment-Signature")!: header], body: buffer), .unauthorized)
            }
            // Even a malformed body is 401 first when unsigned.
            try RouterTests.expectProblem(try await client.execute(uri: uri, method: .post, body: ByteBuffer(string: "{")), .unauthorized)
            #expect(try JSON(try await client.get("/v1/orders/o1").body)["version"].int == 1)
        }
    }

    @Test func malformedSignedBodiesAre400() async throws {
        try await TestService().withLiveServer { live, _ in
            let client = live.client
            try await client.createOrder(id: "o1")
            for body: [String: Any] in [
                ["order_id": "o1", "status": "processing"],
                ["event_id": "w1", "status": "processing"],
                ["event_id": "w1", "order_id": "o1"],
                ["event_id": "w1", "order_id": "o1", "status": "refunded"],
                ["event_id": "w1", "order_id": "o1", "status": "processing", "occurred_at": "yesterday"],
                ["event_id": "", "order_id": "o1", "status": "processing"],
                ["event_id": 7, "order_id": "o1", "status": "processing"],
                ["event_id": "w1", "order_id": "bad id", "status": "processing"],
            ] {
                try RouterTests.expectProblem(try await Self.deliver(client, body), .badRequest)
            }
            let raw = ByteBuffer(string: "not json")
            let header = WebhookSignature.header(body: Array("not json".utf8), timestamp: Int64(Date().timeIntervalSince1970), secrets: ["test-webhook-secret"])
            try RouterTests.expectProblem(
                try await client.execute(uri: "/v1/webhooks/payment-status", method: .post, headers: [.init("Payment-Signature")!: header], body: raw),
                .badRequest)
        }
    }

    @Test func rotationAcceptsOldAndNewSecrets() async throws {
        try await TestService(configure: { $0.webhookSecrets = ["new-secret", "old-secret"] }).withLiveServer { live, _ in
            let client = live.client
            try await client.createOrder(id: "o1")
            #expect(try await Self.deliver(client, ["event_id": "a", "order_id": "o1", "status": "processing"], secret: "old-secret").status == .ok)
            #expect(try await Self.deliver(client, ["event_id": "b", "order_id": "o1", "status": "succeeded"], secret: "new-secret").status == .ok)
            try RouterTests.expectProblem(
                try await Self.deliver(client, ["event_id": "c", "order_id": "o1", "status": "failed"], secret: "test-webhook-secret"), .unauthorized)
        }
    }

    @Test func streamsReceiveWebhookDrivenEvents() async throws {
        try await TestService().withLiveServer { live, services in
            try await live.client.createOrder(id: "o1")
            let stream = try await live.openStream(LiveStreamTests.path("o1", services))
            #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 1)
            #expect(try await Self.deliver(live.client, ["event_id": "p1", "order_id": "o1", "status": "processing"]).status == .ok)
            #expect(try await Self.deliver(live.client, ["event_id": "p0", "order_id": "o1", "status": "initiated"]).status == .ok)  // stale
            #expect(try await Self.deliver(live.client, ["event_id": "p2", "order_id": "o1", "status": "succeeded"]).status == .ok)
            let transcript = try await stream.readToEnd()
            #expect(transcript.ended)
            let events = try transcript.events.map { try JSON($0.data) }
            #expect(events.map { $0["seq"].int } == [2, 3])
            #expect(events.map { $0["source"].string } == ["webhook", "webhook"])
            #expect(events.map { $0["event_id"].string } == ["p1", "p2"])
        }
    }

    @Test func corsAnswersTheConfiguredOriginsOnly() async throws {
        try await TestService(configure: { $0.corsOrigins = ["https://shop.example", "http://localhost:3000"] }).withLiveServer { live, services in
            let client = live.client
            try await client.createOrder(id: "o1")
            let token = services.credentials.streamToken(forOrder: "o1")
            let preflight: HTTPFields = [.origin: "https://shop.example", .accessControlRequestMethod: "POST", .accessControlRequestHeaders: "authorization,content-type"]
            for path in ["/v1/orders", "/v1/orders/o1", "/v1/orders/o1/transitions", "/v1/orders/o1/events"] {
                let allowed = try await live.once(path, method: .options, headers: preflight)
                #expect(allowed.status == .noContent)
                #expect(allowed.headers[.accessControlAllowOrigin] == "https://shop.example")
                #expect(allowed.headers[.accessControlAllowMethods]?.contains("POST") == true)
                #expect(allowed.headers[.accessControlAllowHeaders]?.lowercased().contains("authorization") == true)
                var evil = preflight
                evil[.origin] = "https://evil.example"
                let denied = try await live.once(path, method: .options, headers: evil)
                #expect(denied.headers[.accessControlAllowOrigin] == nil)
            }
            // Actual requests: the allowed origin is echoed, others get nothing.
            let get = try await live.once("/v1/orders/o1", method: .get, headers: RouterTests.auth + [.origin: "http://localhost:3000"])
            #expect(get.headers[.accessControlAllowOrigin] == "http://localhost:3000")
            #expect(get.headers[.vary]?.contains("Origin") == true)
            // (The order is made final first: in router tests a stream is read only once it ends.)
            try await client.transition("o1", to: "failed")
            let stream = try await live.once("/v1/orders/o1/events?token=\(token)", method: .get, headers: [.origin: "https://shop.example"])
            #expect(stream.status == .ok)
            #expect(stream.headers[.accessControlAllowOrigin] == "https://shop.example")
            let denied = try await live.once("/v1/orders/o1", method: .get, headers: RouterTests.auth + [.origin: "https://evil.example"])
            #expect(denied.headers[.accessControlAllowOrigin] == nil)
            // Errors carry CORS headers too, so the page can read them.
            let unauthorized = try await live.once("/v1/orders/o1", method: .get, headers: [.origin: "https://shop.example"])
            #expect(unauthorized.status == .unauthorized)
            #expect(unauthorized.headers[.accessControlAllowOrigin] == "https://shop.example")
            // Server-to-server endpoints are not for browsers.
            let webhook = try await live.once("/v1/webhooks/payment-status", method: .options, headers: preflight)
            #expect(webhook.headers[.accessControlAllowOrigin] == nil)
        }
    }
}
