-- The pending gauges (how many, and since when the oldest, every 2 s) read
-- the pending messages alone: with `created_at` in the index of pending
-- messages they can be answered from the index, which a receiver that was
-- down for hours makes hundreds of thousands of look-ups fewer. The worker's
-- scan uses the index as before (its leading columns are unchanged).
--
-- Building it blocks writes to `webhook_messages` while it is built; it holds
-- pending messages only, so that is short unless a large backlog is waiting.
DROP INDEX IF EXISTS webhook_messages_due;
CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_at, seq, created_at) WHERE status = 'pending';
