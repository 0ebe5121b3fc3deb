-- pgbench: feegate's own posting with nothing in front of the database. Each transaction applies
-- one batch of 100 successful VNPAY notifications, for pending attempts prepared beforehand (all
-- orders of one agency), through feegate_apply_notifications, as the gateway's batcher does:
-- state changes, notification records, ledger transfers and entries, portal webhook rows. Blocks
-- of 100 attempts are taken in turn from a sequence (tests/bench/run.sh, scenario_pg_apply).
SELECT count(*) FROM feegate_apply_notifications((
    SELECT json_agg(json_build_object('i', g - 1, 'bank', 'vnpay', 'kind', 'payment',
                                      'ref', 'BQQQ' || lpad((b.blk * 100 + g)::text, 8, '0'), 'amount', 200000,
                                      'success', true, 'txn_id', 'PQ' || (b.blk * 100 + g), 'source', 'notification'))
      FROM (SELECT nextval('bench.apply_block') - 1 AS blk) b, generate_series(1, 100) g));
