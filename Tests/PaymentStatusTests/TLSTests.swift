import Foundation
import HTTPTypes
import NIOHTTP2
import Testing
@testable import PaymentStatus

/// The port with a certificate and key: HTTPS only, HTTP/2 and HTTP/1.1 by
/// ALPN, every route as over plain HTTP.
@Suite("HTTPS and HTTP/2", .timeLimit(.minutes(2)))
struct TLSTests {
    static let auth: HTTPFields = [.authorization: "Bearer \(TestService.apiToken)"]

    @Test func eachClientGetsTheProtocolItAsksForAndPlainHTTPIsRefused() async throws {
        let (service, certificate) = try TestService.https()
        try await service.withHTTPSServer { https, _ in
            let written = ["--output", "/dev/null", "--write-out", "%{http_version} %{http_code}"]
            let h2 = try await https.curl(["--insecure", "--http2"] + written, "/healthz")
            #expect(h2.status == 0 && h2.output == "2 200", "\(h2)")
            let h1 = try await https.curl(["--insecure", "--http1.1"] + written, "/healthz")
            #expect(h1.status == 0 && h1.output == "1.1 200", "\(h1)")
            // Checked against the certificate itself: it is the one presented, and it names 127.0.0.1.
            let verified = try await https.curl(["--cacert", certificate.certificate, "--http2"] + written, "/readyz")
            #expect(verified.status == 0 && verified.output == "2 200", "\(verified)")

            // Plain HTTP on the TLS port gets no HTTP answer, and the connection is closed.
            let plain = try await https.curl(written, "/healthz", scheme: "http")
            #expect(plain.status != 0 && !plain.output.contains("200"), "\(plain)")
            let raw = try await RawConnection.open(port: https.port)
            try await raw.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try await eventually(10, "the server to close the plain connection") { raw.isClosedByServer }
            #expect(!raw.text.contains("HTTP/1"))
        }
    }

    @Test func theWholeChainIsPresented() async throws {
        var service = try TestService()
        let (leaf, intermediate, root) = try TestCertificate.chained(in: service.folder, name: "chained")
        service.configuration.tlsCertificate = leaf.certificate
        service.configuration.tlsKey = leaf.key
        try await service.withHTTPSServer { https, _ in
            let connection = try await https.connect()
            defer { Task { await connection.close() } }
            let chain = try connection.peerCertificates.map { try $0.toDERBytes() }
            #expect(chain.count == 2, "the server sent \(chain.count) certificates")
            #expect(chain.first == leaf.leafDER && chain.last == intermediate.leafDER)
            // A client that trusts only the root accepts it: the intermediate is sent along.
            let verified = try await https.curl(
                ["--cacert", root.certificate, "--output", "/dev/null", "--write-out", "%{http_code}"], "/healthz")
            #expect(verified.status == 0 && verified.output == "200", "\(verified)")
        }
    }

    /// The idle timeout covers the handshake too: a connection that never
    /// completes it is closed, as a plain one that never sends a request is;
    /// and an HTTP/2 connection with no stream open, as an idle HTTP/1.1 one.
    @Test func aConnectionThatNeverCompletesTheHandshakeIsClosed() async throws {
        let (service, _) = try TestService.https { $0.idleTimeout = .seconds(2) }
        try await service.withHTTPSServer { https, services in
            try await https.client.createOrder(id: "o1")
            let opened = ContinuousClock.now
            let silent = try await RawConnection.open(port: https.port)
            // Half a ClientHello is no better.
            let partial = try await RawConnection.open(port: https.port)
            try await partial.send("\u{16}\u{03}\u{01}\u{02}\u{00}")
            // Closed here too when the server fails to, so that its shutdown does not wait on them.
            defer { Task { await silent.close(); await partial.close() } }
            try await eventually(10, "the server to close a connection that sent nothing") { silent.isClosedByServer }
            #expect(ContinuousClock.now - opened >= .milliseconds(1900))
            try await eventually(10, "the server to close a connection with half a handshake") { partial.isClosedByServer }
            // A completed handshake is not cut by it: a connection with a stream open stays.
            let connection = try await https.connect()
            let stream = try await connection.openStream(LiveStreamTests.path("o1", services))
            #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 1)
            try await Task.sleep(for: .milliseconds(2500))
            #expect(connection.isActive && !stream.isClosed)
            #expect(try await connection.request(.get, "/healthz").response.status == .ok)
            await connection.close()
            // Without a stream, an HTTP/2 connection is closed after the idle timeout.
            let idle = try await https.connect()
            try await eventually(10, "the server to close an idle HTTP/2 connection") { !idle.isActive }
        }
    }

    /// The same answers as over HTTP/1.1, on streams of one HTTP/2 connection.
    @Test func everyRouteAnswersOverHTTP2() async throws {
        let (service, _) = try TestService.https()
        try await service.withHTTPSServer { https, services in
            let h2 = try await https.connect()
            defer { Task { await h2.close() } }
            let json: HTTPFields = Self.auth + [.contentType: "application/json"]
            for path in ["/healthz", "/readyz", "/metrics", "/openapi.yaml"] {
                #expect(try await h2.request(.get, path).response.status == .ok, "\(path)")
            }
            let unauthorized = try await h2.request(.post, "/v1/orders", headers: [.contentType: "application/json"], body: #"{"amount":5,"currency":"EUR"}"#)
            #expect(unauthorized.response.status == .unauthorized)
            #expect(unauthorized.response.headerFields[.contentType] == "application/problem+json")

            let created = try await h2.request(.post, "/v1/orders", headers: json, body: #"{"id":"o1","amount":5,"currency":"EUR"}"#)
            #expect(created.response.status == .created)
            let order = try JSON(created.body)
            #expect(order["stream_url"].string?.hasPrefix("/v1/orders/o1/events?token=") == true)
            let replay = try await h2.request(.post, "/v1/orders", headers: json, body: #"{"id":"o1","amount":5,"currency":"EUR"}"#)
            #expect(replay.response.status == .ok)
            let conflict = try await h2.request(.post, "/v1/orders", headers: json, body: #"{"id":"o1","amount":6,"currency":"EUR"}"#)
            #expect(conflict.response.status == .conflict)

            let moved = try await h2.request(.post, "/v1/orders/o1/transitions", headers: json, body: #"{"status":"processing","event_id":"t1"}"#)
            #expect(moved.response.status == .ok)
            #expect(try JSON(moved.body)["applied"].bool == true)
            let again = try await h2.request(.post, "/v1/orders/o1/transitions", headers: json, body: #"{"status":"processing","event_id":"t1"}"#)
            #expect(again.response.status == .ok && again.response.headerFields[.idempotentReplayed] == "true")
            let unknownStatus = try await h2.request(.post, "/v1/orders/o1/transitions", headers: json, body: #"{"status":"refunded"}"#)
            #expect(unknownStatus.response.status == .unprocessableContent)

            let (signature, body) = try WebhookEndpointTests.signed(["event_id": "w1", "order_id": "o1", "status": "succeeded"])
            let webhook = try await h2.request(
                .post, "/v1/webhooks/payment-status", headers: signature + [.contentType: "application/json"], body: String(buffer: body))
            #expect(webhook.response.status == .ok)
            #expect(try JSON(webhook.body)["applied"].bool == true)
            let duplicate = try await h2.request(
                .post, "/v1/webhooks/payment-status", headers: signature + [.contentType: "application/json"], body: String(buffer: body))
            #expect(try JSON(duplicate.body)["reason"].string == "duplicate")

            let fetched = try await h2.request(.get, "/v1/orders/o1", headers: Self.auth)
            #expect(fetched.response.status == .ok)
            #expect(try JSON(fetched.body)["events"].array.map { $0["status"].string } == ["initiated", "processing", "succeeded"])
            #expect(try await h2.request(.get, "/v1/orders/nope", headers: Self.auth).response.status == .notFound)
            #expect(try await h2.request(.delete, "/v1/orders/o1", headers: Self.auth).response.status == .methodNotAllowed)
            let tooBig = try await h2.request(
                .post, "/v1/orders", headers: json, body: #"{"amount":5,"currency":"EUR","metadata":{"x":""# + String(repeating: "a", count: 70_000) + #""}}"#)
            #expect(tooBig.response.status == .contentTooLarge)

            // The stream's answers that end at once.
            let token = services.credentials.streamToken(forOrder: "o1")
            #expect(try await h2.request(.get, "/v1/orders/o1/events?token=wrong").response.status == .unauthorized)
            let finished = try await h2.request(.get, "/v1/orders/o1/events?token=\(token)", headers: [.lastEventID: "3"])
            #expect(finished.response.status == .noContent)
            let history = try await h2.request(.get, "/v1/orders/o1/events?token=\(token)", headers: [.lastEventID: "1"])
            #expect(history.response.headerFields[.contentType] == "text/event-stream")
            #expect(history.body.contains("id: 2\n") && history.body.contains("id: 3\n") && !history.body.contains("id: 1\n"))
            // The long-poll on the same URL, a fresh stream token, the browser client, the merchant's feed.
            let polled = try await h2.request(.get, "/v1/orders/o1/events?token=\(token)&after=1", headers: [.accept: "application/json"])
            #expect(polled.response.status == .ok)
            #expect(try JSON(polled.body)["final"].bool == true)
            #expect(try JSON(polled.body)["events"].array.map { $0["seq"].int } == [2, 3])
            let minted = try await h2.request(.post, "/v1/orders/o1/stream-token", headers: Self.auth)
            #expect(minted.response.status == .ok)
            #expect(try JSON(minted.body)["stream_token"].string != nil)
            let client = try await h2.request(.get, "/client/payment-status.js")
            #expect(client.response.status == .ok && client.body.contains("watchPayment"))
            let feed = try await h2.request(.get, "/v1/events", headers: Self.auth)
            #expect(feed.response.status == .ok)
            #expect(try JSON(feed.body)["events"].array.count == 3)
            let liveFeed = try await h2.openStream("/v1/events", headers: [("Authorization", "Bearer \(TestService.apiToken)")])
            #expect(try await liveFeed.head().headers["content-type"] == ["text/event-stream"])
            #expect(try await liveFeed.nextEvent() != nil)
            await liveFeed.cancel()
            // All of it on the one connection.
            #expect(h2.isActive)
        }
    }

    /// SETTINGS_MAX_CONCURRENT_STREAMS is 100 (see the README): a connection
    /// holds 100 open streams at once, and the next waits for one to end.
    @Test func aConnectionHoldsAHundredStreams() async throws {
        let (service, _) = try TestService.https()
        try await service.withHTTPSServer { https, services in
            try await https.client.createOrder(id: "held")
            try await https.client.createOrder(id: "ending")
            let connection = try await https.connect()
            defer { Task { await connection.close() } }
            try await eventually(10, "the server's SETTINGS") { connection.serverSettings[.maxConcurrentStreams] != nil }
            #expect(connection.serverSettings[.maxConcurrentStreams] == 100)

            let ending = try await connection.openStream(LiveStreamTests.path("ending", services))
            var held: [HTTP2Stream] = []
            for _ in 0..<99 { held.append(try await connection.openStream(LiveStreamTests.path("held", services))) }
            for stream in [ending] + held { #expect(try await stream.head().status == .ok) }
            try await eventually(10, "every stream to subscribe") { services.hub.openSubscriptions == 100 }

            // The 101st waits: the client may not open it while 100 are open.
            let waiting = try await connection.openStream(LiveStreamTests.path("held", services))
            await #expect(throws: TimedOut.self) { try await waiting.head(within: 1) }
            try await https.client.transition("ending", to: "succeeded")
            #expect(try await ending.readToEnd().ended)
            #expect(try await waiting.head().status == .ok)
            try await eventually(10, "the 101st to subscribe") { services.hub.openSubscriptions == 100 }
            for stream in held + [waiting] { await stream.cancel() }
        }
    }
}
