-- The webhook relay's claim: due outbox rows, leased for p_lease_s, oldest first, skipping the
-- clients in p_skip (portals that already have as many calls in flight as the relay allows one
-- portal, so that a slow portal cannot take every slot from the others).
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).
-- The two-argument version of 0006 stays for gateways of the previous release.

CREATE OR REPLACE FUNCTION feegate_claim_deliveries(p_limit int, p_lease_s int, p_skip uuid[])
RETURNS TABLE (r_id uuid, r_url text, r_secret text, r_payload text, r_attempts int, r_age_s bigint,
               r_client uuid)
LANGUAGE sql AS $$
    UPDATE webhook_deliveries d
       SET next_attempt_at = now() + make_interval(secs => p_lease_s), attempts = d.attempts + 1
      FROM clients c
     WHERE c.id = d.client_id AND d.id IN (
           SELECT w.id FROM webhook_deliveries w
            WHERE w.status = 'pending' AND w.next_attempt_at <= now() AND w.client_id <> ALL (p_skip)
            ORDER BY w.next_attempt_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
    RETURNING d.id, c.webhook_url, c.webhook_secret, d.payload, d.attempts,
              extract(epoch FROM now() - coalesce(d.retry_from, d.created_at))::bigint, d.client_id
$$;

-- The relay's answers, one statement per batch: delivered, dead-lettered, or due again after a
-- backoff. Rows are found by their keys, whatever the planner thought of the outbox's size:
-- planned at each call (force_custom_plan), against the table's size now. A plan kept from when
-- the outbox was small joined the answers to all of it for every save once it had grown (a fresh
-- database grows by thousands of rows a second under load, long before autovacuum's ANALYZE);
-- enable_seqscan = off, enough for feegate_emit_orders' probe by order, is not enough for this
-- join: the kept plan then read the whole primary key instead (1.8 ms a save of 11 answers).
-- coalesce(status, ''): with a plain status test the planner, seeing few pending rows, read
-- every entry of a partial index of them, those of rows delivered since the last vacuum
-- included (3.3 ms a save of 22 answers).
CREATE OR REPLACE FUNCTION feegate_delivery_results(p_results json) RETURNS int
LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n int;
BEGIN
    UPDATE webhook_deliveries d
       SET status = CASE WHEN r.ok THEN 'delivered' WHEN r.dead THEN 'dead' ELSE 'pending' END,
           last_status = r.status, last_error = r.error, delivered_at = CASE WHEN r.ok THEN now() END,
           next_attempt_at = now() + make_interval(secs => r.delay_ms / 1000.0)
      FROM json_to_recordset(p_results) AS r(id uuid, ok boolean, status int, error text, dead boolean, delay_ms bigint)
     WHERE d.id = r.id AND coalesce(d.status, '') = 'pending';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Rows a worker was handed (feegate_emit_orders) but has no room to send (a JSON array of their
-- ids): back to the outbox, due now, their first attempt not counted. Found as above.
CREATE OR REPLACE FUNCTION feegate_delivery_release(p_ids json) RETURNS int
LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n int;
BEGIN
    UPDATE webhook_deliveries d SET next_attempt_at = now(), attempts = greatest(d.attempts - 1, 0)
      FROM json_array_elements_text(p_ids) AS r(id)
     WHERE d.id = r.id::uuid AND coalesce(d.status, '') = 'pending';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
