-- What reports and the agency view read of reconciliation, in one place:
--   reconciliation_payments: one row per succeeded attempt, the bank's payment time and its
--     business day, its reconciliation state (matched | pending | case) and the bank's fee for
--     it (0 until a settlement line states it);
--   reconciliation_payouts: per agency, bank and business day, the payout seen on the agency's
--     treasury statement (no row when none was seen).
-- A payment is `case` while an unresolved case names it, `matched` once a line of a current
-- bank file (or, for VietQR, of a treasury statement) matched it, else `pending`. Its fee is
-- the fee its matched settlement line states.
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).

CREATE OR REPLACE VIEW reconciliation_payments AS
    SELECT a.id AS attempt_id,
           COALESCE(a.paid_at, a.updated_at) AS paid_at,
           feegate_business_date(COALESCE(a.paid_at, a.updated_at)) AS business_date,
           CASE WHEN EXISTS (SELECT 1 FROM payment_exceptions e
                              WHERE e.attempt_id = a.id AND e.resolved_at IS NULL) THEN 'case'
                WHEN EXISTS (SELECT 1 FROM statement_lines l JOIN statements s ON s.id = l.statement_id
                              WHERE l.attempt_id = a.id AND s.status = 'imported' AND l.outcome = 'matched')
                THEN 'matched'
                ELSE 'pending' END AS reconciliation,
           coalesce((SELECT l.fee FROM statement_lines l JOIN statements s ON s.id = l.statement_id
                      WHERE l.attempt_id = a.id AND s.status = 'imported' AND l.outcome = 'matched' LIMIT 1), 0)::bigint
               AS fee
      FROM attempts a
     WHERE a.status = 'succeeded';

CREATE OR REPLACE VIEW reconciliation_payouts AS
    SELECT l.agency_id, l.bank, l.payout_date AS business_date, sum(l.amount)::bigint AS payout
      FROM statement_lines l JOIN statements s ON s.id = l.statement_id
     WHERE s.status = 'imported' AND s.source = 'camt053' AND l.outcome IN ('payout', 'payout_amount_mismatch')
     GROUP BY l.agency_id, l.bank, l.payout_date;
