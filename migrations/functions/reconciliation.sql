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
    SELECT o.agency_id, s.source AS bank, s.business_date,
           sum(CASE WHEN l.kind = 'payment' THEN l.amount - l.fee ELSE -l.amount - l.fee END)::bigint AS payout
      FROM statements s
      JOIN statement_lines l ON l.statement_id = s.id
      JOIN attempts t ON t.id = l.attempt_id
      JOIN orders o ON o.id = t.order_id
     WHERE s.status = 'imported' AND s.source IN ('vnpay', 'momo')
       AND l.outcome IN ('matched', 'amount_mismatch', 'refund_mismatch')
     GROUP BY o.agency_id, s.source, s.business_date;

-- A bank's settlement file: payments to attempts (by bank transaction id, else by bank_order_ref
-- and amount; VietQR credits by content, amount and account), refunds to refunds, fees posted
-- on matched lines, cases for the rest. Returns the number of matched lines and of cases opened.
CREATE OR REPLACE FUNCTION feegate_match_bank_file(p_statement uuid, OUT r_matched int, OUT r_cases int)
LANGUAGE plpgsql AS $$
DECLARE
    st statements;
    v_clearing bigint;
    v_fee_ids text[];
    v_fee_debit bigint[];
    v_fee_amount bigint[];
    v_fee_order uuid[];
    v_fee_att uuid[];
    v_n int;
    c record;
BEGIN
    SELECT * INTO st FROM statements WHERE id = p_statement;
    v_clearing := feegate_account_id('bank:' || st.source || ':clearing');
    r_cases := 0;

    -- Payments and credits: which attempt is each line about? By the bank's transaction id,
    -- else by bank_order_ref, else (VietQR credits) by content, amount and account. Set-based
    -- joins: a file can hold a million lines.
    UPDATE statement_lines l SET attempt_id = t.id
      FROM attempts t
     WHERE l.statement_id = p_statement AND l.kind IN ('payment', 'credit') AND l.bank_txn_id <> ''
       AND t.bank = l.bank AND t.bank_txn_id = l.bank_txn_id;
    UPDATE statement_lines l SET attempt_id = t.id
      FROM attempts t
     WHERE l.statement_id = p_statement AND l.kind IN ('payment', 'credit') AND l.attempt_id IS NULL
       AND l.bank_order_ref <> '' AND t.bank_order_ref = l.bank_order_ref AND t.bank = l.bank;
    UPDATE statement_lines l SET attempt_id =
        (SELECT t.id FROM attempts t JOIN orders o ON o.id = t.order_id JOIN agencies a ON a.id = o.agency_id
          WHERE t.bank = l.bank AND t.bank_order_ref IN (SELECT feegate_content_refs(l.content))
            AND t.amount = l.amount AND a.account_number = l.account_no
          ORDER BY (t.status = 'succeeded') DESC LIMIT 1)
     WHERE l.statement_id = p_statement AND l.kind = 'credit' AND l.attempt_id IS NULL;
    UPDATE statement_lines l SET refund_id = (SELECT r.id FROM refunds r
                                                WHERE (l.refund_txn_id <> '' AND r.bank_refund_id = l.refund_txn_id)
                                                   OR (l.refund_ref <> '' AND r.refund_ref = l.refund_ref)
                                                ORDER BY (r.status = 'succeeded') DESC LIMIT 1)
     WHERE l.statement_id = p_statement AND l.kind = 'refund';
    UPDATE statement_lines l SET agency_id = o.agency_id
      FROM attempts t JOIN orders o ON o.id = t.order_id
     WHERE l.statement_id = p_statement AND t.id = l.attempt_id;
    UPDATE statement_lines l SET agency_id = o.agency_id
      FROM refunds r JOIN orders o ON o.id = r.order_id
     WHERE l.statement_id = p_statement AND r.id = l.refund_id;

    -- Outcomes. A payment listed again (in this file or in another current file of the bank) is a
    -- duplicate; the first listing is the one matched.
    UPDATE statement_lines l SET outcome = 'duplicate'
      FROM (SELECT p.statement_id, p.line,
                   row_number() OVER (PARTITION BY p.bank, p.bank_txn_id ORDER BY ps.imported_at, p.line) AS rn
              FROM statement_lines p JOIN statements ps ON ps.id = p.statement_id
             WHERE ps.status = 'imported' AND ps.source = st.source AND p.kind IN ('payment', 'credit')
               AND p.bank_txn_id <> ''
               AND p.bank_txn_id IN (SELECT y.bank_txn_id FROM statement_lines y WHERE y.statement_id = p_statement)) d
     WHERE d.rn > 1 AND d.statement_id = p_statement AND l.statement_id = p_statement AND l.line = d.line;
    UPDATE statement_lines l SET outcome = CASE WHEN t.status <> 'succeeded' THEN 'missing_in_ledger'
                                                WHEN t.amount <> l.amount THEN 'amount_mismatch'
                                                ELSE 'matched' END
      FROM attempts t
     WHERE l.statement_id = p_statement AND l.outcome IS NULL AND l.kind IN ('payment', 'credit') AND t.id = l.attempt_id;
    UPDATE statement_lines l SET outcome = CASE WHEN r.status = 'succeeded' AND r.amount = l.amount THEN 'matched'
                                                ELSE 'refund_mismatch' END
      FROM refunds r
     WHERE l.statement_id = p_statement AND l.outcome IS NULL AND l.kind = 'refund' AND r.id = l.refund_id;
    UPDATE statement_lines l SET outcome = CASE WHEN l.kind = 'refund' THEN 'refund_mismatch' ELSE 'missing_in_ledger' END
     WHERE l.statement_id = p_statement AND l.outcome IS NULL;

    -- The bank's fee on each newly matched payment: borne by the agency (from its payable) unless
    -- the agency's setting makes the platform bear it. One fee transfer per attempt.
    SELECT array_agg('fee:' || q.attempt_id ORDER BY q.line), array_agg(q.debit ORDER BY q.line),
           array_agg(q.fee ORDER BY q.line), array_agg(q.order_id ORDER BY q.line),
           array_agg(q.attempt_id ORDER BY q.line)
      INTO v_fee_ids, v_fee_debit, v_fee_amount, v_fee_order, v_fee_att
      FROM (SELECT DISTINCT ON (l.attempt_id) l.attempt_id, l.line, l.fee, t.order_id,
                   CASE WHEN ag.platform_bears_fee THEN feegate_account_id('fees:platform') ELSE pa.id END AS debit
              FROM statement_lines l JOIN attempts t ON t.id = l.attempt_id JOIN orders o ON o.id = t.order_id
              JOIN agencies ag ON ag.id = o.agency_id
              JOIN ledger_accounts pa ON pa.agency_id = o.agency_id AND pa.type = 'agency_payable'
             WHERE l.statement_id = p_statement AND l.outcome = 'matched' AND l.kind = 'payment' AND l.fee > 0
               AND NOT EXISTS (SELECT 1 FROM ledger_transfers lt WHERE lt.id = 'fee:' || l.attempt_id)
             ORDER BY l.attempt_id, l.line) q;
    v_n := coalesce(cardinality(v_fee_ids), 0);
    IF v_n > 0 THEN
        PERFORM feegate_ledger_write(v_fee_ids, v_fee_debit, array_fill(v_clearing, ARRAY[v_n]), v_fee_amount,
                                     array_fill('fee'::text, ARRAY[v_n]), v_fee_order, v_fee_att,
                                     array_fill(NULL::uuid, ARRAY[v_n]));
    END IF;

    -- Cases of an earlier file of the same day that this file no longer raises: settled.
    FOR c IN SELECT e.id FROM payment_exceptions e JOIN statements s ON s.id = e.statement_id
              WHERE e.resolved_at IS NULL AND s.status = 'superseded' AND s.source = st.source
                AND s.business_date = st.business_date
                AND NOT EXISTS (SELECT 1 FROM statement_lines l WHERE l.statement_id = p_statement
                                   AND l.outcome = e.kind AND e.object = feegate_line_object(l))
    LOOP
        PERFORM feegate_case_auto(c.id, p_statement);
    END LOOP;

    -- A case for each line that does not match (one per kind and object), set-based: a case
    -- still open for the same object now points at this file's line instead.
    UPDATE payment_exceptions e SET statement_id = p_statement, line = l.line
      FROM statement_lines l
     WHERE l.statement_id = p_statement
       AND l.outcome IN ('missing_in_ledger', 'amount_mismatch', 'duplicate', 'refund_mismatch')
       AND e.resolved_at IS NULL AND e.kind = l.outcome AND e.object = feegate_line_object(l);
    WITH want AS (
        SELECT DISTINCT ON (l.outcome, feegate_line_object(l)) l.*, feegate_line_object(l) AS object
          FROM statement_lines l
         WHERE l.statement_id = p_statement
           AND l.outcome IN ('missing_in_ledger', 'amount_mismatch', 'duplicate', 'refund_mismatch')
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
    SELECT r_cases + coalesce(sum(feegate_case_open('missing_at_bank', 'attempt:' || t.id, t.bank, t.bank_txn_id, t.id,
                                                    NULL, t.amount,
                                                    json_build_object('business_date', feegate_business_date(t.paid_at),
                                                                      'bank_order_ref', t.bank_order_ref),
                                                    p_statement, NULL)), 0)
      INTO r_cases
      FROM attempts t
     WHERE t.bank = st.source AND t.status = 'succeeded'
       AND t.paid_at >= ((st.business_date - 1)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
       AND t.paid_at < ((st.business_date + 1)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
       AND EXISTS (SELECT 1 FROM statements s WHERE s.status = 'imported' AND s.source = st.source
                      AND s.business_date = feegate_business_date(t.paid_at))
       AND EXISTS (SELECT 1 FROM statements s WHERE s.status = 'imported' AND s.source = st.source
                      AND s.business_date = feegate_business_date(t.paid_at) + 1)
       AND NOT EXISTS (SELECT 1 FROM statement_lines l JOIN statements s ON s.id = l.statement_id
                        WHERE s.status = 'imported' AND l.attempt_id = t.id
                          AND l.outcome IN ('matched', 'amount_mismatch', 'duplicate'));

    SELECT count(*) INTO r_matched FROM statement_lines l WHERE l.statement_id = p_statement AND l.outcome = 'matched';
END
$$;

-- A treasury statement of an agency's collection account: each credit is a bank's payout
-- (RmtInf/Ustrd "FGPAYOUT {BANK} {yyyymmdd} {AGENCY}") checked against the payout the bank files
-- make due, or a citizen's VietQR transfer matched to its attempt by content and amount, or an
-- unexpected credit. Payouts due by the statement's day and not seen are payout_missing.
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
    INSERT INTO statement_lines (statement_id, line, kind, bank, bank_order_ref, bank_txn_id, refund_ref, refund_txn_id,
                                 amount, fee, at, account_no, content)
    SELECT v_id, s.line, s.kind, s.bank, s.bank_order_ref, s.bank_txn_id, s.refund_ref, s.refund_txn_id, s.amount,
           s.fee, s.at, s.account_no, s.content
      FROM statement_staging s;
    -- the planner must know how many lines arrived to join them set-based
    IF p_lines > 1000 THEN
        ANALYZE statement_lines;
    END IF;
    RETURN QUERY SELECT true, feegate_statement_finish(v_id);
END
$$;
