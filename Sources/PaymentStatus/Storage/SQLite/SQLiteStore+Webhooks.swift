import GRDB

/// Endpoints and delivery. Every write goes through the group commit, so the
/// worker's claims and outcomes share transactions with the requests' writes
/// instead of queueing for the write lock one by one.
extension SQLiteStore: WebhookStore {
    // MARK: - Endpoints

    public func insertEndpoint(_ endpoint: WebhookEndpoint) async throws {
        try await batcher.write { db in
            try db.cachedStatement(sql: """
                INSERT INTO webhook_endpoints (id, url, description, status, secret, created_at) VALUES (?, ?, ?, ?, ?, ?)
                """).execute(arguments: [
                    endpoint.id, endpoint.url, endpoint.description, endpoint.enabled ? "enabled" : "disabled",
                    endpoint.secret, endpoint.createdAt.millisecondsSince1970,
                ])
        }
    }

    public func endpoints() async throws -> [WebhookEndpoint] {
        try await dbWriter.read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM webhook_endpoints ORDER BY created_at, id"))
                .map(Self.decodeEndpoint)
        }
    }

    public func endpoint(id: String) async throws -> WebhookEndpoint? {
        try await dbWriter.read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM webhook_endpoints WHERE id = ?"), arguments: [id])
                .map(Self.decodeEndpoint)
        }
    }

    public func deleteEndpoint(id: String) async throws -> Bool {
        try await batcher.write { db in
            // The foreign keys cascade to its messages and their attempts.
            try db.cachedStatement(sql: "DELETE FROM webhook_endpoints WHERE id = ?").execute(arguments: [id])
            return db.changesCount > 0
        }
    }

    public func rotateSecret(endpointID: String, to secret: String, previousExpiresAt: Timestamp) async throws -> WebhookEndpoint? {
        try await batcher.write { db in
            try db.cachedStatement(sql: """
                UPDATE webhook_endpoints SET previous_secret = secret, previous_expires_at = ?, secret = ? WHERE id = ?
                """).execute(arguments: [previousExpiresAt.millisecondsSince1970, secret, endpointID])
            return try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM webhook_endpoints WHERE id = ?"), arguments: [endpointID])
                .map(Self.decodeEndpoint)
        }
    }

    // MARK: - Delivery

    public func claimMessages(owner: String, now: Timestamp, leaseUntil: Timestamp, limit: Int) async throws -> [OutboundMessage] {
        let now = now.millisecondsSince1970
        return try await batcher.write { db in
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT \(Self.outboundColumns)
                FROM webhook_messages m JOIN webhook_endpoints e ON e.id = m.endpoint_id
                WHERE m.status = 'pending' AND m.next_attempt_at <= ?1 AND (m.lease_until IS NULL OR m.lease_until <= ?1)
                  AND NOT EXISTS (
                      SELECT 1 FROM webhook_messages p
                      WHERE p.endpoint_id = m.endpoint_id AND p.order_id = m.order_id AND p.seq < m.seq AND p.status = 'pending')
                ORDER BY m.next_attempt_at, m.seq LIMIT ?2
                """), arguments: [now, limit])
            let lease = try db.cachedStatement(sql: "UPDATE webhook_messages SET lease_owner = ?, lease_until = ? WHERE id = ?")
            return try rows.map { row in
                let message = try Self.decodeOutbound(row, now: now)
                try lease.execute(arguments: [owner, leaseUntil.millisecondsSince1970, message.id])
                return message
            }
        }
    }

    public func record(_ outcomes: [AttemptOutcome], owner: String) async throws {
        guard !outcomes.isEmpty else { return }
        try await batcher.write { db in
            let moved = try db.cachedStatement(sql: """
                UPDATE webhook_messages SET status = ?, next_attempt_at = ?, finished_at = ?, attempt_count = attempt_count + 1,
                       lease_owner = NULL, lease_until = NULL
                WHERE id = ?
                """)
            // The order's later messages wait for this one: not due before it.
            let later = try db.cachedStatement(sql: """
                UPDATE webhook_messages SET next_attempt_at = ?1
                WHERE endpoint_id = ?2 AND order_id = ?3 AND seq > ?4 AND status = 'pending' AND next_attempt_at < ?1
                """)
            let attempt = try db.cachedStatement(sql: """
                INSERT INTO webhook_attempts (message_id, number, at, status_code, error, duration_ms)
                SELECT id, attempt_count, ?, ?, ?, ? FROM webhook_messages WHERE id = ?
                """)
            for outcome in outcomes {
                let (status, next, finished) = StoredValue.outcome(outcome.verdict, at: outcome.attempt.at)
                let message = outcome.message
                try moved.execute(arguments: [status, next, finished, message.id])
                // An endpoint deleted meanwhile took the message with it: nothing to record.
                guard db.changesCount > 0 else { continue }
                if let next { try later.execute(arguments: [next, message.endpointID, message.orderID, message.seq]) }
                try attempt.execute(arguments: [
                    outcome.attempt.at.millisecondsSince1970, outcome.attempt.statusCode, outcome.attempt.error,
                    outcome.attempt.durationMilliseconds, message.id,
                ])
            }
        }
    }

    public func releaseLeases(owner: String?) async throws {
        try await batcher.write { db in
            try db.execute(sql: """
                UPDATE webhook_messages SET lease_owner = NULL, lease_until = NULL
                WHERE lease_owner IS NOT NULL AND (?1 IS NULL OR lease_owner = ?1)
                """, arguments: [owner])
        }
    }
}
