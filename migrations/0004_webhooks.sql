-- Webhooks to the merchant: the endpoints it registered, the outbox of
-- messages (one per committed event and enabled endpoint, inserted in the
-- event's own transaction, see SQLiteStore+Outbox.swift) and every attempt
-- to deliver one. Times are integer milliseconds since the Unix epoch.

CREATE TABLE webhook_endpoints (
    id                   TEXT    PRIMARY KEY NOT NULL,
    url                  TEXT    NOT NULL,
    description          TEXT,
    status               TEXT    NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
    -- `whsec_` + base64 of the key: HMAC keys must be readable to sign with.
    secret               TEXT    NOT NULL,
    -- The secret before the last rotation, which also signs until it expires.
    previous_secret      TEXT,
    previous_expires_at  INTEGER,
    created_at           INTEGER NOT NULL
) WITHOUT ROWID;

-- No foreign key to orders: retention may delete an order whose messages are
-- still kept, and a message carries its payload (`data`, the event and the
-- order after it) as it was at commit, so it is sent the same on every attempt.
CREATE TABLE webhook_messages (
    id                TEXT    PRIMARY KEY NOT NULL,
    endpoint_id       TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    order_id          TEXT    NOT NULL,
    seq               INTEGER NOT NULL,
    data              TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    status            TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempt_count     INTEGER NOT NULL DEFAULT 0,
    -- Set by a manual retry or a recovery: the attempts after which it fails
    -- again (one more); NULL means the whole retry schedule.
    attempts_allowed  INTEGER,
    next_attempt_at   INTEGER,
    -- Who is sending it now and until when; another worker takes it after that.
    lease_owner       TEXT,
    lease_until       INTEGER,
    finished_at       INTEGER
) WITHOUT ROWID;

-- The worker's scan: due pending messages, soonest first, an order's earlier
-- seq first. A message is never due before the pending ones before it in its
-- order (an insert and a rescheduled retry push the later ones back), so
-- the scan meets few messages that must still wait for an earlier one.
CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_at, seq) WHERE status = 'pending';
-- Per order and endpoint in seq order: "is an earlier one still pending?"
CREATE INDEX webhook_messages_order ON webhook_messages (endpoint_id, order_id, seq);
-- Inspection by status, newest first.
CREATE INDEX webhook_messages_endpoint ON webhook_messages (endpoint_id, status, created_at);
-- Retention: delivered messages that finished longest ago.
CREATE INDEX webhook_messages_delivered ON webhook_messages (finished_at) WHERE status = 'delivered';

CREATE TABLE webhook_attempts (
    message_id   TEXT    NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
    number       INTEGER NOT NULL CHECK (number >= 1),
    at           INTEGER NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL,
    PRIMARY KEY (message_id, number)
) WITHOUT ROWID;
