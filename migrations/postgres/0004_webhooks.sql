-- The same schema as SQLite's ../0004_webhooks.sql, in PostgreSQL's types.
-- Several instances share the outbox: a worker claims due messages with
-- FOR UPDATE SKIP LOCKED and a lease (PostgresStore+Webhooks.swift).
--
-- Webhooks to the merchant: the endpoints it registered, the outbox of
-- messages (one per committed event and enabled endpoint, inserted in the
-- event's own transaction, see PostgresStore+Writes.swift) and every attempt
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
    previous_expires_at  BIGINT,
    created_at           BIGINT NOT NULL
);

-- No foreign key to orders: retention may delete an order whose messages are
-- still kept, and a message carries its payload (`data`, the event and the
-- order after it) as it was at commit, so it is sent the same on every attempt.
CREATE TABLE webhook_messages (
    id                TEXT    PRIMARY KEY NOT NULL,
    endpoint_id       TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    order_id          TEXT    NOT NULL,
    seq               BIGINT NOT NULL,
    data              TEXT    NOT NULL,
    created_at        BIGINT NOT NULL,
    status            TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempt_count     BIGINT NOT NULL DEFAULT 0,
    -- Set by a manual retry or a recovery: the attempts after which it fails
    -- again (one more); NULL means the whole retry schedule.
    attempts_allowed  BIGINT,
    next_attempt_at   BIGINT,
    -- Who is sending it now and until when; another worker takes it after that.
    lease_owner       TEXT,
    lease_until       BIGINT,
    finished_at       BIGINT
);

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
    number       BIGINT NOT NULL CHECK (number >= 1),
    at           BIGINT NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  BIGINT NOT NULL,
    PRIMARY KEY (message_id, number)
);
