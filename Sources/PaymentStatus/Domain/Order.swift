/// A payment order as merchants, checkout pages and providers see it.
public struct Order: Sendable, Equatable {
    public var id: String
    public var status: PaymentStatus
    public var amount: Int64
    public var currency: String
    public var metadata: [String: String]
    public var version: Int
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public init(
        id: String, status: PaymentStatus, amount: Int64, currency: String,
        metadata: [String: String], version: Int, createdAt: Timestamp, updatedAt: Timestamp
    ) {
        self.id = id
        self.status = status
        self.amount = amount
        self.currency = currency
        self.metadata = metadata
        self.version = version
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// The order as it stood right after `event` was applied; used to replay
    /// the original answer of an idempotent request.
    public func asOf(_ event: PaymentEvent) -> Order {
        var order = self
        order.status = event.status
        order.version = event.seq
        order.updatedAt = event.at
        return order
    }

    /// The event that `change` appends to this order at `time` (the next
    /// `seq`), or the transition table's verdict when it refuses the move.
    /// Every store applies a change through this one rule.
    public func nextEvent(for change: StatusChange, at time: Timestamp) -> Result<PaymentEvent, TransitionRefused> {
        let verdict = status.verdict(movingTo: change.status)
        guard verdict == .allowed else { return .failure(TransitionRefused(verdict: verdict)) }
        return .success(PaymentEvent(
            orderID: id, seq: version + 1, status: change.status, previous: status,
            source: change.source, eventID: change.eventID, reason: change.reason, at: time))
    }
}

/// Why the transition table refused a change (never `.allowed`).
public struct TransitionRefused: Error, Equatable, Sendable {
    public let verdict: TransitionVerdict
}
