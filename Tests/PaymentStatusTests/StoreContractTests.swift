import Foundation
import PostgresNIO
import Testing
@testable import PaymentStatus

/// The store protocol's promises, on both stores: same contract, same answers.
@Suite("Store contract, SQLite and PostgreSQL", .timeLimit(.minutes(2)))
struct StoreContractTests {
    @Test(arguments: StoreKind.allCases)
    func createIsIdempotentOnTheSameIdAndConflictsOnDifferentTerms(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let draft = try OrderDraft(id: "o1", amount: 500, currency: "EUR", metadata: ["k": "v", "a": "b"])
            let time = Timestamp(millisecondsSince1970: 1_000)
            guard case .created(let order, let event) = try await store.createOrder(draft, id: "o1", at: time) else {
                Issue.record("expected created"); return
            }
            #expect(order.status == .initiated && order.version == 1 && order.metadata == ["k": "v", "a": "b"])
            #expect(event.seq == 1 && event.status == .initiated && event.previous == nil)
            #expect(try await store.createOrder(draft, id: "o1", at: time) == .existing(order))
            let other = try OrderDraft(id: "o1", amount: 501, currency: "EUR", metadata: nil)
            #expect(try await store.createOrder(other, id: "o1", at: time) == .conflict(order))
            #expect(try await store.order(id: "o1") == order)
            #expect(try await store.order(id: "o2") == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func concurrentCreatesOfOneIdStoreItOnce(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let draft = try OrderDraft(id: "o1", amount: 500, currency: "EUR", metadata: nil)
            let outcomes = try await withThrowingTaskGroup(of: CreateOrderOutcome.self) { group in
                for _ in 0..<20 { group.addTask { try await store.createOrder(draft, id: "o1", at: .now()) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.filter { if case .created = $0 { true } else { false } }.count == 1)
            #expect(outcomes.filter { if case .existing = $0 { true } else { false } }.count == 19)
            #expect(try await store.events(orderID: "o1", after: 0, limit: 10).map(\.seq) == [1])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func applyAppendsEventsAndBumpsTheVersionInOneTransaction(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.createOrder(try OrderDraft(id: "o1", amount: 5, currency: "EUR", metadata: nil), id: "o1", at: .now())
            let change = StatusChange(orderID: "o1", status: .processing, source: .api, eventID: "e1", reason: "r")
            guard case .applied(let order, let event) = try await store.apply(change, at: .now()) else {
                Issue.record("expected applied"); return
            }
            #expect(order.version == 2 && order.status == .processing)
            #expect(event.seq == 2 && event.previous == .initiated && event.eventID == "e1" && event.reason == "r")

            // Same event id again: nothing changes, the original comes back.
            guard case .duplicate(let current, let original) = try await store.apply(change, at: .now()) else {
                Issue.record("expected duplicate"); return
            }
            #expect(original == event && current == order)
            // An event id is per order and whatever the status.
            let reused = StatusChange(orderID: "o1", status: .succeeded, source: .webhook, eventID: "e1")
            guard case .duplicate = try await store.apply(reused, at: .now()) else { Issue.record("expected duplicate"); return }

            #expect(try await store.apply(StatusChange(orderID: "o1", status: .processing, source: .api), at: .now())
                == .refused(.alreadyPassed, order: order))
            #expect(try await store.apply(StatusChange(orderID: "nope", status: .processing, source: .api), at: .now())
                == .orderNotFound)
            let failing = StatusChange(orderID: "o1", status: .failed, source: .webhook, occurredAt: Timestamp(millisecondsSince1970: 5))
            guard case .applied(let final, _) = try await store.apply(failing, at: .now()) else {
                Issue.record("expected applied"); return
            }
            #expect(try await store.apply(StatusChange(orderID: "o1", status: .succeeded, source: .webhook), at: .now())
                == .refused(.conflictingTerminal, order: final))

            let events = try await store.events(orderID: "o1", after: 0, limit: 100)
            #expect(events.map(\.seq) == [1, 2, 3])
            #expect(events.map(\.status) == [.initiated, .processing, .failed])
            #expect(events.map(\.source) == [.api, .api, .webhook])
            #expect(try await store.events(orderID: "o1", after: 2, limit: 100).map(\.seq) == [3])
            #expect(try await store.events(orderID: "o1", after: 0, limit: 2).map(\.seq) == [1, 2])
            #expect(try await store.latestEvent(orderID: "o1")?.seq == 3)
            #expect(try await store.latestEvent(orderID: "nope") == nil)
            #expect(try await store.order(id: "o1") == final)
            let whole = try #require(try await store.orderWithEvents(id: "o1"))
            #expect(whole.0 == final && whole.1 == events)
            #expect(try await store.orderWithEvents(id: "nope") == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func concurrentTransitionsOnOneOrderNeverShareASeq(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.createOrder(try OrderDraft(id: "o1", amount: 5, currency: "EUR", metadata: nil), id: "o1", at: .now())
            // Everyone races to move it on; exactly one move per step can win.
            let outcomes = try await withThrowingTaskGroup(of: ChangeOutcome.self) { group in
                for i in 0..<40 {
                    let status: PaymentStatus = [.processing, .succeeded, .failed][i % 3]
                    group.addTask { try await retryingWhileBusy { try await store.apply(StatusChange(orderID: "o1", status: status, source: .api), at: .now()) } }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let applied = outcomes.filter { if case .applied = $0 { true } else { false } }
            #expect((1...2).contains(applied.count))
            let seqs = try await store.events(orderID: "o1", after: 0, limit: 100).map(\.seq)
            #expect(seqs == Array(1...seqs.count))
            #expect(try await store.order(id: "o1")?.status.isTerminal == true)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func oneEventIDRacedFromManyClientsIsAppliedOnce(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.createOrder(try OrderDraft(id: "o1", amount: 5, currency: "EUR", metadata: nil), id: "o1", at: .now())
            let outcomes = try await withThrowingTaskGroup(of: ChangeOutcome.self) { group in
                for _ in 0..<30 {
                    group.addTask {
                        try await retryingWhileBusy {
                            try await store.apply(StatusChange(orderID: "o1", status: .succeeded, source: .webhook, eventID: "evt-1"), at: .now())
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.filter { if case .applied = $0 { true } else { false } }.count == 1)
            #expect(outcomes.filter { if case .duplicate = $0 { true } else { false } }.count == 29)
            #expect(try await store.events(orderID: "o1", after: 0, limit: 10).map(\.seq) == [1, 2])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func secretsAreGeneratedOnceAndKept(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            var configuration = AppConfiguration()
            var announced: [String] = []
            let first = try await Credentials.resolve(configuration, store: store) { announced.append($0) }
            let second = try await Credentials.resolve(configuration, store: store) { announced.append($0) }
            #expect(announced == [first.apiToken])  // printed once, on the first start only
            #expect(first.apiToken == second.apiToken && first.streamSecret == second.streamSecret)
            #expect(first.webhookSecrets == second.webhookSecrets)
            #expect(first.apiToken.count >= 43 && first.apiToken != first.streamSecret)
            #expect(try await store.storedSecret(named: Credentials.StoredName.webhookSecret) == first.webhookSecrets.first)
            #expect(try await store.storedSecret(named: "nothing") == nil)

            configuration.apiToken = "from-env"
            let third = try await Credentials.resolve(configuration, store: store) { announced.append($0) }
            #expect(third.apiToken == "from-env" && announced.count == 1)
            try await store.checkReadiness()
        }
    }
}

/// Runs `body` again when the store answered "unavailable", as a client
/// retries a 503: dozens of writes racing for one order's row lock on a
/// loaded machine can wait longer than the pool's 5 s for a connection,
/// which is overload, not a broken guarantee (and is thrown only before the
/// write ran, so trying again is safe). Any other error fails.
func retryingWhileBusy<T: Sendable>(_ body: () async throws -> T) async throws -> T {
    for _ in 0..<5 {
        do { return try await body() } catch is StoreUnavailable { try await Task.sleep(for: .milliseconds(200)) }
    }
    return try await body()
}

/// PostgreSQL's migrations: the same rules as SQLite's (see StorageTests).
@Suite("PostgreSQL migrations", .timeLimit(.minutes(2)))
struct PostgresMigrationTests {
    func withFolder(_ body: (String, PostgresStore) async throws -> Void) async throws {
        let database = try await TestDatabase.make(.postgres)
        let store = try await database.store() as! PostgresStore
        let migrations = database.folder + "/postgres"
        try FileManager.default.createDirectory(atPath: migrations, withIntermediateDirectories: true)
        try await database.closing(store) { try await body(migrations, store) }
    }

    func tables(_ store: PostgresStore) async throws -> [String] {
        try await store.client.query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename", logger: TestService.logger
        ).collect().map { try $0.decode(String.self) }
    }

    @Test func migrationsApplyOnceInNameOrderEvenFromInstancesStartingTogether() async throws {
        try await withFolder { migrations, store in
            try "CREATE TABLE b (x INTEGER);".write(toFile: migrations + "/0002_b.sql", atomically: true, encoding: .utf8)
            try "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);".write(toFile: migrations + "/0001_a.sql", atomically: true, encoding: .utf8)
            try "not sql".write(toFile: migrations + "/README.txt", atomically: true, encoding: .utf8)
            // Four instances migrate at once: the advisory lock lets one apply, the others find it done.
            let results = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<4 { group.addTask { try await store.migrate(directory: migrations) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.filter { !$0.isEmpty } == [["0001_a.sql", "0002_b.sql"]])
            #expect(try await store.migrate(directory: migrations) == [])
            let count = try await store.client.query("SELECT count(*) FROM a", logger: TestService.logger).collect()
            #expect(try count.first?.decode(Int.self) == 1)
            try "CREATE TABLE c (x INTEGER);".write(toFile: migrations + "/0003_c.sql", atomically: true, encoding: .utf8)
            #expect(try await store.migrate(directory: migrations) == ["0003_c.sql"])
        }
    }

    @Test func anEditedAppliedMigrationStopsStartUpNamingTheFile() async throws {
        try await withFolder { migrations, store in
            try "CREATE TABLE a (x INTEGER);".write(toFile: migrations + "/0001_a.sql", atomically: true, encoding: .utf8)
            try await store.migrate(directory: migrations)
            try "CREATE TABLE a (x INTEGER, y TEXT);".write(toFile: migrations + "/0001_a.sql", atomically: true, encoding: .utf8)
            let error = await #expect(throws: MigrationError.self) { try await store.migrate(directory: migrations) }
            #expect(error?.code == .checksumMismatch)
            #expect(error?.description.contains("0001_a.sql") == true)
        }
    }

    @Test func aFailingMigrationIsNamedAndLeavesNothingHalfDone() async throws {
        try await withFolder { migrations, store in
            try "CREATE TABLE a (x INTEGER);".write(toFile: migrations + "/0001_a.sql", atomically: true, encoding: .utf8)
            try "CREATE TABLE b (x INTEGER); SELEKT nonsense;".write(toFile: migrations + "/0002_b.sql", atomically: true, encoding: .utf8)
            let error = await #expect(throws: MigrationError.self) { try await store.migrate(directory: migrations) }
            #expect(error?.code == .failed)
            #expect(error?.name == "0002_b.sql")
            #expect(try await tables(store) == [])
        }
    }

    @Test func scriptsSplitOnlyAtStatementEnds() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE a (x TEXT DEFAULT 'semi;colon', "odd;name" INT);
            /* block; comment */ INSERT INTO a (x) VALUES ('it''s; fine');
            CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;
            DO $$ BEGIN PERFORM 1; END $$;
            ;
            """
        #expect(SQLScript.statements(script) == [
            #"CREATE TABLE a (x TEXT DEFAULT 'semi;colon', "odd;name" INT)"#,
            "INSERT INTO a (x) VALUES ('it''s; fine')",
            "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql",
            "DO $$ BEGIN PERFORM 1; END $$",
        ])
    }

    @Test func theShippedMigrationsCreateTheSchema() async throws {
        try await withFolder { _, store in
            let applied = try await store.migrate(migrations: TestService.migrations)
            let shipped = try FileManager.default.contentsOfDirectory(atPath: TestService.migrations + "/postgres")
                .filter { $0.hasSuffix(".sql") }.sorted()
            #expect(applied == shipped && applied.first == "0001_orders_and_events.sql")
            #expect(try await tables(store) == [
                "events", "orders", "schema_migrations", "settings", "webhook_attempts", "webhook_endpoints", "webhook_messages",
            ])
        }
    }
}
