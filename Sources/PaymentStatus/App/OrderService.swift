/// The write path: every change goes to the store first and reaches the
/// streams only after its commit has returned.
public struct OrderService: Sendable {
    public let store: any PaymentStore
    public let bus: any EventBus
    let metrics: ServiceMetrics
    /// Woken by every commit, so the event's webhook messages go out at once.
    let webhooks: WebhookDeliveryService?
    /// Told of a change that failed, which on PostgreSQL may have committed
    /// all the same (an answer lost after the commit was sent): its order is
    /// read again for the streams (`PostgresRelay.recheck`).
    let uncertain: (@Sendable (String) -> Void)?

    public init(
        store: any PaymentStore, bus: any EventBus, metrics: ServiceMetrics, webhooks: WebhookDeliveryService? = nil,
        uncertain: (@Sendable (String) -> Void)? = nil
    ) {
        self.store = store
        self.bus = bus
        self.metrics = metrics
        self.webhooks = webhooks
        self.uncertain = uncertain
    }

    /// Creates the order, generating an id when the draft has none.
    public func create(_ draft: OrderDraft) async throws -> CreateOrderOutcome {
        try await store.createOrder(draft, id: draft.id ?? Self.generateOrderID(), at: .now(), committed: published)
    }

    /// Applies a status change from either source.
    public func apply(_ change: StatusChange) async throws -> ChangeOutcome {
        do {
            return try await store.apply(change, at: .now(), committed: published)
        } catch {
            uncertain?(change.orderID)
            throw error
        }
    }

    /// Hands a committed event to the streams and counts it; the store calls
    /// it right after the commit returned.
    private var published: @Sendable (PaymentEvent) -> Void {
        { [bus, metrics, webhooks] event in
            bus.publish(event)
            webhooks?.wake()
            metrics.transitionStored(event)
        }
    }

    /// `ord_` and 24 random characters of the id alphabet (about 143 bits).
    static func generateOrderID() -> String {
        "ord_" + GeneratedID.random(24)
    }
}
