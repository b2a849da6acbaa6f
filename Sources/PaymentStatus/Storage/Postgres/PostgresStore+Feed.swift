import PostgresNIO

/// The merchant's feed on PostgreSQL, where several instances write at once.
///
/// Each event carries a feed position `(feed_xid, feed_id)`, set by the
/// `events_feed_position` trigger (migrations/postgres/0002_event_feed.sql):
/// `feed_xid` is the inserting transaction's `pg_current_xact_id()` (a
/// 64-bit transaction id that never wraps), raised to the `feed_xid` of the
/// order's previous event when that is higher; `feed_id` comes from a
/// sequence. The feed is every event in `(feed_xid, feed_id)` order, and a
/// read hands out only the events whose `feed_xid` is below its snapshot's
/// `xmin`, the oldest transaction still in flight when the snapshot was
/// taken, read in the same statement and so in the same snapshot.
///
/// Why no reader can skip a committed event. A read with snapshot S hands
/// out positions in order, up to one whose `feed_xid` is below `xmin(S)`.
/// Take any event E whose position is lower than one handed out. Then
/// E.feed_xid ≤ that position's feed_xid < xmin(S), and E's transaction id
/// is at most E.feed_xid (the trigger only raises it). Every transaction
/// with an id below xmin(S) had ended when S was taken: so E had either
/// committed before S, and S sees it and hands it out in order (now or in an
/// earlier page), or it never commits. A transaction that had not yet taken
/// its id by S takes one at or above xmin(S), and its events' feed_xid is at
/// least that. So nothing can appear later below a cursor already passed;
/// with strictly increasing, unique positions (the unique index), a reader
/// that follows cursors sees each committed event once. A sequence alone
/// fails exactly here: ids are taken at insert, commits finish in another
/// order, and a reader past id 11 never sees id 10 committing just after.
///
/// Why it is commit order. An order's events are in `seq` order: event n+1
/// is inserted under the order's row lock, after event n's transaction
/// committed, so its trigger sees event n's feed_xid and takes at least that,
/// and its sequence value is taken after event n's. An event committed before
/// another transaction began comes before that transaction's events (their
/// ids are higher than any feed_xid stored before them). Events of
/// transactions in flight together are ordered by their transaction ids.
///
/// The cost: an event is handed out once every transaction that began
/// before its own has ended, anywhere on the server (transaction ids are
/// server-wide). A long write transaction holds the feed back while it
/// lasts, never loses anything; the live feed reads again while events wait
/// behind one (`FeedPage.held`). Keep write transactions short
/// (`idle_in_transaction_session_timeout`) and leave no prepared transaction
/// behind. A cursor is the stored position, so it survives restarts, schema
/// migrations and `pg_upgrade` (which keeps the transaction counter); a
/// logical dump restored into another server starts a new counter, and
/// feed readers must then start again from the beginning.
extension PostgresStore {
    public func feed(after cursor: FeedCursor?, limit: Int) async throws -> FeedPage {
        let limit = max(1, min(limit, Int(Int32.max) - 1))
        let after = cursor ?? FeedCursor(transaction: 0, position: 0)
        return try await Self.translatingErrors {
            let rows = try await rows(Self.feedQuery(after: after, limit: limit + 1))
            var events: [FeedEvent] = []
            var held = false
            for row in rows {
                var cells = Cells(row)
                let settled: Bool = try cells.next()
                guard settled else {
                    // Ordered by feed_xid: every later row is beyond the horizon too.
                    held = true
                    break
                }
                let xid = try cells.next(String.self)
                guard let transaction = UInt64(xid) else { throw StoreUnavailable("feed_xid '\(xid)' is not an xid8") }
                let position = FeedCursor(transaction: transaction, position: try cells.next())
                events.append(FeedEvent(cursor: position, event: try cells.event()))
            }
            let hasMore = events.count > limit
            return FeedPage(events: Array(events.prefix(limit)), hasMore: hasMore, held: held && !hasMore)
        }
    }

    /// The events after `after` in feed order, each with whether it lies
    /// below the snapshot's horizon: one statement, so the rows and the
    /// horizon come from one snapshot.
    static func feedQuery(after: FeedCursor, limit: Int) -> PostgresQuery {
        """
        SELECT e.feed_xid < pg_snapshot_xmin(pg_current_snapshot()), e.feed_xid::text, e.feed_id,
               \(unescaped: eventColumns)
        FROM events e
        WHERE (e.feed_xid, e.feed_id) > (\(String(after.transaction))::text::xid8, \(after.position))
        ORDER BY e.feed_xid, e.feed_id
        LIMIT \(limit)
        """
    }
}
