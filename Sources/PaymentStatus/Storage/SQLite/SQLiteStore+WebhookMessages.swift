import GRDB

/// Inspection, replay, the backlog and retention of the outbox.
extension SQLiteStore {
    public func messages(endpointID: String, status: WebhookMessageStatus?, limit: Int) async throws -> [WebhookMessageRecord]? {
        try await dbWriter.read { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM webhook_endpoints WHERE id = ?", arguments: [endpointID]) != nil else {
                return nil
            }
            // Newest first, read status by status down the (endpoint_id, status,
            // created_at) index and merged: each read stops after `limit` rows.
            // One query filtering on "any status or this one" could not use the
            // index and sorted every message the endpoint ever had.
            let page = try db.cachedStatement(sql: Self.pageOfStatus)
            var rows: [Row] = []
            for wanted in status.map({ [$0] }) ?? WebhookMessageStatus.allCases {
                rows += try Row.fetchAll(page, arguments: [endpointID, wanted.rawValue, limit])
            }
            rows.sort { a, b in
                let keyA: (Int64, Int, String) = (a["created_at"], a["seq"], a["id"])
                let keyB: (Int64, Int, String) = (b["created_at"], b["seq"], b["id"])
                return keyA > keyB
            }
            rows = Array(rows.prefix(limit))
            let attempts = try db.cachedStatement(sql: """
                SELECT at, status_code, error, duration_ms FROM webhook_attempts WHERE message_id = ? ORDER BY number
                """)
            return try rows.map { row in
                let id: String = row["id"]
                let next: Int64? = row["next_attempt_at"]
                return WebhookMessageRecord(
                    id: id, orderID: row["order_id"], seq: row["seq"],
                    status: try StoredValue.messageStatus(row["status"]),
                    createdAt: Timestamp(millisecondsSince1970: row["created_at"]),
                    nextAttemptAt: next.map(Timestamp.init(millisecondsSince1970:)),
                    attempts: try Row.fetchAll(attempts, arguments: [id]).map { attempt in
                        WebhookAttempt(
                            at: Timestamp(millisecondsSince1970: attempt["at"]), statusCode: attempt["status_code"],
                            error: attempt["error"], durationMilliseconds: attempt["duration_ms"])
                    })
            }
        }
    }

    public func retryMessage(endpointID: String, messageID: String, now: Timestamp) async throws -> Bool {
        try await batcher.write { db in
            // One more attempt, now; a lease held by a worker sending it
            // already is left alone, so it is not sent twice at once.
            try db.cachedStatement(sql: """
                UPDATE webhook_messages
                SET status = 'pending', next_attempt_at = ?, attempts_allowed = attempt_count + 1, finished_at = NULL
                WHERE id = ? AND endpoint_id = ?
                """).execute(arguments: [now.millisecondsSince1970, messageID, endpointID])
            return db.changesCount > 0
        }
    }

    public func recoverMessages(endpointID: String, since: Timestamp, now: Timestamp) async throws -> Int? {
        try await batcher.write { db -> Int? in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM webhook_endpoints WHERE id = ?", arguments: [endpointID]) != nil else {
                return nil
            }
            try db.cachedStatement(sql: """
                UPDATE webhook_messages
                SET status = 'pending', next_attempt_at = ?, attempts_allowed = attempt_count + 1, finished_at = NULL
                WHERE endpoint_id = ? AND status = 'failed' AND created_at >= ?
                """).execute(arguments: [now.millisecondsSince1970, endpointID, since.millisecondsSince1970])
            return db.changesCount
        }
    }

    public func outboxBacklog() async throws -> OutboxBacklog {
        try await dbWriter.read { db in
            let row = try Row.fetchOne(db, sql: Self.backlogQuery)
            let oldest: Int64? = row?["oldest"]
            return OutboxBacklog(pending: row?["pending"] ?? 0, oldestPendingCreatedAt: oldest.map(Timestamp.init(millisecondsSince1970:)))
        }
    }

    /// An endpoint's newest messages of one status.
    static let pageOfStatus = """
        SELECT id, order_id, seq, status, created_at, next_attempt_at FROM webhook_messages
        WHERE endpoint_id = ?1 AND status = ?2
        ORDER BY created_at DESC, seq DESC, id DESC LIMIT ?3
        """

    /// The gauges' query, every 2 s. It names the index of pending messages,
    /// which carries `created_at` (migration 0006): left to itself SQLite
    /// read the whole `(endpoint_id, status, created_at)` index, delivered
    /// messages of the retention's 30 days included (50 ms per million
    /// messages, for a handful pending).
    static let backlogQuery = """
        SELECT count(*) AS pending, min(created_at) AS oldest FROM webhook_messages INDEXED BY webhook_messages_due
        WHERE status = 'pending'
        """

    public func deleteFinishedMessages(before cutoff: Timestamp, limit: Int) async throws -> Int {
        try await batcher.write { db in
            // Attempts go with their messages (the foreign key cascades).
            try db.cachedStatement(sql: """
                DELETE FROM webhook_messages WHERE id IN (
                    SELECT id FROM webhook_messages WHERE status IN ('delivered', 'failed') AND finished_at < ? ORDER BY finished_at LIMIT ?)
                """).execute(arguments: [cutoff.millisecondsSince1970, limit])
            return db.changesCount
        }
    }

    // MARK: - Codec

    static func decodeEndpoint(_ row: Row) throws -> WebhookEndpoint {
        let previous: String? = row["previous_secret"]
        let expires: Int64? = row["previous_expires_at"]
        return WebhookEndpoint(
            id: row["id"], url: row["url"], description: row["description"],
            enabled: (row["status"] as String) == "enabled",
            createdAt: Timestamp(millisecondsSince1970: row["created_at"]), secret: row["secret"],
            previousSecret: previous.flatMap { value in
                expires.map { (value, Timestamp(millisecondsSince1970: $0)) }
            })
    }

    /// The columns `decodeOutbound` reads, in this order.
    static let outboundColumns = """
        m.id, m.endpoint_id, m.order_id, m.seq, m.data, m.created_at, m.attempt_count, m.attempts_allowed,
        e.url, e.secret, e.previous_secret, e.previous_expires_at
        """

    /// A row of `outboundColumns`, read by position: a claim decodes
    /// hundreds a turn, and GRDB looks a column up by name with a
    /// lowercased copy of it each time.
    static func decodeOutbound(_ row: Row, now: Int64) throws -> OutboundMessage {
        let previous: String? = row[10]
        let expires: Int64? = row[11]
        let secrets = WebhookEndpoint.signingSecrets(
            current: row[9], previous: previous, expiresAt: expires.map(Timestamp.init(millisecondsSince1970:)),
            at: Timestamp(millisecondsSince1970: now))
        return OutboundMessage(
            id: row[0], endpointID: row[1], orderID: row[2], seq: row[3], data: row[4],
            createdAt: Timestamp(millisecondsSince1970: row[5]), attemptCount: row[6],
            attemptsAllowed: row[7], url: row[8], secrets: secrets)
    }
}
