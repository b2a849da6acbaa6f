import GRDB

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A consistent copy of a live database, taken while the service goes on
/// writing (`payment-status backup`).
///
/// The copy is SQLite's online backup of one read snapshot: the source
/// connection opens a read transaction first and keeps it through every page
/// step, so the copy is the database exactly as it stood at that moment (every
/// write acknowledged before it is in), and in WAL mode a reader never holds
/// up the writer: commits go on meanwhile, into the WAL. The WAL cannot be
/// checkpointed past the snapshot until the copy is done, so it grows by the
/// writes made meanwhile and shrinks back at the next checkpoints.
///
/// The copy is written under a temporary name beside the target, turned into
/// a single self-contained file (rollback journal mode, no `-wal` to carry),
/// flushed, checked (`integrity_check`, counts), and only then renamed to the
/// target in one step. A backup killed at any moment leaves the live database
/// as it was and nothing under the target name (at most a `.partial-<pid>`
/// file beside it, which can be deleted).
public enum SQLiteBackup {
    /// What a finished backup holds, read back from the copy itself.
    public struct Summary: Sendable {
        public var target: String
        public var orders: Int
        public var events: Int
        /// The newest event's commit time, nil in an empty database.
        public var lastEventAt: Timestamp?
        public var bytes: Int64
        public var pages: Int
        public var duration: Duration
    }

    /// The progress of a running copy, after each page step.
    public struct Progress: Sendable {
        public var copiedPages: Int
        public var totalPages: Int
    }

    /// Copies the database at `source` to `target`. `pagesPerStep` pages are
    /// copied per step (4096 pages of 4 KiB: 16 MiB); `progress` hears of each step.
    public static func run(
        from source: String, to target: String, pagesPerStep: Int32 = 4096,
        progress: @escaping @Sendable (Progress) -> Void = { _ in }
    ) throws -> Summary {
        let started = ContinuousClock.now
        try SQLiteFile.requireDatabase(at: source)
        if SQLiteFile.isSameFile(source, target) {
            throw SQLiteFileError("the backup target \(target) is the database itself")
        }
        let folder = SQLiteFile.folder(of: target)
        guard SQLiteFile.isFolder(folder) else {
            throw SQLiteFileError("the folder \(folder) of the backup target does not exist")
        }
        let partial = "\(target).partial-\(ProcessInfo.processInfo.processIdentifier)"
        for suffix in ["", "-journal", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: partial + suffix) }
        do {
            let pages = try copy(from: source, to: partial, pagesPerStep: pagesPerStep, progress: progress)
            try SQLiteFile.sync(partial)
            var summary = try verify(partial)
            try SQLiteFile.replace(target, with: partial)
            summary.target = target
            summary.pages = pages
            summary.duration = ContinuousClock.now - started
            return summary
        } catch {
            for suffix in ["", "-journal", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: partial + suffix) }
            throw error
        }
    }

    /// The online backup into `destination`; returns the pages copied.
    private static func copy(
        from source: String, to destination: String, pagesPerStep: Int32, progress: @escaping @Sendable (Progress) -> Void
    ) throws -> Int {
        var configuration = Configuration()
        // A checkpoint or a WAL reset of the live writer may hold the lock for a moment.
        configuration.busyMode = .timeout(10)
        let live = try DatabaseQueue(path: source, configuration: configuration)
        defer { try? live.close() }
        let copy = try DatabaseQueue(path: destination)
        defer { try? copy.close() }
        let pages = try copy.writeWithoutTransaction { destination in
            try live.read { source in
                // The snapshot is taken by the first read, now, and kept until the
                // copy is done: every step copies from it (a step that began its
                // own read transaction would restart the copy whenever the
                // service commits).
                _ = try Int.fetchOne(source, sql: "SELECT count(*) FROM sqlite_master")
                var total = 0
                try source.backup(to: destination, pagesPerStep: pagesPerStep) { step in
                    total = step.totalPageCount
                    progress(Progress(copiedPages: step.completedPageCount, totalPages: step.totalPageCount))
                }
                return total
            }
        }
        // One file that opens on its own: the copy's header said WAL, as the source's does.
        try copy.writeWithoutTransaction { db in
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = DELETE")
        }
        return pages
    }

    /// Checks the copy on a connection of its own and counts what it holds.
    private static func verify(_ path: String) throws -> Summary {
        let copy = try DatabaseQueue(path: path)
        defer { try? copy.close() }
        return try copy.read { db in
            let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            guard integrity == ["ok"] else {
                throw SQLiteFileError("the copy failed its integrity check: \(integrity.prefix(5).joined(separator: "; "))")
            }
            let orders = try Int.fetchOne(db, sql: "SELECT count(*) FROM orders") ?? 0
            let events = try Int.fetchOne(db, sql: "SELECT count(*) FROM events") ?? 0
            let last = try Int64.fetchOne(db, sql: "SELECT max(at) FROM events")
            return Summary(
                target: path, orders: orders, events: events, lastEventAt: last.map(Timestamp.init(millisecondsSince1970:)),
                bytes: SQLiteFile.size(path), pages: 0, duration: .zero)
        }
    }
}
