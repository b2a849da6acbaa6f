import PostgresNIO

/// Endpoints and delivery, shared by every instance: a worker claims due
/// messages under `FOR UPDATE SKIP LOCKED` and leases them, so each message is
/// sent by one instance at a time, and another takes it once the lease ends.
extension PostgresStore: WebhookStore {
    static let endpointColumns = "w.id, w.url, w.description, w.status, w.created_at, w.secret, w.previous_secret, w.previous_expires_at"

    // MARK: - Endpoints

    public func insertEndpoint(_ endpoint: WebhookEndpoint) async throws {
        _ = try await Self.translatingErrors {
            try await rows("""
                INSERT INTO webhook_endpoints (id, url, description, status, secret, created_at)
                VALUES (\(endpoint.id), \(endpoint.url), \(endpoint.description), \(endpoint.enabled ? "enabled" : "disabled"),
                        \(endpoint.secret), \(endpoint.createdAt.millisecondsSince1970))
                """)
        }
    }

    public func endpoints() async throws -> [WebhookEndpoint] {
        try await Self.translatingErrors {
            try await rows("SELECT \(unescaped: Self.endpointColumns) FROM webhook_endpoints w ORDER BY w.created_at, w.id")
                .map(Self.decodeEndpoint)
        }
    }

    public func endpoint(id: String) async throws -> WebhookEndpoint? {
        try await Self.translatingErrors {
            try await rows("SELECT \(unescaped: Self.endpointColumns) FROM webhook_endpoints w WHERE w.id = \(id)")
                .first.map(Self.decodeEndpoint)
        }
    }

    public func deleteEndpoint(id: String) async throws -> Bool {
        try await Self.translatingErrors {
            // The foreign keys cascade to its messages and their attempts.
            !(try await rows("DELETE FROM webhook_endpoints WHERE id = \(id) RETURNING id")).isEmpty
        }
    }

    public func rotateSecret(endpointID: String, to secret: String, previousExpiresAt: Timestamp) async throws -> WebhookEndpoint? {
        try await Self.translatingErrors {
            try await rows("""
                UPDATE webhook_endpoints w
                SET previous_secret = w.secret, previous_expires_at = \(previousExpiresAt.millisecondsSince1970), secret = \(secret)
                WHERE w.id = \(endpointID) RETURNING \(unescaped: Self.endpointColumns)
                """).first.map(Self.decodeEndpoint)
        }
    }

    // MARK: - Delivery

    public func claimMessages(owner: String, now: Timestamp, leaseUntil: Timestamp, limit: Int) async throws -> [OutboundMessage] {
        let now = now.millisecondsSince1970
        return try await Self.translatingErrors {
            // SKIP LOCKED: instances claiming at once take different messages
            // instead of queueing on one another's rows. A row another
            // instance leased meanwhile is re-checked against the lease when
            // its lock is granted, so no message is claimed twice.
            let rows = try await rows("""
                WITH due AS (
                    SELECT m.id FROM webhook_messages m
                    WHERE m.status = 'pending' AND m.next_attempt_at <= \(now)
                      AND (m.lease_until IS NULL OR m.lease_until <= \(now))
                      AND NOT EXISTS (
                          SELECT 1 FROM webhook_messages p
                          WHERE p.endpoint_id = m.endpoint_id AND p.order_id = m.order_id AND p.seq < m.seq AND p.status = 'pending')
                    ORDER BY m.next_attempt_at, m.seq LIMIT \(Int64(limit))
                    FOR UPDATE OF m SKIP LOCKED
                )
                UPDATE webhook_messages m SET lease_owner = \(owner), lease_until = \(leaseUntil.millisecondsSince1970)
                FROM due, webhook_endpoints w
                WHERE m.id = due.id AND w.id = m.endpoint_id
                RETURNING m.id, m.endpoint_id, m.order_id, m.seq, m.data, m.created_at, m.attempt_count, m.attempts_allowed,
                          w.url, w.secret, w.previous_secret, w.previous_expires_at
                """)
            return try rows.map { row in
                let (id, endpointID, orderID, seq, data, createdAt, attemptCount, allowed, url, secret, previous, expires) =
                    try row.decode((String, String, String, Int, String, Int64, Int, Int?, String, String, String?, Int64?).self)
                return OutboundMessage(
                    id: id, endpointID: endpointID, orderID: orderID, seq: seq, data: data,
                    createdAt: Timestamp(millisecondsSince1970: createdAt), attemptCount: attemptCount, attemptsAllowed: allowed,
                    url: url,
                    secrets: WebhookEndpoint.signingSecrets(
                        current: secret, previous: previous, expiresAt: expires.map(Timestamp.init(millisecondsSince1970:)),
                        at: Timestamp(millisecondsSince1970: now)))
            }
        }
    }

    public func record(_ outcomes: [AttemptOutcome], owner: String) async throws {
        guard !outcomes.isEmpty else { return }
        // One outcome is one statement, atomic on its own: no BEGIN and COMMIT round trips.
        if outcomes.count == 1 {
            _ = try await rows(Self.recording(outcomes[0]))
            return
        }
        // One transaction, so one commit for the lot; the statements go one
        // after another on its connection.
        let logger = self.logger
        try await transaction { connection in
            for outcome in outcomes {
                _ = try await connection.query(Self.recording(outcome), logger: logger).collect()
            }
        }
    }

    /// One statement: the message's new state and its attempt, numbered by
    /// the new count. An endpoint deleted meanwhile took the message with it,
    /// and then nothing is written.
    static func recording(_ outcome: AttemptOutcome) -> PostgresQuery {
        let (status, next, finished) = StoredValue.outcome(outcome.verdict, at: outcome.attempt.at)
        let (message, attempt) = (outcome.message, outcome.attempt)
        return """
            WITH moved AS (
                UPDATE webhook_messages
                SET status = \(status), next_attempt_at = \(next), finished_at = \(finished),
                    attempt_count = attempt_count + 1, lease_owner = NULL, lease_until = NULL
                WHERE id = \(message.id) RETURNING id, attempt_count
            ), later AS (
                -- The order's later messages wait for this one: not due before it.
                UPDATE webhook_messages SET next_attempt_at = \(next)
                WHERE \(next)::bigint IS NOT NULL AND endpoint_id = \(message.endpointID) AND order_id = \(message.orderID)
                  AND seq > \(message.seq) AND status = 'pending' AND next_attempt_at < \(next)
            )
            INSERT INTO webhook_attempts (message_id, number, at, status_code, error, duration_ms)
            SELECT id, attempt_count, \(attempt.at.millisecondsSince1970), \(attempt.statusCode.map(Int32.init)),
                   \(attempt.error), \(Int64(attempt.durationMilliseconds))
            FROM moved
            """
    }

    public func releaseLeases(owner: String?) async throws {
        _ = try await Self.translatingErrors {
            try await rows("""
                UPDATE webhook_messages SET lease_owner = NULL, lease_until = NULL
                WHERE lease_owner IS NOT NULL AND (\(owner)::text IS NULL OR lease_owner = \(owner))
                """)
        }
    }

    static func decodeEndpoint(_ row: PostgresRow) throws -> WebhookEndpoint {
        let (id, url, description, status, createdAt, secret, previous, expires) = try row.decode(
            (String, String, String?, String, Int64, String, String?, Int64?).self)
        return WebhookEndpoint(
            id: id, url: url, description: description, enabled: status == "enabled",
            createdAt: Timestamp(millisecondsSince1970: createdAt), secret: secret,
            previousSecret: previous.flatMap { value in expires.map { (value, Timestamp(millisecondsSince1970: $0)) } })
    }
}
