import Foundation
import PostgresNIO
import Testing
@testable import PaymentStatus

/// PostgreSQL's group commit of status changes (`ChangeQueue`): changes that
/// arrive while a batch commits share the next transaction, an order appears
/// once per batch, and a change that fails in a batch fails alone.
@Suite("PostgreSQL group commit", .timeLimit(.minutes(2)))
struct PostgresGroupCommitTests {
    typealias Stores = FeedTests.FeedOrderingTests

    /// Holds `order`'s row lock on a connection of its own while `body`
    /// runs, so that a batch holding a change of that order waits for it;
    /// rolls back after.
    static func holdingLock(
        on order: String, _ location: PostgresLocation, _ body: (PostgresConnection) async throws -> Void
    ) async throws {
        let holder = try await Stores.connect(location, 300)
        _ = try await holder.query("BEGIN", logger: TestService.logger).collect()
        _ = try await holder.query("SELECT id FROM orders WHERE id = \(order) FOR UPDATE", logger: TestService.logger).collect()
        do {
            try await body(holder)
        } catch {
            try? await holder.close()
            throw error
        }
        _ = try await holder.query("ROLLBACK", logger: TestService.logger).collect()
        try await holder.close()
    }

    /// Waits until one of the store's connections waits for a row lock. Only
    /// the store's own database counts: the tests beside it share the server,
    /// and two batches waiting at once in two of them counted 2 here and
    /// held both tests until they timed out.
    static func untilABatchWaitsForALock(_ store: PostgresStore) async throws {
        try await eventually(10, "a batch waits for the held row lock") {
            let rows = try await store.client.query("""
                SELECT count(*) FROM pg_stat_activity
                WHERE application_name = 'payment-status' AND wait_event_type = 'Lock' AND datname = current_database()
                """, logger: TestService.logger).collect()
            return try rows.first?.decode(Int.self) == 1
        }
    }

    static func untilWaiting(_ store: PostgresStore, _ count: Int) async throws {
        try await eventually(10, "\(count) changes wait for a batch") { store.changes.counts.waiting == count }
    }

    static func processing(_ id: String, reason: String? = nil) -> StatusChange {
        StatusChange(orderID: id, status: .processing, source: .api, reason: reason)
    }

    /// While a batch waits behind a lock, eleven changes queue: the ten of
    /// distinct orders share the next transaction, and a second change of one
    /// of them waits for the one after, so each order still moves one
    /// transaction after another, in order.
    @Test func changesThatWaitMeanwhileShareOneTransactionEachOrderOnce() async throws {
        try await Stores.withTwoStores { store, _, location in
            let ids = (0...10).map { "o\($0)" }
            for id in ids { _ = try await store.createOrder(try Stores.draft(), id: id, at: .now()) }
            let submit: @Sendable (StatusChange) -> Task<(String, ChangeOutcome), any Error> = { change in
                Task { (change.orderID, try await store.apply(change, at: .now())) }
            }
            var submitted: [Task<(String, ChangeOutcome), any Error>] = []
            try await Self.holdingLock(on: "o0", location) { _ in
                submitted.append(submit(Self.processing("o0")))
                try await Self.untilABatchWaitsForALock(store)
                for id in ids.dropFirst() { submitted.append(submit(Self.processing(id))) }
                try await Self.untilWaiting(store, 10)
                submitted.append(submit(StatusChange(orderID: "o5", status: .succeeded, source: .api)))
                try await Self.untilWaiting(store, 11)
            }
            var outcomes: [String: [ChangeOutcome]] = [:]
            for task in submitted {
                let (id, outcome) = try await task.value
                outcomes[id, default: []].append(outcome)
            }
            let counts = store.changes.counts
            #expect(counts.transactions == 3 && counts.writes == 12, "\(counts)")
            for id in ids {
                guard case .applied = outcomes[id]?.first else { Issue.record("\(id): \(String(describing: outcomes[id]))"); continue }
            }
            let history = try #require(try await store.orderWithEvents(id: "o5"))
            #expect(history.1.map(\.status) == [.initiated, .processing, .succeeded] && history.0.version == 3)
            print("group commit on PostgreSQL: \(counts.writes) changes in \(counts.transactions) transactions")
        }
    }

    /// One change of a batch fails in the database (a trigger refuses it):
    /// the batch is rolled back and its changes tried again one per
    /// transaction, so the others are applied and only that one fails.
    @Test func aChangeThatFailsInItsBatchFailsAlone() async throws {
        try await Stores.withTwoStores { store, _, location in
            _ = try await store.client.query("""
                CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.reason = 'refuse me' THEN RAISE EXCEPTION 'refused on purpose'; END IF;
                    RETURN NEW;
                END $$
                """, logger: TestService.logger).collect()
            _ = try await store.client.query(
                "CREATE TRIGGER refuse_marked BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_marked()",
                logger: TestService.logger
            ).collect()
            let ids = (0...5).map { "o\($0)" }
            for id in ids { _ = try await store.createOrder(try Stores.draft(), id: id, at: .now()) }
            let submit: @Sendable (StatusChange) -> Task<(String, Result<ChangeOutcome, any Error>), Never> = { change in
                Task { (change.orderID, await Result { try await store.apply(change, at: .now()) }) }
            }
            var submitted: [Task<(String, Result<ChangeOutcome, any Error>), Never>] = []
            try await Self.holdingLock(on: "o0", location) { _ in
                submitted.append(submit(Self.processing("o0")))
                try await Self.untilABatchWaitsForALock(store)
                for id in ids.dropFirst() { submitted.append(submit(Self.processing(id, reason: id == "o3" ? "refuse me" : nil))) }
                try await Self.untilWaiting(store, 5)
            }
            var results: [String: Result<ChangeOutcome, any Error>] = [:]
            for task in submitted {
                let (id, result) = await task.value
                results[id] = result
            }
            for id in ids where id != "o3" {
                guard case .success(.applied) = results[id] else {
                    Issue.record("\(id) was not applied: \(String(describing: results[id]))"); continue
                }
            }
            guard case .failure = results["o3"] else {
                Issue.record("the refused change did not fail: \(String(describing: results["o3"]))"); return
            }
            #expect(try await store.order(id: "o3")?.version == 1)
            // o0's batch, then the four others one by one (the failed batch and the failed change commit nothing).
            let counts = store.changes.counts
            #expect(counts.transactions == 5 && counts.writes == 5, "\(counts)")
        }
    }

    /// The store's connections go dark mid-batch (through a relay that stops
    /// carrying bytes and tells neither end): the batch is answered
    /// `StoreUnavailable` once the answer timeout has passed, instead of
    /// waiting forever and holding every change queued behind it; those go
    /// on, on new connections, and nothing of the cut batch was kept.
    @Test func aBatchOnAConnectionThatWentDarkFailsAndTheQueueGoesOn() async throws {
        try await Self.withStoreBehindRelay { store, relay in
            for id in ["o1", "o2"] { _ = try await store.createOrder(try Stores.draft(), id: id, at: .now()) }
            relay.goDark()
            let stuck = Task { await Result { try await store.apply(Self.processing("o1"), at: .now()) } }
            try await eventually(10, "the first change's batch to be committing") {
                let counts = store.changes.counts
                return counts.draining && counts.waiting == 0
            }
            let behind = Task { await Result { try await store.apply(Self.processing("o2"), at: .now()) } }
            let cut = try await withTimeout(60, "the batch on the dark connection") { await stuck.value }
            guard case .failure(let error) = cut, error is StoreUnavailable else {
                Issue.record("the batch on the dark connection did not fail StoreUnavailable: \(cut)"); return
            }
            // Another pooled connection may have gone dark too: the change behind
            // fails the same way on it, or commits on a new one; it does not wait forever.
            let next = try await withTimeout(60, "the change queued behind") { await behind.value }
            if case .failure(let error) = next, !(error is StoreUnavailable) {
                Issue.record("the change queued behind failed otherwise: \(error)")
            }
            try await eventually(30, "a change to commit on a new connection") {
                if case .applied = try? await store.apply(Self.processing("o1", reason: "again"), at: .now()) { return true }
                return false
            }
            let events = try await store.events(orderID: "o1", after: 0, limit: 10)
            #expect(events.map(\.reason) == [nil, "again"], "the cut batch left nothing: \(events)")
        }
    }

    /// A migrated store on a fresh database whose connections pass through
    /// a `TCPRelay`, answering within 2 s.
    static func withStoreBehindRelay(_ body: (PostgresStore, TCPRelay) async throws -> Void) async throws {
        let database = try await TestDatabase.make(.postgres)
        guard case .postgres(let location) = database.location else { throw TestFailure("not PostgreSQL") }
        let relay = try await TCPRelay(to: location.host, port: location.port)
        var relayed = location
        relayed.port = relay.port
        let store = try await PostgresStore.open(
            relayed, instanceID: "relayed", logger: TestService.logger, answerTimeout: .seconds(2))
        try await database.closing(store) {
            try await store.migrate(migrations: TestService.migrations)
            try await body(store, relay)
        }
        await relay.stop()
    }

    /// A commit whose answer is lost (PostgreSQL gets the `COMMIT`, the
    /// service never hears back) fails the change `StoreUnavailable` while
    /// the event is in the database all the same. A stream watching the order
    /// on this instance still gets it: the order is read again, since
    /// neither the commit's return nor the relay (which skips this
    /// instance's own notices) brings it.
    @Test func aStreamGetsTheEventOfACommitWhoseAnswerWasLost() async throws {
        try await Self.withStoreBehindRelay { store, tcp in
            _ = try await store.createOrder(try Stores.draft(), id: "o1", at: .now())
            let hub = StreamHub()
            let relay = PostgresRelay(store: store, hub: hub, logger: TestService.logger)
            let service = OrderService(
                store: store, bus: hub, metrics: ServiceMetrics(), uncertain: { relay.recheck(orderID: $0) })
            let watching = RecordingSink()
            let registration = hub.subscribe(orderID: "o1", sink: watching, lifetime: nil)
            let relaying = Task { try await relay.run() }
            try await eventually(10, "the relay to listen") { relay.catchUpsDone > 0 }

            tcp.loseTheAnswerToTheNextCommit()
            let change = StatusChange(orderID: "o1", status: .succeeded, source: .api)
            let lost = await Result { try await service.apply(change) }
            guard case .failure(let error) = lost, error is StoreUnavailable else {
                Issue.record("the change whose answer was lost did not fail StoreUnavailable: \(lost)"); return
            }
            // The commit landed. (The first read after the cut may meet the
            // closed connection still in the pool and fail StoreUnavailable.)
            try await eventually(30, "the commit to be read") {
                (try? await store.events(orderID: "o1", after: 0, limit: 10))?.map(\.status) == [.initiated, .succeeded]
            }
            try await eventually(30, "the watching stream to get the succeeded event") {
                watching.events.contains { $0.status == .succeeded }
            }
            registration.cancel()
            relaying.cancel()
            _ = await relaying.result
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
