-- The sweeper's candidates found by index, however many attempts are pending.
--
-- feegate_attempts_to_query (worker 0, every FEEGATE_SWEEP_INTERVAL_MS) looked for pending
-- attempts that are old enough or whose order has expired, and that were not asked about in the
-- last 10 s, through attempts_pending (every pending attempt): each sweep read all of them. With
-- 60,000 pending attempts (a day of citizens who opened a bank page and left) a sweep took 62 ms
-- of PostgreSQL CPU, and the join behind it was a tenth of PostgreSQL's CPU during the
-- notification benchmark. Two partial indexes split the pending attempts by whether they were
-- asked about before, so each kind of candidate is a range scan that stops at the sweep's limit
-- (migrations/functions/sweeper.sql); orders past expiry come from orders_open_expiry.
CREATE INDEX attempts_unqueried ON attempts (created_at) WHERE status = 'pending' AND last_query_at IS NULL;
CREATE INDEX attempts_queried ON attempts (last_query_at) WHERE status = 'pending' AND last_query_at IS NOT NULL;
DROP INDEX attempts_pending;
