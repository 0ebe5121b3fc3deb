-- Cases (payment_exceptions) worked to an end: open -> acknowledged -> resolved, every step kept
-- in case_actions with its actor (the verified staff member). The one place that changes a
-- case's state.
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).

CREATE OR REPLACE FUNCTION feegate_case_json(e payment_exceptions) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', e.id, 'kind', e.kind, 'state', e.state, 'amount', e.amount, 'bank', e.bank,
        'bank_txn_id', e.bank_txn_id, 'order_id', e.order_id, 'attempt_id', e.attempt_id,
        'statement_id', e.statement_id, 'line', e.line,
        'agency', (SELECT code FROM agencies WHERE id = e.agency_id),
        'created_at', to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'resolved_at', to_char(e.resolved_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'resolution', e.resolution, 'note', e.note,
        'pending_approval', CASE WHEN e.proposed_resolution IS NOT NULL AND e.resolved_at IS NULL
            THEN json_build_object('resolution', e.proposed_resolution, 'proposed_by', e.proposed_by,
                                   'note', e.proposed_note) END,
        'transfer_id', e.transfer_id, 'refund_id', e.refund_id, 'reopens', e.reopens,
        'details', e.details,
        'actions', coalesce((SELECT json_agg(json_build_object(
                'at', to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                'actor', a.actor, 'action', a.action, 'note', a.note) ORDER BY a.id)
            FROM case_actions a WHERE a.case_id = e.id), '[]'))
$$;

-- Resolves a case (caller holds its row lock).
CREATE OR REPLACE FUNCTION feegate_case_close(p_case uuid, p_actor uuid, p_resolution text, p_note text,
                                              p_action text) RETURNS void
LANGUAGE sql AS $$
    UPDATE payment_exceptions SET state = 'resolved', resolution = p_resolution, note = p_note, resolved_at = now()
     WHERE id = p_case;
    INSERT INTO case_actions (case_id, actor, action, note) VALUES (p_case, p_actor::text, p_action, p_note);
$$;

-- acknowledge | resolve | approve, by staff p_actor within p_scope (NULL: every agency).
-- r_outcome: ok | not_found | invalid_state (with r_message) | forbidden (self-approval).
CREATE OR REPLACE FUNCTION feegate_case_act(p_case uuid, p_actor uuid, p_scope bigint[], p_action text,
                                            p_resolution text, p_note text)
RETURNS TABLE (r_outcome text, r_message text, r_case json)
LANGUAGE plpgsql AS $$
DECLARE
    e payment_exceptions;
    att attempts;
    v_clearing bigint;
    v_suspense bigint;
    v_transfer text;
    v_refund json;
    v_ref text;
BEGIN
    SELECT * INTO e FROM payment_exceptions WHERE id = p_case FOR UPDATE;
    IF NOT FOUND OR (p_scope IS NOT NULL AND NOT (e.agency_id = ANY (p_scope))) THEN
        RETURN QUERY SELECT 'not_found'::text, 'no such case'::text, NULL::json;
        RETURN;
    END IF;
    IF e.state = 'resolved' THEN
        RETURN QUERY SELECT 'invalid_state'::text, 'the case is resolved'::text, feegate_case_json(e);
        RETURN;
    END IF;

    IF p_action = 'acknowledge' THEN
        IF e.state <> 'open' THEN
            RETURN QUERY SELECT 'invalid_state'::text, 'the case is already acknowledged'::text, feegate_case_json(e);
            RETURN;
        END IF;
        UPDATE payment_exceptions SET state = 'acknowledged' WHERE id = p_case;
        INSERT INTO case_actions (case_id, actor, action, note) VALUES (p_case, p_actor::text, 'acknowledge', p_note);

    ELSIF p_action = 'approve' THEN
        IF e.proposed_resolution IS NULL THEN
            RETURN QUERY SELECT 'invalid_state'::text, 'nothing waits for approval on this case'::text,
                                feegate_case_json(e);
            RETURN;
        END IF;
        IF e.proposed_by = p_actor THEN
            RETURN QUERY SELECT 'forbidden'::text, 'the staff member who proposed a resolution cannot approve it'::text,
                                NULL::json;
            RETURN;
        END IF;
        PERFORM feegate_case_close(p_case, p_actor, e.proposed_resolution, e.proposed_note, 'approve');

    ELSIF p_action = 'resolve' THEN
        IF e.proposed_resolution IS NOT NULL THEN
            RETURN QUERY SELECT 'invalid_state'::text, 'a resolution already waits for approval'::text,
                                feegate_case_json(e);
            RETURN;
        END IF;
        IF p_resolution = 'accepted' THEN
            -- no money moves: a second finance member must approve
            UPDATE payment_exceptions SET proposed_resolution = 'accepted', proposed_by = p_actor, proposed_note = p_note
             WHERE id = p_case;
            INSERT INTO case_actions (case_id, actor, action, note) VALUES (p_case, p_actor::text, 'propose', p_note);
        ELSIF p_resolution = 'void' THEN
            PERFORM feegate_case_close(p_case, p_actor, 'void', p_note, 'resolve');
        ELSIF p_resolution = 'posted' THEN
            SELECT * INTO att FROM attempts WHERE id = e.attempt_id;
            IF e.kind = 'missing_in_ledger' AND att.id IS NOT NULL AND att.status <> 'succeeded' THEN
                -- the bank settled a payment feegate never heard of: applied to its attempt through
                -- the notification path, with the settlement line's time
                PERFORM feegate_apply_notifications(json_build_array(json_build_object(
                    'i', 0, 'bank', att.bank, 'kind', 'payment', 'ref', att.bank_order_ref, 'amount', e.amount,
                    'success', true, 'txn_id', coalesce(e.bank_txn_id, 'case:' || e.id), 'source', 'notification',
                    'paid_at', extract(epoch FROM coalesce((SELECT l.at FROM statement_lines l
                                                             WHERE l.statement_id = e.statement_id AND l.line = e.line),
                                                           now()))::bigint)), 0);
                SELECT id INTO v_transfer FROM ledger_transfers WHERE attempt_id = att.id
                 ORDER BY seq DESC LIMIT 1;
            ELSE
                -- money the bank holds that the ledger has no place for: to suspense, linked
                v_clearing := feegate_account_id('bank:' || e.bank || ':clearing');
                v_suspense := feegate_account_id('suspense');
                IF v_clearing IS NULL THEN
                    RETURN QUERY SELECT 'invalid_state'::text, 'this case has no bank account to post from'::text,
                                        feegate_case_json(e);
                    RETURN;
                END IF;
                v_transfer := 'case:' || e.id;
                PERFORM feegate_post(v_transfer, v_clearing, v_suspense, e.amount, 'correction', e.order_id,
                                     e.attempt_id, NULL);
                PERFORM feegate_ledger_flush();
            END IF;
            UPDATE payment_exceptions SET transfer_id = v_transfer WHERE id = p_case;
            PERFORM feegate_case_close(p_case, p_actor, 'posted', p_note, 'resolve');
        ELSIF p_resolution = 'refund' THEN
            IF e.order_id IS NULL THEN
                RETURN QUERY SELECT 'invalid_state'::text, 'this case has no order to refund'::text, feegate_case_json(e);
                RETURN;
            END IF;
            v_ref := 'RC' || upper(substr(md5(e.id::text || clock_timestamp()::text), 1, 20));
            SELECT f.r_refund INTO v_refund
              FROM feegate_refund_create(e.order_id, NULL, least(e.amount, feegate_refundable(e.order_id, true)),
                                         left(p_note, 255), p_actor, gen_random_uuid(), v_ref, NULL, NULL) f
             WHERE f.r_outcome = 'created';
            IF v_refund IS NULL THEN
                RETURN QUERY SELECT 'invalid_state'::text, 'nothing of this order can be refunded'::text,
                                    feegate_case_json(e);
                RETURN;
            END IF;
            UPDATE payment_exceptions SET refund_id = (v_refund->>'id')::uuid WHERE id = p_case;
            PERFORM feegate_case_close(p_case, p_actor, 'refund', p_note, 'resolve');
        END IF;
    END IF;
    SELECT * INTO e FROM payment_exceptions WHERE id = p_case;
    RETURN QUERY SELECT 'ok'::text, NULL::text, feegate_case_json(e);
END
$$;
