-- Staff sign-in bookkeeping and the order search staff and portal clients share.

-- Records a sign-in attempt's outcome for staff p_staff (NULL: no active staff has the e-mail
-- p_email) and returns the verdict: 'ok', 'failed' or 'locked'. p_result: 'ok' (password and,
-- where needed, TOTP right), 'bad' (wrong password or code) or 'locked' (refused unhashed while
-- the lock lasts). Five failures in a row lock the account for 15 minutes. The audit row is
-- written in this transaction. A TOTP step at or below the last one used is a failure (replay).
CREATE OR REPLACE FUNCTION feegate_staff_login(p_email text, p_staff uuid, p_result text, p_step bigint,
                                               p_request_id text, p_ip text, p_user_agent text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    s staff;
BEGIN
    IF p_staff IS NULL THEN
        PERFORM feegate_audit(NULL, p_email, '', 'login.failed', '', 'failed', p_request_id, p_ip, p_user_agent,
                              'unknown e-mail');
        RETURN 'failed';
    END IF;
    SELECT * INTO s FROM staff WHERE id = p_staff FOR UPDATE;
    IF s.locked_until > now() THEN
        PERFORM feegate_audit(s.id, s.email, s.role, 'login.locked', s.id::text, 'denied', p_request_id, p_ip,
                              p_user_agent, 'account locked until ' || to_char(s.locked_until AT TIME ZONE 'UTC', 'HH24:MI:SS"Z"'));
        RETURN 'locked';
    END IF;
    IF p_result = 'ok' AND (p_step IS NULL OR p_step > coalesce(s.totp_last_step, -1)) THEN
        UPDATE staff SET failed_logins = 0, locked_until = NULL,
                         totp_last_step = coalesce(p_step, totp_last_step) WHERE id = s.id;
        PERFORM feegate_audit(s.id, s.email, s.role, 'login.ok', s.id::text, 'ok', p_request_id, p_ip, p_user_agent);
        RETURN 'ok';
    END IF;
    IF s.failed_logins + 1 >= 5 THEN
        UPDATE staff SET failed_logins = 0, locked_until = now() + interval '15 minutes' WHERE id = s.id;
        PERFORM feegate_audit(s.id, s.email, s.role, 'login.failed', s.id::text, 'failed', p_request_id, p_ip,
                              p_user_agent);
        PERFORM feegate_audit(s.id, s.email, s.role, 'login.locked', s.id::text, 'denied', p_request_id, p_ip,
                              p_user_agent, 'five failures in a row: locked for 15 minutes');
        RETURN 'locked';
    END IF;
    UPDATE staff SET failed_logins = failed_logins + 1 WHERE id = s.id;
    PERFORM feegate_audit(s.id, s.email, s.role, 'login.failed', s.id::text, 'failed', p_request_id, p_ip, p_user_agent);
    RETURN 'failed';
END $$;

-- The agencies a staff member sees, as "id:code,id:code" (the gateway's principal format).
CREATE OR REPLACE FUNCTION feegate_staff_agencies(p_staff uuid) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(string_agg(a.id || ':' || a.code, ',' ORDER BY a.code), '')
    FROM staff_agencies sa JOIN agencies a ON a.id = sa.agency_id WHERE sa.staff_id = p_staff
$$;

-- Order search, newest first: for a portal client (p_client) or for staff (p_client NULL,
-- p_agencies NULL meaning all). Dates are business days (Asia/Ho_Chi_Minh) of creation;
-- p_bank: an attempt at that bank; p_ref: a reference prefix; p_payer: part of the payer's
-- name, any case; p_before: the cursor (an order id; ids are time-ordered).
CREATE OR REPLACE FUNCTION feegate_orders_find(p_client uuid, p_agencies bigint[], p_from date, p_to date,
                                               p_status text, p_bank text, p_ref text, p_payer text,
                                               p_before uuid, p_limit int)
RETURNS SETOF orders LANGUAGE sql STABLE AS $$
    SELECT o.* FROM orders o
     WHERE (p_client IS NULL OR o.client_id = p_client)
       AND (p_agencies IS NULL OR o.agency_id = ANY (p_agencies))
       AND (p_from IS NULL OR o.created_at >= (p_from::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh'))
       AND (p_to IS NULL OR o.created_at < ((p_to + 1)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh'))
       AND (p_status IS NULL OR o.status = p_status)
       AND (p_bank IS NULL OR EXISTS (SELECT 1 FROM attempts t WHERE t.order_id = o.id AND t.bank = p_bank))
       AND (p_ref IS NULL OR starts_with(o.reference, p_ref))
       AND (p_payer IS NULL OR strpos(lower(o.payer->>'name'), lower(p_payer)) > 0)
       AND (p_before IS NULL OR o.id < p_before)
     ORDER BY o.id DESC
     LIMIT p_limit
$$;

-- What the console's order page shows beside the order itself, as one JSON object.
CREATE OR REPLACE FUNCTION feegate_order_detail_json(p_order uuid) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'notifications', coalesce((SELECT json_agg(json_build_object('bank', n.bank, 'outcome', n.outcome,
                'amount', n.amount, 'success', n.success, 'source', n.source,
                'at', to_char(n.received_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'DD/MM/YYYY HH24:MI:SS')) ORDER BY n.id)
            FROM bank_notifications n JOIN attempts t ON t.id = n.attempt_id WHERE t.order_id = p_order), '[]'),
        'transfers', coalesce((SELECT json_agg(json_build_object('id', lt.id, 'code', lt.code, 'amount', lt.amount,
                'debit', da.name, 'credit', ca.name,
                'at', to_char(lt.created_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'DD/MM/YYYY HH24:MI:SS')) ORDER BY lt.seq)
            FROM ledger_transfers lt JOIN ledger_accounts da ON da.id = lt.debit_account
            JOIN ledger_accounts ca ON ca.id = lt.credit_account WHERE lt.order_id = p_order), '[]'),
        'webhooks', coalesce((SELECT json_agg(json_build_object('type', d.type, 'status', d.status,
                'attempts', d.attempts,
                'at', to_char(d.created_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'DD/MM/YYYY HH24:MI:SS')) ORDER BY d.created_at)
            FROM webhook_deliveries d WHERE d.order_id = p_order), '[]'),
        'refunds', coalesce((SELECT json_agg(json_build_object('id', r.id, 'amount', r.amount, 'status', r.status,
                'reason', r.reason,
                'at', to_char(r.created_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'DD/MM/YYYY HH24:MI:SS')) ORDER BY r.created_at)
            FROM refunds r WHERE r.order_id = p_order), '[]'))
$$;

-- Two-person rule. A refund above the approval amount is asked for (feegate_refund_ask) and
-- created only when a second finance member approves it (feegate_refund_approve, which then
-- runs feegate_refund_create as the asker and answers like it). Outcomes added to
-- feegate_refund_create's: approval_not_found, same_person, already_approved.
CREATE OR REPLACE FUNCTION feegate_refund_ask(p_approval uuid, p_order uuid, p_agencies bigint[], p_amount bigint,
                                              p_reason text, p_staff uuid, p_label text, p_role text,
                                              p_request_id text, p_ip text, p_user_agent text)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    a refund_approvals;
BEGIN
    INSERT INTO refund_approvals (id, kind, order_id, amount, reason, requested_by)
    SELECT p_approval, 'refund', o.id, p_amount, p_reason, p_staff FROM orders o
     WHERE o.id = p_order AND (p_agencies IS NULL OR o.agency_id = ANY (p_agencies))
    RETURNING * INTO a;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM feegate_audit(p_staff, p_label, p_role, 'refund.create', p_approval::text, 'ok', p_request_id, p_ip,
                          p_user_agent, p_amount || ' VND, order ' || p_order || ', awaiting a second approval');
    RETURN feegate_refund_approval_json(a);
END $$;

CREATE OR REPLACE FUNCTION feegate_refund_approval_json(a refund_approvals) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', a.id, 'kind', a.kind, 'order_id', a.order_id, 'refund_id', a.refund_id,
        'amount', a.amount, 'reason', a.reason, 'requested_by', a.requested_by, 'approved_by', a.approved_by,
        'status', CASE WHEN a.approved_by IS NULL THEN 'awaiting_approval' ELSE 'approved' END,
        'requested_at', to_char(a.requested_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;

CREATE OR REPLACE FUNCTION feegate_refund_approve(p_approval uuid, p_staff uuid, p_refund uuid, p_ref text,
                                                  p_label text, p_role text, p_request_id text, p_ip text,
                                                  p_user_agent text)
RETURNS TABLE (r_outcome text, r_refund json, r_refundable bigint, r_bank text, r_bank_order_ref text,
               r_bank_txn_id text, r_paid bigint, r_attempt_created bigint)
LANGUAGE plpgsql AS $$
DECLARE
    a refund_approvals;
BEGIN
    SELECT * INTO a FROM refund_approvals WHERE id = p_approval AND kind = 'refund' FOR UPDATE;
    IF NOT FOUND THEN
        r_outcome := 'approval_not_found'; RETURN NEXT; RETURN;
    END IF;
    IF a.requested_by = p_staff THEN
        PERFORM feegate_audit(p_staff, p_label, p_role, 'refund.approve', a.id::text, 'denied', p_request_id, p_ip,
                              p_user_agent, 'the asker cannot approve');
        r_outcome := 'same_person'; RETURN NEXT; RETURN;
    END IF;
    IF a.approved_by IS NOT NULL THEN
        r_outcome := 'already_approved'; r_refund := feegate_refund_approval_json(a); RETURN NEXT; RETURN;
    END IF;
    FOR r_outcome, r_refund, r_refundable, r_bank, r_bank_order_ref, r_bank_txn_id, r_paid, r_attempt_created IN
        SELECT * FROM feegate_refund_create(a.order_id, NULL, a.amount, a.reason, a.requested_by, p_refund, p_ref,
                                            NULL, NULL) LOOP
        IF r_outcome = 'created' THEN
            UPDATE refund_approvals SET approved_by = p_staff, approved_at = now(), refund_id = p_refund
             WHERE id = a.id;
            PERFORM feegate_audit(p_staff, p_label, p_role, 'refund.approve', a.id::text, 'ok', p_request_id, p_ip,
                                  p_user_agent, 'refund ' || p_refund);
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

-- A VietQR payout confirmation: the first finance member asks ('asked'), a second one's
-- confirmation goes through ('approved'); the asker again gets 'same_person' (audited as denied).
CREATE OR REPLACE FUNCTION feegate_payout_approval(p_approval uuid, p_refund uuid, p_staff uuid, p_label text,
                                                   p_role text, p_request_id text, p_ip text, p_user_agent text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    a refund_approvals;
BEGIN
    INSERT INTO refund_approvals (id, kind, order_id, refund_id, amount, requested_by)
    SELECT p_approval, 'payout', r.order_id, r.id, r.amount, p_staff FROM refunds r WHERE r.id = p_refund
    ON CONFLICT (refund_id) WHERE kind = 'payout' DO NOTHING;
    IF FOUND THEN
        PERFORM feegate_audit(p_staff, p_label, p_role, 'refund.confirm', p_refund::text, 'ok', p_request_id, p_ip,
                              p_user_agent, 'payout confirmation asked; awaiting a second finance member');
        RETURN 'asked';
    END IF;
    SELECT * INTO a FROM refund_approvals WHERE refund_id = p_refund AND kind = 'payout' FOR UPDATE;
    IF a.requested_by = p_staff THEN
        PERFORM feegate_audit(p_staff, p_label, p_role, 'refund.confirm', p_refund::text, 'denied', p_request_id, p_ip,
                              p_user_agent, 'the member who confirmed first cannot confirm again');
        RETURN 'same_person';
    END IF;
    UPDATE refund_approvals SET approved_by = p_staff, approved_at = now() WHERE id = a.id AND approved_by IS NULL;
    PERFORM feegate_audit(p_staff, p_label, p_role, 'refund.approve', a.id::text, 'ok', p_request_id, p_ip,
                          p_user_agent, 'payout of refund ' || p_refund);
    RETURN 'approved';
END $$;
