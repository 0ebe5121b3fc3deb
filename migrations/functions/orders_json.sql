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
-- the clients that take webhooks.
CREATE OR REPLACE FUNCTION feegate_emit_orders(p_orders uuid[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    base text := coalesce(nullif(current_setting('feegate.public_url', true), ''),
                          (SELECT value FROM settings WHERE name = 'public_url'), '');
BEGIN
    INSERT INTO webhook_deliveries (id, client_id, order_id, type, payload)
    SELECT w.ev, w.client_id, w.order_id, 'order.' || w.status, feegate_event_payload(w.ev, 'order.' || w.status, w.doc)
      FROM (SELECT feegate_uuid7() AS ev, r.order_id, r.client_id, r.doc, r.status
              FROM feegate_orders_json(p_orders, base) r
              JOIN clients c ON c.id = r.client_id
             WHERE c.webhook_url IS NOT NULL) w;
END
$$;

CREATE OR REPLACE FUNCTION feegate_emit(p_order uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feegate_emit_orders(ARRAY[p_order]);
END
$$;
