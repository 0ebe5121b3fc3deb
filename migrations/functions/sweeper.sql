-- The sweeper's work: orders that expire on the clock, and the attempts to ask their bank about.
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).

-- Pending attempts to ask their bank about: those whose order has expired (before expiring
-- them) and those older than p_after_s (a notification may have been lost), not asked about in
-- the last min(p_after_s, 10) seconds; never-asked ones first, then the oldest. Claimed with
-- last_query_at, so several sweepers never ask twice at once.
--
-- Each kind of candidate is read from its own index up to the limit (attempts_unqueried,
-- attempts_queried, orders_open_expiry), so a sweep costs the same with 60,000 pending
-- attempts as with 60; the rows are then locked and checked again.

CREATE OR REPLACE FUNCTION feegate_attempts_to_query(p_after_s int, p_limit int)
RETURNS TABLE (r_id uuid, r_bank text, r_ref text, r_txn text, r_amount bigint, r_description text,
               r_created bigint, r_past_expiry_s bigint)
LANGUAGE sql AS $$
    WITH due AS (
        -- never asked, old enough (attempts_unqueried)
        (SELECT t.id FROM attempts t
          WHERE t.status = 'pending' AND t.last_query_at IS NULL
            AND t.created_at < now() - make_interval(secs => p_after_s)
          ORDER BY t.created_at LIMIT p_limit)
        UNION
        -- never asked, the order past its expiry (orders_open_expiry, then attempts_order)
        (SELECT t.id FROM orders o JOIN attempts t ON t.order_id = o.id
          WHERE o.status IN ('created', 'pending') AND o.expires_at < now()
            AND t.status = 'pending' AND t.last_query_at IS NULL
          ORDER BY o.expires_at LIMIT p_limit)
        UNION
        -- asked before and due again (attempts_queried): it qualified then, so it still does
        (SELECT t.id FROM attempts t
          WHERE t.status = 'pending' AND t.last_query_at IS NOT NULL
            AND t.last_query_at < now() - make_interval(secs => least(p_after_s, 10))
          ORDER BY t.last_query_at LIMIT p_limit))
    UPDATE attempts t SET last_query_at = now()
      FROM orders o
     WHERE o.id = t.order_id AND t.id IN (
           SELECT t2.id FROM attempts t2
            WHERE t2.id IN (SELECT id FROM due) AND t2.status = 'pending'
              AND (t2.last_query_at IS NULL
                   OR t2.last_query_at < now() - make_interval(secs => least(p_after_s, 10)))
            ORDER BY t2.last_query_at NULLS FIRST, t2.created_at LIMIT p_limit FOR UPDATE OF t2 SKIP LOCKED)
    RETURNING t.id, t.bank, t.bank_order_ref, t.bank_txn_id, t.amount, o.description,
              extract(epoch FROM t.created_at)::bigint, extract(epoch FROM now() - o.expires_at)::bigint
$$;

-- Orders that were never taken to a bank expire on the clock.
CREATE OR REPLACE FUNCTION feegate_expire_due(p_limit int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    o record;
    n int := 0;
BEGIN
    FOR o IN SELECT id FROM orders WHERE status = 'created' AND expires_at < now()
              ORDER BY expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
        IF feegate_order_transition(o.id, NULL, 'expired') = 'changed' THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;
