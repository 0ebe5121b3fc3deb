-- What reports and the agency view read of payments and their reconciliation, in one place:
--   paid_attempts: one row per succeeded attempt with the bank's payment time and its business
--     day (the attempt's own columns beside them): which payments a day holds, and nothing of
--     reconciliation, so a query that needs no reconciliation state pays nothing for it;
--   reconciliation_payments: paid_attempts with each payment's reconciliation state (matched |
--     pending | case) and the bank's fee for it (0 until a settlement line states it);
--   reconciliation_payouts: per agency, bank and business day, the payout seen on the agency's
--     treasury statement (no row when none was seen).
-- A payment is `case` while an unresolved case names it, `matched` once a line of a current
-- bank file (or, for VietQR, of a treasury statement) matched it, else `pending`. Its fee is
-- the fee its matched settlement line states (the highest, should two current files match it:
-- a VietQR payment's treasury credit states none).
-- The matched line is found by one index probe per payment (statement_lines_attempt): a join
-- with every line ever imported would grow with the years, the probe does not.
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).

CREATE OR REPLACE VIEW paid_attempts AS
    SELECT a.id AS attempt_id,
           COALESCE(a.paid_at, a.updated_at) AS paid_at,
           feegate_business_date(COALESCE(a.paid_at, a.updated_at)) AS business_date,
           a.order_id, a.bank, a.amount, a.bank_txn_id
      FROM attempts a
     WHERE a.status = 'succeeded';

CREATE OR REPLACE VIEW reconciliation_payments AS
    SELECT p.attempt_id, p.paid_at, p.business_date,
           CASE WHEN p.attempt_id IN (SELECT e.attempt_id FROM payment_exceptions e
                                       WHERE e.resolved_at IS NULL AND e.attempt_id IS NOT NULL) THEN 'case'
                WHEN m.fee IS NOT NULL THEN 'matched'
                ELSE 'pending' END AS reconciliation,
           COALESCE(m.fee, 0)::bigint AS fee,
           p.order_id, p.bank, p.amount, p.bank_txn_id
      FROM paid_attempts p
      LEFT JOIN LATERAL (SELECT l.fee FROM statement_lines l JOIN statements s ON s.id = l.statement_id
                          WHERE l.attempt_id = p.attempt_id AND s.status = 'imported' AND l.outcome = 'matched'
                          ORDER BY l.fee DESC LIMIT 1) m ON true;

CREATE OR REPLACE VIEW reconciliation_payouts AS
    SELECT l.agency_id, l.bank, l.payout_date AS business_date, sum(l.amount)::bigint AS payout
      FROM statement_lines l JOIN statements s ON s.id = l.statement_id
     WHERE s.status = 'imported' AND s.source = 'camt053' AND l.outcome IN ('payout', 'payout_amount_mismatch')
     GROUP BY l.agency_id, l.bank, l.payout_date;
