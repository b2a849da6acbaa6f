import Synchronization

/// Group commit for PostgreSQL's status changes: the changes that arrive
/// while a batch is committing wait, then share the next transaction (see
/// PostgresStore+Changes.swift for why). None returns before the commit that
/// holds it has returned, and its `committed` runs first.
///
/// A batch takes each order once; a second change of an order already in it
/// waits for the next batch, keeping its place before later changes of that
/// order. When a batch fails for any reason but an unavailable database, its
/// changes are tried again one per transaction, so that one change that
/// fails takes no other down with it.
final class ChangeQueue: Sendable {
    /// A change waiting for its transaction.
    struct Change: Sendable {
        let change: StatusChange
        let time: Timestamp
    }

    /// Commits a batch in one transaction and returns the outcomes, in order.
    typealias Commit = @Sendable ([Change]) async throws -> [ChangeOutcome]

    private let maxBatch: Int
    private let state = Mutex(State())

    private struct State {
        var waiting: [Waiting] = []
        var draining = false
        var transactions = 0
        var writes = 0
    }

    private struct Waiting: Sendable {
        let item: Change
        let committed: @Sendable (PaymentEvent) -> Void
        let continuation: CheckedContinuation<ChangeOutcome, any Error>
    }

    /// Transactions committed, the changes they carried, the changes
    /// waiting for a batch and whether a batch is on its way, for tests and
    /// benchmarks.
    var counts: (transactions: Int, writes: Int, waiting: Int, draining: Bool) {
        state.withLock { ($0.transactions, $0.writes, $0.waiting.count, $0.draining) }
    }

    init(maxBatch: Int = 64) {
        self.maxBatch = maxBatch
    }

    /// Applies `change` in the next batch; `commit` runs the batches when
    /// this call finds no drain running (so the drain holds what it needs).
    /// Never interrupted once queued: a write cut in the middle would leave
    /// its outcome unknown.
    func apply(
        _ change: StatusChange, at time: Timestamp, committed: @escaping @Sendable (PaymentEvent) -> Void,
        commit: @escaping Commit
    ) async throws -> ChangeOutcome {
        try await withCheckedThrowingContinuation { continuation in
            let startDraining = state.withLock { state -> Bool in
                state.waiting.append(
                    Waiting(item: Change(change: change, time: time), committed: committed, continuation: continuation))
                guard !state.draining else { return false }
                state.draining = true
                return true
            }
            if startDraining { Task { await self.drain(commit) } }
        }
    }

    /// Commits batches until nothing waits. Only one drain runs at a time.
    private func drain(_ commit: Commit) async {
        while true {
            let batch = state.withLock { state -> [Waiting] in
                var batch: [Waiting] = []
                var later: [Waiting] = []
                var orders: Set<String> = []
                for waiting in state.waiting {
                    if batch.count < maxBatch, orders.insert(waiting.item.change.orderID).inserted {
                        batch.append(waiting)
                    } else {
                        later.append(waiting)
                    }
                }
                state.waiting = later
                if batch.isEmpty { state.draining = false }
                return batch
            }
            if batch.isEmpty { return }
            do {
                try await run(batch, commit)
            } catch {
                if batch.count > 1, !(error is StoreUnavailable) {
                    for waiting in batch {
                        do { try await run([waiting], commit) } catch { waiting.continuation.resume(throwing: error) }
                    }
                } else {
                    for waiting in batch { waiting.continuation.resume(throwing: error) }
                }
            }
        }
    }

    /// Commits one batch and answers its changes; throws without answering any.
    private func run(_ batch: [Waiting], _ commit: Commit) async throws {
        let outcomes = try await commit(batch.map(\.item))
        precondition(outcomes.count == batch.count, "a batch of \(batch.count) changes returned \(outcomes.count) outcomes")
        state.withLock {
            $0.transactions += 1
            $0.writes += batch.count
        }
        for (waiting, outcome) in zip(batch, outcomes) {
            if case .applied(_, let event) = outcome { waiting.committed(event) }
            waiting.continuation.resume(returning: outcome)
        }
    }
}
