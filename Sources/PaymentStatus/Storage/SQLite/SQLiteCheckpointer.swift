import GRDB
import Logging
import ServiceLifecycle

/// Copies the WAL back into the database file on a connection of its own,
/// off the write path. SQLite's automatic checkpoint would run inside the
/// commit that crosses 1,000 pages, holding the write lock (and every request
/// waiting on it) for the whole copy and its fsync; the store turns it off
/// on its writer and this service does the work instead. A PASSIVE
/// checkpoint waits for nobody: commits go on while it copies.
public struct SQLiteCheckpointer: Service {
    let connection: DatabaseQueue
    let interval: Duration
    let logger: Logger

    /// Opens the checkpointing connection on the store's file.
    public init(path: String, interval: Duration = .milliseconds(500), logger: Logger) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(1)
        connection = try DatabaseQueue(path: path, configuration: configuration)
        self.interval = interval
        self.logger = logger
    }

    /// Copies what it can now; returns the WAL's frames and how many are in the database file.
    /// Runs on GRDB's queue: the copy and its fsync must not hold one of the
    /// few threads that run every request.
    @discardableResult
    public func checkpoint() async throws -> (walFrameCount: Int, checkpointedFrameCount: Int) {
        try await connection.writeWithoutTransaction { db in try db.checkpoint(.passive) }
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
