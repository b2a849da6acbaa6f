import GRDB
import Logging
import ServiceLifecycle

/// Copies the WAL back into the database file on a connection of its own,
/// off the write path. SQLite's automatic checkpoint would run inside the
/// commit that crosses 1,000 pages, holding the write lock (and every request
/// waiting on it) for the whole copy and its fsync; the store turns it off
/// on its writer and this service does the work instead. A PASSIVE
/// checkpoint waits for nobody: commits go on while it copies.
///
/// Under steady writes such a pass never finds the WAL's end, and SQLite
/// starts the WAL over only once every frame is copied: past
/// `restartAtFrames` (16 MB of 4 KiB pages) the writer is asked to copy the
/// few frames left between two of its batches (`WriteBatcher`), after which
/// the next batch writes the WAL from its start again.
public struct SQLiteCheckpointer: Service {
    let connection: DatabaseQueue
    let batcher: WriteBatcher
    let interval: Duration
    let restartAtFrames: Int
    let logger: Logger

    /// Opens the checkpointing connection on the store's file.
    public init(
        store: SQLiteStore, interval: Duration = .milliseconds(500), restartAtFrames: Int = 4096, logger: Logger
    ) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(1)
        connection = try DatabaseQueue(path: store.path, configuration: configuration)
        batcher = store.batcher
        self.interval = interval
        self.restartAtFrames = restartAtFrames
        self.logger = logger
    }

    /// Copies what it can now; returns the WAL's frames and how many are in
    /// the database file, or nil when the writer was copying the WAL's tail
    /// at that moment (a pass waits for no one: it is the next one's turn).
    /// Runs on GRDB's queue: the copy and its fsync must not hold one of the
    /// few threads that run every request.
    @discardableResult
    public func checkpoint() async throws -> (walFrameCount: Int, checkpointedFrameCount: Int)? {
        let pass: (walFrameCount: Int, checkpointedFrameCount: Int)
        do {
            pass = try await connection.writeWithoutTransaction { db in try db.checkpoint(.passive) }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
            return nil
        }
        if pass.walFrameCount >= restartAtFrames { batcher.copyWALTailBeforeNextBatch() }
        return pass
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: interval)
                do {
                    try await checkpoint()
                } catch {
                    logger.warning("WAL checkpoint failed; retrying", metadata: ["error": "\(error)"])
                }
            }
        }
        try? connection.close()
    }
}
