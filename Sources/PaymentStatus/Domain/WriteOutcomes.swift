/// What creating an order did.
public enum CreateOrderOutcome: Sendable, Equatable {
    /// A new order was stored; its first event is returned with it.
    case created(Order, PaymentEvent)
    /// The id exists with the same amount and currency: a safe retry.
    case existing(Order)
    /// The id exists with a different amount or currency.
    case conflict(Order)
}

/// What applying a status change did.
public enum ChangeOutcome: Sendable, Equatable {
    /// The change was appended as `event`; `order` is the order after it.
    case applied(order: Order, event: PaymentEvent)
    /// The `event_id` was already recorded for this order; nothing changed.
    /// `original` is the event it produced and `order` the current order.
    case duplicate(order: Order, original: PaymentEvent)
    /// The transition table refused the change; nothing changed.
    case refused(TransitionVerdict, order: Order)
    /// No order has this id.
    case orderNotFound
}
