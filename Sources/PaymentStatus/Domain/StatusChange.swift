/// A status change as reported by the merchant's API or the provider's webhook.
public struct StatusChange: Sendable, Equatable {
    public var orderID: String
    public var status: PaymentStatus
    public var source: ChangeSource
    public var eventID: String?
    public var reason: String?
    public var occurredAt: Timestamp?

    public init(
        orderID: String, status: PaymentStatus, source: ChangeSource,
        eventID: String? = nil, reason: String? = nil, occurredAt: Timestamp? = nil
    ) {
        self.orderID = orderID
        self.status = status
        self.source = source
        self.eventID = eventID
        self.reason = reason
        self.occurredAt = occurredAt
    }
}
