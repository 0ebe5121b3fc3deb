-- Refunds: asked for by finance, sent to the bank (or kept as a payout instruction for banks
-- without a refund API), posted as a reversing transfer when the bank confirms.
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).

-- A refund as the API shows it, with who asked for and who confirmed it.
CREATE OR REPLACE FUNCTION feegate_refund_json(r refunds) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', r.id, 'order_id', r.order_id, 'amount', r.amount, 'reason', r.reason,
        'status', r.status, 'bank', (SELECT bank FROM attempts WHERE id = r.attempt_id),
        'failure_reason', r.failure_reason,
        'created_by', r.created_by, 'confirmed_by', r.confirmed_by,
        'created_at', to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'updated_at', to_char(r.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;

-- What is paid and not yet refunded for one order: the one formula. p_pending: refunds still
-- pending count as taken (what a new refund may still ask for) or not (what is left once the
-- bank has confirmed: none left means the order is refunded).
CREATE OR REPLACE FUNCTION feegate_refundable(p_order uuid, p_pending boolean) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT sum(amount) FROM ledger_transfers WHERE order_id = p_order AND code = 'payment'), 0)
         - coalesce((SELECT sum(amount) FROM refunds WHERE order_id = p_order
                      AND (status = 'succeeded' OR (p_pending AND status = 'pending'))), 0)
$$;

-- Creates a refund request. The order row is locked, so concurrent requests for the last
-- amount are decided one after the other. Outcomes: created | replay | key_reused |
-- not_found | invalid_state | too_much.
CREATE OR REPLACE FUNCTION feegate_refund_create(p_order uuid, p_agency bigint, p_amount bigint, p_reason text,
                                                 p_staff uuid, p_refund uuid, p_ref text, p_key text, p_hash text)
RETURNS TABLE (r_outcome text, r_refund json, r_refundable bigint, r_bank text, r_bank_order_ref text,
               r_bank_txn_id text, r_paid bigint, r_attempt_created bigint)
LANGUAGE plpgsql SET lock_timeout = '10s' AS $$
DECLARE
    o record;
    prev record;
    att record;
    rf refunds;
BEGIN
    IF p_key IS NOT NULL THEN
        INSERT INTO staff_idempotency_keys (staff_id, idem_key, request_hash, resource_id)
        VALUES (p_staff, p_key, p_hash, p_refund) ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            SELECT * INTO prev FROM staff_idempotency_keys WHERE staff_id = p_staff AND idem_key = p_key;
            IF prev.request_hash <> p_hash THEN
                r_outcome := 'key_reused'; RETURN NEXT; RETURN;
            END IF;
            SELECT * INTO rf FROM refunds WHERE id = prev.resource_id;
            r_outcome := 'replay'; r_refund := feegate_refund_json(rf); RETURN NEXT; RETURN;
        END IF;
    END IF;
    SELECT * INTO o FROM orders WHERE id = p_order AND (p_agency IS NULL OR agency_id = p_agency) FOR UPDATE;
    IF NOT FOUND THEN
        r_outcome := 'not_found';
    ELSIF o.status NOT IN ('succeeded', 'partially_refunded') THEN
        r_outcome := 'invalid_state';
    ELSE
        r_refundable := feegate_refundable(p_order, true);
        IF p_amount > r_refundable THEN
            r_outcome := 'too_much';
        END IF;
    END IF;
    IF r_outcome IS NOT NULL THEN
        IF p_key IS NOT NULL THEN
            DELETE FROM staff_idempotency_keys WHERE staff_id = p_staff AND idem_key = p_key;
        END IF;
        RETURN NEXT; RETURN;
    END IF;
    SELECT t.* INTO att FROM attempts t JOIN ledger_transfers l ON l.attempt_id = t.id AND l.code = 'payment'
     WHERE t.order_id = p_order LIMIT 1;
    INSERT INTO refunds (id, order_id, attempt_id, amount, reason, refund_ref, created_by)
    VALUES (p_refund, p_order, att.id, p_amount, p_reason, p_ref, p_staff) RETURNING * INTO rf;
    r_outcome := 'created'; r_refund := feegate_refund_json(rf);
    r_refundable := r_refundable - p_amount;
    r_bank := att.bank; r_bank_order_ref := att.bank_order_ref; r_bank_txn_id := att.bank_txn_id;
    r_paid := att.amount; r_attempt_created := extract(epoch FROM att.created_at)::bigint;
    RETURN NEXT;
END
$$;

-- The bank's verdict on a refund (or finance's confirmation of a payout). Success posts the
-- reversing transfer and moves the order to partially_refunded or refunded; failure changes
-- nothing but the refund's own status. Applying the same verdict twice changes nothing.
CREATE OR REPLACE FUNCTION feegate_refund_complete(p_refund uuid, p_ok boolean, p_bank_id text, p_reason text, p_staff uuid)
RETURNS TABLE (r_outcome text, r_refund json) LANGUAGE plpgsql AS $$
DECLARE
    rf refunds;
    o record;
    v_payable bigint;
    v_clearing bigint;
    v_bank text;
    v_left bigint;
    v_moved text;
BEGIN
    SELECT * INTO rf FROM refunds WHERE id = p_refund FOR UPDATE;
    IF NOT FOUND THEN
        r_outcome := 'not_found'; RETURN NEXT; RETURN;
    END IF;
    IF rf.status <> 'pending' THEN
        r_outcome := 'unchanged'; r_refund := feegate_refund_json(rf); RETURN NEXT; RETURN;
    END IF;
    SELECT * INTO o FROM orders WHERE id = rf.order_id FOR UPDATE;
    IF NOT p_ok THEN
        UPDATE refunds SET status = 'failed', failure_reason = p_reason, updated_at = now()
         WHERE id = p_refund RETURNING * INTO rf;
        r_outcome := 'failed'; r_refund := feegate_refund_json(rf); RETURN NEXT; RETURN;
    END IF;
    v_bank := (SELECT bank FROM attempts WHERE id = rf.attempt_id);
    -- Paid out already (the payout of the payment's bank and business day is in the ledger):
    -- the agency owes the refund back, on its receivable, until the next payout nets it.
    v_payable := (SELECT id FROM ledger_accounts WHERE agency_id = o.agency_id AND type =
        CASE WHEN EXISTS (SELECT 1 FROM ledger_transfers p JOIN agencies a ON a.id = o.agency_id
                           JOIN attempts t ON t.id = rf.attempt_id
                          WHERE p.id = 'payout:' || a.code || ':' || t.bank || ':'
                                       || to_char(feegate_business_date(coalesce(t.paid_at, t.updated_at)), 'YYYYMMDD'))
             THEN 'agency_receivable' ELSE 'agency_payable' END);
    v_clearing := feegate_account_id('bank:' || v_bank || ':clearing');
    PERFORM feegate_post('refund:' || rf.id, v_payable, v_clearing, rf.amount, 'refund', o.id, rf.attempt_id, rf.id);
    UPDATE refunds SET status = 'succeeded', bank_refund_id = p_bank_id, confirmed_by = p_staff, updated_at = now()
     WHERE id = p_refund RETURNING * INTO rf;
    v_left := feegate_refundable(o.id, false);
    v_moved := feegate_order_transition(o.id, NULL, CASE WHEN v_left <= 0 THEN 'refunded' ELSE 'partially_refunded' END);
    IF v_moved = 'unchanged' THEN
        PERFORM feegate_emit(o.id); -- another partial refund: the portal hears of it too
    END IF;
    PERFORM feegate_ledger_flush();
    r_outcome := 'succeeded'; r_refund := feegate_refund_json(rf);
    RETURN NEXT;
END
$$;

-- Pending refunds to send (again) to a bank that has a refund API; claimed like attempts.
CREATE OR REPLACE FUNCTION feegate_refunds_to_retry(p_after_s int, p_limit int)
RETURNS TABLE (r_id uuid, r_ref text, r_amount bigint, r_reason text, r_created_by uuid, r_bank text,
               r_bank_order_ref text, r_bank_txn_id text, r_paid bigint, r_attempt_created bigint)
LANGUAGE sql AS $$
    UPDATE refunds r SET last_try_at = now()
      FROM attempts t
     WHERE t.id = r.attempt_id AND r.id IN (
           SELECT id FROM refunds WHERE status = 'pending'
              AND coalesce(last_try_at, created_at) < now() - make_interval(secs => p_after_s)
            ORDER BY created_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
    RETURNING r.id, r.refund_ref, r.amount, r.reason, r.created_by, t.bank, t.bank_order_ref, t.bank_txn_id,
              t.amount, extract(epoch FROM t.created_at)::bigint
$$;
