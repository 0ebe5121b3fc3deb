-- Receipts: numbering after COMMIT, signing hand-off, reads. A function file: applied again
-- whenever it changes; keep each definition CREATE OR REPLACE with the same signature.
--
-- Why numbering is off the notification path: a payment's notification batch writes nothing
-- here. The numberer (worker 0, every FEEGATE_RECEIPT_INTERVAL_MS) reads the ledger transfers
-- after its cursor in hash-chain order. The chain's sequence is assigned under the chain-head
-- lock, held until COMMIT, so a transfer with sequence n is visible only after every transfer
-- before it: the cursor never skips a payment and numbers follow commit order. The counter row
-- of a series is locked by the numberer alone (the cursor row serializes numberers), so it is
-- never a hot row for payments.

-- The receipt's public code: derived from the checkout token (itself unguessable and never
-- shown to anyone but the payer and the portal), so the order's webhook can carry the receipt
-- URL before the receipt is numbered, and nobody can guess one from an order id.
CREATE OR REPLACE FUNCTION feegate_receipt_code(p_token text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'R' || upper(substr(encode(sha256(convert_to('receipt:' || p_token, 'UTF8')), 'hex'), 1, 24))
$$;

-- Times on a receipt: Asia/Ho_Chi_Minh wall time with its offset.
CREATE OR REPLACE FUNCTION feegate_receipt_time(p_ts timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(p_ts AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD"T"HH24:MI:SS"+07:00"')
$$;

-- Numbers one payment transfer's order (the caller holds the cursor lock). No-op when the
-- order already has its receipt: a payment applied twice still gets one number.
CREATE OR REPLACE FUNCTION feegate_receipt_issue_for(p_order uuid, p_attempt uuid, p_seq bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    o record;
    s record;
    yr int := extract(year FROM now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::int;
    num bigint;
    v_code text;
BEGIN
    IF EXISTS (SELECT 1 FROM receipts r WHERE r.order_id = p_order) THEN
        RETURN false;
    END IF;
    SELECT od.id, od.agency_id, od.reference, od.description, od.amount, od.currency, od.items, od.procedure,
           od.payer, od.checkout_token, ag.code AS ag_code, ag.name AS ag_name, ag.tax_code,
           at.bank, at.bank_txn_id, coalesce(at.paid_at, at.updated_at) AS paid
      INTO o
      FROM orders od JOIN agencies ag ON ag.id = od.agency_id JOIN attempts at ON at.id = p_attempt
     WHERE od.id = p_order;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    SELECT rs.* INTO s FROM receipt_series rs WHERE rs.agency_id = o.agency_id AND rs.active FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'agency % has no active receipt series', o.ag_code;
    END IF;
    num := CASE WHEN s.year = yr THEN s.last_number + 1 ELSE 1 END;
    UPDATE receipt_series SET year = yr, last_number = num WHERE id = s.id;
    v_code := feegate_receipt_code(o.checkout_token);
    INSERT INTO receipts (code, order_id, attempt_id, series_id, year, number, ledger_seq, body, issued_at)
    VALUES (v_code, o.id, p_attempt, s.id, yr, num, p_seq,
            jsonb_build_object(
                'code', v_code, 'template', s.template, 'series', s.series, 'number', num,
                'issued_at', feegate_receipt_time(now()),
                'agency', jsonb_build_object('code', o.ag_code, 'name', o.ag_name, 'tax_code', o.tax_code),
                'payer_name', o.payer ->> 'name',
                'items', coalesce(o.items::jsonb,
                                  jsonb_build_array(jsonb_build_object('name', o.description, 'amount', o.amount))),
                'amount', o.amount, 'currency', o.currency, 'bank', o.bank, 'bank_txn_id', o.bank_txn_id,
                'paid_at', feegate_receipt_time(o.paid), 'order_id', o.id, 'reference', o.reference,
                'procedure', o.procedure, 'description', o.description),
            now());
    RETURN true;
END
$$;

-- A refund transfer's adjustment record (partial, or the cancellation once everything paid
-- has gone back). Skipped while the order has no receipt (backfill adds it with the receipt).
CREATE OR REPLACE FUNCTION feegate_receipt_adjust_for(p_order uuid, p_refund uuid, p_seq bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_total bigint;
    v_amount bigint;
BEGIN
    SELECT rc.code, (rc.body ->> 'amount')::bigint AS amount INTO r FROM receipts rc WHERE rc.order_id = p_order;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT t.amount INTO v_amount FROM ledger_transfers t WHERE t.refund_id = p_refund AND t.code = 'refund';
    SELECT coalesce(sum(t.amount), 0) INTO v_total
      FROM ledger_transfers t WHERE t.order_id = p_order AND t.code = 'refund' AND t.seq <= p_seq;
    INSERT INTO receipt_adjustments (receipt_code, refund_id, kind, amount, refunded_total, reason, ledger_seq)
    SELECT r.code, p_refund, CASE WHEN v_total >= r.amount THEN 'cancellation' ELSE 'partial_refund' END,
           v_amount, v_total, coalesce((SELECT rf.reason FROM refunds rf WHERE rf.id = p_refund), ''), p_seq
    ON CONFLICT (refund_id) DO NOTHING;
END
$$;

-- The numberer's tick: numbers the payments committed since the cursor (at most p_limit
-- transfers) in one set-based statement (numbers per series in ledger order), adds the
-- refunds' adjustments, then returns the receipts still waiting for a signature, oldest first.
CREATE OR REPLACE FUNCTION feegate_receipts_issue(p_limit int)
RETURNS TABLE (r_code text, r_body text) LANGUAGE plpgsql AS $$
DECLARE
    cur bigint;
    upto bigint;
    yr int := extract(year FROM now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::int;
    t record;
BEGIN
    -- another gateway's numberer at work: leave this round to it rather than wait on its lock
    SELECT c.seq INTO cur FROM receipt_cursor c WHERE c.id = 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT max(x.seq) INTO upto FROM (SELECT lt.seq FROM ledger_transfers lt WHERE lt.seq > cur
                                        ORDER BY lt.seq LIMIT p_limit) x;
    IF upto IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM ledger_transfers lt JOIN orders o ON o.id = lt.order_id
                    WHERE lt.seq > cur AND lt.seq <= upto AND lt.code = 'payment'
                      AND NOT EXISTS (SELECT 1 FROM receipt_series s WHERE s.agency_id = o.agency_id AND s.active)) THEN
            RAISE EXCEPTION 'a paid order''s agency has no active receipt series';
        END IF;
        WITH pay AS (
            SELECT lt.seq, lt.order_id, lt.attempt_id, o.agency_id
              FROM ledger_transfers lt JOIN orders o ON o.id = lt.order_id
             WHERE lt.seq > cur AND lt.seq <= upto AND lt.code = 'payment'
               AND NOT EXISTS (SELECT 1 FROM receipts rc WHERE rc.order_id = lt.order_id)),
        ser AS (
            SELECT s.id, s.agency_id, s.template, s.series, CASE WHEN s.year = yr THEN s.last_number ELSE 0 END AS base
              FROM receipt_series s WHERE s.active AND s.agency_id IN (SELECT pay.agency_id FROM pay) FOR UPDATE),
        numbered AS (
            SELECT pay.*, ser.id AS series_id, ser.template, ser.series,
                   ser.base + row_number() OVER (PARTITION BY pay.agency_id ORDER BY pay.seq) AS num
              FROM pay JOIN ser ON ser.agency_id = pay.agency_id),
        ins AS (
            INSERT INTO receipts (code, order_id, attempt_id, series_id, year, number, ledger_seq, body, issued_at)
            SELECT feegate_receipt_code(od.checkout_token), od.id, n.attempt_id, n.series_id, yr, n.num, n.seq,
                   jsonb_build_object(
                       'code', feegate_receipt_code(od.checkout_token), 'template', n.template, 'series', n.series,
                       'number', n.num, 'issued_at', feegate_receipt_time(now()),
                       'agency', jsonb_build_object('code', ag.code, 'name', ag.name, 'tax_code', ag.tax_code),
                       'payer_name', od.payer ->> 'name',
                       'items', coalesce(od.items::jsonb, jsonb_build_array(jsonb_build_object('name', od.description,
                                                                                               'amount', od.amount))),
                       'amount', od.amount, 'currency', od.currency, 'bank', at.bank, 'bank_txn_id', at.bank_txn_id,
                       'paid_at', feegate_receipt_time(coalesce(at.paid_at, at.updated_at)), 'order_id', od.id,
                       'reference', od.reference, 'procedure', od.procedure, 'description', od.description),
                   now()
              FROM numbered n
              JOIN orders od ON od.id = n.order_id
              JOIN agencies ag ON ag.id = od.agency_id
              JOIN attempts at ON at.id = n.attempt_id
            RETURNING series_id, number)
        UPDATE receipt_series s SET year = yr, last_number = m.top
          FROM (SELECT ins.series_id, max(ins.number) AS top FROM ins GROUP BY ins.series_id) m
         WHERE s.id = m.series_id;
        FOR t IN SELECT lt.seq, lt.order_id, lt.refund_id FROM ledger_transfers lt
                  WHERE lt.seq > cur AND lt.seq <= upto AND lt.code = 'refund' AND lt.refund_id IS NOT NULL
                  ORDER BY lt.seq LOOP
            PERFORM feegate_receipt_adjust_for(t.order_id, t.refund_id, t.seq);
        END LOOP;
        UPDATE receipt_cursor SET seq = upto WHERE id = 1;
    END IF;
    RETURN QUERY SELECT rc.code, rc.body::text FROM receipts rc WHERE rc.signature IS NULL
                  ORDER BY rc.ledger_seq LIMIT p_limit;
END
$$;

-- `feegate receipt backfill`: numbers up to p_limit payments made before receipts existed,
-- in payment order (the bank's payment time), with their refunds' adjustments. Returns how
-- many it numbered; 0 when none is left.
CREATE OR REPLACE FUNCTION feegate_receipts_backfill(p_limit int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    upto bigint;
    t record;
    n int := 0;
BEGIN
    SELECT c.backfill_upto INTO upto FROM receipt_cursor c WHERE c.id = 1 FOR UPDATE;
    FOR t IN SELECT lt.seq, lt.order_id, lt.attempt_id FROM ledger_transfers lt JOIN attempts at ON at.id = lt.attempt_id
              WHERE lt.seq <= upto AND lt.code = 'payment' AND lt.order_id IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM receipts rc WHERE rc.order_id = lt.order_id)
              ORDER BY coalesce(at.paid_at, at.updated_at), lt.seq LIMIT p_limit LOOP
        IF feegate_receipt_issue_for(t.order_id, t.attempt_id, t.seq) THEN
            n := n + 1;
        END IF;
    END LOOP;
    FOR t IN SELECT lt.seq, lt.order_id, lt.refund_id FROM ledger_transfers lt
              WHERE lt.code = 'refund' AND lt.refund_id IS NOT NULL
                AND lt.seq <= (SELECT c.seq FROM receipt_cursor c WHERE c.id = 1)
                AND NOT EXISTS (SELECT 1 FROM receipt_adjustments ad WHERE ad.refund_id = lt.refund_id)
                AND EXISTS (SELECT 1 FROM receipts rc WHERE rc.order_id = lt.order_id)
              ORDER BY lt.seq LOOP
        PERFORM feegate_receipt_adjust_for(t.order_id, t.refund_id, t.seq);
    END LOOP;
    RETURN n;
END
$$;

-- Completes numbered receipts with what the signer added (amount in words, key id) and their
-- signatures: p = [{code, body, key_id, signature}]. A receipt already signed is left alone.
CREATE OR REPLACE FUNCTION feegate_receipts_sign(p json) RETURNS int
LANGUAGE sql AS $$
    WITH s AS (
        UPDATE receipts rc SET body = (x ->> 'body')::jsonb, key_id = x ->> 'key_id',
                               signature = x ->> 'signature', signed_at = now()
          FROM json_array_elements(p) x
         WHERE rc.code = x ->> 'code' AND rc.signature IS NULL
        RETURNING 1)
    SELECT count(*)::int FROM s
$$;

-- A receipt with what every reader needs: its signed body, signature, public key, adjustments.
CREATE OR REPLACE FUNCTION feegate_receipt_get(p_code text, p_order uuid, p_client uuid)
RETURNS TABLE (r_body text, r_signature text, r_public_key text, r_adjustments text, r_order_status text)
LANGUAGE sql STABLE AS $$
    SELECT rc.body::text, rc.signature, k.public_key,
           coalesce((SELECT json_agg(json_build_object(
                        'kind', ad.kind, 'amount', ad.amount, 'refunded_total', ad.refunded_total,
                        'reason', ad.reason, 'refund_id', ad.refund_id, 'receipt', ad.receipt_code,
                        'created_at', feegate_receipt_time(ad.created_at)) ORDER BY ad.id)
                       FROM receipt_adjustments ad WHERE ad.receipt_code = rc.code)::text, '[]'),
           o.status
      FROM receipts rc
      JOIN orders o ON o.id = rc.order_id
      LEFT JOIN receipt_keys k ON k.key_id = rc.key_id
     WHERE rc.signature IS NOT NULL
       AND (p_code IS NULL OR rc.code = p_code)
       AND (p_order IS NULL OR (rc.order_id = p_order AND o.client_id = p_client))
$$;
