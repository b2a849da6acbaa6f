import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOHTTP1
import Testing
@testable import PaymentStatus

extension FeedTests {
    /// `GET /v1/events`: pages of JSON through the router, the live stream over
    /// a real loopback socket, on both stores.
    @Suite("Event feed over HTTP", .timeLimit(.minutes(2)))
    struct FeedHTTPTests {
        static let bearer = ("Authorization", "Bearer \(TestService.apiToken)")

        /// The feed after `after`, read through the API in pages of `limit`, until
        /// it holds at least `count` events. On PostgreSQL an event is handed out
        /// once every transaction that began before its own has ended, anywhere
        /// on the server (other tests' too), so it may take a moment.
        static func readAll(
            _ client: some TestClientProtocol, after: String? = nil, limit: Int = 1000, atLeast count: Int = 0
        ) async throws -> [JSON] {
            var all: [JSON] = []
            var cursor = after
            let deadline = ContinuousClock.now + .seconds(30)
            while true {
                let query = ["limit=\(limit)"] + (cursor.map { ["after=\($0)"] } ?? [])
                let response = try await client.get("/v1/events?" + query.joined(separator: "&"))
                guard response.status == .ok else { throw TestFailure("feed answered \(response.status): \(String(buffer: response.body))") }
                let page = try JSON(response.body)
                all += page["events"].array
                cursor = page["next_cursor"].string
                if page["has_more"].bool == true { continue }
                if all.count >= count || ContinuousClock.now > deadline { return all }
                try await Task.sleep(for: .milliseconds(10))
            }
        }

        static func key(_ item: JSON) -> String { "\(item["order_id"].string ?? "?")/\(item["seq"].int ?? -1)" }

        /// The next feed item on a stream, checked for its framing.
        static func nextItem(_ stream: SSEConnection, within seconds: Double = 20) async throws -> JSON {
            let event = try #require(try await stream.nextEvent(within: seconds), "the feed stream ended")
            let json = try JSON(event.data)
            #expect(event.name == "status")
            #expect(event.id != nil && event.id == json["cursor"].string)
            return json
        }

        @Test(arguments: StoreKind.allCases)
        func pagesCarryCursorsAndNextCursorFollowsTheRules(store: StoreKind) async throws {
            try await TestService(store: store).withRouter { client, _ in
                let empty = try await client.get("/v1/events")
                #expect(empty.status == .ok)
                #expect(empty.headers[.contentType] == "application/json")
                let emptyPage = try JSON(empty.body)
                #expect(emptyPage.keys == ["events", "next_cursor", "has_more"])
                #expect(emptyPage["events"].array.isEmpty && emptyPage["next_cursor"].isNull && emptyPage["has_more"].bool == false)

                try await client.createOrder(id: "o1")
                try await client.createOrder(id: "o2")
                try await client.transition("o1", to: "processing", eventID: "e1", reason: "sent")
                try await client.transition("o2", to: "failed")
                try await client.transition("o1", to: "succeeded")
                _ = try await Self.readAll(client, atLeast: 5)

                let first = try JSON(try await client.get("/v1/events?limit=2").body)
                #expect(first["events"].array.map(Self.key) == ["o1/1", "o2/1"])
                #expect(first["has_more"].bool == true)
                let item = first["events"][0]
                #expect(item.keys == ["order_id", "seq", "status", "previous", "source", "event_id", "reason", "at", "cursor"])
                #expect(first["next_cursor"].string == first["events"][1]["cursor"].string)

                let all = try await Self.readAll(client, limit: 2)
                #expect(all.map(Self.key) == ["o1/1", "o2/1", "o1/2", "o2/2", "o1/3"])
                #expect(all[2]["event_id"].string == "e1" && all[2]["reason"].string == "sent" && all[2]["previous"].string == "initiated")
                // The same event as GET /v1/orders/{id} shows it, plus its cursor.
                let order = try JSON(try await client.get("/v1/orders/o1").body)
                #expect(order["events"][1].keys.union(["cursor"]) == all[2].keys)
                #expect(order["events"][1]["at"].string == all[2]["at"].string)

                // After the last event: empty, and next_cursor is the cursor given.
                let last = try #require(all.last?["cursor"].string)
                let end = try JSON(try await client.get("/v1/events?after=\(last)").body)
                #expect(end["events"].array.isEmpty && end["next_cursor"].string == last && end["has_more"].bool == false)
                // Default limit 100, bounds 1 and 1000.
                for index in 0..<101 { try await client.createOrder(id: "bulk\(index)") }
                #expect(try await Self.readAll(client, atLeast: 106).count == 106)
                #expect(try JSON(try await client.get("/v1/events").body)["events"].array.count == 100)
                #expect(try JSON(try await client.get("/v1/events?limit=1").body)["events"].array.count == 1)
                #expect(try JSON(try await client.get("/v1/events?limit=1000").body)["events"].array.count == 106)
            }
        }

        @Test func malformedCursorsAndLimitsAre400AndTheFeedNeedsTheAPIToken() async throws {
            try await TestService().withRouter { client, _ in
                try await client.createOrder(id: "o1")
                for query in ["limit=0", "limit=1001", "limit=-1", "limit=abc", "limit=", "limit=1.5",
                              "after=abc", "after=12", "after=0-01", "after=-1-2", "after=1-2-3", "after=7-1"] {
                    let response = try await client.get("/v1/events?\(query)")
                    #expect(response.status == .badRequest, "\(query)")
                    #expect(response.headers[.contentType] == "application/problem+json", "\(query)")
                    #expect(try JSON(response.body)["type"].string == "urn:payment-status:problem:malformed-request", "\(query)")
                }
                let stream: HTTPFields = [.authorization: "Bearer \(TestService.apiToken)", .accept: "text/event-stream"]
                var badHeader = stream
                badHeader[.init("Last-Event-ID")!] = "nope"
                #expect(try await client.get("/v1/events", headers: badHeader).status == .badRequest)
                #expect(try await client.get("/v1/events?after=x", headers: stream).status == .badRequest)

                let anonymous = try await client.get("/v1/events", headers: [:])
                #expect(anonymous.status == .unauthorized && anonymous.headers[.wwwAuthenticate] == "Bearer")
                #expect(try await client.get("/v1/events", headers: [.authorization: "Bearer wrong"]).status == .unauthorized)
                let streamToken = try await client.get("/v1/orders/o1").body
                let token = try #require(try JSON(streamToken)["stream_token"].string)
                #expect(try await client.get("/v1/events?token=\(token)", headers: [:]).status == .unauthorized)

                let post = try await client.execute(uri: "/v1/events", method: .post, headers: [.authorization: "Bearer \(TestService.apiToken)"])
                #expect(post.status == .methodNotAllowed && post.headers[.allow] == "GET")
            }
        }

        /// A reader that resumes by `Last-Event-ID` while transitions commit gets
        /// exactly the feed after its cursor: no gap, no duplicate, same order.
        @Test(arguments: StoreKind.allCases)
        func aStreamResumedByLastEventIDWhileEventsCommitHasNoGapAndNoDuplicate(store: StoreKind) async throws {
            try await TestService(store: store).withLiveServer { live, services in
                for index in 0..<5 { try await live.client.createOrder(id: "before\(index)") }
                let resumeFrom = try #require(try await Self.readAll(live.client, atLeast: 5)[2]["cursor"].string)
                let writer = Task {
                    for index in 0..<40 {
                        try await live.client.createOrder(id: "during\(index)")
                        try await live.client.transition("during\(index)", to: "processing")
                        if index % 10 == 0 { try await live.client.transition("before\(index / 10)", to: "processing") }
                    }
                }
                // Opened while the writer runs: some of its events commit while the stream opens.
                try await Task.sleep(for: .milliseconds(30))
                let stream = try await live.openStream("/v1/events", headers: [Self.bearer, ("Last-Event-ID", resumeFrom)])
                let head = try await stream.head()
                #expect(head.status == .ok && head.headers["Content-Type"] == ["text/event-stream"])
                #expect(head.headers["Cache-Control"] == ["no-cache"] && head.headers["X-Accel-Buffering"] == ["no"])
                guard case .item(.retry(let retry)) = try await stream.next() else { Issue.record("no retry: first"); return }
                #expect(retry >= services.configuration.retryMilliseconds)
                try await writer.value
                let expected = try await Self.readAll(live.client, after: resumeFrom, atLeast: 86)
                #expect(expected.count == 2 + 80 + 4)
                var got: [JSON] = []
                while got.count < expected.count { got.append(try await Self.nextItem(stream)) }
                #expect(got.map { $0["cursor"].string } == expected.map { $0["cursor"].string })
                #expect(got.map(Self.key) == expected.map(Self.key))
                // And nothing more arrives until something commits.
                try await live.client.transition("during0", to: "succeeded")
                #expect(Self.key(try await Self.nextItem(stream)) == "during0/3")
                await stream.close()
            }
        }

        /// `?after=` resumes a stream too; terminal events do not end it; idle, it gets keep-alives.
        @Test(arguments: StoreKind.allCases)
        func theStreamGoesOnPastTerminalEventsAndKeepsAlive(store: StoreKind) async throws {
            try await TestService(store: store, heartbeat: .milliseconds(300)).withLiveServer { live, _ in
                try await live.client.createOrder(id: "o1")
                let after = try #require(try await Self.readAll(live.client, atLeast: 1).last?["cursor"].string)
                let stream = try await live.openStream("/v1/events?after=\(after)", headers: [Self.bearer])
                try await live.client.transition("o1", to: "failed")
                let failed = try await Self.nextItem(stream)
                #expect(Self.key(failed) == "o1/2" && failed["status"].string == "failed")
                // Still open after the terminal event: keep-alives come, then the next order's events.
                var comments = 0
                while comments < 2 {
                    guard let part = try await stream.next(within: 5) else { Issue.record("the stream ended"); return }
                    if case .item(.comment(let text)) = part, text == "keep-alive" { comments += 1 }
                    if case .item(.event) = part { Issue.record("an event nobody committed") }
                    if case .end = part { Issue.record("the stream ended after a terminal event"); return }
                }
                try await live.client.createOrder(id: "o2")
                try await live.client.transition("o2", to: "succeeded")
                #expect(Self.key(try await Self.nextItem(stream)) == "o2/1")
                #expect(Self.key(try await Self.nextItem(stream)) == "o2/2")
                await stream.close()
            }
        }

        /// At its lifetime the stream ends; resumed by `Last-Event-ID`, the reader loses nothing.
        @Test func aStreamEndsAtItsLifetimeAndResumesWhereItStopped() async throws {
            try await TestService(streamTimeout: .seconds(1)).withLiveServer { live, _ in
                try await live.client.createOrder(id: "o1")
                let stream = try await live.openStream("/v1/events", headers: [Self.bearer])
                let first = try await Self.nextItem(stream)
                let transcript = try await stream.readToEnd(within: 10)
                #expect(transcript.ended)
                try await live.client.transition("o1", to: "processing")
                #expect(transcript.events.isEmpty)  // nothing committed meanwhile
                let resumed = try await live.openStream("/v1/events", headers: [Self.bearer, ("Last-Event-ID", first["cursor"].string ?? "")])
                #expect(Self.key(try await Self.nextItem(resumed)) == "o1/2")
                await resumed.close()
            }
        }

        /// Without `Accept: text/event-stream` the same URL answers a page; the gauge counts open feed streams.
        @Test func theGaugeCountsOpenFeedStreams() async throws {
            try await TestService(heartbeat: .seconds(1)).withLiveServer { live, services in
                try await live.client.createOrder(id: "o1")
                let stream = try await live.openStream("/v1/events", headers: [Self.bearer])
                _ = try await Self.nextItem(stream)
                let during = String(buffer: try await live.client.get("/metrics", headers: [:]).body)
                #expect(ObservabilityTests.sample(during, "payment_status_open_feed_streams") == 1)
                #expect(ObservabilityTests.sample(during, "payment_status_open_streams") == 1)
                await stream.close()
                // The stream notices its client left at its next read (the idle poll,
                // every second) or, at the latest, when its next keep-alive cannot be written.
                try await eventually(30, "the feed stream to end") { services.hub.openSubscriptions == 0 }
                let after = String(buffer: try await live.client.get("/metrics", headers: [:]).body)
                #expect(ObservabilityTests.sample(after, "payment_status_open_feed_streams") == 0)
            }
        }

        /// A feed stream on instance A hears what is written on instance B, in feed order.
        @Test func aFeedStreamOnOneInstanceGetsWhatIsWrittenOnTheOther() async throws {
            try await ScaleOutTests.withTwoInstances { a, _, b, _ in
                let stream = try await a.openStream("/v1/events", headers: [Self.bearer])
                #expect(try await stream.head().status == .ok)
                for index in 0..<10 {
                    try await b.client.createOrder(id: "o\(index)")
                    try await b.client.transition("o\(index)", to: "processing")
                }
                let expected = try await Self.readAll(b.client, atLeast: 20)
                var got: [JSON] = []
                while got.count < expected.count { got.append(try await Self.nextItem(stream, within: 10)) }
                #expect(got.map { $0["cursor"].string } == expected.map { $0["cursor"].string })
                await stream.close()
            }
        }
    }
}
