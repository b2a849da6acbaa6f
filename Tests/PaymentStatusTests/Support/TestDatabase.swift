import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import PostgresNIO
import Testing
@testable import PaymentStatus

/// The stores every store and stream test runs against.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }
}

/// A fresh, empty database of one kind: a SQLite file in a temporary folder,
/// or a new database on the test PostgreSQL server. `remove()` deletes it.
struct TestDatabase: Sendable {
    let kind: StoreKind
    let location: DatabaseLocation
    /// A temporary folder for files (the SQLite database lives here).
    let folder: String

    static func make(_ kind: StoreKind) async throws -> TestDatabase {
        let folder = try TemporaryFolder("ps-db").path
        switch kind {
        case .sqlite:
            return TestDatabase(kind: kind, location: .sqlite(path: folder + "/payments.sqlite"), folder: folder)
        case .postgres:
            return TestDatabase(kind: kind, location: .postgres(try await TestPostgres.createDatabase()), folder: folder)
        }
    }

    func store(instanceID: String = UUID().uuidString, maxInlinePayload: Int = 7900) async throws -> any PaymentStore {
        switch location {
        case .sqlite(let path): try SQLiteStore(path: path)
        case .postgres(let server):
            try await PostgresStore.open(server, instanceID: instanceID, logger: TestService.logger, maxInlinePayload: maxInlinePayload)
        }
    }

    func migratedStore() async throws -> any PaymentStore {
        let store = try await store()
        try await store.migrate(migrations: TestService.migrations)
        return store
    }

    /// A fresh migrated store of `kind` for `body`, closed and removed afterwards.
    static func withMigratedStore(_ kind: StoreKind, _ body: (any PaymentStore) async throws -> Void) async throws {
        let database = try await make(kind)
        let store = try await database.migratedStore()
        do {
            try await body(store)
            try await store.close()
        } catch {
            try? await store.close()
            await database.remove()
            throw error
        }
        await database.remove()
    }

    func remove() async {
        try? FileManager.default.removeItem(atPath: folder)
        if case .postgres(let server) = location { await TestPostgres.dropDatabase(server.database) }
    }
}

/// The PostgreSQL server the tests use: `PAYMENT_TEST_POSTGRES_URL`, or the
/// one `scripts/postgres-test-server` starts (and installs if needed) on
/// loopback, so that `swift test` alone runs the PostgreSQL tests too.
enum TestPostgres {
    static let server: Result<PostgresLocation, TestFailure> = {
        var url = ProcessInfo.processInfo.environment["PAYMENT_TEST_POSTGRES_URL"]
        if url == nil {
            let script = URL(fileURLWithPath: TestService.migrations).deletingLastPathComponent()
                .appendingPathComponent("scripts/postgres-test-server").path
            // popen, not Process: Foundation's Process did not always notice the
            // script's exit here (its server child outlives it), and waiting for
            // the end of its output would wait for that server too. One line is read.
            guard let output = popen("'\(script)'", "r") else {
                return .failure(TestFailure("cannot run \(script)"))
            }
            var line = [CChar](repeating: 0, count: 4096)
            let read = fgets(&line, Int32(line.count), output) != nil
            pclose(output)
            if read {
                url = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    .split(separator: "'").dropFirst().first.map(String.init)
            }
        }
        guard let url else {
            return .failure(TestFailure("no PostgreSQL for the tests: set PAYMENT_TEST_POSTGRES_URL or run scripts/postgres-test-server"))
        }
        do {
            return .success(try PostgresLocation(url: url, from: "PAYMENT_TEST_POSTGRES_URL"))
        } catch {
            return .failure(TestFailure("\(error)"))
        }
    }()

    /// Runs `body` on a connection to the server's maintenance database.
    static func admin<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let server = try self.server.get()
        let connection = try await PostgresConnection.connect(
            configuration: server.connectionConfiguration(applicationName: "payment-status-tests"), id: 0, logger: TestService.logger)
        do {
            let result = try await body(connection)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    static func createDatabase() async throws -> PostgresLocation {
        var location = try server.get()
        location.database = "ps_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await admin { connection in
            _ = try await connection.query("CREATE DATABASE \(unescaped: location.database)", logger: TestService.logger).collect()
        }
        return location
    }

    static func dropDatabase(_ name: String) async {
        _ = try? await admin { connection in
            try await connection.query("DROP DATABASE IF EXISTS \(unescaped: name) WITH (FORCE)", logger: TestService.logger).collect()
        }
    }

    /// Ends the server-side sessions whose `application_name` is `name`; returns how many.
    static func terminate(applicationName name: String) async throws -> Int {
        try await admin { connection in
            let rows = try await connection.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = \(name)",
                logger: TestService.logger
            ).collect()
            return rows.count
        }
    }
}
