-- The order as the API and the portal webhooks show it: the one renderer in SQL, set-based
-- (one query for any number of orders).
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
