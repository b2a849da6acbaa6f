import Foundation
import GRDB
import PostgresNIO
import Testing
@testable import PaymentStatus

extension FeedTests {
    /// The merchant's feed as each store gives it: paging, cursors, `has_more`,
    /// and the migration that brings existing events into it.
    @Suite("Event feed, SQLite and PostgreSQL", .timeLimit(.minutes(2)))
    struct FeedStoreTests {
        func withStore(_ kind: StoreKind, _ body: (any PaymentStore) async throws -> Void) async throws {
            try await TestDatabase.withMigratedStore(kind, body)
        }

        /// Reads the whole feed after `cursor` in pages of `limit`, checking each
        /// page's promises. On PostgreSQL, events wait while a transaction that
        /// began before theirs is open anywhere on the server, other tests'
        /// included: such a page says `held`, and is read again.
        static func readAll(_ store: any PaymentStore, after cursor: FeedCursor? = nil, limit: Int) async throws -> [FeedEvent] {
            var all: [FeedEvent] = []
            var cursor = cursor
            let deadline = ContinuousClock.now + .seconds(30)
            while true {
                let page = try await store.feed(after: cursor, limit: limit)
                #expect(page.events.count <= limit)
                if page.hasMore { #expect(page.events.count == limit, "has_more on a short page") }
                #expect(!(page.hasMore && page.held))
                all += page.events
                cursor = page.events.last?.cursor ?? cursor
                if page.held, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                    continue
                }
                if !page.hasMore { return all }
            }
        }

        /// A few orders moved in turn: creations and transitions interleaved.
        static func write(_ store: any PaymentStore, orders: Int) async throws -> [(String, Int)] {
            var committed: [(String, Int)] = []
            for index in 0..<orders {
                _ = try await store.createOrder(try OrderDraft(id: nil, amount: 5, currency: "EUR", metadata: nil), id: "o\(index)", at: .now())
                committed.append(("o\(index)", 1))
                if index > 0 {
                    _ = try await store.apply(StatusChange(orderID: "o\(index - 1)", status: .processing, source: .api), at: .now())
                    committed.append(("o\(index - 1)", 2))
                }
            }
            return committed
        }

        @Test(arguments: StoreKind.allCases)
        func pagesFollowCommitOrderAndCursorsResumeExactly(kind: StoreKind) async throws {
            try await withStore(kind) { store in
                let empty = try await store.feed(after: nil, limit: 100)
                #expect(empty.events.isEmpty && !empty.hasMore)

                let committed = try await Self.write(store, orders: 7)  // 13 events
                _ = try await Self.readAll(store, limit: 1000)  // none held any more (see readAll)
                let whole = try await store.feed(after: nil, limit: 1000)
                #expect(!whole.hasMore && !whole.held)
                #expect(whole.events.map { "\($0.event.orderID)/\($0.event.seq)" } == committed.map { "\($0.0)/\($0.1)" })
                #expect(whole.events.map(\.cursor) == whole.events.map(\.cursor).sorted())
                #expect(Set(whole.events.map(\.cursor)).count == whole.events.count)

                for limit in [1, 2, 5, 13, 14] {
                    let paged = try await Self.readAll(store, limit: limit)
                    #expect(paged == whole.events, "pages of \(limit)")
                }
                let exact = try await store.feed(after: nil, limit: 13)
                #expect(exact.events.count == 13 && !exact.hasMore)
                let short = try await store.feed(after: nil, limit: 12)
                #expect(short.events.count == 12 && short.hasMore)

                // From any cursor: exactly what follows it, also after a round trip through its text.
                for (index, item) in whole.events.enumerated() {
                    let again = try FeedCursor(parsing: item.cursor.description)
                    #expect(again == item.cursor)
                    #expect(try await Self.readAll(store, after: again, limit: 4) == Array(whole.events[(index + 1)...]))
                }
                // Past the end: nothing, and nothing more.
                let last = try #require(whole.events.last).cursor
                let after = try await store.feed(after: last, limit: 10)
                #expect(after.events.isEmpty && !after.hasMore)

                // What commits later follows.
                _ = try await store.apply(StatusChange(orderID: "o6", status: .succeeded, source: .webhook, eventID: "w"), at: .now())
                let next = FeedPage(events: try await Self.readAll(store, after: last, limit: 10), hasMore: false)
                #expect(next.events.map { "\($0.event.orderID)/\($0.event.seq)" } == ["o6/2"])
                #expect(next.events.first?.event.eventID == "w" && next.events.first?.event.source == .webhook)
                // A refused or replayed change adds nothing.
                _ = try await store.apply(StatusChange(orderID: "o6", status: .succeeded, source: .webhook, eventID: "w"), at: .now())
                _ = try await store.apply(StatusChange(orderID: "o6", status: .processing, source: .api), at: .now())
                #expect(try await Self.readAll(store, after: next.events.last?.cursor, limit: 10).isEmpty)
            }
        }

        @Test(arguments: StoreKind.allCases)
        func eachOrdersEventsComeInSeqOrderUnderConcurrentWrites(kind: StoreKind) async throws {
            try await withStore(kind) { store in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<12 {
                        group.addTask {
                            let id = "c\(index)"
                            _ = try await store.createOrder(try OrderDraft(id: nil, amount: 5, currency: "EUR", metadata: nil), id: id, at: .now())
                            _ = try await store.apply(StatusChange(orderID: id, status: .processing, source: .api), at: .now())
                            _ = try await store.apply(StatusChange(orderID: id, status: .succeeded, source: .api), at: .now())
                        }
                    }
                    try await group.waitForAll()
                }
                let all = try await Self.readAll(store, limit: 7)
                #expect(all.count == 36)
                for index in 0..<12 {
                    #expect(all.filter { $0.event.orderID == "c\(index)" }.map(\.event.seq) == [1, 2, 3])
                }
            }
        }

        @Test func cursorsHaveOneSpelling() throws {
            #expect(try FeedCursor(parsing: "0-17") == FeedCursor(transaction: 0, position: 17))
            #expect(try FeedCursor(parsing: "18446744073709551615-9223372036854775807")
                == FeedCursor(transaction: .max, position: .max))
            #expect(FeedCursor(transaction: 731, position: 5).description == "731-5")
            for bad in ["", "-", "17", "0-", "-17", "00-1", "0-01", "0-1-2", "0--1", "+0-1", "0-+1", "a-1", "0-1a", " 0-1",
                        "0_1", "18446744073709551616-1", "0-9223372036854775808", "٣-1", "0-１"] {
                #expect(throws: MalformedCursor.self, "'\(bad)'") { try FeedCursor(parsing: bad) }
            }
            #expect(FeedCursor(transaction: 1, position: 0) > FeedCursor(transaction: 0, position: .max))
        }

        @Test func sqliteRefusesACursorOfAnotherStore() async throws {
            try await withStore(.sqlite) { store in
                await #expect(throws: MalformedCursor.self) {
                    try await store.feed(after: FeedCursor(transaction: 900, position: 1), limit: 10)
                }
            }
        }

        /// Events stored before the feed existed enter it, in the order their
        /// times tell (each order in seq order even where its clock went back),
        /// and later events follow them.
        @Test(arguments: StoreKind.allCases)
        func theMigrationBringsExistingEventsIntoTheFeed(kind: StoreKind) async throws {
            let database = try await TestDatabase.make(kind)
            do {
                try await migrateWithHistory(database)
            } catch {
                await database.remove()
                throw error
            }
            await database.remove()
        }

        func migrateWithHistory(_ database: TestDatabase) async throws {
            let first = database.folder + "/first"
            try FileManager.default.createDirectory(atPath: first + "/postgres", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: TestService.migrations + "/0001_orders_and_events.sql", toPath: first + "/0001_orders_and_events.sql")
            try FileManager.default.copyItem(
                atPath: TestService.migrations + "/postgres/0001_orders_and_events.sql", toPath: first + "/postgres/0001_orders_and_events.sql")
            // The history as the first schema stored it: b1 at 100, a1 at 200, a2 at 150 (the clock stepped back), c1 at 300, b2 at 400.
            let history = """
                INSERT INTO orders (id, status, amount, currency, metadata, version, created_at, updated_at) VALUES
                    ('a', 'processing', 5, 'EUR', '{}', 2, 200, 150), ('b', 'succeeded', 5, 'EUR', '{}', 2, 100, 400),
                    ('c', 'initiated', 5, 'EUR', '{}', 1, 300, 300);
                INSERT INTO events (order_id, seq, status, previous, source, at) VALUES
                    ('a', 1, 'initiated', NULL, 'api', 200), ('a', 2, 'processing', 'initiated', 'api', 150),
                    ('b', 1, 'initiated', NULL, 'api', 100), ('b', 2, 'succeeded', 'initiated', 'webhook', 400),
                    ('c', 1, 'initiated', NULL, 'api', 300)
                """
            let store = try await database.store()
            #expect(try await store.migrate(migrations: first) == ["0001_orders_and_events.sql"])
            switch store {
            case let sqlite as SQLiteStore:
                try await sqlite.dbWriter.write { try $0.execute(sql: history) }
            case let postgres as PostgresStore:
                for statement in SQLScript.statements(history) {
                    _ = try await postgres.client.query(PostgresQuery(unsafeSQL: statement), logger: TestService.logger).collect()
                }
            default:
                Issue.record("unknown store")
            }
            #expect(try await store.migrate(migrations: TestService.migrations).contains("0002_event_feed.sql"))
            _ = try await store.apply(StatusChange(orderID: "c", status: .failed, source: .api), at: .now())
            let all = try await Self.readAll(store, limit: 2)
            #expect(all.map { "\($0.event.orderID)/\($0.event.seq)" } == ["b/1", "a/1", "a/2", "c/1", "b/2", "c/2"])
            #expect(all[4].event.source == .webhook && all[1].event.at == Timestamp(millisecondsSince1970: 200))
            try await store.close()
        }

        /// A feed subscription hears every order's events (as cues to read), is
        /// watched for the relay's sake, and is no order for the relay's catch-up.
        @Test func theHubHandsEveryOrdersEventsToFeedSubscriptions() {
            let hub = StreamHub()
            let (feed, order) = (RecordingSink(), RecordingSink())
            let registration = hub.subscribe(orderID: StreamHub.allOrders, sink: feed)
            _ = hub.subscribe(orderID: "a", sink: order)
            #expect(hub.isWatching("b"))
            hub.publish(StreamHubTests.event("a", 2))
            hub.publish(StreamHubTests.event("b", 5))
            #expect(feed.events.map(\.orderID) == ["a", "b"] && order.seqs == [2])
            #expect(hub.watermarks().map { $0.orderID } == ["a"])
            registration.cancel()
            #expect(!hub.isWatching("b") && hub.isWatching("a"))
            hub.closeAll()
            #expect(!feed.ended && order.ended)
        }
    }
}
