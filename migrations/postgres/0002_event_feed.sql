-- The merchant's event feed (GET /v1/events): every event gets a feed
-- position (feed_xid, feed_id), set by the trigger below whatever inserts
-- the event, and never changed afterwards: feed cursors carry it.
--
-- Why not a sequence alone: with several writers, sequence values are taken
-- at insert time and transactions commit out of that order, so a reader
-- that has passed id 11 would never see id 10 committing a moment later.
-- Instead each event records the inserting transaction (feed_xid, at least
-- pg_current_xact_id()), and readers hand out only events whose feed_xid is
-- below the oldest transaction still in flight in their snapshot
-- (pg_snapshot_xmin(pg_current_snapshot())), ordered by (feed_xid, feed_id).
-- Every transaction below that horizon has ended, so nothing can ever
-- commit before a position a reader has passed. The argument in full is in
-- Sources/PaymentStatus/Storage/Postgres/PostgresStore+Feed.swift.

CREATE SEQUENCE events_feed_id AS BIGINT;

ALTER TABLE events ADD COLUMN feed_xid xid8, ADD COLUMN feed_id BIGINT;

-- Events already stored enter the feed under this migration's transaction,
-- in the order they were committed as far as the stored times tell: by time
-- (each order's running maximum, so that an order's events keep their seq
-- order even if the clock stepped back), then order id, then seq.
UPDATE events e SET feed_xid = pg_current_xact_id(), feed_id = ordered.position
FROM (
    SELECT order_id, seq, row_number() OVER (ORDER BY committed, order_id, seq) AS position
    FROM (SELECT order_id, seq, max(at) OVER (PARTITION BY order_id ORDER BY seq) AS committed FROM events) timed
) ordered
WHERE e.order_id = ordered.order_id AND e.seq = ordered.seq;

SELECT setval('events_feed_id', coalesce(max(feed_id), 0) + 1, false) FROM events;
ALTER SEQUENCE events_feed_id OWNED BY events.feed_id;

ALTER TABLE events ALTER COLUMN feed_xid SET NOT NULL, ALTER COLUMN feed_id SET NOT NULL;

-- The feed is read in this order, and each position is taken once.
CREATE UNIQUE INDEX events_feed ON events (feed_xid, feed_id);

-- feed_xid is the inserting transaction's id, raised to the feed_xid of the
-- order's previous event when that is higher. A transaction can take its id
-- before it waits for the order's row lock (SELECT … FOR UPDATE assigns it),
-- so it may hold a lower id than the transaction that held the lock before
-- it; raising it keeps each order's events in seq order in the feed. It is
-- never lowered, which is what the readers' horizon relies on. feed_id comes
-- from the sequence at insert time: after the previous event's, which was
-- inserted before its transaction committed and let go of the lock.
CREATE FUNCTION events_feed_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.feed_xid := greatest(
        pg_current_xact_id(),
        (SELECT feed_xid FROM events WHERE order_id = NEW.order_id AND seq = NEW.seq - 1));
    NEW.feed_id := nextval('events_feed_id');
    RETURN NEW;
END
$$;

CREATE TRIGGER events_feed_position BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_feed_position();

-- A position never changes once taken.
CREATE FUNCTION events_feed_position_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.feed_xid <> OLD.feed_xid OR NEW.feed_id <> OLD.feed_id THEN
        RAISE EXCEPTION 'an event''s feed position never changes';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER events_feed_position_fixed BEFORE UPDATE OF feed_xid, feed_id ON events
    FOR EACH ROW EXECUTE FUNCTION events_feed_position_fixed();
