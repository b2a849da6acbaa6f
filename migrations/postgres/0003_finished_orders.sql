-- Retention (PAYMENT_RETENTION_DAYS) deletes the orders that reached a final
-- status longest ago, a few hundred at a time; this index hands it exactly
-- those, oldest first, without reading the other orders. A final order never
-- changes again, so its `updated_at` is when it became final.
--
-- Building it blocks writes to `orders` until it is built. On a large table,
-- build it beforehand without blocking, and this file then does nothing:
--   CREATE INDEX CONCURRENTLY orders_finished ON orders (updated_at) WHERE status IN ('succeeded', 'failed');
CREATE INDEX IF NOT EXISTS orders_finished ON orders (updated_at) WHERE status IN ('succeeded', 'failed');
