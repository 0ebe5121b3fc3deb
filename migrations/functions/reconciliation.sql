-- Matching imported files against the ledger, set-based: bank settlement files (vnpay, momo,
-- vietqr) and treasury statements (camt053). Run in the import's transaction, once per import,
-- and it matches again what a later file changes (a payment listed in the next day's file, a
-- correction that supersedes an earlier file, a payout that arrives after it was due).
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).

-- The banking day n banking days after d: Saturdays, Sundays and bank_holidays are skipped.
CREATE OR REPLACE FUNCTION feegate_banking_days_after(d date, n int) RETURNS date
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r date := d;
    k int := 0;
BEGIN
    WHILE k < n LOOP
        r := r + 1;
        IF extract(isodow FROM r) < 6 AND NOT EXISTS (SELECT 1 FROM bank_holidays h WHERE h.day = r) THEN
            k := k + 1;
        END IF;
    END LOOP;
    RETURN r;
END
$$;

-- A transfer content's candidate references: every run of 12 letters and digits of the content
-- upper-cased with everything else removed (the VietQR rule of docs/openapi.yaml; see notify_item).
CREATE OR REPLACE FUNCTION feegate_content_refs(p_content text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE AS $$
    SELECT substr(n, i, 12)
      FROM (SELECT upper(regexp_replace(coalesce(p_content, ''), '[^A-Za-z0-9]', '', 'g')) AS n) c,
           generate_series(1, greatest(length(n) - 11, 0)) AS i
$$;

-- What a settlement line's case is about ("one open case per kind and object").
CREATE OR REPLACE FUNCTION feegate_line_object(l statement_lines) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE l.outcome WHEN 'amount_mismatch' THEN 'attempt:' || l.attempt_id
                          WHEN 'refund_mismatch' THEN 'refund:' || l.bank || ':' || coalesce(nullif(l.refund_txn_id, ''), l.refund_ref)
                          ELSE 'line:' || l.bank || ':' || coalesce(nullif(l.bank_txn_id, ''), l.bank_order_ref) END
$$;

-- Opens a case unless one is open for the same kind and object; a case for an object whose last
-- case was resolved is a new one linked to it. Returns 1 when a case was opened.
CREATE OR REPLACE FUNCTION feegate_case_open(p_kind text, p_object text, p_bank text, p_txn text, p_attempt uuid,
                                             p_agency bigint, p_amount bigint, p_details json,
                                             p_statement uuid, p_line int)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
    v_order uuid;
BEGIN
    SELECT t.order_id INTO v_order FROM attempts t WHERE t.id = p_attempt;
    IF p_agency IS NULL AND v_order IS NOT NULL THEN
        SELECT o.agency_id INTO p_agency FROM orders o WHERE o.id = v_order;
    END IF;
    INSERT INTO payment_exceptions (kind, bank, bank_txn_id, order_id, attempt_id, agency_id, amount, details,
                                    statement_id, line, object, reopens)
    VALUES (p_kind, p_bank, nullif(p_txn, ''), v_order, p_attempt, p_agency, p_amount, p_details, p_statement, p_line,
            p_object, (SELECT e.id FROM payment_exceptions e WHERE e.kind = p_kind AND e.object = p_object
                        ORDER BY e.created_at DESC LIMIT 1))
    ON CONFLICT DO NOTHING RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        -- still open: it now points at the latest evidence
        UPDATE payment_exceptions SET statement_id = p_statement, line = p_line
         WHERE kind = p_kind AND object = p_object AND resolved_at IS NULL;
        RETURN 0;
    END IF;
    INSERT INTO case_actions (case_id, actor, action) VALUES (v_id, 'system', 'open');
    RETURN 1;
END
$$;

-- Closes an open case that a later file settled, naming the file.
CREATE OR REPLACE FUNCTION feegate_case_auto(p_case uuid, p_statement uuid) RETURNS void
LANGUAGE sql AS $$
    WITH c AS (
        UPDATE payment_exceptions SET state = 'resolved', resolution = 'auto', resolved_at = now(),
               note = 'settled by statement ' || p_statement
         WHERE id = p_case AND resolved_at IS NULL RETURNING id)
    INSERT INTO case_actions (case_id, actor, action, note)
    SELECT id, 'system', 'resolve', 'auto: settled by statement ' || p_statement FROM c
$$;

-- The bank's net payout expected for each agency and business day from the current bank files:
-- gross payments minus refunds minus the bank's fees (the bank keeps its fee either way).
CREATE OR REPLACE VIEW reconciliation_expected_payouts AS
    SELECT l.agency_id, s.source AS bank, s.business_date,
           sum(CASE WHEN l.kind = 'payment' THEN l.amount - l.fee ELSE -l.amount - l.fee END)::bigint AS payout
      FROM statements s
      JOIN statement_lines l ON l.statement_id = s.id
     WHERE s.status = 'imported' AND s.source IN ('vnpay', 'momo') AND l.agency_id IS NOT NULL
       AND l.outcome IN ('matched', 'amount_mismatch', 'refund_mismatch')
     GROUP BY l.agency_id, s.source, s.business_date;

-- The bank's fees of a statement's matched payments, one transfer per agency: from the agency's
-- payable (it is paid the net), or from fees:platform where the platform bears the fee. With
-- p_reverse, the same transfers reversed (the statement was superseded by a correction).
-- p_agencies and p_fees, when given, are the sums per agency already counted by the caller.
-- Posting twice changes nothing: the transfer ids are the statement's and the agency's.
CREATE OR REPLACE FUNCTION feegate_post_statement_fees(p_statement uuid, p_reverse boolean,
                                                       p_agencies bigint[] DEFAULT NULL, p_fees bigint[] DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    st statements;
    v_clearing bigint;
    v_ids text[];
    v_from bigint[];
    v_amount bigint[];
    v_n int;
BEGIN
    SELECT * INTO st FROM statements WHERE id = p_statement;
    v_clearing := feegate_account_id('bank:' || st.source || ':clearing');
    SELECT array_agg(CASE WHEN p_reverse THEN 'fee-reversal:' ELSE 'fee:' END || p_statement || ':' || ag.code
                     ORDER BY ag.code),
           array_agg(CASE WHEN ag.platform_bears_fee THEN feegate_account_id('fees:platform') ELSE pa.id END
                     ORDER BY ag.code),
           array_agg(f.fee ORDER BY ag.code)
      INTO v_ids, v_from, v_amount
      FROM (SELECT l.agency_id, sum(l.fee)::bigint AS fee FROM statement_lines l
             WHERE p_agencies IS NULL AND l.statement_id = p_statement AND l.outcome = 'matched'
               AND l.kind = 'payment' AND l.fee > 0
             GROUP BY l.agency_id
            UNION ALL
            SELECT a, f FROM unnest(p_agencies, p_fees) u(a, f) WHERE p_agencies IS NOT NULL) f
      JOIN agencies ag ON ag.id = f.agency_id
      JOIN ledger_accounts pa ON pa.agency_id = ag.id AND pa.type = 'agency_payable'
     WHERE NOT EXISTS (SELECT 1 FROM ledger_transfers t
                        WHERE t.id = CASE WHEN p_reverse THEN 'fee-reversal:' ELSE 'fee:' END || p_statement || ':' || ag.code);
    v_n := coalesce(cardinality(v_ids), 0);
    IF v_n > 0 THEN
        IF p_reverse THEN
            PERFORM feegate_ledger_write(v_ids, array_fill(v_clearing, ARRAY[v_n]), v_from, v_amount,
                                         array_fill('fee'::text, ARRAY[v_n]), array_fill(NULL::uuid, ARRAY[v_n]),
                                         array_fill(NULL::uuid, ARRAY[v_n]), array_fill(NULL::uuid, ARRAY[v_n]));
        ELSE
            PERFORM feegate_ledger_write(v_ids, v_from, array_fill(v_clearing, ARRAY[v_n]), v_amount,
                                         array_fill('fee'::text, ARRAY[v_n]), array_fill(NULL::uuid, ARRAY[v_n]),
                                         array_fill(NULL::uuid, ARRAY[v_n]), array_fill(NULL::uuid, ARRAY[v_n]));
        END IF;
    END IF;
    RETURN v_n;
END
$$;

-- A bank's settlement file, from the session's statement_staging: each line is written once,
-- with the attempt it is about (by the bank's transaction id, else by bank_order_ref; a VietQR
-- credit else by content, amount and account) or its refund, its agency and its outcome, in one
-- set-based INSERT (a file can hold a million lines); then the fees of the matched payments,
-- and a case for each line that does not match. Returns the matched lines and the cases opened.
CREATE OR REPLACE FUNCTION feegate_match_bank_file(p_statement uuid, OUT r_matched int, OUT r_cases int)
LANGUAGE plpgsql AS $$
DECLARE
    st statements;
    v_day_start timestamptz;
    v_day_end timestamptz;
    v_neighbours uuid[];
    v_next_in boolean;
    v_day date;
    v_unmatched int[];
    v_fee_agencies bigint[];
    v_fees bigint[];
    c record;
BEGIN
    SELECT * INTO st FROM statements WHERE id = p_statement;
    v_day_start := feegate_business_day_start(st.business_date);
    v_day_end := feegate_business_day_start(st.business_date + 1);
    r_cases := 0;
    -- The current files of the days around this one: a payment they already list is a duplicate
    -- here. Cut-off skew puts a payment in its own day's file or the next, so only a payment of
    -- another day is looked for in them (all are once the next day's file is in).
    SELECT array_agg(s.id), bool_or(s.business_date = st.business_date + 1) INTO v_neighbours, v_next_in
      FROM statements s
     WHERE s.source = st.source AND s.status = 'imported' AND s.id <> p_statement
       AND s.business_date BETWEEN st.business_date - 3 AND st.business_date + 3;
    v_next_in := coalesce(v_next_in, false);

    WITH ins AS (
    INSERT INTO statement_lines (statement_id, line, kind, bank, bank_order_ref, bank_txn_id, refund_ref,
                                 refund_txn_id, amount, fee, at, account_no, content, outcome, attempt_id,
                                 refund_id, agency_id)
    SELECT p_statement, s.line, s.kind, s.bank, s.bank_order_ref, s.bank_txn_id, s.refund_ref, s.refund_txn_id,
           s.amount, s.fee, s.at, s.account_no, s.content,
           CASE WHEN s.kind = 'refund' THEN
                    CASE WHEN rf.status = 'succeeded' AND rf.amount = s.amount THEN 'matched' ELSE 'refund_mismatch' END
                WHEN rep.first_line IS NOT NULL AND s.line > rep.first_line THEN 'duplicate'
                WHEN t.id IS NULL OR t.status <> 'succeeded' THEN 'missing_in_ledger'
                WHEN v_neighbours IS NOT NULL AND (v_next_in OR t.paid_at < v_day_start OR t.paid_at >= v_day_end)
                     AND EXISTS (SELECT 1 FROM statement_lines p
                                  WHERE p.attempt_id = t.id AND p.statement_id = ANY (v_neighbours)
                                    AND p.outcome IN ('matched', 'amount_mismatch')) THEN 'duplicate'
                WHEN t.amount <> s.amount THEN 'amount_mismatch'
                ELSE 'matched' END,
           t.id, rf.id, coalesce(o.agency_id, ro.agency_id)
      FROM statement_staging s
      LEFT JOIN (SELECT x.bank_txn_id, min(x.line) AS first_line FROM statement_staging x
                  WHERE x.kind <> 'refund' AND x.bank_txn_id <> ''
                  GROUP BY x.bank_txn_id HAVING count(*) > 1) rep ON rep.bank_txn_id = s.bank_txn_id
      LEFT JOIN attempts tx ON s.kind <> 'refund' AND s.bank_txn_id <> '' AND tx.bank = s.bank
                           AND tx.bank_txn_id = s.bank_txn_id
      -- the lines the transaction id leaves (few): by bank_order_ref, then VietQR credits by content
      LEFT JOIN LATERAL (SELECT q.* FROM attempts q
                          WHERE s.kind <> 'refund' AND tx.id IS NULL AND s.bank_order_ref <> ''
                            AND q.bank_order_ref = s.bank_order_ref AND q.bank = s.bank LIMIT 1) tr ON true
      LEFT JOIN LATERAL (SELECT q.* FROM attempts q JOIN orders qo ON qo.id = q.order_id
                           JOIN agencies qa ON qa.id = qo.agency_id
                          WHERE s.kind = 'credit' AND tx.id IS NULL AND tr.id IS NULL
                            AND q.bank = s.bank AND q.bank_order_ref IN (SELECT feegate_content_refs(s.content))
                            AND q.amount = s.amount AND qa.account_number = s.account_no
                          ORDER BY (q.status = 'succeeded') DESC LIMIT 1) tq ON true
      -- at most one of tx, tr and tq is found
      LEFT JOIN LATERAL (SELECT coalesce(tx.id, tr.id, tq.id) AS id, coalesce(tx.status, tr.status, tq.status) AS status,
                                coalesce(tx.amount, tr.amount, tq.amount) AS amount,
                                coalesce(tx.paid_at, tr.paid_at, tq.paid_at) AS paid_at,
                                coalesce(tx.order_id, tr.order_id, tq.order_id) AS order_id) t ON true
      LEFT JOIN orders o ON o.id = t.order_id
      -- refund lines: by the bank's refund id, else by our refund reference
      LEFT JOIN LATERAL (SELECT r.* FROM refunds r
                          WHERE s.kind = 'refund'
                            AND ((s.refund_txn_id <> '' AND r.bank_refund_id = s.refund_txn_id)
                                 OR (s.refund_ref <> '' AND r.refund_ref = s.refund_ref))
                          ORDER BY (s.refund_txn_id <> '' AND r.bank_refund_id = s.refund_txn_id) DESC,
                                   (r.status = 'succeeded') DESC LIMIT 1) rf ON true
      LEFT JOIN orders ro ON ro.id = rf.order_id
    RETURNING line, kind, outcome, agency_id, fee),
    fees AS (SELECT agency_id, sum(fee)::bigint AS fee FROM ins
              WHERE outcome = 'matched' AND kind = 'payment' AND fee > 0 GROUP BY agency_id)
    SELECT count(*) FILTER (WHERE outcome = 'matched'),
           array_agg(line) FILTER (WHERE outcome IN ('missing_in_ledger', 'amount_mismatch', 'duplicate',
                                                     'refund_mismatch')),
           (SELECT array_agg(agency_id ORDER BY agency_id) FROM fees),
           (SELECT array_agg(fee ORDER BY agency_id) FROM fees)
      INTO r_matched, v_unmatched, v_fee_agencies, v_fees
      FROM ins;
    v_unmatched := coalesce(v_unmatched, '{}');

    PERFORM feegate_post_statement_fees(p_statement, false, coalesce(v_fee_agencies, '{}'), coalesce(v_fees, '{}'));
    IF st.supersedes IS NOT NULL THEN
        PERFORM feegate_post_statement_fees(st.supersedes, true);
    END IF;

    -- Cases of an earlier file of the same day that this file no longer raises: settled.
    FOR c IN SELECT e.id FROM payment_exceptions e JOIN statements s ON s.id = e.statement_id
              WHERE e.resolved_at IS NULL AND s.status = 'superseded' AND s.source = st.source
                AND s.business_date = st.business_date
                AND NOT EXISTS (SELECT 1 FROM statement_lines l WHERE l.statement_id = p_statement
                                   AND l.line = ANY (v_unmatched) AND l.outcome = e.kind
                                   AND e.object = feegate_line_object(l))
    LOOP
        PERFORM feegate_case_auto(c.id, p_statement);
    END LOOP;

    -- A case for each line that does not match (one per kind and object), set-based: a case
    -- still open for the same object now points at this file's line instead.
    UPDATE payment_exceptions e SET statement_id = p_statement, line = l.line
      FROM statement_lines l
     WHERE l.statement_id = p_statement AND l.line = ANY (v_unmatched)
       AND e.resolved_at IS NULL AND e.kind = l.outcome AND e.object = feegate_line_object(l);
    WITH want AS (
        SELECT DISTINCT ON (l.outcome, feegate_line_object(l)) l.*, feegate_line_object(l) AS object
          FROM statement_lines l
         WHERE l.statement_id = p_statement AND l.line = ANY (v_unmatched)
         ORDER BY l.outcome, feegate_line_object(l), l.line),
    ins AS (
        INSERT INTO payment_exceptions (kind, bank, bank_txn_id, order_id, attempt_id, agency_id, amount, details,
                                        statement_id, line, object, reopens)
        SELECT w.outcome, w.bank, nullif(w.bank_txn_id, ''), t.order_id, w.attempt_id, w.agency_id, w.amount,
               json_build_object('line', w.line, 'bank_order_ref', w.bank_order_ref, 'bank_txn_id', w.bank_txn_id,
                                 'refund_ref', nullif(w.refund_ref, ''), 'amount', w.amount, 'fee', w.fee,
                                 'at', w.at, 'expected', t.amount),
               p_statement, w.line, w.object,
               (SELECT e.id FROM payment_exceptions e WHERE e.kind = w.outcome AND e.object = w.object
                 ORDER BY e.created_at DESC LIMIT 1)
          FROM want w LEFT JOIN attempts t ON t.id = w.attempt_id
        ON CONFLICT DO NOTHING RETURNING id),
    acts AS (INSERT INTO case_actions (case_id, actor, action) SELECT id, 'system', 'open' FROM ins RETURNING 1)
    SELECT count(*) INTO r_cases FROM acts;

    -- A payment the bank has not listed is missing at the bank only once the files for its
    -- business day and the next are both in (cut-off skew is normal); one listed since is settled.
    FOR c IN SELECT e.id FROM payment_exceptions e
              WHERE e.kind = 'missing_at_bank' AND e.resolved_at IS NULL AND e.bank = st.source
                AND EXISTS (SELECT 1 FROM statement_lines l JOIN statements s ON s.id = l.statement_id
                             WHERE s.status = 'imported' AND l.attempt_id = e.attempt_id
                               AND l.outcome IN ('matched', 'amount_mismatch'))
    LOOP
        PERFORM feegate_case_auto(c.id, p_statement);
    END LOOP;
    -- The days whose two files this import completes: the day before (its next day's file is
    -- this one) and this day (when its next day's file came first).
    FOR v_day IN SELECT d FROM (VALUES (st.business_date - 1), (st.business_date)) v(d)
                  WHERE EXISTS (SELECT 1 FROM statements s WHERE s.status = 'imported' AND s.source = st.source
                                   AND s.business_date = v.d)
                    AND EXISTS (SELECT 1 FROM statements s WHERE s.status = 'imported' AND s.source = st.source
                                   AND s.business_date = v.d + 1)
    LOOP
        SELECT r_cases + coalesce(sum(feegate_case_open('missing_at_bank', 'attempt:' || t.id, t.bank, t.bank_txn_id,
                                                        t.id, NULL, t.amount,
                                                        json_build_object('business_date', v_day,
                                                                          'bank_order_ref', t.bank_order_ref),
                                                        p_statement, NULL)), 0)
          INTO r_cases
          FROM attempts t
         WHERE t.bank = st.source AND t.status = 'succeeded'
           AND t.paid_at >= feegate_business_day_start(v_day) AND t.paid_at < feegate_business_day_start(v_day + 1)
           AND NOT EXISTS (SELECT 1 FROM statement_lines l
                            WHERE l.statement_id IN (SELECT s.id FROM statements s
                                                      WHERE s.status = 'imported' AND s.source = st.source
                                                        AND s.business_date IN (v_day, v_day + 1))
                              AND l.attempt_id = t.id AND l.outcome IN ('matched', 'amount_mismatch', 'duplicate'));
    END LOOP;
END
$$;

-- A treasury statement of an agency's collection account: each credit is a bank's payout
-- (RmtInf/Ustrd "FGPAYOUT {BANK} {yyyymmdd} {AGENCY}") checked against the payout the bank files
-- make due, or a citizen's VietQR transfer matched to its attempt by content and amount, or an
-- unexpected credit. Payouts due by the statement's day and not seen are payout_missing.
-- After a matched payout: what the agency owes on its receivable (refunds made after their
-- payments were paid out) is netted against what its payable still holds, Dr payable, Cr
-- receivable, as far as the payable goes. Balances include what this transaction staged (the
-- payout just posted); the receivable's row is locked so two payouts do not net it twice.
CREATE OR REPLACE FUNCTION feegate_net_receivable(p_agency agencies, p_id text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_payable bigint := (SELECT id FROM ledger_accounts WHERE agency_id = p_agency.id AND type = 'agency_payable');
    v_recv bigint;
    v_owed bigint;
    v_held bigint;
BEGIN
    SELECT id INTO v_recv FROM ledger_accounts WHERE agency_id = p_agency.id AND type = 'agency_receivable' FOR UPDATE;
    IF v_recv IS NULL OR v_payable IS NULL THEN
        RETURN;
    END IF;
    v_owed := feegate_balance_staged(v_recv);
    v_held := -feegate_balance_staged(v_payable);
    IF least(v_owed, v_held) > 0 THEN
        PERFORM feegate_post(p_id, v_payable, v_recv, least(v_owed, v_held), 'netting', NULL, NULL, NULL);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION feegate_match_treasury(p_statement uuid, OUT r_matched int, OUT r_cases int)
LANGUAGE plpgsql AS $$
DECLARE
    st statements;
    v_agency agencies;
    v_payable bigint;
    l record;
    m text[];
    v_expected bigint;
    v_att uuid;
    v_clearing bigint;
    c record;
BEGIN
    SELECT * INTO st FROM statements WHERE id = p_statement;
    SELECT * INTO v_agency FROM agencies WHERE account_number = st.account;
    v_payable := (SELECT id FROM ledger_accounts WHERE agency_id = v_agency.id AND type = 'agency_payable');
    r_cases := 0;
    FOR l IN SELECT * FROM statement_lines WHERE statement_id = p_statement ORDER BY line LOOP
        IF l.kind <> 'credit' THEN
            UPDATE statement_lines SET outcome = 'ignored', agency_id = v_agency.id
             WHERE statement_id = p_statement AND line = l.line;
            CONTINUE;
        END IF;
        m := regexp_match(l.content, 'FGPAYOUT\s+([A-Za-z]+)\s+([0-9]{8})\s+(\S+)');
        IF m IS NOT NULL AND m[3] = v_agency.code AND to_date(m[2], 'YYYYMMDD') IS NOT NULL THEN
            SELECT e.payout INTO v_expected FROM reconciliation_expected_payouts e
             WHERE e.agency_id = v_agency.id AND e.bank = lower(m[1]) AND e.business_date = to_date(m[2], 'YYYYMMDD');
            UPDATE statement_lines SET bank = lower(m[1]), payout_date = to_date(m[2], 'YYYYMMDD'), agency_id = v_agency.id,
                   outcome = CASE WHEN v_expected = l.amount THEN 'payout' ELSE 'payout_amount_mismatch' END
             WHERE statement_id = p_statement AND line = l.line;
            IF v_expected = l.amount THEN
                v_clearing := feegate_account_id('bank:' || lower(m[1]) || ':clearing');
                IF v_clearing IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ledger_transfers
                        WHERE id = 'payout:' || v_agency.code || ':' || lower(m[1]) || ':' || m[2]) THEN
                    PERFORM feegate_post('payout:' || v_agency.code || ':' || lower(m[1]) || ':' || m[2], v_payable,
                                         v_clearing, l.amount, 'payout', NULL, NULL, NULL);
                    PERFORM feegate_net_receivable(v_agency, 'net:' || v_agency.code || ':' || lower(m[1]) || ':' || m[2]);
                END IF;
            ELSE
                r_cases := r_cases + feegate_case_open('payout_amount_mismatch',
                    'payout:' || v_agency.id || ':' || lower(m[1]) || ':' || m[2], lower(m[1]), NULL, NULL, v_agency.id,
                    l.amount, json_build_object('expected', coalesce(v_expected, 0), 'received', l.amount,
                                                'remittance', l.content, 'line', l.line),
                    p_statement, l.line);
            END IF;
            CONTINUE;
        END IF;
        SELECT t.id INTO v_att FROM attempts t JOIN orders o ON o.id = t.order_id
         WHERE t.bank = 'vietqr' AND o.agency_id = v_agency.id AND t.amount = l.amount AND t.status = 'succeeded'
           AND t.bank_order_ref IN (SELECT feegate_content_refs(l.content))
         LIMIT 1;
        IF v_att IS NOT NULL THEN
            UPDATE statement_lines SET bank = 'vietqr', attempt_id = v_att, agency_id = v_agency.id, outcome = 'matched'
             WHERE statement_id = p_statement AND line = l.line;
        ELSE
            UPDATE statement_lines SET agency_id = v_agency.id, outcome = 'unexpected_credit'
             WHERE statement_id = p_statement AND line = l.line;
            r_cases := r_cases + feegate_case_open('unexpected_credit',
                'credit:' || st.account || ':' || coalesce(nullif(l.bank_txn_id, ''), st.business_date || ':' || l.line),
                'treasury', l.bank_txn_id, NULL, v_agency.id, l.amount,
                json_build_object('remittance', l.content, 'line', l.line, 'account', st.account),
                p_statement, l.line);
        END IF;
    END LOOP;
    PERFORM feegate_ledger_flush();

    -- Payouts seen since settle their payout_missing cases.
    FOR c IN SELECT e.id FROM payment_exceptions e
              WHERE e.kind = 'payout_missing' AND e.resolved_at IS NULL AND e.agency_id = v_agency.id
                AND EXISTS (SELECT 1 FROM statement_lines x JOIN statements s ON s.id = x.statement_id
                             WHERE s.status = 'imported' AND x.outcome IN ('payout', 'payout_amount_mismatch')
                               AND e.object = 'payout:' || x.agency_id || ':' || x.bank || ':' || to_char(x.payout_date, 'YYYYMMDD'))
    LOOP
        PERFORM feegate_case_auto(c.id, p_statement);
    END LOOP;
    -- Payouts due by this statement's day (the bank's due days on the holiday calendar) and not seen.
    SELECT r_cases + coalesce(sum(feegate_case_open('payout_missing',
               'payout:' || e.agency_id || ':' || e.bank || ':' || to_char(e.business_date, 'YYYYMMDD'), e.bank, NULL,
               NULL, e.agency_id, e.payout,
               json_build_object('business_date', e.business_date, 'expected', e.payout,
                                 'due', feegate_banking_days_after(e.business_date, pt.due_days)),
               p_statement, NULL)), 0)
      INTO r_cases
      FROM reconciliation_expected_payouts e JOIN bank_payout_terms pt ON pt.bank = e.bank
     WHERE e.agency_id = v_agency.id AND e.payout > 0
       AND feegate_banking_days_after(e.business_date, pt.due_days) <= st.business_date
       AND NOT EXISTS (SELECT 1 FROM statement_lines x JOIN statements s ON s.id = x.statement_id
                        WHERE s.status = 'imported' AND s.source = 'camt053' AND x.agency_id = e.agency_id
                          AND x.outcome IN ('payout', 'payout_amount_mismatch')
                          AND x.bank = e.bank AND x.payout_date = e.business_date);

    SELECT count(*) INTO r_matched FROM statement_lines x
     WHERE x.statement_id = p_statement AND x.outcome IN ('matched', 'payout');
END
$$;

-- After the lines of a new statement were copied in: the dedupe by SHA-256 was done before;
-- this supersedes the earlier current file of the same source, account and day, matches, and
-- stores the counts. Returns the statement's record.
CREATE OR REPLACE FUNCTION feegate_statement_finish(p_statement uuid) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    st statements;
    v_matched int;
    v_cases int;
BEGIN
    SELECT * INTO st FROM statements WHERE id = p_statement;
    IF st.source = 'camt053' THEN
        SELECT r_matched, r_cases INTO v_matched, v_cases FROM feegate_match_treasury(p_statement);
    ELSE
        SELECT r_matched, r_cases INTO v_matched, v_cases FROM feegate_match_bank_file(p_statement);
    END IF;
    UPDATE statements SET matched = v_matched, cases = v_cases WHERE id = p_statement RETURNING * INTO st;
    RETURN feegate_statement_json(st);
END
$$;

CREATE OR REPLACE FUNCTION feegate_statement_json(s statements) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', s.id, 'source', s.source, 'sha256', s.sha256,
        'account', nullif(s.account, ''), 'business_date', s.business_date, 'lines', s.lines, 'total', s.total,
        'matched', s.matched, 'cases', s.cases, 'status', s.status, 'supersedes', s.supersedes,
        'imported_at', to_char(s.imported_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;

-- Stores an import whose lines the caller has just copied into the session's statement_staging
-- table (same transaction): the statement row (superseding the current one of the same source,
-- account and day: a correction), its lines, the matching. The same bytes again return the
-- first import's record with r_created false and change nothing.
CREATE OR REPLACE FUNCTION feegate_statement_import(p_source text, p_sha text, p_account text, p_date date,
                                                    p_lines int, p_total bigint, p_staff uuid)
RETURNS TABLE (r_created boolean, r_record json)
LANGUAGE plpgsql AS $$
DECLARE
    v_prev uuid;
    v_id uuid;
BEGIN
    -- one import at a time per source, account and day (and per file)
    PERFORM pg_advisory_xact_lock(hashtext('statement:' || p_source || ':' || p_account || ':' || p_date));
    PERFORM pg_advisory_xact_lock(hashtext('statement:' || p_sha));
    IF EXISTS (SELECT 1 FROM statements WHERE sha256 = p_sha) THEN
        RETURN QUERY SELECT false, feegate_statement_json(s) FROM statements s WHERE s.sha256 = p_sha;
        RETURN;
    END IF;
    UPDATE statements SET status = 'superseded'
     WHERE source = p_source AND account = p_account AND business_date = p_date AND status = 'imported'
    RETURNING id INTO v_prev;
    INSERT INTO statements (source, sha256, account, business_date, lines, total, supersedes, imported_by)
    VALUES (p_source, p_sha, p_account, p_date, p_lines, p_total, v_prev, p_staff) RETURNING id INTO v_id;
    -- the planner must know how many lines arrived to join them set-based
    ANALYZE statement_staging;
    IF p_source = 'camt053' THEN
        -- a treasury statement's entries are matched one by one (a day of an account is small)
        INSERT INTO statement_lines (statement_id, line, kind, bank, bank_order_ref, bank_txn_id, refund_ref,
                                     refund_txn_id, amount, fee, at, account_no, content)
        SELECT v_id, s.line, s.kind, s.bank, s.bank_order_ref, s.bank_txn_id, s.refund_ref, s.refund_txn_id,
               s.amount, s.fee, s.at, s.account_no, s.content
          FROM statement_staging s;
    END IF;
    RETURN QUERY SELECT true, feegate_statement_finish(v_id);
END
$$;
