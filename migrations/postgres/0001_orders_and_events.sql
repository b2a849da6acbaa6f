-- Orders and their append-only history: the same schema as SQLite's
-- ../0001_orders_and_events.sql, in PostgreSQL's types.
--
-- Times are integer milliseconds since the Unix epoch (UTC); statuses are the
-- lowercase names of the contract. Each order's events are numbered from 1 by
-- `seq`; `orders.version` always equals the `seq` of the order's newest event,
-- and both change in the same transaction, which holds the order's row lock.

CREATE TABLE orders (
    id          TEXT    PRIMARY KEY,
    status      TEXT    NOT NULL CHECK (status IN ('initiated', 'processing', 'succeeded', 'failed')),
    amount      BIGINT  NOT NULL CHECK (amount > 0),
    currency    TEXT    NOT NULL CHECK (length(currency) = 3),
    metadata    TEXT    NOT NULL DEFAULT '{}',
    version     BIGINT  NOT NULL CHECK (version >= 1),
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE events (
    order_id     TEXT    NOT NULL REFERENCES orders (id),
    seq          BIGINT  NOT NULL CHECK (seq >= 1),
    status       TEXT    NOT NULL CHECK (status IN ('initiated', 'processing', 'succeeded', 'failed')),
    previous     TEXT             CHECK (previous IN ('initiated', 'processing', 'succeeded', 'failed')),
    source       TEXT    NOT NULL CHECK (source IN ('api', 'webhook')),
    event_id     TEXT,
    reason       TEXT,
    at           BIGINT  NOT NULL,
    -- When the provider says the change happened (webhooks only); kept for audits.
    occurred_at  BIGINT,
    PRIMARY KEY (order_id, seq)
);

-- An event id is applied at most once per order, whoever reports it.
CREATE UNIQUE INDEX events_order_event_id ON events (order_id, event_id) WHERE event_id IS NOT NULL;

-- Secrets generated on first start (API token, stream and webhook secrets)
-- when the environment does not provide them; shared by every instance.
CREATE TABLE settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
