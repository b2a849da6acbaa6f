import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
@testable import PaymentStatus

@Suite("Router", .timeLimit(.minutes(2)))
struct RouterTests {
    /// Checks the RFC 9457 shape every error shares.
    static func expectProblem(_ response: TestResponse, _ status: HTTPResponse.Status, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(response.status == status, sourceLocation: sourceLocation)
        #expect(response.headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
        let json = try JSON(response.body)
        #expect(json["status"].int == status.code, sourceLocation: sourceLocation)
        #expect(json["type"].string != nil && json["title"].string != nil && json["detail"].string != nil, sourceLocation: sourceLocation)
    }

    @Test func merchantEndpointsNeedTheBearerToken() async throws {
        try await TestService().withRouter { client, _ in
            for headers: HTTPFields in [[:], [.authorization: "Bearer wrong"], [.authorization: "Basic dGVzdA=="], [.authorization: "Bearer"]] {
                try Self.expectProblem(try await client.post("/v1/orders", json: ["amount": 1, "currency": "EUR"], headers: headers), .unauthorized)
                try Self.expectProblem(try await client.get("/v1/orders/nope", headers: headers), .unauthorized)
                try Self.expectProblem(
                    try await client.post("/v1/orders/nope/transitions", json: ["status": "processing"], headers: headers), .unauthorized)
            }
            // The scheme is case-insensitive.
            let response = try await client.get("/v1/orders/nope", headers: [.authorization: "bearer \(TestService.apiToken)"])
            try Self.expectProblem(response, .notFound)
        }
    }

    @Test func createReturnsTheOrderWithItsStreamToken() async throws {
        try await TestService().withRouter { client, services in
            let response = try await client.post(
                "/v1/orders", json: ["id": "order-1", "amount": 1250, "currency": "EUR", "metadata": ["cart": "c-9"]])
            #expect(response.status == .created)
            #expect(response.headers[.contentType] == "application/json")
            let order = try JSON(response.body)
            #expect(order.keys == [
                "id", "status", "amount", "currency", "metadata", "version", "created_at", "updated_at",
                "stream_token", "stream_url", "stream_token_expires_at",
            ])
            #expect(order["id"].string == "order-1")
            #expect(order["status"].string == "initiated")
            #expect(order["amount"].int == 1250)
            #expect(order["currency"].string == "EUR")
            #expect(order["metadata"]["cart"].string == "c-9")
            #expect(order["version"].int == 1)
            #expect(order["created_at"].string.flatMap(Timestamp.init(rfc3339:)) != nil)
            #expect(order["created_at"].string?.hasSuffix("Z") == true)
            let token = try #require(order["stream_token"].string)
            #expect(services.credentials.checkStreamToken(Substring(token), forOrder: "order-1") == .valid)
            #expect(order["stream_url"].string == "/v1/orders/order-1/events?token=\(token)")

            // Same id, same terms: 200 and the same order.
            let retry = try await client.post("/v1/orders", json: ["id": "order-1", "amount": 1250, "currency": "EUR"])
            #expect(retry.status == .ok)
            #expect(retry.headers[.idempotentReplayed] == "true")
            #expect(try JSON(retry.body)["created_at"].string == order["created_at"].string)
            // Same id, other terms: 409.
            try Self.expectProblem(try await client.post("/v1/orders", json: ["id": "order-1", "amount": 1, "currency": "EUR"]), .conflict)
            try Self.expectProblem(try await client.post("/v1/orders", json: ["id": "order-1", "amount": 1250, "currency": "USD"]), .conflict)
        }
    }

    @Test func generatedIdsAreUniqueAndValid() async throws {
        try await TestService().withRouter { client, _ in
            var ids = Set<String>()
            for _ in 0..<20 {
                let order = try await client.createOrder()
                let id = try #require(order["id"].string)
                #expect(throws: Never.self) { try Identifier.validateOrderID(id) }
                ids.insert(id)
            }
            #expect(ids.count == 20)
            #expect(try await client.createOrder()["metadata"].keys.isEmpty)
        }
    }

    @Test("invalid fields are 422", arguments: [
        ["amount": 0, "currency": "EUR"],
        ["amount": -1, "currency": "EUR"],
        ["amount": 10.5, "currency": "EUR"],
        ["amount": "100", "currency": "EUR"],
        ["currency": "EUR"],
        ["amount": 100],
        ["amount": 100, "currency": "eur"],
        ["amount": 100, "currency": "EURO"],
        ["amount": 100, "currency": "EUR", "id": ""],
        ["amount": 100, "currency": "EUR", "id": "bad id"],
        ["amount": 100, "currency": "EUR", "id": String(repeating: "x", count: 65)],
        ["amount": 100, "currency": "EUR", "metadata": ["k": 1]],
        ["amount": 100, "currency": "EUR", "metadata": "text"],
        ["amount": 1e30, "currency": "EUR"],
    ] as [[String: any Sendable]])
    func createRejectsInvalidFields(_ body: [String: any Sendable]) async throws {
        try await TestService().withRouter { client, _ in
            try Self.expectProblem(try await client.post("/v1/orders", json: body), .unprocessableContent)
        }
    }

    @Test func malformedBodiesAre400AndOversizedAre413() async throws {
        try await TestService().withRouter { client, _ in
            for body in ["", "{", "not json", "[1,2]", "\"text\"", "null"] {
                let response = try await client.execute(uri: "/v1/orders", method: .post, headers: RouterTests.auth, body: ByteBuffer(string: body))
                try Self.expectProblem(response, .badRequest)
            }
            let big = "{\"amount\": 1, \"currency\": \"EUR\", \"metadata\": {\"k\": \"" + String(repeating: "x", count: 70_000) + "\"}}"
            let response = try await client.execute(uri: "/v1/orders", method: .post, headers: RouterTests.auth, body: ByteBuffer(string: big))
            try Self.expectProblem(response, .contentTooLarge)
            let transition = try await client.execute(
                uri: "/v1/orders/x/transitions", method: .post, headers: RouterTests.auth, body: ByteBuffer(string: big))
            try Self.expectProblem(transition, .contentTooLarge)
        }
    }

    static var auth: HTTPFields { [.authorization: "Bearer \(TestService.apiToken)"] }

    @Test func wrongMethodIs405WithAllowAndUnknownPathIs404() async throws {
        try await TestService().withRouter { client, _ in
            for (method, path, allow) in [
                (HTTPRequest.Method.get, "/v1/orders", "POST"), (.delete, "/v1/orders/x", "GET"), (.put, "/v1/orders/x", "GET"),
                (.get, "/v1/orders/x/transitions", "POST"), (.post, "/v1/orders/x/events", "GET"), (.post, "/healthz", "GET"),
                (.head, "/v1/orders/x", "GET"), (.trace, "/v1/orders", "POST"), (.get, "/v1/webhooks/payment-status", "POST"),
                (HTTPRequest.Method("QUERY")!, "/v1/orders", "POST"), (HTTPRequest.Method("PROPFIND")!, "/healthz", "GET"),
                (.options, "/v1/orders/x/events", "GET"), (.post, "/", "GET"),
            ] {
                let response = try await client.execute(uri: path, method: method, headers: Self.auth)
                try Self.expectProblem(response, .methodNotAllowed)
                #expect(response.headers[.allow] == allow)
            }
            try Self.expectProblem(try await client.get("/nothing/here"), .notFound)
            try Self.expectProblem(try await client.get("/v1/orders/x/y/z"), .notFound)
            // Without --demo the demo's routes do not exist: 404, not 405.
            try Self.expectProblem(try await client.post("/demo/orders", json: [:]), .notFound)
            try Self.expectProblem(try await client.execute(uri: "/demo/orders", method: .get, headers: [:]), .notFound)
        }
        try await TestService(configure: { $0.demo = true }).withRouter { client, _ in
            for (method, path, allow) in [
                (HTTPRequest.Method.get, "/demo/orders", "POST"), (.delete, "/demo/orders/x/provider", "POST"),
                (.post, "/client/payment-status.js", "GET"), (.get, "/v1/orders/x/stream-token", "POST"),
            ] {
                let response = try await client.execute(uri: path, method: method, headers: Self.auth)
                try Self.expectProblem(response, .methodNotAllowed)
                #expect(response.headers[.allow] == allow)
            }
        }
    }

    @Test func getReturnsTheOrderWithItsEventsOldestFirst() async throws {
        try await TestService().withRouter { client, _ in
            try await client.createOrder(id: "o1")
            try await client.transition("o1", to: "processing", reason: "3-D Secure passed")
            try await client.transition("o1", to: "succeeded", eventID: "evt-9")
            let response = try await client.get("/v1/orders/o1")
            #expect(response.status == .ok)
            let order = try JSON(response.body)
            #expect(order["status"].string == "succeeded")
            #expect(order["version"].int == 3)
            let events = order["events"].array
            #expect(events.map { $0["seq"].int } == [1, 2, 3])
            #expect(events.map { $0["status"].string } == ["initiated", "processing", "succeeded"])
            #expect(events.map { $0["previous"].string } == [nil, "initiated", "processing"])
            #expect(events[1]["reason"].string == "3-D Secure passed")
            #expect(events[2]["event_id"].string == "evt-9")
            #expect(events.allSatisfy { $0["source"].string == "api" && $0["order_id"].string == "o1" })
            #expect(events[0].keys == ["order_id", "seq", "status", "previous", "source", "event_id", "reason", "at"])
            try Self.expectProblem(try await client.get("/v1/orders/missing"), .notFound)
        }
    }

    @Test func transitionsFollowTheTableAndReplayEventIDs() async throws {
        try await TestService().withRouter { client, _ in
            try await client.createOrder(id: "o1")
            let first = try await client.transition("o1", to: "processing", eventID: "e-1")
            #expect(first.status == .ok)
            #expect(first.headers[.init("Idempotent-Replayed")!] == nil)
            let body = try JSON(first.body)
            #expect(body.keys == ["applied", "order", "event"])
            #expect(body["applied"].bool == true)
            #expect(body["order"]["status"].string == "processing" && body["order"]["version"].int == 2)
            #expect(body["event"]["seq"].int == 2 && body["event"]["event_id"].string == "e-1")

            try Self.expectProblem(try await client.transition("o1", to: "processing"), .conflict)
            try Self.expectProblem(try await client.transition("o1", to: "initiated"), .conflict)
            try Self.expectProblem(try await client.transition("o1", to: "refunded"), .unprocessableContent)
            try Self.expectProblem(try await client.transition("o1", to: "PROCESSING"), .unprocessableContent)
            try Self.expectProblem(try await client.post("/v1/orders/o1/transitions", json: [:]), .unprocessableContent)
            try Self.expectProblem(try await client.transition("o1", to: "succeeded", reason: "nul\u{0}inside"), .unprocessableContent)
            try Self.expectProblem(try await client.transition("o1", to: "succeeded", eventID: String(repeating: "e", count: 201)), .unprocessableContent)
            try Self.expectProblem(try await client.transition("missing", to: "processing"), .notFound)

            #expect(try await client.transition("o1", to: "succeeded").status == .ok)
            // Replaying e-1 after the order moved on: the original answer, nothing changes.
            let replay = try await client.transition("o1", to: "processing", eventID: "e-1")
            #expect(replay.status == .ok)
            #expect(replay.headers[.init("Idempotent-Replayed")!] == "true")
            let replayed = try JSON(replay.body)
            #expect(replayed["event"]["seq"].int == 2)
            #expect(replayed["order"]["status"].string == "processing" && replayed["order"]["version"].int == 2)
            #expect(try JSON(try await client.get("/v1/orders/o1").body)["version"].int == 3)

            for status in ["processing", "failed", "succeeded", "initiated"] {
                try Self.expectProblem(try await client.transition("o1", to: status), .conflict)
            }
        }
    }

    @Test func instantApprovalAndDecline() async throws {
        try await TestService().withRouter { client, _ in
            try await client.createOrder(id: "a")
            try await client.createOrder(id: "d")
            #expect(try await client.transition("a", to: "succeeded").status == .ok)
            #expect(try await client.transition("d", to: "failed").status == .ok)
        }
    }

    @Test func streamAuthentication() async throws {
        try await TestService().withRouter { client, services in
            try await client.createOrder(id: "o1")
            try await client.createOrder(id: "o2")
            let o1Token = services.credentials.streamToken(forOrder: "o1")
            // No credentials, a bad token, another order's token, a bad bearer: 401, even for unknown orders.
            for path in [
                "/v1/orders/o1/events", "/v1/orders/o1/events?token=nope", "/v1/orders/o2/events?token=\(o1Token)",
                "/v1/orders/missing/events", "/v1/orders/missing/events?token=\(o1Token)",
            ] {
                try Self.expectProblem(try await client.get(path, headers: [:]), .unauthorized)
            }
            try Self.expectProblem(try await client.get("/v1/orders/o1/events", headers: [.authorization: "Bearer nope"]), .unauthorized)
            // A valid token for an id that has no order yet: 404 only then.
            let ghostToken = services.credentials.streamToken(forOrder: "ghost")
            try Self.expectProblem(try await client.get("/v1/orders/ghost/events?token=\(ghostToken)", headers: [:]), .notFound)
            try Self.expectProblem(try await client.get("/v1/orders/ghost/events"), .notFound)
            try Self.expectProblem(try await client.get("/v1/orders/o1/events?token=\(o1Token)", headers: [.lastEventID: "abc"]), .badRequest)
            try Self.expectProblem(try await client.get("/v1/orders/o1/events?token=\(o1Token)", headers: [.lastEventID: "-1"]), .badRequest)
            let withBody = try await client.execute(
                uri: "/v1/orders/o1/events?token=\(o1Token)", method: .get, headers: [:], body: ByteBuffer(string: "{}"))
            try Self.expectProblem(withBody, .badRequest)
        }
    }

    @Test func aFinishedOrderStreamsItsStateThenEndsAndA204StopsReconnects() async throws {
        try await TestService().withRouter { client, services in
            try await client.createOrder(id: "o1")
            try await client.transition("o1", to: "processing")
            try await client.transition("o1", to: "failed", reason: "card declined")
            let token = services.credentials.streamToken(forOrder: "o1")

            let response = try await client.get("/v1/orders/o1/events?token=\(token)", headers: [:])
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/event-stream")
            #expect(response.headers[.cacheControl] == "no-cache")
            #expect(response.headers[.xAccelBuffering] == "no")
            var parser = SSEParser()
            let items = parser.feed(String(buffer: response.body))
            guard case .retry(let retry) = items.first else { Issue.record("no retry: first"); return }
            #expect((3000..<6000).contains(retry))
            guard case .event(let id, let name, let data) = items.last else { Issue.record("no event"); return }
            #expect(items.count == 2)  // no Last-Event-ID: only the current state
            #expect(id == "3" && name == "status")
            #expect(try JSON(data)["status"].string == "failed")

            // From a Last-Event-ID: the rest of the history, then the end.
            let resumed = try await client.get("/v1/orders/o1/events?token=\(token)&lastEventId=1", headers: [:])
            var resumedParser = SSEParser()
            let ids = resumedParser.feed(String(buffer: resumed.body)).compactMap { if case .event(let id, _, _) = $0 { id } else { nil } }
            #expect(ids == ["2", "3"])

            for headers: HTTPFields in [[.lastEventID: "3"], [.lastEventID: "7"]] {
                let done = try await client.get("/v1/orders/o1/events?token=\(token)", headers: headers)
                #expect(done.status == .noContent)
                #expect(done.body.readableBytes == 0)
            }
            #expect(try await client.get("/v1/orders/o1/events?token=\(token)&lastEventId=3", headers: [:]).status == .noContent)
            // The merchant's bearer token opens any stream.
            #expect(try await client.get("/v1/orders/o1/events", headers: [.lastEventID: "3"] + Self.auth).status == .noContent)
        }
    }

    @Test func healthAndReadiness() async throws {
        try await TestService().withRouter { client, _ in
            let health = try await client.get("/healthz", headers: [:])
            let ready = try await client.get("/readyz", headers: [:])
            #expect(health.status == .ok && ready.status == .ok)
        }
    }
}

extension HTTPFields {
    static func + (lhs: HTTPFields, rhs: HTTPFields) -> HTTPFields {
        var fields = lhs
        fields.append(contentsOf: rhs)
        return fields
    }
}
