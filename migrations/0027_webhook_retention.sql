-- Delivered and dead-lettered webhook rows leave the outbox after FEEGATE_WEBHOOK_RETENTION_DAYS
-- (the sweeper, feegate_webhook_retention in functions/webhooks.sql). This index finds them
-- oldest first, in bounded batches, without reading the pending rows or the recent ones. A
-- row's end is its delivery (delivered_at) or, once dead-lettered, its last answer
-- (next_attempt_at, saved then). Pending rows are never in it, so the relay's writes of them
-- cost nothing here; a row gains its one entry when it is delivered or dead-lettered.
-- Built with a write lock on the outbox (migrations run in a transaction): on an outbox of
-- tens of millions of rows, a minute or so.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries ((coalesce(delivered_at, next_attempt_at)))
    WHERE status <> 'pending';
