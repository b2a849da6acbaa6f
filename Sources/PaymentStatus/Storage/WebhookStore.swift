/// What webhooks to the merchant keep: the endpoints, the outbox and its
/// attempts. Messages themselves are written by the store's own `createOrder`
/// and `apply`, in the event's transaction; everything here comes after.
public protocol WebhookStore: PaymentStore {
    // MARK: - Endpoints

    func insertEndpoint(_ endpoint: WebhookEndpoint) async throws
    /// Every endpoint, oldest first.
    func endpoints() async throws -> [WebhookEndpoint]
    func endpoint(id: String) async throws -> WebhookEndpoint?
    /// Deletes the endpoint with its messages and their attempts; false when there was none.
    func deleteEndpoint(id: String) async throws -> Bool
    /// Makes `secret` the current one; the one it replaces signs until
    /// `previousExpiresAt`. Nil when there is no such endpoint.
    func rotateSecret(endpointID: String, to secret: String, previousExpiresAt: Timestamp) async throws -> WebhookEndpoint?

    // MARK: - Delivery

    /// Leases to `owner` until `leaseUntil` at most `limit` pending messages
    /// that are due at `now` and not leased by anyone, each the earliest
    /// pending `seq` of its order at its endpoint, so an order's messages go
    /// one after another while other orders' go beside them.
    func claimMessages(owner: String, now: Timestamp, leaseUntil: Timestamp, limit: Int) async throws -> [OutboundMessage]
    /// Stores attempts and what became of their messages, and ends their
    /// leases, in one write: the attempts of a drain end many at a time.
    func record(_ outcomes: [AttemptOutcome], owner: String) async throws
    /// Ends every lease `owner` holds (all leases when nil): a worker that
    /// stops, or SQLite's only worker starting after a crash.
    func releaseLeases(owner: String?) async throws

    // MARK: - Inspection and replay

    /// The endpoint's messages, newest first, with their attempts; nil for an unknown endpoint.
    func messages(endpointID: String, status: WebhookMessageStatus?, limit: Int) async throws -> [WebhookMessageRecord]?
    /// Queues one more attempt of the message now; false when the endpoint has no such message.
    func retryMessage(endpointID: String, messageID: String, now: Timestamp) async throws -> Bool
    /// Queues one more attempt of every failed message created since `since`;
    /// nil for an unknown endpoint, else how many were queued.
    func recoverMessages(endpointID: String, since: Timestamp, now: Timestamp) async throws -> Int?
    /// Pending messages and the oldest of them.
    func outboxBacklog() async throws -> OutboxBacklog
    /// Deletes at most `limit` messages delivered, or given up as failed,
    /// before `cutoff`, with their attempts; returns how many went.
    func deleteFinishedMessages(before cutoff: Timestamp, limit: Int) async throws -> Int
}

extension WebhookStore {
    /// Stores one attempt and what became of its message, and ends the lease.
    public func record(_ attempt: WebhookAttempt, of message: OutboundMessage, verdict: MessageVerdict, owner: String) async throws {
        try await record([AttemptOutcome(message: message, attempt: attempt, verdict: verdict)], owner: owner)
    }
}
