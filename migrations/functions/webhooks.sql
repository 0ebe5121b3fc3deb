-- The portal webhook outbox: writing its rows (in the transaction that changes the order),
-- the relay's claim, the answers saved, and a delivery as the API shows it.
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).

-- When a lease on an outbox row ends: the row is due again then, for the relay's claim, unless
-- its sender has saved an answer. The one lease rule, for the rows a notification batch hands
-- to its worker (feegate_emit_orders) and for those the relay claims.
CREATE OR REPLACE FUNCTION feegate_webhook_lease_end(p_lease_s int) RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT now() + make_interval(secs => p_lease_s)
$$;

-- A portal webhook's body: the event and the order as it is now (p_data, from the renderer).
CREATE OR REPLACE FUNCTION feegate_event_payload(p_event uuid, p_type text, p_data text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT '{"id":"' || p_event || '","type":"' || p_type || '","created_at":"'
           || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '","data":' || p_data || '}'
$$;

-- The portal webhook rows for these orders as they are now (one query for all of them), for
-- the clients that take webhooks. p_lease_s > 0: rows are leased for that long to the caller,
-- who sends them (their first attempt is counted), and returned with what it takes to send
-- them; except those of an order with an earlier event still in the outbox, which stay due for
-- the relay's claim behind it, so that a portal hears of an order's changes in order.
-- p_lease_s = 0: every row is due now, for the claim, and none is returned.
-- Every row here is found by its key. enable_seqscan = off: the plan is made once per session
-- (generic, see feegate_apply_notifications), and one made while the outbox was small (a fresh
-- database) read the whole outbox for each order once it had grown.
CREATE OR REPLACE FUNCTION feegate_emit_orders(p_orders uuid[], p_lease_s int)
RETURNS TABLE (r_order uuid, r_id uuid, r_client uuid, r_url text, r_secret text, r_payload text)
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    base text := coalesce(nullif(current_setting('feegate.public_url', true), ''),
                          (SELECT value FROM settings WHERE name = 'public_url'), '');
BEGIN
    RETURN QUERY
    WITH w AS (
        SELECT feegate_uuid7() AS ev, r.order_id, r.client_id, r.doc, r.status, c.webhook_url, c.webhook_secret,
               -- by the order's index (webhook_deliveries_order); coalesce(): not by a partial
               -- index of the pending rows, which the planner prefers while the outbox looks
               -- small, and which then reads every pending entry, dead ones included, for each order
               p_lease_s > 0 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                                              WHERE d.order_id = r.order_id AND coalesce(d.status, '') = 'pending')
                   AS handed
          FROM feegate_orders_json(p_orders, base) r
          JOIN clients c ON c.id = r.client_id
         WHERE c.webhook_url IS NOT NULL),
    ins AS (
        INSERT INTO webhook_deliveries (id, client_id, order_id, type, payload, next_attempt_at, attempts)
        SELECT w.ev, w.client_id, w.order_id, 'order.' || w.status, feegate_event_payload(w.ev, 'order.' || w.status, w.doc),
               CASE WHEN w.handed THEN feegate_webhook_lease_end(p_lease_s) ELSE now() END,
               CASE WHEN w.handed THEN 1 ELSE 0 END
          FROM w
        RETURNING id, payload)
    SELECT w.order_id, ins.id, w.client_id, w.webhook_url, w.webhook_secret, ins.payload
      FROM ins JOIN w ON w.ev = ins.id
     WHERE w.handed;
END
$$;

-- The portal webhook for one order as it is now (refunds: another partial refund, whose status
-- stays partially_refunded).
CREATE OR REPLACE FUNCTION feegate_emit(p_order uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feegate_emit_orders(ARRAY[p_order], 0);
END
$$;

-- The webhook relay's claim: due outbox rows, leased for p_lease_s, oldest first, skipping the
-- clients in p_skip (portals that already have as many calls in flight as the relay allows one
-- portal, so that a slow portal cannot take every slot from the others).
CREATE OR REPLACE FUNCTION feegate_claim_deliveries(p_limit int, p_lease_s int, p_skip uuid[])
RETURNS TABLE (r_id uuid, r_url text, r_secret text, r_payload text, r_attempts int, r_age_s bigint,
               r_client uuid)
LANGUAGE sql AS $$
    UPDATE webhook_deliveries d
       SET next_attempt_at = feegate_webhook_lease_end(p_lease_s), attempts = d.attempts + 1
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

-- A delivery as GET /v1/webhook-deliveries shows it.
CREATE OR REPLACE FUNCTION feegate_delivery_json(d webhook_deliveries) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', d.id, 'order_id', d.order_id, 'type', d.type, 'status', d.status,
        'attempts', d.attempts, 'last_status', d.last_status, 'last_error', d.last_error,
        'created_at', to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'next_attempt_at', CASE WHEN d.status = 'pending'
            THEN to_char(d.next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END,
        'delivered_at', to_char(d.delivered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;

-- Retention: up to p_limit delivered or dead-lettered rows whose end (delivery, or the last
-- answer of a dead one) is more than p_days old are deleted, oldest first; the number deleted.
-- A pending row is never deleted, and neither is one that the relay or a redelivery holds just
-- now (SKIP LOCKED; a row redelivered meanwhile is pending again, and FOR UPDATE sees that).
-- Found by webhook_deliveries_finished, deleted by their ctid (a TID scan, not a join with the
-- outbox); each call is one short transaction that locks only its rows.
CREATE OR REPLACE FUNCTION feegate_webhook_retention(p_days int, p_limit int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    n int;
BEGIN
    DELETE FROM webhook_deliveries d
     WHERE d.ctid = ANY (ARRAY(
           SELECT w.ctid FROM webhook_deliveries w
            WHERE w.status <> 'pending'
              AND coalesce(w.delivered_at, w.next_attempt_at) < now() - make_interval(days => p_days)
            ORDER BY coalesce(w.delivered_at, w.next_attempt_at) LIMIT p_limit FOR UPDATE SKIP LOCKED))
       AND d.status <> 'pending';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
