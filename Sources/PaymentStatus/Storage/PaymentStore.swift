/// Everything the service keeps. Implementations must make each write
/// durable before returning: callers acknowledge a change as soon as the
/// call returns, and only then push it to streams.
public protocol PaymentStore: Sendable {
    // MARK: - Writes

    /// Creates the order and its first event (`seq` 1, `initiated`), or finds
    /// the order already stored under the draft's id. `committed` gets the
    /// first event once its commit has returned, before this returns.
    func createOrder(
        _ draft: OrderDraft, id: String, at time: Timestamp, committed: @escaping @Sendable (PaymentEvent) -> Void
    ) async throws -> CreateOrderOutcome

    /// Validates and applies one status change in a single transaction:
    /// reads the current status, checks the transition table and the
    /// `event_id`, appends the event and bumps the order's version.
    /// `committed` gets the appended event once its commit has returned,
    /// before this returns: on the thread that committed, so that streams
    /// hear of it without waiting for the caller to be scheduled again.
    func apply(
        _ change: StatusChange, at time: Timestamp, committed: @escaping @Sendable (PaymentEvent) -> Void
    ) async throws -> ChangeOutcome

    /// The value stored under `name`, or `candidate` after storing it when
    /// there is none yet. `created` tells which happened.
    func secret(named name: String, orStore candidate: String) async throws -> (value: String, created: Bool)

    // MARK: - Reads

    /// The order, or nil when no order has this id.
    func order(id: String) async throws -> Order?

    /// The order with its whole history, oldest first, read from one snapshot
    /// so that `version` and the newest event always agree.
    func orderWithEvents(id: String) async throws -> (Order, [PaymentEvent])?

    /// The order's events with `seq > after`, oldest first, at most `limit`.
    func events(orderID: String, after seq: Int, limit: Int) async throws -> [PaymentEvent]

    /// The order's newest event, which is its current state.
    func latestEvent(orderID: String) async throws -> PaymentEvent?

    /// The merchant's feed: every committed event of every order after
    /// `cursor` (from the first when nil), in feed order, at most `limit`.
    /// A reader that follows the cursors of the pages sees each committed
    /// event exactly once, in commit order, even while writers on several
    /// instances commit out of order. Throws `MalformedCursor` for a cursor
    /// of another kind of store.
    func feed(after cursor: FeedCursor?, limit: Int) async throws -> FeedPage

    /// A secret stored on an earlier start, if any; read-only, for operator commands.
    func storedSecret(named name: String) async throws -> String?

    /// Throws unless the database answers a query.
    func checkReadiness() async throws

    // MARK: - Lifetime

    /// Applies the `.sql` files of this store's kind in `migrations` (the
    /// migrations folder) that the database has not seen; returns their names.
    func migrate(migrations: String) async throws -> [String]

    /// Lets in-flight writes finish and closes the connections.
    func close() async throws
}

extension PaymentStore {
    /// Creates the order; nobody is told of the commit.
    public func createOrder(_ draft: OrderDraft, id: String, at time: Timestamp) async throws -> CreateOrderOutcome {
        try await createOrder(draft, id: id, at: time, committed: { _ in })
    }

    /// Applies the change; nobody is told of the commit.
    public func apply(_ change: StatusChange, at time: Timestamp) async throws -> ChangeOutcome {
        try await apply(change, at: time, committed: { _ in })
    }
}
