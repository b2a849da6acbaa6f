import Foundation
import GRDB
import Logging
import PostgresNIO
import Testing
@testable import PaymentStatus

/// `PAYMENT_RETENTION_DAYS`: finished orders past the limit go, with their
/// events, in small batches; nothing else does.
@Suite("Retention", .timeLimit(.minutes(2)))
struct RetentionTests {
    static let day: Int64 = 86_400_000

    /// Stores orders in every state, at times spread around a 30-day limit.
    static func populate(_ store: any PaymentStore, now: Timestamp) async throws -> (expired: Set<String>, kept: Set<String>) {
        func at(_ daysAgo: Double) -> Timestamp {
            Timestamp(millisecondsSince1970: now.millisecondsSince1970 - Int64(daysAgo * Double(day)))
        }
        var expired: Set<String> = []
        var kept: Set<String> = []
        // (id, final status or nil, days since its last change)
        var plan: [(String, PaymentStatus?, Double)] = []
        for i in 0..<7 { plan.append(("old-succeeded-\(i)", .succeeded, 31 + Double(i))) }
        for i in 0..<4 { plan.append(("old-failed-\(i)", .failed, 45 + Double(i))) }
        plan.append(("just-past", .succeeded, 30.01))
        plan.append(("just-within", .failed, 29.99))
        plan.append(("recent", .succeeded, 1))
        plan.append(("old-processing", .processing, 90))
        plan.append(("old-initiated", nil, 90))
        for (id, status, daysAgo) in plan {
            let time = at(daysAgo)
            _ = try await store.createOrder(try OrderDraft(id: id, amount: 5, currency: "EUR", metadata: nil), id: id, at: time)
            switch status {
            case .succeeded?, .failed?:
                _ = try await store.apply(StatusChange(orderID: id, status: .processing, source: .api), at: time)
                _ = try await store.apply(StatusChange(orderID: id, status: status!, source: .webhook, eventID: "e-\(id)"), at: time)
                if daysAgo > 30 { expired.insert(id) } else { kept.insert(id) }
            case .processing?:
                _ = try await store.apply(StatusChange(orderID: id, status: .processing, source: .api), at: time)
                kept.insert(id)
            default:
                kept.insert(id)
            }
        }
        return (expired, kept)
    }

    @Test(arguments: StoreKind.allCases)
    func deletesExactlyTheFinishedOrdersPastTheLimitInBatches(kind: StoreKind) async throws {
        try await withStore(kind) { try await Self.checkPruning($0) }
    }

    static func checkPruning(_ store: any PaymentStore) async throws {
        let now = Timestamp.now()
        let (expired, kept) = try await Self.populate(store, now: now)
        let metrics = ServiceMetrics()
        let service = RetentionService(
            store: store as! any PruningStore, retention: .seconds(30 * 86_400), interval: .seconds(3600), batchSize: 3,
            metrics: metrics, logger: TestService.logger)

        let pruned = await service.prune(now: now)
        #expect(pruned == PrunedOrders(orders: expired.count, events: expired.count * 3))
        for id in expired {
            #expect(try await store.order(id: id) == nil, "\(id) should be gone")
            #expect(try await store.events(orderID: id, after: 0, limit: 10).isEmpty, "\(id)'s events should be gone")
        }
        for id in kept {
            let (order, events) = try #require(try await store.orderWithEvents(id: id), "\(id) should be kept")
            #expect(events.map(\.seq) == Array(1...order.version))
        }
        let text = String(decoding: metrics.exposition(openStreams: 0), as: UTF8.self)
        #expect(ObservabilityTests.sample(text, "payment_status_orders_pruned_total") == Double(expired.count))
        #expect(ObservabilityTests.sample(text, "payment_status_events_pruned_total") == Double(expired.count * 3))
        // A second run finds nothing more.
        #expect(await service.prune(now: now) == PrunedOrders(orders: 0, events: 0))
    }

    /// On SQLite the order holding the newest event stays even past the limit,
    /// so no feed position is handed out twice.
    @Test func theSQLiteStoreKeepsTheOrderHoldingTheNewestEventOfAnIdleService() async throws {
        let database = try await TestDatabase.make(.sqlite)
        defer { try? FileManager.default.removeItem(atPath: database.folder) }
        let store = try await database.migratedStore() as! SQLiteStore
        let now = Timestamp.now()
        for (index, id) in ["a", "b", "c"].enumerated() {
            let time = Timestamp(millisecondsSince1970: now.millisecondsSince1970 - (40 - Int64(index)) * Self.day)
            _ = try await store.createOrder(try OrderDraft(id: id, amount: 5, currency: "EUR", metadata: nil), id: id, at: time)
            _ = try await store.apply(StatusChange(orderID: id, status: .succeeded, source: .api), at: time)
        }
        let pruned = try await store.deleteFinishedOrders(
            finishedBefore: Timestamp(millisecondsSince1970: now.millisecondsSince1970 - 30 * Self.day), limit: 10)
        #expect(pruned == PrunedOrders(orders: 2, events: 4))
        #expect(try await store.order(id: "c") != nil)
        #expect(try await store.order(id: "a") == nil)
        #expect(try await store.order(id: "b") == nil)
        try store.close()
    }

    /// The batch reads what it deletes through the partial index, not the whole table.
    @Test func theSQLiteBatchIsFoundThroughTheFinishedOrdersIndex() async throws {
        let database = try await TestDatabase.make(.sqlite)
        defer { try? FileManager.default.removeItem(atPath: database.folder) }
        let store = try await database.migratedStore() as! SQLiteStore
        let plan = try await store.dbWriter.read { db in
            try Row.fetchAll(db, sql: """
                EXPLAIN QUERY PLAN SELECT id FROM orders
                WHERE status IN ('succeeded', 'failed') AND updated_at < 0
                  AND id != coalesce((SELECT order_id FROM events ORDER BY position DESC LIMIT 1), '')
                ORDER BY updated_at, id LIMIT 500
                """).map { $0["detail"] as String }
        }
        let readsOfOrders = plan.filter { $0.hasPrefix("SCAN orders") || $0.hasPrefix("SEARCH orders") }
        #expect(!readsOfOrders.isEmpty && readsOfOrders.allSatisfy { $0.contains("INDEX orders_finished") }, "\(plan)")
        #expect(!plan.contains { $0.hasPrefix("SCAN events") && !$0.contains("INDEX events_position") }, "\(plan)")
        #expect(try await store.pragma("auto_vacuum") == "0")  // freed pages are reused, the file never shrinks
        try store.close()
    }

    /// On the live service: thousands of old finished orders go in batches
    /// while a stream on another order keeps receiving every event.
    @Test func theServiceDeletesOldOrdersWhileAStreamOnAnotherOrderRuns() async throws {
        let service = try TestService { configuration in
            configuration.retention = .seconds(30 * 86_400)
            configuration.retentionInterval = .milliseconds(200)
            configuration.retentionBatchSize = 100
        }
        try await service.withLiveServer { live, services in
            try await live.client.createOrder(id: "watched")
            let stream = try await live.openStream(LiveStreamTests.path("watched", services))
            #expect(try await stream.head().status == .ok)
            #expect(try LiveStreamTests.seq(try await stream.nextEvent()) == 1)

            // 1,500 finished orders, made old by editing their times in SQL (stored
            // at once in one transaction: through the API they would take longer
            // than a connection may stay idle on a loaded machine), and a few that
            // must stay: recent, or old but not final.
            for id in ["recent", "old-open"] { try await live.client.createOrder(id: id) }
            try await live.client.transition("recent", to: "succeeded")
            let now = Timestamp.now().millisecondsSince1970
            let old = now - 40 * Self.day
            try await services.sqlite.dbWriter.write { db in
                try db.execute(
                    sql: """
                        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 1499)
                        INSERT INTO orders (id, status, amount, currency, metadata, version, created_at, updated_at)
                        SELECT printf('old-%04d', i), CASE i % 3 WHEN 0 THEN 'failed' ELSE 'succeeded' END, 5, 'EUR', '{}', 2, ?, ? FROM n
                        """, arguments: [now, now])
                try db.execute(
                    sql: """
                        INSERT INTO events (order_id, seq, status, previous, source, at, position)
                        SELECT order_id, seq, status, previous, source, at,
                               (SELECT coalesce(max(position), 0) FROM events) + row_number() OVER (ORDER BY order_id, seq)
                        FROM (
                            SELECT id AS order_id, 1 AS seq, 'initiated' AS status, NULL AS previous, 'api' AS source, ? AS at
                            FROM orders WHERE id LIKE 'old-0%' OR id LIKE 'old-1%'
                            UNION ALL
                            SELECT id, 2, status, 'initiated', 'api', ? FROM orders WHERE id LIKE 'old-0%' OR id LIKE 'old-1%')
                        """, arguments: [now, now])
                try db.execute(sql: "UPDATE orders SET created_at = ?, updated_at = ? WHERE id LIKE 'old-%'", arguments: [old, old])
                try db.execute(sql: "UPDATE events SET at = ? WHERE order_id LIKE 'old-%'", arguments: [old])
            }

            // Meanwhile the watched order moves on, and its stream sees each step.
            let seen = Task {
                var seqs: [Int] = []
                while let event = try await stream.nextEvent(within: 20) { seqs.append(try LiveStreamTests.seq(event)) }
                return seqs
            }
            try await live.client.transition("watched", to: "processing")
            try await eventually(30, "retention to delete the old orders") {
                try await services.sqlite.dbWriter.read { db in
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM orders WHERE id LIKE 'old-%' AND status != 'initiated'") == 0
                }
            }
            try await live.client.transition("watched", to: "succeeded")
            #expect(try await seen.value == [2, 3])

            let left = try await services.sqlite.dbWriter.read { db in
                (try String.fetchAll(db, sql: "SELECT id FROM orders ORDER BY id"),
                 try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE order_id LIKE 'old-%' AND order_id != 'old-open'") ?? -1)
            }
            #expect(left.0 == ["old-open", "recent", "watched"])
            #expect(left.1 == 0)
            let text = String(buffer: try await live.client.get("/metrics", headers: [:]).body)
            #expect(ObservabilityTests.sample(text, "payment_status_orders_pruned_total") == 1_500)
            #expect(ObservabilityTests.sample(text, "payment_status_events_pruned_total") == 3_000)
        }
    }

    @Test func retentionIsOffByDefaultAndTheSettingIsChecked() throws {
        #expect(try AppConfiguration(environment: [:]).retention == nil)
        #expect(try AppConfiguration(environment: ["PAYMENT_RETENTION_DAYS": "30"]).retention == .seconds(30 * 86_400))
        for bad in ["0", "-1", "1.5", "forever"] {
            #expect(throws: ConfigurationError.self) { try AppConfiguration(environment: ["PAYMENT_RETENTION_DAYS": bad]) }
        }
        #expect(try AppConfiguration(environment: ["PAYMENT_API_TOKEN": " new , old ,"]).apiTokens == ["new", "old"])
    }
}
