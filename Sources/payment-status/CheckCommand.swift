import ArgumentParser
import PaymentStatus

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Verifies a SQLite database before it is served, e.g. a restored backup.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify a SQLite database before serving it: exit 0 when it is sound, 1 with a report otherwise.",
        discussion: """
            Checks the file (integrity_check, foreign_key_check), the applied migrations against the
            files of the migrations folder (names and SHA-256, as migrate records them), and every
            order's history: its events are numbered 1 to its version with no gap, and the newest one
            is the order's status. Reads one snapshot and changes nothing; it may run beside the service.
            """)

    @Option(help: "SQLite database file to check (env PAYMENT_DB; default ./data/payments.sqlite).")
    var database: String?

    @Option(help: "Folder of .sql migration files (env PAYMENT_MIGRATIONS_DIR; default ./migrations).")
    var migrations: String?

    func run() async throws {
        guard case .sqlite(let path) = try DatabaseOption.resolve(database) else {
            throw CommandFailure("""
                check reads SQLite files. On PostgreSQL, pg_amcheck checks the tables and indexes, and
                the history's rules can be checked with SQL (see the README's section on operating the service).
                """)
        }
        let folder = migrations ?? ProcessInfo.processInfo.environment["PAYMENT_MIGRATIONS_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? AppConfiguration().migrationsDirectory
        let report: SQLiteCheck.Report
        do {
            report = try SQLiteCheck.run(path: path, migrations: folder)
        } catch {
            print("check FAILED: \(path)\n  - \(error)")
            throw ExitCode(1)
        }
        let pending = report.pendingMigrations.isEmpty ? "none" : report.pendingMigrations.joined(separator: ", ")
        guard report.problems.isEmpty else {
            print("check FAILED: \(path): \(report.problems.count) problem\(report.problems.count == 1 ? "" : "s")")
            for problem in report.problems { print("  - \(problem)") }
            print("  (counted: \(report.orders) orders, \(report.events) events, \(report.appliedMigrations) migrations applied, pending: \(pending))")
            throw ExitCode(1)
        }
        print("""
            check ok: \(path)
              integrity_check: ok; foreign_key_check: ok
              migrations: \(report.appliedMigrations) applied, each matching its file's checksum; pending: \(pending)
              orders: \(report.orders) (\(report.finishedOrders) final); events: \(report.events)
              every order's events run 1…version with no gap, and the newest is its status
            """)
    }
}
