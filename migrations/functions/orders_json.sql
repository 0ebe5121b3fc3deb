-- The order as the API and the portal webhooks show it, and the webhook outbox rows.
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate);
-- keep each definition CREATE OR REPLACE with the same signature (a new signature or return
-- type needs a numbered migration that drops the old one first).

-- Orders as the API and the portal webhooks show them; p_base is the public URL the checkout
-- link starts with. Optional fields that are absent are left out; attempts keep their nulls.
CREATE OR REPLACE FUNCTION feegate_orders_json(p_ids uuid[], p_base text)
RETURNS TABLE (order_id uuid, client_id uuid, status text, doc text) LANGUAGE sql STABLE AS $$
    SELECT o.id, o.client_id, o.status,
           rtrim(json_strip_nulls(json_build_object(
               'id', o.id, 'reference', o.reference, 'agency', a.code, 'description', o.description,
               'amount', o.amount, 'currency', o.currency, 'status', o.status, 'items', o.items,
               'procedure', o.procedure, 'payer', o.payer, 'metadata', o.metadata,
               'checkout_url', p_base || '/checkout/' || o.checkout_token, 'return_url', o.return_url,
               -- the receipt's address is known from the success on (migrations/functions/receipts.sql)
               'receipt_url', CASE WHEN o.status IN ('succeeded', 'partially_refunded', 'refunded')
                                   THEN p_base || '/receipts/' || feegate_receipt_code(o.checkout_token) END,
               'created_at', to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               'expires_at', to_char(o.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))::text, '}')
           || ',"attempts":' || coalesce(att.list, '[]') || '}'
      FROM orders o
      JOIN agencies a ON a.id = o.agency_id
      LEFT JOIN LATERAL (
           SELECT json_agg(json_build_object(
                      'id', t.id, 'bank', t.bank, 'bank_order_ref', t.bank_order_ref, 'status', t.status,
                      'bank_txn_id', t.bank_txn_id, 'failure_code', t.failure_code,
                      'created_at', to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                      'updated_at', to_char(t.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                  ORDER BY t.created_at, t.id)::text AS list
             FROM attempts t WHERE t.order_id = o.id) att ON true
     WHERE o.id = ANY (p_ids)
$$;

CREATE OR REPLACE FUNCTION feegate_order_json(p_order uuid, p_base text) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT r.doc FROM feegate_orders_json(ARRAY[p_order], p_base) r)::json;
END
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
-- the relay's claim behind it, so that a portal hears of an order's changes in order (0012).
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
               -- by the order's index (0012); coalesce(): not by a partial index of the pending rows,
               -- which the planner prefers while the outbox looks small, and which then reads
               -- every pending entry, dead ones included, for each order (see 0012)
               p_lease_s > 0 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                                              WHERE d.order_id = r.order_id AND coalesce(d.status, '') = 'pending')
                   AS handed
          FROM feegate_orders_json(p_orders, base) r
          JOIN clients c ON c.id = r.client_id
         WHERE c.webhook_url IS NOT NULL),
    ins AS (
        INSERT INTO webhook_deliveries (id, client_id, order_id, type, payload, next_attempt_at, attempts)
        SELECT w.ev, w.client_id, w.order_id, 'order.' || w.status, feegate_event_payload(w.ev, 'order.' || w.status, w.doc),
               CASE WHEN w.handed THEN now() + make_interval(secs => p_lease_s) ELSE now() END,
               CASE WHEN w.handed THEN 1 ELSE 0 END
          FROM w
        RETURNING id, payload)
    SELECT w.order_id, ins.id, w.client_id, w.webhook_url, w.webhook_secret, ins.payload
      FROM ins JOIN w ON w.ev = ins.id
     WHERE w.handed;
END
$$;

CREATE OR REPLACE FUNCTION feegate_emit_orders(p_orders uuid[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feegate_emit_orders(p_orders, 0);
END
$$;

CREATE OR REPLACE FUNCTION feegate_emit(p_order uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feegate_emit_orders(ARRAY[p_order], 0);
END
$$;
