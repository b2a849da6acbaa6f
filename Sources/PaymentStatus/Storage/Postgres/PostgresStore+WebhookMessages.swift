import PostgresNIO

/// Inspection, replay, the backlog and retention of the outbox.
extension PostgresStore {
    public func messages(endpointID: String, status: WebhookMessageStatus?, limit: Int) async throws -> [WebhookMessageRecord]? {
        try await Self.translatingErrors {
            // One statement, so one snapshot: the endpoint, its messages and their attempts agree.
            let statuses = (status.map { [$0] } ?? WebhookMessageStatus.allCases).map(\.rawValue)
            let rows = try await rows("""
                WITH endpoint AS (SELECT id FROM webhook_endpoints WHERE id = \(endpointID)),
                -- Status by status down the (endpoint_id, status, created_at) index,
                -- each read stopping after the limit, then merged: a filter on "any
                -- status or this one" could not use the index and sorted them all.
                page AS (
                    SELECT m.* FROM unnest(\(statuses)::text[]) AS s (status) CROSS JOIN LATERAL (
                        SELECT m.id, m.order_id, m.seq, m.status, m.created_at, m.next_attempt_at FROM webhook_messages m
                        WHERE m.endpoint_id = \(endpointID) AND m.status = s.status
                        ORDER BY m.created_at DESC, m.seq DESC, m.id DESC LIMIT \(Int64(limit))) m
                    ORDER BY m.created_at DESC, m.seq DESC, m.id DESC LIMIT \(Int64(limit))
                )
                SELECT e.id, p.id, p.order_id, p.seq, p.status, p.created_at, p.next_attempt_at,
                       a.at, a.status_code, a.error, a.duration_ms
                FROM endpoint e LEFT JOIN page p ON true LEFT JOIN webhook_attempts a ON a.message_id = p.id
                ORDER BY p.created_at DESC, p.seq DESC, p.id DESC, a.number
                """)
            guard !rows.isEmpty else { return nil }
            var records: [WebhookMessageRecord] = []
            for row in rows {
                let (_, id, orderID, seq, status, createdAt, next, at, code, error, duration) = try row.decode(
                    (String, String?, String?, Int?, String?, Int64?, Int64?, Int64?, Int32?, String?, Int64?).self)
                guard let id, let orderID, let seq, let status, let createdAt else { continue }
                if records.last?.id != id {
                    records.append(WebhookMessageRecord(
                        id: id, orderID: orderID, seq: seq, status: try StoredValue.messageStatus(status),
                        createdAt: Timestamp(millisecondsSince1970: createdAt),
                        nextAttemptAt: next.map(Timestamp.init(millisecondsSince1970:)), attempts: []))
                }
                if let at, let duration {
                    records[records.count - 1].attempts.append(WebhookAttempt(
                        at: Timestamp(millisecondsSince1970: at), statusCode: code.map(Int.init), error: error,
                        durationMilliseconds: Int(duration)))
                }
            }
            return records
        }
    }

    public func retryMessage(endpointID: String, messageID: String, now: Timestamp) async throws -> Bool {
        try await Self.translatingErrors {
            // A lease held by a worker sending it already is left alone, so it is not sent twice at once.
            !(try await rows("""
                UPDATE webhook_messages
                SET status = 'pending', next_attempt_at = \(now.millisecondsSince1970), attempts_allowed = attempt_count + 1,
                    finished_at = NULL
                WHERE id = \(messageID) AND endpoint_id = \(endpointID) RETURNING id
                """)).isEmpty
        }
    }

    public func recoverMessages(endpointID: String, since: Timestamp, now: Timestamp) async throws -> Int? {
        try await Self.translatingErrors {
            let rows = try await rows("""
                WITH endpoint AS (SELECT id FROM webhook_endpoints WHERE id = \(endpointID)),
                queued AS (
                    UPDATE webhook_messages
                    SET status = 'pending', next_attempt_at = \(now.millisecondsSince1970),
                        attempts_allowed = attempt_count + 1, finished_at = NULL
                    WHERE endpoint_id = \(endpointID) AND status = 'failed' AND created_at >= \(since.millisecondsSince1970)
                    RETURNING 1
                )
                SELECT (SELECT count(*) FROM queued) FROM endpoint
                """)
            return try rows.first.map { Int(try $0.decode(Int64.self)) }
        }
    }

    public func outboxBacklog() async throws -> OutboxBacklog {
        try await Self.translatingErrors {
            let rows = try await rows("SELECT count(*), min(created_at) FROM webhook_messages WHERE status = 'pending'")
            let (count, oldest) = try rows.first?.decode((Int64, Int64?).self) ?? (Int64(0), nil)
            return OutboxBacklog(pending: Int(count), oldestPendingCreatedAt: oldest.map(Timestamp.init(millisecondsSince1970:)))
        }
    }

    public func deleteFinishedMessages(before cutoff: Timestamp, limit: Int) async throws -> Int {
        try await Self.translatingErrors {
            // SKIP LOCKED: instances pruning at once take different messages.
            let rows = try await rows("""
                WITH doomed AS (
                    SELECT id FROM webhook_messages WHERE status IN ('delivered', 'failed') AND finished_at < \(cutoff.millisecondsSince1970)
                    ORDER BY finished_at LIMIT \(Int64(limit)) FOR UPDATE SKIP LOCKED
                ), gone AS (
                    DELETE FROM webhook_messages m USING doomed d WHERE m.id = d.id RETURNING 1
                )
                SELECT count(*) FROM gone
                """)
            return Int(try rows.first?.decode(Int64.self) ?? 0)
        }
    }
}
