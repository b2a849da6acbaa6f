/// A stream token and when it stops working, as the order JSON and
/// `POST /v1/orders/{id}/stream-token` give them.
struct StreamGrant: Sendable {
    let token: String
    let expiresAt: Timestamp
}
