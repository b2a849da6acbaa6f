/// A message claimed for delivery, with what its attempt needs: the payload
/// to send and where, and how many attempts it has had.
public struct OutboundMessage: Sendable, Equatable {
    public var id: String
    public var endpointID: String
    public var orderID: String
    public var seq: Int
    /// `{"event":…,"order":…}`, rendered when the event committed.
    public var data: String
    public var createdAt: Timestamp
    /// Attempts made before this one.
    public var attemptCount: Int
    /// Set after a manual retry or a recovery: fail again after this many attempts.
    public var attemptsAllowed: Int?
    public var url: String
    public var secrets: [String]
}

/// One attempt's result, as stored and shown.
public struct WebhookAttempt: Sendable, Equatable {
    public var at: Timestamp
    /// The receiver's status code; nil when no answer came (then `error` says why).
    public var statusCode: Int?
    public var error: String?
    public var durationMilliseconds: Int

    public init(at: Timestamp, statusCode: Int?, error: String?, durationMilliseconds: Int) {
        self.at = at
        self.statusCode = statusCode
        self.error = error
        self.durationMilliseconds = durationMilliseconds
    }

    /// Delivered: a 2xx.
    public var succeeded: Bool { statusCode.map { (200..<300).contains($0) } ?? false }
}

/// An attempt made, with its message and what becomes of it: what the
/// store records when the attempt ends.
public struct AttemptOutcome: Sendable {
    public var message: OutboundMessage
    public var attempt: WebhookAttempt
    public var verdict: MessageVerdict

    public init(message: OutboundMessage, attempt: WebhookAttempt, verdict: MessageVerdict) {
        self.message = message
        self.attempt = attempt
        self.verdict = verdict
    }
}

/// What becomes of a message after an attempt.
public enum MessageVerdict: Sendable, Equatable {
    case delivered
    case retry(at: Timestamp)
    case failed
}

/// A message as the inspection endpoint shows it, with its attempts oldest first.
public struct WebhookMessageRecord: Sendable, Equatable {
    public var id: String
    public var orderID: String
    public var seq: Int
    public var status: WebhookMessageStatus
    public var createdAt: Timestamp
    public var nextAttemptAt: Timestamp?
    public var attempts: [WebhookAttempt]
}

/// The outbox's backlog, for the metrics.
public struct OutboxBacklog: Sendable, Equatable {
    public var pending: Int
    /// When the oldest pending message was created, nil when none is pending.
    public var oldestPendingCreatedAt: Timestamp?
}

extension OutboundMessage {
    /// `msg_`, the time, and 16 random letters and digits (95 bits): the
    /// `webhook-id`, unique per endpoint and event. The time comes first so
    /// that the outbox's primary key grows at its end (see `GeneratedID`).
    static func generateID(at time: Timestamp) -> String { "msg_" + GeneratedID.timeOrdered(at: time, randomCount: 16) }
}
