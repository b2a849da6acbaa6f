import Foundation
import HTTPTypes
import NIOCore
import HummingbirdTesting
import Testing
@testable import PaymentStatus

/// The long-poll of API.md ("The same URL long-polls…"), from outside: a
/// real server on a loopback port, on SQLite and on PostgreSQL.
@Suite("Long-poll", .timeLimit(.minutes(2)))
struct LongPollTests {
    @Test func acceptDecidesBetweenTheStreamAndTheLongPoll() {
        #expect(StreamResponseKind(accept: "application/json") == .longPoll)
        #expect(StreamResponseKind(accept: "text/event-stream;q=0.5, application/json") == .longPoll)
        #expect(StreamResponseKind(accept: "Application/JSON;q=0.9, text/event-stream;q=0.8") == .longPoll)
        // A tie, */*, no Accept, or JSON refused: the stream.
        #expect(StreamResponseKind(accept: "application/json, text/event-stream") == .eventStream)
        #expect(StreamResponseKind(accept: "*/*") == .eventStream)
        #expect(StreamResponseKind(accept: nil) == .eventStream)
        #expect(StreamResponseKind(accept: "application/json;q=0") == .eventStream)
        #expect(StreamResponseKind(accept: "application/*") == .eventStream)
        #expect(StreamResponseKind.namesEventStream("text/event-stream"))
        #expect(!StreamResponseKind.namesEventStream("*/*"))
    }

    @Test(arguments: StoreKind.allCases)
    func answersAtOnceWithWhatIsThereThenHoldsUntilTheNextCommit(store: StoreKind) async throws {
        try await TestService(store: store).withLiveServer { live, services in
            try await live.client.createOrder(id: "o1")
            try await live.client.transition("o1", to: "processing")
            // Without `after`: the newest event only, at once, as a stream would start.
            let first = try await live.once(Self.path("o1", services), method: .get, headers: Self.json)
            #expect(first.status == .ok)
            #expect(first.headers[.contentType] == "application/json")
            #expect(first.headers[.cacheControl] == "no-store")
            let body = try JSON(first.body)
            #expect(body.keys == ["order_id", "status", "version", "final", "events"])
            #expect(body["order_id"].string == "o1" && body["status"].string == "processing")
            #expect(body["version"].int == 2 && body["final"].bool == false)
            #expect(Self.seqs(body) == [2])
            // after=0: the whole history.
            let all = try JSON(try await live.once(Self.path("o1", services, "&after=0"), method: .get, headers: Self.json).body)
            #expect(Self.seqs(all) == [1, 2])
            #expect(all["events"][0].keys == ["order_id", "seq", "status", "previous", "source", "event_id", "reason", "at"])
            // Nothing after 2 yet: held until the transition commits.
            let started = ContinuousClock.now
            async let held = live.once(Self.path("o1", services, "&after=2&wait=20"), method: .get, headers: Self.json)
            try await eventually(10, "the long-poll to be held") { services.hub.openSubscriptions == 1 }
            try await live.client.transition("o1", to: "succeeded")
            let woken = try await held
            #expect(ContinuousClock.now - started < .seconds(15), "woken by the commit, not by its wait")
            let answer = try JSON(woken.body)
            #expect(Self.seqs(answer) == [3])
            #expect(answer["status"].string == "succeeded" && answer["version"].int == 3 && answer["final"].bool == true)
            try await eventually(10, "the held long-poll to leave the hub") { services.hub.openSubscriptions == 0 }
            // Final with nothing after `after`: answered at once, however long the wait.
            let done = try JSON(try await live.once(Self.path("o1", services, "&after=3&wait=30"), method: .get, headers: Self.json).body)
            #expect(Self.seqs(done) == [] && done["final"].bool == true && done["status"].string == "succeeded")
        }
    }

    @Test func aWaitThatRunsOutAnswersWithNoEvents() async throws {
        try await TestService().withLiveServer { live, services in
            try await live.client.createOrder(id: "o1")
            let started = ContinuousClock.now
            let response = try await live.once(Self.path("o1", services, "&after=1&wait=1"), method: .get, headers: Self.json)
            #expect(ContinuousClock.now - started >= .milliseconds(900))
            #expect(response.status == .ok && response.headers[.cacheControl] == "no-store")
            let body = try JSON(response.body)
            #expect(Self.seqs(body) == [] && body["status"].string == "initiated" && body["version"].int == 1)
            #expect(body["final"].bool == false)
            // wait=0 never holds.
            let now = try JSON(try await live.once(Self.path("o1", services, "&after=1&wait=0"), method: .get, headers: Self.json).body)
            #expect(Self.seqs(now) == [])
            #expect(services.hub.openSubscriptions == 0)
        }
    }

    @Test func aHeldLongPollCountsAsAnOpenStream() async throws {
        try await TestService(configure: { $0.maxStreams = 2 }).withLiveServer { live, services in
            try await live.client.createOrder(id: "o1")
            async let first = live.once(Self.path("o1", services, "&after=1&wait=10"), method: .get, headers: Self.json)
            async let second = live.once(Self.path("o1", services, "&after=1&wait=10"), method: .get, headers: Self.json)
            try await eventually(10, "two held long-polls") { services.hub.openSubscriptions == 2 }
            let metrics = String(buffer: try await live.once("/metrics", method: .get).body ?? ByteBuffer())
            #expect(metrics.contains("payment_status_open_streams 2"))
            // Over the cap: a long-poll gets 503, an EventSource the retry-only answer.
            let refused = try await live.client.get(Self.path("o1", services, "&after=1"), headers: Self.json)
            try RouterTests.expectProblem(refused, .serviceUnavailable)
            #expect(refused.headers[.retryAfter] != nil)
            let later = try await live.once(Self.path("o1", services), method: .get, headers: [.accept: "text/event-stream"])
            #expect(later.status == .ok && later.headers[.contentType] == "text/event-stream")
            let retryAfter = try #require(later.headers[.retryAfter].flatMap { Int($0) })
            let text = String(buffer: later.body ?? ByteBuffer())
            let retry = try #require(text.hasPrefix("retry: ") ? Int(text.dropFirst(7).prefix { $0.isNumber }) : nil)
            #expect((5000...15000).contains(retry) && text == "retry: \(retry)\n\n")
            #expect(retryAfter == retry / 1000)
            try await live.client.transition("o1", to: "failed")
            #expect(Self.seqs(try JSON(try await first.body)) == [2])
            #expect(Self.seqs(try JSON(try await second.body)) == [2])
        }
    }

    @Test func badQueriesAndCredentialsAreRefusedLikeTheStreams() async throws {
        try await TestService().withLiveServer { live, services in
            try await live.client.createOrder(id: "o1")
            for query in ["&after=-1", "&after=x", "&after=", "&after=1.5", "&wait=31", "&wait=-1", "&wait=abc", "&after=99999999999999999999"] {
                try RouterTests.expectProblem(try await live.client.get(Self.path("o1", services, query), headers: Self.json), .badRequest)
            }
            try RouterTests.expectProblem(
                try await live.client.get("/v1/orders/o1/events?token=forged&after=1", headers: Self.json), .unauthorized)
            try RouterTests.expectProblem(try await live.client.get("/v1/orders/o1/events", headers: Self.json), .unauthorized)
            // 404 only after a valid credential.
            try RouterTests.expectProblem(try await live.client.get(Self.path("ghost", services), headers: Self.json), .notFound)
            var bearer = Self.json
            bearer[.authorization] = "Bearer \(TestService.apiToken)"
            #expect(try await live.once("/v1/orders/o1/events?after=0", method: .get, headers: bearer).status == .ok)
            // An `after` beyond the order's version is treated as none: the current state.
            #expect(Self.seqs(try JSON(try await live.once(Self.path("o1", services, "&after=7"), method: .get, headers: Self.json).body)) == [1])
        }
    }

    @Test func crossOriginPagesGetCORSOnTheLongPoll() async throws {
        try await TestService(configure: { $0.corsOrigins = ["https://shop.example"] }).withLiveServer { live, services in
            try await live.client.createOrder(id: "o1")
            var headers = Self.json
            headers[.origin] = "https://shop.example"
            let response = try await live.once(Self.path("o1", services), method: .get, headers: headers)
            #expect(response.headers[.accessControlAllowOrigin] == "https://shop.example")
            headers[.origin] = "https://evil.example"
            #expect(try await live.once(Self.path("o1", services), method: .get, headers: headers).headers[.accessControlAllowOrigin] == nil)
        }
    }
}
