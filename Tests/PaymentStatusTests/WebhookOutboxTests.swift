import Foundation
import PostgresNIO
import Testing
@testable import PaymentStatus

/// The outbox on both stores: each committed event is one message per
/// enabled endpoint, written in the event's own transaction; claims respect
/// seq order per order and endpoint and the leases; retention keeps what
/// may still be needed.
@Suite("Webhook outbox, SQLite and PostgreSQL", .timeLimit(.minutes(2)))
struct WebhookOutboxTests {
    func withStore(_ kind: StoreKind, _ body: (any WebhookStore) async throws -> Void) async throws {
        try await PaymentStatusTests.withStore(kind) { store in try await body(store as! any WebhookStore) }
    }

    static func endpoint(_ url: String = "https://8.8.8.8/hooks") -> WebhookEndpoint {
        WebhookEndpoint(id: WebhookEndpoint.generateID(), url: url, description: nil, createdAt: .now(), secret: WebhookEndpoint.generateSecret())
    }

    static func draft(_ id: String) throws -> OrderDraft { try OrderDraft(id: id, amount: 700, currency: "EUR", metadata: ["k": "v"]) }

    static func claimAll(_ store: any WebhookStore, owner: String = "test", at now: Timestamp = .now()) async throws -> [OutboundMessage] {
        try await store.claimMessages(owner: owner, now: now, leaseUntil: now.adding(.seconds(30)), limit: 1000)
    }

    @Test(arguments: StoreKind.allCases)
    func everyEventOfEverySourceBecomesOneMessagePerEndpoint(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.createOrder(try Self.draft("before"), id: "before", at: .now())
            let a = Self.endpoint(), b = Self.endpoint()
            try await store.insertEndpoint(a)
            try await store.insertEndpoint(b)
            _ = try await store.createOrder(try Self.draft("o1"), id: "o1", at: .now())
            _ = try await store.apply(StatusChange(orderID: "o1", status: .processing, source: .api), at: .now())
            _ = try await store.apply(StatusChange(orderID: "o1", status: .succeeded, source: .webhook, eventID: "prov-1"), at: .now())
            // Nothing applied, nothing sent: a replay, a refused move, an unknown order.
            _ = try await store.apply(StatusChange(orderID: "o1", status: .succeeded, source: .webhook, eventID: "prov-1"), at: .now())
            _ = try await store.apply(StatusChange(orderID: "o1", status: .failed, source: .api), at: .now())
            _ = try await store.apply(StatusChange(orderID: "nope", status: .failed, source: .api), at: .now())
            _ = try await store.createOrder(try Self.draft("o1"), id: "o1", at: .now())

            for endpoint in [a, b] {
                let messages = try #require(try await store.messages(endpointID: endpoint.id, status: nil, limit: 100))
                #expect(messages.map(\.seq) == [3, 2, 1])
                #expect(messages.allSatisfy { $0.orderID == "o1" && $0.status == .pending && $0.attempts.isEmpty })
            }
            // One at a time per order: only seq 1 is due for each endpoint.
            let claimed = try await Self.claimAll(store)
            #expect(claimed.map(\.seq) == [1, 1])
            #expect(Set(claimed.map(\.endpointID)) == [a.id, b.id])
            let data = try JSON(claimed[0].data)
            #expect(data["event"]["seq"].int == 1 && data["event"]["status"].string == "initiated")
            #expect(data["order"]["status"].string == "initiated" && data["order"]["version"].int == 1)
            #expect(data["order"]["metadata"]["k"].string == "v" && data["order"]["amount"].int == 700)
            #expect(data["order"]["stream_token"].isNull && data["order"]["stream_url"].isNull)
            #expect(claimed[0].secrets.count == 1)
        }
    }

    /// The next seq of an order is claimed only once the earlier one is
    /// settled, delivered or failed for good; a retry waiting for its time
    /// still holds it back; a lease keeps others off until it ends.
    @Test(arguments: StoreKind.allCases)
    func claimsFollowSeqOrderAndLeases(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let endpoint = Self.endpoint()
            try await store.insertEndpoint(endpoint)
            _ = try await store.createOrder(try Self.draft("o1"), id: "o1", at: .now())
            _ = try await store.apply(StatusChange(orderID: "o1", status: .processing, source: .api), at: .now())
            _ = try await store.createOrder(try Self.draft("o2"), id: "o2", at: .now())
            let now = Timestamp.now()
            let first = try await Self.claimAll(store, owner: "a", at: now)
            #expect(first.map { "\($0.orderID)/\($0.seq)" }.sorted() == ["o1/1", "o2/1"])
            #expect(try await Self.claimAll(store, owner: "b", at: now).isEmpty, "a leased message was claimed again")
            // A lease that ended is taken over.
            let later = now.adding(.seconds(31))
            #expect(try await Self.claimAll(store, owner: "b", at: later).count == 2)

            let o1 = try #require(first.first { $0.orderID == "o1" })
            let failedAttempt = WebhookAttempt(at: later, statusCode: 500, error: nil, durationMilliseconds: 3)
            try await store.record(failedAttempt, of: o1, verdict: .retry(at: later.adding(.seconds(5))), owner: "b")
            #expect(try await Self.claimAll(store, owner: "c", at: later.adding(.seconds(1))).isEmpty, "seq 2 went before seq 1")
            let retried = try await Self.claimAll(store, owner: "c", at: later.adding(.seconds(6)))
            #expect(retried.map(\.seq) == [1] && retried[0].attemptCount == 1 && retried[0].id == o1.id)
            try await store.record(failedAttempt, of: retried[0], verdict: .failed, owner: "c")
            let next = try await Self.claimAll(store, owner: "c", at: later.adding(.seconds(7)))
            #expect(next.map { "\($0.orderID)/\($0.seq)" } == ["o1/2"], "a message failed for good still holds back the next")

            let messages = try #require(try await store.messages(endpointID: endpoint.id, status: .failed, limit: 10))
            #expect(messages.map(\.id) == [o1.id])
            #expect(messages[0].attempts.map(\.statusCode) == [500, 500])
            // A manual retry: one more attempt, then failed again.
            #expect(try await store.retryMessage(endpointID: endpoint.id, messageID: o1.id, now: later.adding(.seconds(8))))
            #expect(try await store.retryMessage(endpointID: endpoint.id, messageID: "msg_nope", now: later) == false)
            let again = try await Self.claimAll(store, owner: "c", at: later.adding(.seconds(9)))
            #expect(again.first { $0.id == o1.id }?.attemptsAllowed == 3)
            #expect(try await store.outboxBacklog().pending == 3)
        }
    }

    /// Listing merges the statuses newest first and stops at the limit; a
    /// status keeps only its own. Five orders made a millisecond apart, each
    /// with one message: o1 and o4 delivered, o2 failed, the rest pending.
    @Test(arguments: StoreKind.allCases)
    func messagesAreListedNewestFirstAcrossStatuses(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let endpoint = Self.endpoint()
            try await store.insertEndpoint(endpoint)
            let start = Timestamp.now()
            for index in 1...5 {
                _ = try await store.createOrder(try Self.draft("o\(index)"), id: "o\(index)", at: start.adding(.milliseconds(index)))
            }
            let claimed = try await Self.claimAll(store, at: start.adding(.seconds(1)))
            let attempt = WebhookAttempt(at: start, statusCode: 204, error: nil, durationMilliseconds: 1)
            for message in claimed {
                switch message.orderID {
                case "o1", "o4": try await store.record(attempt, of: message, verdict: .delivered, owner: "test")
                case "o2": try await store.record(attempt, of: message, verdict: .failed, owner: "test")
                default: break
                }
            }
            func listed(_ status: WebhookMessageStatus?, _ limit: Int) async throws -> [String] {
                try #require(try await store.messages(endpointID: endpoint.id, status: status, limit: limit)).map { "\($0.orderID) \($0.status)" }
            }
            #expect(try await listed(nil, 10) == ["o5 pending", "o4 delivered", "o3 pending", "o2 failed", "o1 delivered"])
            #expect(try await listed(nil, 3) == ["o5 pending", "o4 delivered", "o3 pending"])
            #expect(try await listed(nil, 2) == ["o5 pending", "o4 delivered"])
            #expect(try await listed(.delivered, 10) == ["o4 delivered", "o1 delivered"])
            #expect(try await listed(.delivered, 1) == ["o4 delivered"])
            #expect(try await listed(.failed, 10) == ["o2 failed"])
            #expect(try await listed(.pending, 10) == ["o5 pending", "o3 pending"])
        }
    }

    /// A message is written in its event's transaction: while the transition's
    /// transaction is open nobody sees its message, after the commit everyone
    /// does, and a rollback takes both away.
    @Test func onPostgreSQLTheMessageCommitsAndRollsBackWithItsEvent() async throws {
        let database = try await TestDatabase.make(.postgres)
        let store = try await database.migratedStore() as! PostgresStore
        guard case .postgres(let location) = database.location else { return }
        let connection = try await WebhookOutboxTests.connect(location)
        do {
            let endpoint = Self.endpoint()
            try await store.insertEndpoint(endpoint)
            _ = try await store.createOrder(try Self.draft("o1"), id: "o1", at: .now())
            for commit in [false, true] {
                _ = try await connection.query("BEGIN", logger: TestService.logger).collect()
                let outcome = try await store.apply(StatusChange(orderID: "o1", status: .processing, source: .api), at: .now(), on: connection)
                guard case .applied = outcome else { throw TestFailure("not applied: \(outcome)") }
                let whileOpen = try await store.messages(endpointID: endpoint.id, status: nil, limit: 10)
                #expect(whileOpen?.map(\.seq) == [1], "a message of an uncommitted event is visible")
                _ = try await connection.query(commit ? "COMMIT" : "ROLLBACK", logger: TestService.logger).collect()
                let after = try await store.messages(endpointID: endpoint.id, status: nil, limit: 10)
                #expect(after?.map(\.seq) == (commit ? [2, 1] : [1]))
            }
            try await connection.close()
            try await store.close()
        } catch {
            try? await connection.close()
            try? await store.close()
            await database.remove()
            throw error
        }
        await database.remove()
    }

    static func connect(_ location: PostgresLocation) async throws -> PostgresConnection {
        try await PostgresConnection.connect(
            configuration: location.connectionConfiguration(applicationName: "webhook-outbox-tests"), id: 1, logger: TestService.logger)
    }

    /// Order retention leaves the outbox alone: a message carries its own
    /// payload, so what is still owed for a deleted order is still sent.
    @Test(arguments: StoreKind.allCases)
    func messagesOfAnOrderDeletedByRetentionAreStillSent(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let endpoint = Self.endpoint()
            try await store.insertEndpoint(endpoint)
            let old = Timestamp.now().adding(.seconds(-40 * 86_400))
            _ = try await store.createOrder(try Self.draft("gone"), id: "gone", at: old)
            _ = try await store.apply(StatusChange(orderID: "gone", status: .succeeded, source: .api), at: old)
            // A newer order holds the newest event, which SQLite's retention keeps.
            _ = try await store.createOrder(try Self.draft("fresh"), id: "fresh", at: .now())
            let pruning = try #require(store as? any PruningStore)
            let pruned = try await pruning.deleteFinishedOrders(finishedBefore: .now().adding(.seconds(-30 * 86_400)), limit: 10)
            #expect(pruned.orders == 1)
            #expect(try await store.order(id: "gone") == nil)
            let owed = try await Self.claimAll(store).filter { $0.orderID == "gone" }
            #expect(owed.map(\.seq) == [1])
            #expect(owed.first?.data.contains("\"gone\"") == true)
        }
    }

    /// Delivered and failed messages finished before the retention go, in
    /// batches; pending ones stay, whatever their age, as do recent failures;
    /// deleting an endpoint takes its messages.
    @Test(arguments: StoreKind.allCases)
    func retentionDeletesOldFinishedMessagesOnly(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let endpoint = Self.endpoint()
            try await store.insertEndpoint(endpoint)
            let old = Timestamp.now().adding(.seconds(-40 * 86_400))
            for id in ["a", "b", "c", "d", "e"] { _ = try await store.createOrder(try Self.draft(id), id: id, at: old) }
            let claimed = try await Self.claimAll(store, at: old)
            #expect(claimed.count == 5)
            let attempt = WebhookAttempt(at: old, statusCode: 204, error: nil, durationMilliseconds: 1)
            try await store.record(attempt, of: claimed[0], verdict: .delivered, owner: "test")
            try await store.record(attempt, of: claimed[1], verdict: .delivered, owner: "test")
            try await store.record(attempt, of: claimed[2], verdict: .failed, owner: "test")
            // Failed yesterday: still within the retention, so still recoverable.
            let recent = WebhookAttempt(at: .now().adding(.seconds(-86_400)), statusCode: 500, error: nil, durationMilliseconds: 1)
            try await store.record(recent, of: claimed[4], verdict: .failed, owner: "test")
            var settings = WebhookSettings()
            settings.retentionBatchSize = 1
            let retention = WebhookRetentionService(store: store, settings: settings, logger: TestService.logger)
            #expect(await retention.prune() == 3)
            let left = try #require(try await store.messages(endpointID: endpoint.id, status: nil, limit: 10))
            #expect(Set(left.map(\.id)) == [claimed[3].id, claimed[4].id])
            #expect(await retention.prune() == 0)
            #expect(try await store.deleteEndpoint(id: endpoint.id))
            #expect(try await store.messages(endpointID: endpoint.id, status: nil, limit: 10) == nil)
            #expect(try await store.outboxBacklog() == OutboxBacklog(pending: 0, oldestPendingCreatedAt: nil))
        }
    }
}
