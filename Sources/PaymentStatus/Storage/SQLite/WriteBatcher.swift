import Dispatch
import GRDB
import Synchronization

/// Group commit: writes that arrive while a transaction is committing wait
/// and then share the next transaction, so one fsync of the WAL acknowledges
/// many of them. None returns before the commit that holds it has returned.
///
/// A write that throws an error of its own rolls back alone (it runs in a
/// savepoint). A database error (disk full, I/O error) fails the whole group:
/// SQLite may already have rolled back the entire transaction, taking the
/// earlier writes of the group with it, so none of them may be acknowledged.
///
/// Batches run on a serial queue of their own with GRDB's blocking `write`:
/// one thread wake-up per batch, and the fsync never holds one of the
/// cooperative threads that run the requests.
final class WriteBatcher: Sendable {
    private let writer: any DatabaseWriter
    private let maxBatch: Int
    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "payment-status.group-commit", qos: .userInitiated)

    private struct State {
        var queue: [any PendingWrite] = []
        var draining = false
        var transactions = 0
        var writes = 0
        /// Set by `copyWALTailBeforeNextBatch()`.
        var walTailWanted = false
        var walTailCopies = 0
    }

    /// Transactions committed and writes they carried, for tests and benchmarks.
    var counts: (transactions: Int, writes: Int) { state.withLock { ($0.transactions, $0.writes) } }

    /// How many times the writer copied the WAL's tail to its end (for tests).
    var walTailCopies: Int { state.withLock { $0.walTailCopies } }

    /// Asks the writer to checkpoint what is left of the WAL before its next
    /// batch. SQLite starts the WAL over only at a write that begins once
    /// every frame is in the database file, and under steady writes the
    /// checkpointer's pass never ends with nothing appended meanwhile: the
    /// WAL grew by every write (900 MB in 20 s of a benchmark), each commit
    /// extended the file and its fsync its size. Between two batches the
    /// writer appends nothing, so its own pass, over the few frames the
    /// checkpointer's left, reaches the end, and the next batch starts the
    /// WAL over.
    func copyWALTailBeforeNextBatch() {
        state.withLock { $0.walTailWanted = true }
    }

    init(writer: any DatabaseWriter, maxBatch: Int = 256) {
        self.writer = writer
        self.maxBatch = maxBatch
    }

    /// Runs `body` inside the next group transaction and returns its result
    /// once that transaction committed; `committed` gets the result first, on
    /// the committing thread.
    func write<T: Sendable>(
        committed: @escaping @Sendable (T) -> Void = { _ in }, _ body: @escaping @Sendable (Database) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let startDraining = state.withLock { state -> Bool in
                state.queue.append(Pending(body: body, committed: committed, continuation: continuation))
                guard !state.draining else { return false }
                state.draining = true
                return true
            }
            if startDraining { queue.async { self.drain() } }
        }
    }

    /// Commits batches until the queue is empty. Only one drain runs at a time.
    private func drain() {
        while true {
            let (batch, copyWALTail) = state.withLock { state -> ([any PendingWrite], Bool) in
                let batch = Array(state.queue.prefix(maxBatch))
                state.queue.removeFirst(batch.count)
                if batch.isEmpty { state.draining = false }
                // Kept for the next batch when there is none: the queue empties for a moment between many.
                let copy = state.walTailWanted && !batch.isEmpty
                if copy { state.walTailWanted = false }
                return (batch, copy)
            }
            if batch.isEmpty { return }
            if copyWALTail {
                // Short of the end (a reader on older frames, the checkpointer's
                // own pass under way), the WAL goes on, until the next request.
                let pass = try? writer.writeWithoutTransaction { db in try db.checkpoint(.passive) }
                if let pass, pass.checkpointedFrameCount == pass.walFrameCount {
                    state.withLock { $0.walTailCopies += 1 }
                }
            }
            do {
                try writer.write { db in
                    for pending in batch { try pending.run(db) }
                }
                state.withLock {
                    $0.transactions += 1
                    $0.writes += batch.count
                }
                for pending in batch { pending.complete(commitError: nil) }
            } catch {
                for pending in batch { pending.complete(commitError: error) }
            }
        }
    }
}

private protocol PendingWrite: Sendable {
    /// Runs inside the group transaction, in a savepoint of its own; throws
    /// a database error, which must fail the whole group.
    func run(_ db: Database) throws
    /// Called once the group transaction committed (or failed).
    func complete(commitError: (any Error)?)
}

/// One write waiting for its group commit. `result` is set on the writer's
/// queue inside the transaction and read after `write` returned, so the
/// database queue orders the two.
private final class Pending<T: Sendable>: PendingWrite, @unchecked Sendable {
    let body: @Sendable (Database) throws -> T
    let committed: @Sendable (T) -> Void
    let continuation: CheckedContinuation<T, any Error>
    var result: Result<T, any Error>?

    init(
        body: @escaping @Sendable (Database) throws -> T, committed: @escaping @Sendable (T) -> Void,
        continuation: CheckedContinuation<T, any Error>
    ) {
        self.body = body
        self.committed = committed
        self.continuation = continuation
    }

    func run(_ db: Database) throws {
        var value: T?
        do {
            try db.inSavepoint {
                value = try body(db)
                return .commit
            }
            result = .success(value!)
        } catch let error as DatabaseError {
            throw error
        } catch {
            result = .failure(error)
        }
    }

    func complete(commitError: (any Error)?) {
        if let commitError {
            continuation.resume(throwing: commitError)
        } else {
            if case .success(let value) = result { committed(value) }
            continuation.resume(with: result ?? .failure(CancellationError()))
        }
    }
}
