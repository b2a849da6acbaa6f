-- Orders and their append-only history.
--
-- Times are integer milliseconds since the Unix epoch (UTC); statuses are the
-- lowercase names of the contract. Each order's events are numbered from 1 by
-- `seq`; `orders.version` always equals the `seq` of the order's newest event,
-- and both change in the same transaction.

CREATE TABLE orders (
    id          TEXT    PRIMARY KEY NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('initiated', 'processing', 'succeeded', 'failed')),
    amount      INTEGER NOT NULL CHECK (amount > 0),
    currency    TEXT    NOT NULL CHECK (length(currency) = 3),
    metadata    TEXT    NOT NULL DEFAULT '{}',
    version     INTEGER NOT NULL CHECK (version >= 1),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE events (
    order_id     TEXT    NOT NULL REFERENCES orders (id),
    seq          INTEGER NOT NULL CHECK (seq >= 1),
    status       TEXT    NOT NULL CHECK (status IN ('initiated', 'processing', 'succeeded', 'failed')),
    previous     TEXT             CHECK (previous IN ('initiated', 'processing', 'succeeded', 'failed')),
    source       TEXT    NOT NULL CHECK (source IN ('api', 'webhook')),
    event_id     TEXT,
    reason       TEXT,
    at           INTEGER NOT NULL,
    -- When the provider says the change happened (webhooks only); kept for audits.
    occurred_at  INTEGER,
    PRIMARY KEY (order_id, seq)
) WITHOUT ROWID;

-- An event id is applied at most once per order, whoever reports it.
CREATE UNIQUE INDEX events_order_event_id ON events (order_id, event_id) WHERE event_id IS NOT NULL;

-- Secrets generated on first start (API token, stream and webhook secrets)
-- when the environment does not provide them.
CREATE TABLE settings (
    name   TEXT PRIMARY KEY NOT NULL,
    value  TEXT NOT NULL
) WITHOUT ROWID;
