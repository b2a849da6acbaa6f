-- The merchant's event feed (GET /v1/events): every event gets `position`,
-- its place in the feed. SQLite has one writer, so commit order is the order
-- in which writes take the write lock; each insert takes the next position
-- inside its own write transaction (SQLiteStore.insert), so positions
-- increase in commit order and a reader's snapshot never holds a position
-- above one it lacks. A position is never changed: feed cursors carry it.
--
-- SQLite cannot add a NOT NULL column without a default to a table, so the
-- table is rebuilt. Events already stored enter the feed in the order they
-- were committed as far as the stored times tell: by time (each order's
-- running maximum, so that an order's events keep their seq order even if
-- the clock stepped back), then order id, then seq.

CREATE TABLE events_with_position (
    order_id     TEXT    NOT NULL REFERENCES orders (id),
    seq          INTEGER NOT NULL CHECK (seq >= 1),
    status       TEXT    NOT NULL CHECK (status IN ('initiated', 'processing', 'succeeded', 'failed')),
    previous     TEXT             CHECK (previous IN ('initiated', 'processing', 'succeeded', 'failed')),
    source       TEXT    NOT NULL CHECK (source IN ('api', 'webhook')),
    event_id     TEXT,
    reason       TEXT,
    at           INTEGER NOT NULL,
    occurred_at  INTEGER,
    -- The event's place in the merchant's feed: 1, 2, 3… in commit order.
    position     INTEGER NOT NULL CHECK (position >= 1),
    PRIMARY KEY (order_id, seq)
) WITHOUT ROWID;

INSERT INTO events_with_position
    (order_id, seq, status, previous, source, event_id, reason, at, occurred_at, position)
SELECT order_id, seq, status, previous, source, event_id, reason, at, occurred_at,
       row_number() OVER (ORDER BY committed, order_id, seq)
FROM (
    SELECT *, max(at) OVER (PARTITION BY order_id ORDER BY seq) AS committed FROM events
);

DROP TABLE events;
ALTER TABLE events_with_position RENAME TO events;

-- An event id is applied at most once per order, whoever reports it.
CREATE UNIQUE INDEX events_order_event_id ON events (order_id, event_id) WHERE event_id IS NOT NULL;
-- The feed is read by position, and each position is taken once.
CREATE UNIQUE INDEX events_position ON events (position);
