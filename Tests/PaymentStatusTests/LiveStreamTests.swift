import Foundation
import HummingbirdTesting
import NIOHTTP1
import Testing
@testable import PaymentStatus

/// The stream rules of API.md, over a real loopback socket against the real
/// server, on a real SQLite file and on PostgreSQL.
@Suite("Live streams", .timeLimit(.minutes(2)))
struct LiveStreamTests {
    @Test func eachStreamGetsARandomRetryFromTheSettingToTwiceIt() async throws {
        try await TestService(configure: { $0.retryMilliseconds = 1000 }).withLiveServer { live, services in
            try await live.client.createOrder(id: "o1")
            var retries: [Int] = []
            for _ in 0..<12 {
                let stream = try await live.openStream(Self.path("o1", services))
                #expect(try await stream.head().status == .ok)
                guard case .item(.retry(let retry)) = try await stream.next() else {
                    Issue.record("the stream must start with retry:"); return
                }
                retries.append(retry)
                await stream.close()
            }
            #expect(retries.allSatisfy { (1000..<2000).contains($0) }, "\(retries)")
            #expect(Set(retries).count > 1, "every stream got \(retries[0])")
        }
    }

    @Test(arguments: StoreKind.allCases)
    func currentStateFirstThenLiveEventsThenTheStreamEnds(store: StoreKind) async throws {
        try await TestService(store: store).withLiveServer { live, services in
            try await live.client.createOrder(id: "o1")
            try await live.client.transition("o1", to: "processing")
            let stream = try await live.openStream(Self.path("o1", services))
            let head = try await stream.head()
            #expect(head.status == .ok)
            #expect(head.headers["Content-Type"] == ["text/event-stream"])
            #expect(head.headers["Cache-Control"] == ["no-cache"])
            #expect(head.headers["X-Accel-Buffering"] == ["no"])
            guard case .item(.retry(let retry)) = try await stream.next() else {
                Issue.record("the stream must start with retry:"); return
            }
            #expect(retry > 0)
            let first = try #require(try await stream.nextEvent())
            #expect(try Self.seq(first) == 2)  // the newest event, not the whole history
            #expect(try JSON(first.data)["status"].string == "processing")

            try await live.client.transition("o1", to: "succeeded", eventID: "e-final", reason: "captured")
            let last = try #require(try await stream.nextEvent())
            #expect(try Self.seq(last) == 3)
            let json = try JSON(last.data)
            #expect(json["status"].string == "succeeded" && json["previous"].string == "processing")
            #expect(json["event_id"].string == "e-final" && json["reason"].string == "captured")
            let rest = try await stream.readToEnd()
            #expect(rest.ended && rest.events.isEmpty)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func lastEventIDReplaysTheHistoryThenGoesLive(store: StoreKind) async throws {
        try await TestService(store: store).withLiveServer { live, services in
            try await live.client.createOrder(id: "o1")
            try await live.client.transition("o1", to: "processing")
            for (headers, query) in [([("Last-Event-ID", "0")], ""), ([], "&lastEventId=0"), ([("Last-Event-ID", "0")], "&lastEventId=1")] {
                let stream = try await live.openStream(Self.path("o1", services, query: query), headers: headers)
                #expect(try Self.seq(try await stream.nextEvent()) == 1)
                #expect(try Self.seq(try await stream.nextEvent()) == 2)
                await stream.close()
            }
            let fromOne = try await live.openStream(Self.path("o1", services), headers: [("Last-Event-ID", "1")])
            #expect(try Self.seq(try await fromOne.nextEvent()) == 2)
            let fromTwo = try await live.openStream(Self.path("o1", services), headers: [("Last-Event-ID", "2")])
            _ = try await fromTwo.head()
            try await live.client.transition("o1", to: "failed")
            #expect(try Self.seq(try await fromOne.nextEvent()) == 3)
            #expect(try Self.seq(try await fromTwo.nextEvent()) == 3)
            #expect(try await fromOne.readToEnd().ended)
            #expect(try await fromTwo.readToEnd().ended)

            // An id the order never issued restarts from the current state instead of waiting for it.
            try await live.client.createOrder(id: "o2")
            let foreign = try await live.openStream(Self.path("o2", services), headers: [("Last-Event-ID", "99")])
            #expect(try Self.seq(try await foreign.nextEvent()) == 1)
            try await live.client.transition("o2", to: "succeeded")
            #expect(try Self.seq(try await foreign.nextEvent()) == 2)

            // Reconnecting at the terminal seq: 204, which stops a browser reconnecting.
            let done = try await live.openStream(Self.path("o1", services), headers: [("Last-Event-ID", "3")])
            #expect(try await done.head().status == .noContent)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func everyStreamOfAnOrderGetsEveryEvent(store: StoreKind) async throws {
        try await TestService(store: store).withLiveServer { live, services in
            try await live.client.createOrder(id: "o1")
            try await live.client.createOrder(id: "other")
            var streams: [SSEConnection] = []
            for _ in 0..<8 {
                let stream = try await live.openStream(Self.path("o1", services))
                #expect(try Self.seq(try await stream.nextEvent()) == 1)
                streams.append(stream)
            }
            let bearer = try await live.openStream("/v1/orders/o1/events", headers: [("Authorization", "Bearer \(TestService.apiToken)")])
            #expect(try Self.seq(try await bearer.nextEvent()) == 1)
            streams.append(bearer)
            try await live.client.transition("other", to: "processing")
            try await live.client.transition("o1", to: "processing")
            try await live.client.transition("o1", to: "succeeded")
            for stream in streams {
                let transcript = try await stream.readToEnd()
                #expect(transcript.ended)
                #expect(try transcript.events.map { try JSON($0.data)["seq"].int } == [2, 3])
                #expect(try transcript.events.allSatisfy { try JSON($0.data)["order_id"].string == "o1" })
            }
        }
    }

    @Test(arguments: StoreKind.allCases)
    func idleStreamsGetKeepAliveComments(store: StoreKind) async throws {
        try await TestService(store: store, heartbeat: .milliseconds(200)).withLiveServer { live, services in
            try await live.client.createOrder(id: "o1")
            let stream = try await live.openStream(Self.path("o1", services))
            #expect(try Self.seq(try await stream.nextEvent()) == 1)
            var comments = 0
            while comments < 3 {
                guard case .item(let item) = try await stream.next(within: 10) else { Issue.record("stream ended"); return }
                if case .comment(let text) = item {
                    #expect(text == "keep-alive")
                    comments += 1
                }
            }
            // Still live after the heartbeats.
            try await live.client.transition("o1", to: "succeeded")
            #expect(try Self.seq(try await stream.nextEvent()) == 2)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aStreamIsClosedAtItsMaximumLifetimeAndResumesWithoutLoss(store: StoreKind) async throws {
        // Long enough for the history to be read before the end even on a
        // loaded machine (a stream whose lifetime ends while it opens is
        // closed with nothing, and resumes the same way).
        try await TestService(store: store, streamTimeout: .seconds(2)).withLiveServer { live, services in
            try await live.client.createOrder(id: "o1")
            let stream = try await live.openStream(Self.path("o1", services))
            #expect(try Self.seq(try await stream.nextEvent()) == 1)
            let closed = try await stream.readToEnd(within: 10)
            #expect(closed.ended && closed.events.isEmpty)
            // While nobody watches, the payment moves on; the reconnect catches up.
            try await live.client.transition("o1", to: "processing")
            let resumed = try await live.openStream(Self.path("o1", services), headers: [("Last-Event-ID", "1")])
            #expect(try Self.seq(try await resumed.nextEvent()) == 2)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func streamsOpeningWhileTransitionsLandSeeEveryEventOnceInOrder(store: StoreKind) async throws {
        try await TestService(store: store).withLiveServer { live, services in
            let orders = (0..<30).map { "race-\($0)" }
            for order in orders { try await live.client.createOrder(id: order) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, order) in orders.enumerated() {
                    // The writer: two transitions with small random pauses.
                    group.addTask {
                        try await Task.sleep(for: .milliseconds(Int.random(in: 0...20)))
                        #expect(try await live.client.transition(order, to: "processing").status == .ok)
                        try await Task.sleep(for: .milliseconds(Int.random(in: 0...20)))
                        #expect(try await live.client.transition(order, to: index % 2 == 0 ? "succeeded" : "failed").status == .ok)
                    }
                    // Readers opening at random moments, with and without Last-Event-ID.
                    for reader in 0..<4 {
                        group.addTask {
                            try await Task.sleep(for: .milliseconds(Int.random(in: 0...30)))
                            let lastEventID: Int? = reader == 0 ? nil : Int.random(in: 0...1)
                            let stream = try await live.openStream(
                                Self.path(order, services), headers: lastEventID.map { [("Last-Event-ID", String($0))] } ?? [])
                            let head = try await stream.head()
                            if head.status == .noContent { return }  // opened after the end with nothing left to send
                            // Read part by part, so that a stream that does not end says what it had.
                            var seqs: [Int] = []
                            var ended = false
                            do {
                                while let part = try await stream.next(within: 20) {
                                    if case .item(.event(_, _, let data)) = part { seqs.append(try JSON(data)["seq"].int ?? -1) }
                                    if case .end = part { ended = true }
                                }
                            } catch is TimedOut {
                                let status = try await live.client.get("/v1/orders/\(order)")
                                Issue.record(
                                    "order \(order) from \(String(describing: lastEventID)): no end within 20 s after \(seqs); the order: \(String(buffer: status.body))")
                                return
                            }
                            #expect(ended)
                            let first = lastEventID.map { $0 + 1 } ?? seqs.first ?? 1
                            #expect(seqs == Array(first...3), "order \(order) from \(String(describing: lastEventID)) saw \(seqs)")
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aThousandDroppedStreamsLeaveTheHubEmpty(store: StoreKind) async throws {
        try await TestService(store: store).withLiveServer { live, services in
            try await live.client.createOrder(id: "o1")
            let path = Self.path("o1", services)
            for _ in 0..<10 {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<100 {
                        group.addTask {
                            let stream = try await live.openStream(path)
                            // Once the first event is here the stream is in the hub.
                            #expect(try Self.seq(try await stream.nextEvent()) == 1)
                            await stream.close()
                        }
                    }
                    try await group.waitForAll()
                }
            }
            try await eventually(30, "the hub to drop every closed stream") { services.hub.openSubscriptions == 0 }
            #expect(services.hub.openSubscriptions == 0)
            // And the order's stream still works afterwards.
            let stream = try await live.openStream(path)
            #expect(try Self.seq(try await stream.nextEvent()) == 1)
            #expect(services.hub.openSubscriptions == 1)
        }
    }
}
