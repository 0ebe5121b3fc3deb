-- Bank notifications applied in one batch: the set-based fast path for first successes, the
-- per-item path for everything else, one ledger flush at the end.
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).
--
-- p_lease_s > 0: the fast path's portal webhook rows are written leased for that long to the
-- gateway worker that runs the batch, and returned with the items (r_delivery .. r_payload), so
-- the worker sends them itself once the batch has committed instead of claiming them back from
-- the outbox (a claim rewrites each row: a third of the webhook's database cost). A worker that
-- dies before sending leaves them to the relay's claim when the lease ends. Rows of the per-item
-- path, rows of an order with an earlier event still in the outbox (feegate_emit_orders), and
-- every row when p_lease_s is 0 wait in the outbox for the claim as before.
CREATE OR REPLACE FUNCTION feegate_apply_notifications(batch json, p_lease_s int)
RETURNS TABLE (r_idx int, r_outcome text, r_order uuid, r_status text, r_delivery uuid, r_client uuid,
               r_url text, r_secret text, r_payload text)
LANGUAGE plpgsql
-- Generic plans: batches are small at everyday rates (3-4 notifications at 1,000/s), where
-- planning each statement anew cost more than running it (PostgreSQL CPU per notification at
-- 1,000/s: 730-820 us with generic plans, 920-1,050 us without).
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    it json;
    att record;
    ord record;
    v_bank text;
    v_amount bigint;
    v_txn text;
    v_key text;
    v_clearing bigint;
    v_payable bigint;
    v_suspense bigint;
    v_kind text;
    -- the batch, parsed once
    b_i int[];
    b_bank text[];
    b_kind text[];
    b_ref text[];
    b_amount bigint[];
    b_success boolean[];
    b_txn text[];
    b_source text[];
    b_raw text[];
    b_paid bigint[];
    -- the fast path's items
    f_i int[];
    f_att uuid[];
    f_ord uuid[];
    f_txn text[];
    f_amount bigint[];
    f_debit bigint[];
    f_credit bigint[];
    f_paid bigint[];
    v_refs text[];
    v_pay_ids text[];
    v_n int;
BEGIN
    SELECT array_agg(x.i), array_agg(x.bank), array_agg(x.kind), array_agg(x.ref), array_agg(x.amount),
           array_agg(x.success), array_agg(x.txn_id), array_agg(x.source), array_agg(x.raw), array_agg(x.paid_at)
      INTO b_i, b_bank, b_kind, b_ref, b_amount, b_success, b_txn, b_source, b_raw, b_paid
      FROM json_to_recordset(batch) AS x(i int, bank text, kind text, ref text, amount bigint, success boolean,
                                         txn_id text, source text, raw text, paid_at bigint);

    -- One lock order for everything that touches orders and attempts: the orders first, by id,
    -- then their attempts, by id. Cancel, expiry, checkout and closing an attempt take them in
    -- the same order, so concurrent batches and requests cannot deadlock.
    -- (Each statement costs about the same for 3 items as for 128, and at everyday rates a batch
    -- holds a few: keep their number down.)
    v_refs := b_ref;
    IF 'credit' = ANY (b_kind) THEN
        v_refs := v_refs || ARRAY(
            SELECT c.value FROM json_to_recordset(batch) AS x(candidates json),
                   json_array_elements_text(coalesce(x.candidates, '[]')) AS c(value));
    END IF;
    PERFORM 1 FROM orders o WHERE o.id IN (SELECT t.order_id FROM attempts t WHERE t.bank_order_ref = ANY (v_refs))
     ORDER BY o.id FOR UPDATE;
    PERFORM 1 FROM attempts t WHERE t.order_id IN (SELECT t2.order_id FROM attempts t2 WHERE t2.bank_order_ref = ANY (v_refs))
     ORDER BY t.id FOR UPDATE;

    -- Fast path, in set form: the first successful payment notification of an attempt not yet
    -- paid, of the right amount, for an order that may still succeed. bank_notifications'
    -- unique key drops replays.
    WITH inp AS (
        SELECT * FROM unnest(b_i, b_bank, b_kind, b_ref, b_amount, b_success, b_txn, b_source, b_raw, b_paid)
                      AS x(i, bank, kind, ref, amount, success, txn_id, source, raw, paid_at)
         WHERE kind = 'payment' AND success AND coalesce(txn_id, '') <> ''),
    firsts AS (SELECT DISTINCT ON (bank, ref) * FROM inp ORDER BY bank, ref, i),
    firsts_txn AS (SELECT DISTINCT ON (bank, txn_id) * FROM firsts ORDER BY bank, txn_id, i),
    -- one success per order (another attempt of the same order paid in this batch is a double
    -- payment: the per-item path posts it to suspense); rows are already locked above
    cand AS (
        SELECT DISTINCT ON (o.id) f.i, f.bank, f.ref, f.amount, f.txn_id, f.source, f.raw, f.paid_at, t.id AS attempt_id,
               o.id AS order_id, ba.id AS debit, pa.id AS credit
          FROM firsts_txn f JOIN attempts t ON t.bank = f.bank AND t.bank_order_ref = f.ref
          JOIN orders o ON o.id = t.order_id
          -- both accounts must exist, or the posting below could not be written: such rows take
          -- the per-item path, which creates a new bank's clearing account
          JOIN ledger_accounts pa ON pa.agency_id = o.agency_id AND pa.type = 'agency_payable'
          JOIN ledger_accounts ba ON ba.type = 'bank_clearing' AND ba.bank = f.bank
         WHERE t.amount = f.amount AND t.status <> 'succeeded'
           AND EXISTS (SELECT 1 FROM order_transitions tr WHERE tr.from_status = o.status AND tr.to_status = 'succeeded')
         ORDER BY o.id, f.i),
    seen AS (
        INSERT INTO bank_notifications (bank, dedupe_key, bank_order_ref, attempt_id, amount, success, outcome, source, raw)
        SELECT bank, txn_id, ref, attempt_id, amount, true, 'applied', coalesce(source, 'notification'), raw FROM cand
        ON CONFLICT DO NOTHING RETURNING bank, dedupe_key)
    SELECT array_agg(c.i), array_agg(c.attempt_id), array_agg(c.order_id), array_agg(c.txn_id), array_agg(c.amount),
           array_agg(c.debit), array_agg(c.credit), array_agg(c.paid_at)
      INTO f_i, f_att, f_ord, f_txn, f_amount, f_debit, f_credit, f_paid
      FROM cand c JOIN seen s ON s.bank = c.bank AND s.dedupe_key = c.txn_id;

    IF f_i IS NOT NULL THEN
        -- the paid attempts, and the other attempts still open for these orders (not needed now)
        UPDATE attempts t
           SET status = CASE WHEN t.id = ANY (f_att) THEN 'succeeded' ELSE 'expired' END,
               bank_txn_id = CASE WHEN t.id = ANY (f_att) THEN f_txn[array_position(f_att, t.id)] ELSE t.bank_txn_id END,
               failure_code = CASE WHEN t.id = ANY (f_att) THEN NULL ELSE t.failure_code END,
               paid_at = CASE WHEN t.id = ANY (f_att)
                              THEN coalesce(to_timestamp(f_paid[array_position(f_att, t.id)]), now()) ELSE t.paid_at END,
               updated_at = now()
         WHERE t.order_id = ANY (f_ord) AND (t.id = ANY (f_att) OR t.status = 'pending');
        RETURN QUERY
            WITH w AS (SELECT * FROM feegate_orders_transition(f_ord, 'succeeded', p_lease_s) e)
            SELECT f.i, 'applied'::text, f.ord, 'succeeded'::text, w.r_delivery, w.r_client, w.r_url, w.r_secret,
                   w.r_payload
              FROM unnest(f_i, f_ord) AS f(i, ord) LEFT JOIN w ON w.r_order = f.ord;
    END IF;

    -- Everything else, one by one: failures, transfers, wrong amounts, replays, late and double
    -- payments (none when the fast path took every item).
    IF f_i IS NULL OR cardinality(f_i) < cardinality(b_i) THEN
        v_suspense := feegate_account_id('suspense');
        FOR it IN SELECT value FROM json_array_elements(batch)
                   WHERE f_i IS NULL OR NOT ((value->>'i')::int = ANY (f_i)) LOOP
            r_idx := (it->>'i')::int;
            r_order := NULL;
            r_status := NULL;
            v_bank := it->>'bank';
            v_amount := (it->>'amount')::bigint;
            v_txn := nullif(it->>'txn_id', '');
            v_clearing := feegate_account_id('bank:' || v_bank || ':clearing');
            IF v_clearing IS NULL THEN
                INSERT INTO ledger_accounts (name, type, bank) VALUES ('bank:' || v_bank || ':clearing', 'bank_clearing', v_bank)
                ON CONFLICT DO NOTHING;
                v_clearing := feegate_account_id('bank:' || v_bank || ':clearing');
            END IF;
            att := NULL;
            -- Which attempt is this about?
            IF it->>'kind' = 'credit' THEN
                SELECT t.* INTO att FROM attempts t JOIN orders o ON o.id = t.order_id JOIN agencies a ON a.id = o.agency_id
                 WHERE t.bank = v_bank AND t.bank_order_ref IN (SELECT json_array_elements_text(it->'candidates'))
                   AND t.amount = v_amount AND a.account_number = it->>'account_no'
                 ORDER BY (t.status = 'pending') DESC, t.created_at DESC LIMIT 1 FOR UPDATE OF t;
            ELSE
                SELECT t.* INTO att FROM attempts t WHERE t.bank = v_bank AND t.bank_order_ref = it->>'ref' FOR UPDATE;
                IF NOT FOUND THEN
                    r_outcome := 'unknown_order'; RETURN NEXT; CONTINUE;
                END IF;
                IF att.amount <> v_amount THEN
                    INSERT INTO payment_exceptions (kind, bank, bank_txn_id, order_id, attempt_id, amount, details)
                    VALUES ('wrong_amount', v_bank, coalesce(v_txn, it->>'ref'), att.order_id, att.id, v_amount,
                            json_build_object('expected', att.amount, 'received', v_amount, 'success', (it->>'success')::boolean))
                    ON CONFLICT DO NOTHING;
                    r_order := att.order_id;
                    r_outcome := 'wrong_amount'; RETURN NEXT; CONTINUE;
                END IF;
            END IF;

            -- A replay of something already applied changes nothing.
            v_key := CASE WHEN (it->>'success')::boolean THEN coalesce(v_txn, 'ref:' || (it->>'ref'))
                          ELSE 'failed:' || coalesce(it->>'ref', '') || ':' || coalesce(v_txn, '') END;
            INSERT INTO bank_notifications (bank, dedupe_key, bank_order_ref, attempt_id, amount, success, outcome, source, raw)
            VALUES (v_bank, v_key, coalesce(att.bank_order_ref, it->>'ref'), att.id, v_amount, (it->>'success')::boolean,
                    'applied', coalesce(it->>'source', 'notification'), it->>'raw')
            ON CONFLICT DO NOTHING;
            IF NOT FOUND THEN
                r_order := att.order_id;
                -- The transaction id is known, but for another payment: not a replay. A case for
                -- finance, an error answer to the bank, and the payment it names left as it is.
                IF (it->>'success')::boolean AND v_txn IS NOT NULL AND EXISTS (
                       SELECT 1 FROM bank_notifications n WHERE n.bank = v_bank AND n.dedupe_key = v_key
                          AND n.bank_order_ref IS DISTINCT FROM coalesce(att.bank_order_ref, it->>'ref')) THEN
                    -- the bank retries an error answer: one case per transaction id and payment
                    INSERT INTO payment_exceptions (kind, bank, bank_txn_id, order_id, attempt_id, amount, details)
                    SELECT 'txn_id_conflict', v_bank, v_txn, att.order_id, att.id, v_amount,
                           json_build_object('bank_order_ref', coalesce(att.bank_order_ref, it->>'ref'),
                                             'recorded_for', n.bank_order_ref, 'recorded_amount', n.amount)
                      FROM bank_notifications n
                     WHERE n.bank = v_bank AND n.dedupe_key = v_key
                       AND NOT EXISTS (SELECT 1 FROM payment_exceptions e
                                        WHERE e.kind = 'txn_id_conflict' AND e.bank = v_bank AND e.bank_txn_id = v_txn
                                          AND e.attempt_id IS NOT DISTINCT FROM att.id);
                    r_outcome := 'txn_id_conflict'; RETURN NEXT; CONTINUE;
                END IF;
                r_outcome := 'replayed'; RETURN NEXT; CONTINUE;
            END IF;

            IF NOT (it->>'success')::boolean THEN
                -- A failure: only a pending attempt fails; the order may be tried at another bank.
                IF att.id IS NOT NULL AND att.status = 'pending' THEN
                    PERFORM feegate_fail_attempt(att.id, coalesce(nullif(it->>'failure_code', ''), 'declined'));
                    r_outcome := 'applied';
                ELSE
                    r_outcome := 'replayed';
                END IF;
                r_order := att.order_id;
                RETURN NEXT; CONTINUE;
            END IF;

            IF att.id IS NULL THEN
                -- A signed credit that matches no attempt: money received all the same.
                PERFORM feegate_post('credit:' || v_bank || ':' || v_txn, v_clearing, v_suspense, v_amount, 'suspense',
                                     NULL, NULL, NULL);
                INSERT INTO payment_exceptions (kind, bank, bank_txn_id, amount, details)
                VALUES ('unmatched_credit', v_bank, v_txn, v_amount,
                        json_build_object('account_no', it->>'account_no', 'content', it->>'content'))
                ON CONFLICT DO NOTHING;
                r_outcome := 'applied'; RETURN NEXT; CONTINUE;
            END IF;

            SELECT o.* INTO ord FROM orders o WHERE o.id = att.order_id FOR UPDATE;
            r_order := ord.id;
            IF att.status = 'succeeded' THEN
                -- The same attempt paid twice (another bank transaction): the second is suspense.
                v_kind := 'double_payment';
            ELSIF ord.status IN ('created', 'pending') THEN
                v_kind := NULL;
            ELSE
                v_kind := CASE WHEN ord.status IN ('succeeded', 'partially_refunded', 'refunded')
                               THEN 'double_payment' ELSE 'late_success' END;
            END IF;

            IF att.status <> 'succeeded' THEN
                UPDATE attempts SET status = 'succeeded', bank_txn_id = v_txn, failure_code = NULL,
                       paid_at = coalesce(to_timestamp((it->>'paid_at')::bigint), now()), updated_at = now()
                 WHERE id = att.id;
            END IF;
            IF v_kind IS NULL THEN
                v_payable := (SELECT id FROM ledger_accounts WHERE agency_id = ord.agency_id AND type = 'agency_payable');
                PERFORM feegate_post(feegate_payment_transfer_id(att.id), v_clearing, v_payable, v_amount, 'payment', ord.id, att.id, NULL);
                -- Other attempts still open for this order will not be needed.
                UPDATE attempts SET status = 'expired', updated_at = now()
                 WHERE order_id = ord.id AND status = 'pending' AND id <> att.id;
                PERFORM feegate_orders_transition(ARRAY[ord.id], 'succeeded', 0);
            ELSE
                PERFORM feegate_post('suspense:' || v_bank || ':' || coalesce(v_txn, att.bank_order_ref), v_clearing,
                                     v_suspense, v_amount, 'suspense', ord.id, att.id, NULL);
                INSERT INTO payment_exceptions (kind, bank, bank_txn_id, order_id, attempt_id, agency_id, amount, details)
                VALUES (v_kind, v_bank, coalesce(v_txn, att.bank_order_ref), ord.id, att.id, ord.agency_id, v_amount,
                        json_build_object('order_status', ord.status))
                ON CONFLICT DO NOTHING;
            END IF;
            SELECT status INTO r_status FROM orders WHERE id = ord.id;
            r_outcome := 'applied';
            RETURN NEXT;
        END LOOP;
    END IF;

    -- The fast path's payments and whatever the per-item path staged: one chain extension
    -- (nothing was staged when the fast path took every item: the staging table is not read).
    v_pay_ids := ARRAY(SELECT feegate_payment_transfer_id(a.att) FROM unnest(f_att) WITH ORDINALITY AS a(att, k) ORDER BY a.k);
    v_n := cardinality(v_pay_ids);
    IF f_i IS NOT NULL AND v_n = cardinality(b_i) THEN
        PERFORM feegate_ledger_write(v_pay_ids, f_debit, f_credit, f_amount, array_fill('payment'::text, ARRAY[v_n]),
                                     f_ord, f_att, array_fill(NULL::uuid, ARRAY[v_n]));
    ELSE
        PERFORM feegate_ledger_flush_with(v_pay_ids, f_debit, f_credit, f_amount, array_fill('payment'::text, ARRAY[v_n]),
                                          f_ord, f_att, array_fill(NULL::uuid, ARRAY[v_n]));
    END IF;
END
$$;

-- The previous release's call: every webhook row waits for the relay's claim.
CREATE OR REPLACE FUNCTION feegate_apply_notifications(batch json)
RETURNS TABLE (r_idx int, r_outcome text, r_order uuid, r_status text)
LANGUAGE sql AS $$
    SELECT a.r_idx, a.r_outcome, a.r_order, a.r_status FROM feegate_apply_notifications(batch, 0) a
$$;
