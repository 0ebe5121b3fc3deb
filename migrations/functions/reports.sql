-- The settlement report and the agency collections view. Reconciliation state, fees and
-- payouts come only through the reconciliation views; open cases are payment_exceptions
-- without resolved_at.
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).

-- The first instant of a business day: the inverse of feegate_business_date, so a range of
-- business days becomes a range of instants an index can serve.
CREATE OR REPLACE FUNCTION feegate_business_day_start(p_day date) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_day::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh'
$$;

-- Local time as the report shows it, with its offset (Asia/Ho_Chi_Minh has no DST).
CREATE OR REPLACE FUNCTION feegate_report_local_time(p_at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_char(p_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD"T"HH24:MI:SS"+07:00"')
$$;

-- Every payment (amount positive) and succeeded refund (amount negative) of the business days
-- [p_from, p_to], of the agencies in p_agencies (NULL: all) and bank p_bank (NULL: all). A plain
-- SQL function, so the planner inlines it into the caller's query (which orders it by at, kind,
-- order_id). The payer comes as its JSON and the time as seconds since the epoch: the report's
-- writer (ledger/report.c) takes the name and the last four characters of the identity number
-- from the one and writes the local time from the other, which costs the database nothing
-- (it spent a third of an export's time on them).
CREATE OR REPLACE FUNCTION feegate_report_lines(p_from date, p_to date, p_agencies bigint[], p_bank text)
RETURNS TABLE (kind text, business_date date, agency text, bank text, order_id uuid, reference text,
               procedure text, payer text, bank_txn_id text, amount bigint, fee bigint, net bigint,
               reconciliation text, chapter text, ndkt text, dbhc text, metadata text, at timestamptz,
               at_s bigint)
LANGUAGE sql STABLE AS $$
    SELECT * FROM (
        SELECT 'payment'::text, rp.business_date, ag.code, rp.bank, o.id, o.reference, o.procedure, o.payer::text,
               rp.bank_txn_id, rp.amount, rp.fee, rp.amount - rp.fee, rp.reconciliation, bc.chapter, bc.ndkt,
               bc.dbhc, o.metadata::text, rp.paid_at, floor(date_part('epoch', rp.paid_at))::bigint
          FROM reconciliation_payments rp
          JOIN orders o ON o.id = rp.order_id
          JOIN agencies ag ON ag.id = o.agency_id
          LEFT JOIN LATERAL (SELECT b.chapter, b.ndkt, b.dbhc FROM budget_codes b
                              WHERE b.agency_id = o.agency_id AND b.procedure IN (COALESCE(o.procedure, ''), '')
                              ORDER BY b.procedure DESC LIMIT 1) bc ON true
         WHERE rp.paid_at >= feegate_business_day_start(p_from)
           AND rp.paid_at < feegate_business_day_start(p_to + 1)
           AND (p_agencies IS NULL OR o.agency_id = ANY (p_agencies))
           AND (p_bank IS NULL OR rp.bank = p_bank)
        UNION ALL
        SELECT 'refund'::text, feegate_business_date(r.updated_at), ag.code, a.bank, o.id, o.reference, o.procedure,
               o.payer::text, r.bank_refund_id, -r.amount, 0::bigint, -r.amount, NULL::text, bc.chapter, bc.ndkt,
               bc.dbhc, o.metadata::text, r.updated_at, floor(date_part('epoch', r.updated_at))::bigint
          FROM refunds r
          JOIN attempts a ON a.id = r.attempt_id
          JOIN orders o ON o.id = r.order_id
          JOIN agencies ag ON ag.id = o.agency_id
          LEFT JOIN LATERAL (SELECT b.chapter, b.ndkt, b.dbhc FROM budget_codes b
                              WHERE b.agency_id = o.agency_id AND b.procedure IN (COALESCE(o.procedure, ''), '')
                              ORDER BY b.procedure DESC LIMIT 1) bc ON true
         WHERE r.status = 'succeeded'
           AND r.updated_at >= feegate_business_day_start(p_from)
           AND r.updated_at < feegate_business_day_start(p_to + 1)
           AND (p_agencies IS NULL OR o.agency_id = ANY (p_agencies))
           AND (p_bank IS NULL OR a.bank = p_bank)
    ) l
$$;

-- The report's metadata columns, sorted: every key the orders of its agencies (p_agencies;
-- NULL: all) have used (report_metadata_keys), so a report has the same columns every day.
-- The range and the bank do not narrow them.
CREATE OR REPLACE FUNCTION feegate_report_metadata_keys(p_from date, p_to date, p_agencies bigint[], p_bank text)
RETURNS SETOF text LANGUAGE sql STABLE AS $$
    SELECT DISTINCT k.key
      FROM report_metadata_keys k
     WHERE p_agencies IS NULL OR k.agency_id = ANY (p_agencies)
     ORDER BY 1
$$;

-- Per business day, agency and bank: payments (count, gross), refunds, the banks' fees, net to
-- pay out (gross - refunds - fees), open cases and the payout seen on the treasury statement
-- (NULL when none). A case counts on its payment's business day, else the day it was opened.
-- And per business day and agency (bank NULL, the sums zero, receivable set), when the report
-- is not of one bank: what the agency owes at the end of that day, its receivable's balance (a
-- refund made after its payment was paid out, until a payout nets it; see ledger.sql).
CREATE OR REPLACE FUNCTION feegate_report_totals(p_from date, p_to date, p_agencies bigint[], p_bank text)
RETURNS TABLE (business_date date, agency text, bank text, count bigint, gross bigint, refunds bigint,
               fees bigint, net bigint, cases_open bigint, payout bigint, receivable bigint)
LANGUAGE sql STABLE AS $$
    WITH pay AS (
        SELECT rp.business_date AS d, o.agency_id AS ag, rp.bank AS bk, count(*) AS n,
               sum(rp.amount)::bigint AS gross, sum(rp.fee)::bigint AS fees
          FROM reconciliation_payments rp
          JOIN orders o ON o.id = rp.order_id
         WHERE rp.paid_at >= feegate_business_day_start(p_from)
           AND rp.paid_at < feegate_business_day_start(p_to + 1)
           AND (p_agencies IS NULL OR o.agency_id = ANY (p_agencies))
           AND (p_bank IS NULL OR rp.bank = p_bank)
         GROUP BY 1, 2, 3
    ), ref AS (
        SELECT feegate_business_date(r.updated_at) AS d, o.agency_id AS ag, a.bank AS bk,
               sum(r.amount)::bigint AS refunds
          FROM refunds r
          JOIN attempts a ON a.id = r.attempt_id
          JOIN orders o ON o.id = r.order_id
         WHERE r.status = 'succeeded'
           AND r.updated_at >= feegate_business_day_start(p_from)
           AND r.updated_at < feegate_business_day_start(p_to + 1)
           AND (p_agencies IS NULL OR o.agency_id = ANY (p_agencies))
           AND (p_bank IS NULL OR a.bank = p_bank)
         GROUP BY 1, 2, 3
    ), cases AS (
        SELECT c.d, c.ag, c.bk, count(*) AS n
          FROM (SELECT COALESCE(rp.business_date, feegate_business_date(e.created_at)) AS d,
                       e.agency_id AS ag, e.bank AS bk
                  FROM payment_exceptions e
                  LEFT JOIN reconciliation_payments rp ON rp.attempt_id = e.attempt_id
                 WHERE e.resolved_at IS NULL AND e.agency_id IS NOT NULL
                   AND (p_agencies IS NULL OR e.agency_id = ANY (p_agencies))
                   AND (p_bank IS NULL OR e.bank = p_bank)) c
         WHERE c.d BETWEEN p_from AND p_to
         GROUP BY 1, 2, 3
    ), po AS (
        SELECT p.business_date AS d, p.agency_id AS ag, p.bank AS bk, sum(p.payout)::bigint AS payout
          FROM reconciliation_payouts p
         WHERE p.business_date BETWEEN p_from AND p_to
           AND (p_agencies IS NULL OR p.agency_id = ANY (p_agencies))
           AND (p_bank IS NULL OR p.bank = p_bank)
         GROUP BY 1, 2, 3
    ), k AS (
        SELECT d, ag, bk FROM pay UNION SELECT d, ag, bk FROM ref
        UNION SELECT d, ag, bk FROM cases UNION SELECT d, ag, bk FROM po
    ), owed AS (
        -- only receivables that ever moved: most agencies' never do
        SELECT dd.d::date AS d, la.agency_id AS ag, b.bal
          FROM ledger_accounts la
         CROSS JOIN generate_series(p_from, p_to, interval '1 day') dd(d)
         CROSS JOIN LATERAL (SELECT coalesce(sum(e.amount), 0)::bigint AS bal FROM ledger_entries e
                              WHERE e.account_id = la.id
                                AND e.created_at < feegate_business_day_start(dd.d::date + 1)) b
         WHERE la.type = 'agency_receivable' AND p_bank IS NULL
           AND (p_agencies IS NULL OR la.agency_id = ANY (p_agencies))
           AND EXISTS (SELECT 1 FROM ledger_entries x WHERE x.account_id = la.id)
           AND b.bal <> 0
    )
    SELECT k.d, g.code, k.bk, COALESCE(pay.n, 0), COALESCE(pay.gross, 0), COALESCE(ref.refunds, 0),
           COALESCE(pay.fees, 0), COALESCE(pay.gross, 0) - COALESCE(ref.refunds, 0) - COALESCE(pay.fees, 0),
           COALESCE(cases.n, 0), po.payout, NULL::bigint
      FROM k
      JOIN agencies g ON g.id = k.ag
      LEFT JOIN pay USING (d, ag, bk)
      LEFT JOIN ref USING (d, ag, bk)
      LEFT JOIN cases USING (d, ag, bk)
      LEFT JOIN po USING (d, ag, bk)
    UNION ALL
    SELECT owed.d, g.code, NULL, 0, 0, 0, 0, 0, 0, NULL, owed.bal
      FROM owed JOIN agencies g ON g.id = owed.ag
     ORDER BY 1, 2, 3
$$;

-- GET /v1/agencies/{code}/collections: one page of the agency's payments, newest first, with
-- their reconciliation state and what was refunded of each, and the daily totals of the range
-- (all of it, whatever the page). NULL when the agency does not exist or is outside p_scope
-- (NULL: every agency), which the caller answers 404. p_after_us/p_after_id: the cursor, the
-- last row of the previous page (its paid_at in microseconds since the epoch, its attempt).
CREATE OR REPLACE FUNCTION feegate_collections(p_code text, p_scope bigint[], p_from date, p_to date,
                                               p_status text, p_bank text, p_after_us bigint,
                                               p_after_id uuid, p_limit int)
RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_agency bigint;
    v_after timestamptz := CASE WHEN p_after_us IS NOT NULL
                                THEN 'epoch'::timestamptz + p_after_us * interval '1 microsecond' END;
    v_data json;
    v_next text;
    v_totals json;
BEGIN
    SELECT id INTO v_agency FROM agencies
     WHERE code = p_code AND (p_scope IS NULL OR id = ANY (p_scope));
    IF v_agency IS NULL THEN
        RETURN NULL;
    END IF;
    WITH page AS (
        SELECT o.id AS order_id, o.reference, rp.amount, rp.bank, rp.bank_txn_id, rp.paid_at, rp.business_date,
               rp.reconciliation, rp.attempt_id,
               COALESCE((SELECT sum(r.amount) FROM refunds r
                          WHERE r.attempt_id = rp.attempt_id AND r.status = 'succeeded'), 0)::bigint AS refunded
          FROM reconciliation_payments rp
          JOIN orders o ON o.id = rp.order_id
         WHERE o.agency_id = v_agency
           AND rp.paid_at >= feegate_business_day_start(p_from)
           AND rp.paid_at < feegate_business_day_start(p_to + 1)
           AND (p_status IS NULL OR rp.reconciliation = p_status)
           AND (p_bank IS NULL OR rp.bank = p_bank)
           AND (v_after IS NULL OR (rp.paid_at, rp.attempt_id) < (v_after, p_after_id))
         ORDER BY rp.paid_at DESC, rp.attempt_id DESC
         LIMIT p_limit + 1
    ), numbered AS (
        SELECT page.*, row_number() OVER (ORDER BY paid_at DESC, attempt_id DESC) AS i FROM page
    )
    SELECT COALESCE(json_agg(json_build_object(
               'order_id', order_id, 'reference', reference, 'amount', amount, 'bank', bank,
               'bank_txn_id', bank_txn_id,
               'paid_at', to_char(paid_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'business_date', business_date, 'reconciliation', reconciliation, 'refunded', refunded)
             ORDER BY i) FILTER (WHERE i <= p_limit), '[]'),
           max(CASE WHEN i = p_limit AND EXISTS (SELECT 1 FROM numbered n2 WHERE n2.i > p_limit)
                    THEN (extract(epoch FROM paid_at) * 1000000)::bigint || '.' || attempt_id END)
      INTO v_data, v_next
      FROM numbered;
    SELECT COALESCE(json_agg(json_build_object('date', d, 'count', n, 'gross', gross, 'refunds', refunds,
                                               'fees', fees, 'net', net) ORDER BY d), '[]')
      INTO v_totals
      FROM (SELECT t.business_date AS d, sum(t.count)::bigint AS n, sum(t.gross)::bigint AS gross,
                   sum(t.refunds)::bigint AS refunds, sum(t.fees)::bigint AS fees, sum(t.net)::bigint AS net
              FROM feegate_report_totals(p_from, p_to, ARRAY[v_agency], p_bank) t
             GROUP BY 1) s;
    RETURN json_build_object('data', v_data, 'totals', v_totals, 'next_cursor', v_next);
END
$$;
