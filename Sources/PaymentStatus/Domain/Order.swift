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
}
