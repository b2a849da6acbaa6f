import PostgresNIO
import Synchronization

extension PostgresStore {
    /// How long a request waits for a pooled connection before it is answered
    /// 503: while PostgreSQL is unreachable the pool keeps trying to connect,
    /// and requests must not hang meanwhile.
    static let leaseTimeout: Duration = .seconds(5)

    /// Runs `body` on a pooled connection, failing with `StoreUnavailable`
    /// when none is had within `leaseTimeout`, or when the database has not
    /// answered `answerTimeout` after the lease: then the connection is
    /// closed, which fails the query waiting on it. A connection whose path
    /// died without a reset (a failover, a dropped route) never answers nor
    /// closes by itself, and a status change waiting on it would hold every
    /// later one in its queue. Apart from that, once `body` runs it is never
    /// interrupted. A write cut that way has an unknown outcome, which 503
    /// says: retried, it is either applied then or answered as the state it
    /// already reached.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withConnection(answerWithin: answerTimeout, body)
    }

    /// `withConnection` waiting `answerTimeout` for the database's answer,
    /// or as long as it takes when nil (migrations, which may wait for
    /// another instance's). The timer looks at the lease once the lease
    /// timeout is over, so an answer timeout ends no earlier than that.
    ///
    /// The lease and `body` run in a task of their own that this call does
    /// not wait for once a timeout has answered: the pool misses a
    /// cancellation that comes just as the request enters its queue, and
    /// that request then waits until a connection frees up, which while the
    /// database refuses connections is never.
    func withConnection<T: Sendable>(
        answerWithin answerTimeout: Duration?, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let call = ConnectionCall<T>()
        let client = self.client
        return try await Self.translatingErrors {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    call.resumes(continuation)
                    let work = Task {
                        do {
                            let value = try await client.withConnection { connection in
                                // A connection leased after the lease timeout answered goes
                                // back unused: nobody waits for what `body` would do.
                                try call.take(connection)
                                return try await body(connection)
                            }
                            call.give(.success(value))
                        } catch {
                            call.give(.failure(error))
                        }
                    }
                    let timer = Task {
                        guard (try? await Task.sleep(for: Self.leaseTimeout)) != nil else { return }
                        guard let leased = call.leasedOrGiveUp(
                            StoreUnavailable("no PostgreSQL connection within \(Self.leaseTimeout)"))
                        else {
                            work.cancel()
                            return
                        }
                        guard let answerTimeout else { return }
                        let due = leased.at.advanced(by: answerTimeout)
                        guard (try? await Task.sleep(until: due)) != nil else { return }
                        let closing: EventLoopFuture<Void> = leased.connection.close()
                        closing.whenComplete { _ in }
                        call.give(.failure(StoreUnavailable("PostgreSQL did not answer within \(answerTimeout); the connection was closed")))
                    }
                    call.started(work: work, timer: timer)
                }
            } onCancel: {
                call.cancelWork()
            }
        }
    }

    /// The rows of one query, on a pooled connection.
    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        let logger = self.logger
        return try await withConnection { connection in try await connection.query(query, logger: logger).collect() }
    }
}

/// One `withConnection` call: the connection once leased, with when, and
/// the call's one answer, `body`'s result or a timeout's, whichever comes
/// first. Answered before the lease means the lease timeout came first.
private final class ConnectionCall<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var leased: (connection: PostgresConnection, at: ContinuousClock.Instant)?
        var work: Task<Void, Never>?
        var timer: Task<Void, Never>?
        var cancelled = false
    }
    private let state = Mutex(State())

    /// The caller's continuation, which the answer resumes once.
    func resumes(_ continuation: CheckedContinuation<T, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    /// The tasks, once started; a cancellation that came before reaches them now.
    func started(work: Task<Void, Never>, timer: Task<Void, Never>) {
        let (cancelled, answered) = state.withLock { state in
            state.work = work
            state.timer = timer
            return (state.cancelled, state.continuation == nil)
        }
        if cancelled { work.cancel() }
        if answered { timer.cancel() }
    }

    /// Records the leased connection, or throws when the lease timeout answered first.
    func take(_ connection: PostgresConnection) throws {
        try state.withLock { state in
            guard state.continuation != nil else { throw StoreUnavailable("a PostgreSQL connection came after the lease timeout") }
            state.leased = (connection, .now)
        }
    }

    /// The leased connection, or nil after answering `timedOut`: then no later lease is taken.
    func leasedOrGiveUp(_ timedOut: StoreUnavailable) -> (connection: PostgresConnection, at: ContinuousClock.Instant)? {
        let (leased, continuation) = state.withLock { state in
            if let leased = state.leased { return (Optional(leased), Optional<CheckedContinuation<T, any Error>>.none) }
            defer { state.continuation = nil }
            return (nil, state.continuation)
        }
        continuation?.resume(throwing: timedOut)
        return leased
    }

    /// Answers, unless answered already.
    func give(_ result: Result<T, any Error>) {
        let (continuation, timer) = state.withLock { state in
            defer { state.continuation = nil }
            return (state.continuation, state.timer)
        }
        guard let continuation else { return }
        timer?.cancel()
        continuation.resume(with: result)
    }

    /// The caller was cancelled: so is the lease, or `body`, which answer in their turn.
    func cancelWork() {
        let work = state.withLock { state in
            state.cancelled = true
            return state.work
        }
        work?.cancel()
    }
}
