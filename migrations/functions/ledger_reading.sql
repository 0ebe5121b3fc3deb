-- What finance reads the ledger for: refunds with who asked for and who confirmed them.
-- (Replaces the definition first written in 0003_refunds.sql; this file is the live one.)
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).

CREATE OR REPLACE FUNCTION feegate_refund_json(r refunds) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', r.id, 'order_id', r.order_id, 'amount', r.amount, 'reason', r.reason,
        'status', r.status, 'bank', (SELECT bank FROM attempts WHERE id = r.attempt_id),
        'failure_reason', r.failure_reason,
        'created_by', r.created_by, 'confirmed_by', r.confirmed_by,
        'created_at', to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'updated_at', to_char(r.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;
