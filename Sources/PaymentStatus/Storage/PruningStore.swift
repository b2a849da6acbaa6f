/// A store that can forget finished payments: what retention
/// (`PAYMENT_RETENTION_DAYS`) runs on.
public protocol PruningStore: PaymentStore {
    /// Deletes, in one transaction, at most `limit` orders whose final status
    /// (`succeeded` or `failed`) was reached before `cutoff`, oldest first,
    /// with every event of theirs. An order that is not final is never
    /// touched, however old: it may still change.
    func deleteFinishedOrders(finishedBefore cutoff: Timestamp, limit: Int) async throws -> PrunedOrders
}

/// What one retention batch deleted.
public struct PrunedOrders: Sendable, Equatable {
    public var orders: Int
    public var events: Int

    public init(orders: Int, events: Int) {
        self.orders = orders
        self.events = events
    }
}

/// A retention batch was refused by the database (a row elsewhere still
/// refers to an order it would delete); the batch changed nothing.
public struct PruningRefused: Error, CustomStringConvertible, Sendable {
    public let description: String
}
