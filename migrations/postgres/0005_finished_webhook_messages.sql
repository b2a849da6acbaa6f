-- Webhook retention (PAYMENT_WEBHOOK_RETENTION_DAYS) deletes failed messages
-- as well as delivered ones, those finished longest ago first; this index
-- hands it both kinds, oldest first, in place of the delivered-only one.
--
-- Building it blocks writes to `webhook_messages` until it is built. On a
-- large outbox, build it beforehand without blocking, and this file then
-- only drops the old index:
--   CREATE INDEX CONCURRENTLY webhook_messages_finished ON webhook_messages (finished_at) WHERE status IN ('delivered', 'failed');
CREATE INDEX IF NOT EXISTS webhook_messages_finished ON webhook_messages (finished_at) WHERE status IN ('delivered', 'failed');
DROP INDEX IF EXISTS webhook_messages_delivered;
