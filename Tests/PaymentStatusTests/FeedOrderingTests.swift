import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing
@testable import PaymentStatus

extension FeedTests {
    /// The feed on PostgreSQL with several writers, where transactions commit
    /// out of the order in which they took their ids: no reader may ever skip
    /// a committed event, nor see one twice, nor see an order's events out of
    /// `seq` order.
    @Suite("Event feed on PostgreSQL with several writers", .timeLimit(.minutes(3)))
    struct FeedOrderingTests {
        /// Two stores (two instances) on one fresh, migrated database.
        static func withTwoStores(_ body: (PostgresStore, PostgresStore, PostgresLocation) async throws -> Void) async throws {
            let database = try await TestDatabase.make(.postgres)
            guard case .postgres(let location) = database.location else { throw TestFailure("not PostgreSQL") }
            // Commits here need not wait for the disk (what is visible when, and so
            // the feed, is the same): the hundreds of commits of these tests would
            // otherwise crowd the fsyncs of the other suites on the shared server.
            try await TestPostgres.admin { connection in
                _ = try await connection.query(
                    "ALTER DATABASE \(unescaped: location.database) SET synchronous_commit = off", logger: TestService.logger
                ).collect()
            }
            let a = try await database.store(instanceID: "a") as! PostgresStore
            let b = try await database.store(instanceID: "b") as! PostgresStore
            do {
                try await a.migrate(migrations: TestService.migrations)
                try await body(a, b, location)
            } catch {
                try? await a.close()
                try? await b.close()
                await database.remove()
                throw error
            }
            try await a.close()
            try await b.close()
            await database.remove()
        }

        /// A connection of its own, outside the stores' pools, for transactions held open on purpose.
        static func connect(_ location: PostgresLocation, _ id: Int) async throws -> PostgresConnection {
            try await PostgresConnection.connect(
                configuration: location.connectionConfiguration(applicationName: "feed-tests-\(id)"), id: id, logger: TestService.logger)
        }

        /// Runs one transition of the store's own SQL in a transaction on `connection`, held open for `hold`, then commits or rolls back.
        static func heldTransition(
            _ store: PostgresStore, on connection: PostgresConnection, _ change: StatusChange, hold: Duration, commit: Bool
        ) async throws -> ChangeOutcome {
            _ = try await connection.query("BEGIN", logger: TestService.logger).collect()
            let outcome = try await store.apply(change, at: .now(), on: connection)
            try await Task.sleep(for: hold)
            _ = try await connection.query(commit ? "COMMIT" : "ROLLBACK", logger: TestService.logger).collect()
            return outcome
        }

        static func draft() throws -> OrderDraft { try OrderDraft(id: nil, amount: 5, currency: "EUR", metadata: nil) }

        /// Many small transactions from two instances, and on the side transitions
        /// whose transactions stay open 10–150 ms after their insert (a third of
        /// them rolled back), while a reader follows the cursors as fast as it
        /// can. It must get every committed event exactly once, each order in
        /// `seq` order, and nothing that was rolled back. A reader trusting a
        /// sequence alone (`id > cursor`) loses the events of the held
        /// transactions: it has passed their ids before they commit.
        @Test func aReaderAtFullSpeedGetsEveryEventOnceWhileTwoInstancesCommitOutOfOrder() async throws {
            try await Self.withTwoStores { a, b, location in
                let done = Flag()
                let reader = Task { () throws -> [FeedEvent] in
                    var seen: [FeedEvent] = []
                    var cursor: FeedCursor?
                    var idleAfterDone = 0
                    while idleAfterDone < 3 {
                        let finished = done.isSet
                        let page = try await a.feed(after: cursor, limit: 50)
                        seen += page.events
                        cursor = page.events.last?.cursor ?? cursor
                        if page.events.isEmpty && !page.held && finished { idleAfterDone += 1 }
                        // Nothing new: look again at once, barely pausing, so as not to crowd the shared test server.
                        if page.events.isEmpty { try await Task.sleep(for: .milliseconds(1)) }
                    }
                    return seen
                }
                let rolledBack = try await withThrowingTaskGroup(of: Set<String>.self) { group in
                    // Small transactions: 4 writers, 2 on each instance, each creating and settling 25 orders.
                    for writer in 0..<4 {
                        let store = writer % 2 == 0 ? a : b
                        group.addTask {
                            for index in 0..<25 {
                                let id = "w\(writer)-\(index)"
                                _ = try await store.createOrder(try Self.draft(), id: id, at: .now())
                                _ = try await store.apply(StatusChange(orderID: id, status: .processing, source: .api), at: .now())
                                _ = try await store.apply(
                                    StatusChange(orderID: id, status: index % 2 == 0 ? .succeeded : .failed, source: .webhook), at: .now())
                            }
                            return []
                        }
                    }
                    // Held transactions: 3 connections, each holding 12 transitions open after their insert.
                    for holder in 0..<3 {
                        group.addTask {
                            var rolledBack: Set<String> = []
                            let connection = try await Self.connect(location, 100 + holder)
                            for index in 0..<12 {
                                let id = "h\(holder)-\(index)"
                                _ = try await b.createOrder(try Self.draft(), id: id, at: .now())
                                let commit = index % 3 != 2
                                let outcome = try await Self.heldTransition(
                                    a, on: connection, StatusChange(orderID: id, status: .processing, source: .api),
                                    hold: .milliseconds(Int.random(in: 10...150)), commit: commit)
                                guard case .applied = outcome else { throw TestFailure("held transition on \(id): \(outcome)") }
                                if !commit { rolledBack.insert("\(id)/2") }
                            }
                            try await connection.close()
                            return rolledBack
                        }
                    }
                    return try await group.reduce(into: Set<String>()) { $0.formUnion($1) }
                }
                done.set()
                let seen = try await reader.value

                let stored = try await a.client.query("SELECT order_id, seq FROM events", logger: TestService.logger).collect()
                    .map { row in let (order, seq) = try row.decode((String, Int).self); return "\(order)/\(seq)" }
                let keys = seen.map { "\($0.event.orderID)/\($0.event.seq)" }
                // 4 writers × 25 orders × 3 events; 3 holders × 12 orders created, 8 of whose held transitions commit.
                let expectedCount: Int = 300 + 36 + 24
                #expect(stored.count == expectedCount)
                #expect(keys.count == Set(keys).count, "the reader saw \(keys.count - Set(keys).count) events twice")
                let missed = Set(stored).subtracting(keys)
                #expect(missed.isEmpty, "the reader missed \(missed.count) committed events: \(missed.sorted().prefix(10))")
                #expect(Set(keys).isSubset(of: Set(stored)))
                #expect(rolledBack.count == 12 && rolledBack.isDisjoint(with: keys))
                #expect(seen.map(\.cursor) == seen.map(\.cursor).sorted(), "cursors went back")
                var lastSeq: [String: Int] = [:]
                for item in seen {
                    #expect(item.event.seq == (lastSeq[item.event.orderID] ?? 0) + 1, "\(item.event.orderID) out of order")
                    lastSeq[item.event.orderID] = item.event.seq
                }
                // The reader's pages, read again from the start in one go, are the same feed.
                #expect(try await FeedStoreTests.readAll(b, limit: 1000) == seen)
                print("feed on PostgreSQL: \(seen.count) events read once each while 2 instances and 3 held transactions wrote")
            }
        }

        /// A transaction that took its id early, then waited behind another
        /// transition of the same order, commits with the lower id: the feed
        /// still gives the order's events in `seq` order, and holds back the
        /// later one while the early transaction is open.
        @Test func anOrdersEventsStayInSeqOrderWhenALaterTransitionHasAnOlderTransactionID() async throws {
            try await Self.withTwoStores { a, b, location in
                _ = try await a.createOrder(try Self.draft(), id: "o1", at: .now())
                let first = FeedPage(events: try await FeedStoreTests.readAll(a, limit: 10), hasMore: false)
                #expect(first.events.count == 1)
                let early = try await Self.connect(location, 200)
                _ = try await early.query("BEGIN", logger: TestService.logger).collect()
                _ = try await early.query("SELECT pg_current_xact_id()", logger: TestService.logger).collect()

                _ = try await b.apply(StatusChange(orderID: "o1", status: .processing, source: .api), at: .now())
                // Committed, but behind a transaction that is still open: held, not lost and not handed out.
                let waiting = try await a.feed(after: first.events.last?.cursor, limit: 10)
                #expect(waiting.events.isEmpty && waiting.held && !waiting.hasMore)

                guard case .applied = try await a.apply(StatusChange(orderID: "o1", status: .succeeded, source: .api), at: .now(), on: early) else {
                    Issue.record("the early transaction's transition was not applied"); return
                }
                _ = try await early.query("COMMIT", logger: TestService.logger).collect()
                try await early.close()
                let all = try await FeedStoreTests.readAll(a, limit: 10)
                #expect(all.map(\.event.seq) == [1, 2, 3])
                #expect(all.map(\.cursor) == all.map(\.cursor).sorted())
            }
        }

        /// Positions are the database's: whatever inserts an event gets one, and none can be changed.
        @Test func theDatabaseAssignsPositionsAndKeepsThem() async throws {
            try await Self.withTwoStores { a, _, _ in
                _ = try await a.createOrder(try Self.draft(), id: "o1", at: .now())
                _ = try await a.client.query("""
                    INSERT INTO events (order_id, seq, status, previous, source, at, feed_xid, feed_id)
                    VALUES ('o1', 2, 'processing', 'initiated', 'api', 1, '1', 1)
                    """, logger: TestService.logger).collect()
                let all = try await FeedStoreTests.readAll(a, limit: 10)
                try #require(all.map(\.event.seq) == [1, 2])
                #expect(all[1].cursor > all[0].cursor && all[1].cursor.transaction > 1)
                await #expect(throws: (any Error).self) {
                    _ = try await a.client.query("UPDATE events SET feed_id = 99 WHERE seq = 1", logger: TestService.logger).collect()
                }
            }
        }
    }
}

/// A flag set once by one task and read by others.
final class Flag: Sendable {
    private let value: Atomic<Bool>
    init(_ value: Bool = false) { self.value = Atomic(value) }
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
