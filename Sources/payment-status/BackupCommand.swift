import ArgumentParser
import Logging
import PaymentStatus

import Foundation

/// Copies the live SQLite database while the service keeps serving.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write a consistent copy of the SQLite database while the service goes on serving.",
        discussion: """
            The copy is one read snapshot of the database (every write acknowledged before the backup
            started is in it), written beside the target under a temporary name, checked
            (integrity_check) and renamed to the target only when complete; an existing file there is
            replaced. Writes to the live database are never held up. On PostgreSQL, use pg_dump.
            """)

    @Option(help: "Where to write the copy (its folder must exist).")
    var to: String

    @Option(help: "SQLite database file to copy (env PAYMENT_DB; default ./data/payments.sqlite).")
    var database: String?

    @Option(help: ArgumentHelp("Database pages copied per step.", visibility: .hidden))
    var pagesPerStep: Int32 = 4096

    func run() async throws {
        let path: String
        switch try DatabaseOption.resolve(database) {
        case .sqlite(let file): path = file
        case .postgres(let location):
            throw CommandFailure("""
                \(location) is PostgreSQL: back it up with PostgreSQL's own tools, e.g.
                  pg_dump --format=custom --file=payments.dump '<the database URL>'
                (restore with pg_restore), or continuous archiving with pg_basebackup for point-in-time recovery.
                """)
        }
        let logger = Logger(label: "payment-status")
        logger.notice("backup started", metadata: ["database": "\(path)", "target": "\(to)"])
        let lastReport = LastReport()
        let summary: SQLiteBackup.Summary
        do {
            summary = try SQLiteBackup.run(from: path, to: to, pagesPerStep: max(1, pagesPerStep)) { progress in
                guard lastReport.due() else { return }
                logger.info("backup progress", metadata: [
                    "copied_pages": "\(progress.copiedPages)", "total_pages": "\(progress.totalPages)",
                ])
            }
        } catch {
            logger.error("backup failed", metadata: ["database": "\(path)", "target": "\(to)", "error": "\(error)"])
            throw CommandFailure("backup of \(path) failed: \(error)")
        }
        let seconds = Double(summary.duration.nanoseconds) / 1e9
        logger.notice("backup finished", metadata: [
            "target": "\(summary.target)", "bytes": "\(summary.bytes)", "orders": "\(summary.orders)",
            "events": "\(summary.events)", "duration_ms": "\(summary.duration.nanoseconds / 1_000_000)",
        ])
        print("""
            backed up \(path) to \(summary.target)
              orders:     \(summary.orders)
              events:     \(summary.events)
              last event: \(summary.lastEventAt?.rfc3339 ?? "none")
              size:       \(summary.bytes) bytes (\(summary.pages) pages)
              took:       \(String(format: "%.3f", seconds)) s
              integrity_check: ok
            """)
    }
}

/// Progress lines at most once a second.
private final class LastReport: @unchecked Sendable {
    private let lock = NSLock()
    private var last = ContinuousClock.now

    func due() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard ContinuousClock.now - last >= .seconds(1) else { return false }
        last = ContinuousClock.now
        return true
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
