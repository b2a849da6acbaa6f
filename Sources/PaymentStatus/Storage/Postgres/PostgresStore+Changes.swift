import NIOCore
import PostgresNIO

/// Status changes on PostgreSQL, several in one transaction.
///
/// A transaction that sent a `NOTIFY` takes a server-wide lock at commit and
/// holds it until its commit record is flushed, so such commits follow one
/// another, each waiting for its own WAL flush: about a thousand a second on
/// this kind of machine, whatever the number of connections. The changes
/// waiting meanwhile therefore share one transaction (`ChangeQueue`), and
/// that transaction costs the same few round trips whatever it carries: one
/// statement locks every order of the batch, one (only when needed) looks up
/// their provider event ids, one writes every event, order, outbox message
/// and notification. A batch holds each order once, so each order's events
/// still commit one transaction after another, in `seq` order, which the
/// feed's positions rely on (PostgresStore+Feed.swift).
extension PostgresStore {
    /// Applies `changes`, of distinct orders, inside the transaction the
    /// caller opened on `connection` (and commits); their outcomes in the
    /// same order. Tests hold such a transaction open to commit it late.
    func apply(_ changes: [ChangeQueue.Change], on connection: PostgresConnection) async throws -> [ChangeOutcome] {
        let orders = try await lockOrders(Array(Set(changes.map(\.change.orderID))), on: connection)
        let originals = try await providerEvents(
            changes.compactMap { item in item.change.eventID.map { (item.change.orderID, $0) } }, on: connection)
        var outcomes: [ChangeOutcome] = []
        var appended: [AppendedEvent] = []
        for item in changes {
            let change = item.change
            guard let order = orders[change.orderID] else {
                outcomes.append(.orderNotFound)
                continue
            }
            if let eventID = change.eventID, let original = originals[EventKey(orderID: order.id, eventID: eventID)] {
                outcomes.append(.duplicate(order: order, original: original))
                continue
            }
            switch order.nextEvent(for: change, at: item.time) {
            case .failure(let refused):
                outcomes.append(.refused(refused.verdict, order: order))
            case .success(let event):
                let moved = order.asOf(event)
                outcomes.append(.applied(order: moved, event: event))
                appended.append(
                    AppendedEvent(
                        event: event, occurredAt: change.occurredAt, data: WireFormat.webhookData(event: event, order: moved),
                        notice: notice(event)))
            }
        }
        if !appended.isEmpty { try await write(appended, on: connection) }
        return outcomes
    }

    /// Locks the orders' rows, in id order so that two batches (on any
    /// instance) that share orders wait for each other instead of deadlocking.
    /// The row lock serialises every change of an order, across instances; a
    /// lock granted late reads the row as the previous holder committed it.
    private func lockOrders(_ ids: [String], on connection: PostgresConnection) async throws -> [String: Order] {
        let rows = try await connection.query("""
            SELECT \(unescaped: Self.orderColumns) FROM orders o WHERE o.id = ANY(\(ids)) ORDER BY o.id FOR UPDATE
            """, logger: logger).collect()
        var orders: [String: Order] = [:]
        for row in rows {
            var cells = Cells(row)
            let order = try cells.order()
            orders[order.id] = order
        }
        return orders
    }

    /// The events already applied under these provider event ids. A statement
    /// of its own, after the locks: its snapshot, taken once they were
    /// granted, sees an event that a transaction holding one before just
    /// committed (a join in the locking statement would not, as PostgreSQL
    /// re-reads only the locked rows when a lock is granted late).
    private func providerEvents(
        _ keys: [(orderID: String, eventID: String)], on connection: PostgresConnection
    ) async throws -> [EventKey: PaymentEvent] {
        guard !keys.isEmpty else { return [:] }
        let rows = try await connection.query("""
            SELECT \(unescaped: Self.eventColumns)
            FROM unnest(\(keys.map(\.orderID))::text[], \(keys.map(\.eventID))::text[]) AS k(order_id, event_id)
            JOIN events e ON e.order_id = k.order_id AND e.event_id = k.event_id AND e.event_id IS NOT NULL
            """, logger: logger).collect()
        var events: [EventKey: PaymentEvent] = [:]
        for event in try Self.decodeEvents(rows) {
            if let eventID = event.eventID { events[EventKey(orderID: event.orderID, eventID: eventID)] = event }
        }
        return events
    }

    /// The events, the orders' new states, their webhook messages (the
    /// outbox, one per enabled endpoint) and the announcements in one round
    /// trip; the announcements leave with the commit. The rows travel as one
    /// JSON array, which carries NULLs where PostgreSQL's arrays of the
    /// client library cannot.
    private func write(_ appended: [AppendedEvent], on connection: PostgresConnection) async throws {
        let rows = AppendedEvent.recordset(appended)
        _ = try await connection.query("""
            WITH input AS (
                SELECT * FROM json_to_recordset(\(rows)::json) AS i(
                    order_id text, seq bigint, status text, previous text, source text, event_id text,
                    reason text, at bigint, occurred_at bigint, data text, notice text)
            ), appended AS (
                INSERT INTO events (order_id, seq, status, previous, source, event_id, reason, at, occurred_at)
                SELECT order_id, seq, status, previous, source, event_id, reason, at, occurred_at FROM input
            ), moved AS (
                UPDATE orders o SET status = i.status, version = i.seq, updated_at = i.at
                FROM input i WHERE o.id = i.order_id
            ), outbox AS (
                \(unescaped: Self.outboxInsert)
                SELECT \(unescaped: Self.newMessageID), w.id, i.order_id, i.seq, i.data, i.at,
                       -- Not due before the order's pending message before it (see the due index).
                       GREATEST(i.at, (
                           SELECT max(p.next_attempt_at) FROM webhook_messages p
                           WHERE p.endpoint_id = w.id AND p.order_id = i.order_id AND p.status = 'pending'))
                FROM input i CROSS JOIN webhook_endpoints w WHERE w.status = 'enabled'
            )
            SELECT pg_notify(\(Self.channel), i.notice) FROM input i
            """, logger: logger).collect()
    }
}

/// An order's provider event id.
private struct EventKey: Hashable {
    let orderID: String
    let eventID: String
}

/// An event to append, with what its row and announcement carry.
private struct AppendedEvent {
    let event: PaymentEvent
    let occurredAt: Timestamp?
    let data: String
    let notice: String

    /// The JSON array the write statement reads, one object per event, its
    /// keys the recordset's columns; a nil is written as null and read as NULL.
    static func recordset(_ appended: [AppendedEvent]) -> String {
        var json = JSONWriter(capacity: 64 + appended.reduce(0) { $0 + $1.data.utf8.count + $1.notice.utf8.count + 192 })
        json.beginArray()
        for item in appended {
            let event = item.event
            json.beginObject()
            json.key("order_id"); json.string(event.orderID)
            json.key("seq"); json.integer(event.seq)
            json.key("status"); json.string(event.status.rawValue)
            json.key("previous"); json.string(event.previous?.rawValue)
            json.key("source"); json.string(event.source.rawValue)
            json.key("event_id"); json.string(event.eventID)
            json.key("reason"); json.string(event.reason)
            json.key("at"); json.integer(event.at.millisecondsSince1970)
            json.key("occurred_at")
            if let occurredAt = item.occurredAt { json.integer(occurredAt.millisecondsSince1970) } else { json.null() }
            json.key("data"); json.string(item.data)
            json.key("notice"); json.string(item.notice)
            json.endObject()
        }
        json.endArray()
        return String(buffer: json.buffer)
    }
}
