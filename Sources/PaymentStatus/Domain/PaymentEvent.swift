/// One accepted change in an order's history. Events are append-only and
/// numbered per order from 1 (creation, `initiated`); the order's `version`
/// is the `seq` of its newest event.
public struct PaymentEvent: Sendable, Equatable {
    public var orderID: String
    public var seq: Int
    public var status: PaymentStatus
    public var previous: PaymentStatus?
    public var source: ChangeSource
    public var eventID: String?
    public var reason: String?
    public var at: Timestamp

    public init(
        orderID: String, seq: Int, status: PaymentStatus, previous: PaymentStatus?,
        source: ChangeSource, eventID: String?, reason: String?, at: Timestamp
    ) {
        self.orderID = orderID
        self.seq = seq
        self.status = status
        self.previous = previous
        self.source = source
        self.eventID = eventID
        self.reason = reason
        self.at = at
    }
}
