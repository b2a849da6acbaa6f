-- Webhook retention (PAYMENT_WEBHOOK_RETENTION_DAYS) deletes failed messages
-- as well as delivered ones, those finished longest ago first; this index
-- hands it both kinds, oldest first, in place of the delivered-only one.
CREATE INDEX webhook_messages_finished ON webhook_messages (finished_at) WHERE status IN ('delivered', 'failed');
DROP INDEX webhook_messages_delivered;
