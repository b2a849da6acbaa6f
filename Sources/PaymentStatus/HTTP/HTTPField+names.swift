import HTTPTypes

/// The header names of the contract that HTTPTypes does not define.
extension HTTPField.Name {
    /// Set on an answer replayed for an already recorded `event_id` or order id.
    static let idempotentReplayed = Self("Idempotent-Replayed")!
    static let lastEventID = Self("Last-Event-ID")!
    /// Tells nginx-style proxies not to buffer the event stream.
    static let xAccelBuffering = Self("X-Accel-Buffering")!
    static let paymentSignature = Self("Payment-Signature")!
    static let xRequestID = Self("X-Request-Id")!
}
