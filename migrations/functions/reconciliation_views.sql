-- What reports and the agency view read of reconciliation, in one place:
--   reconciliation_payments: one row per succeeded attempt, the bank's payment time and its
--     business day, its reconciliation state (matched | pending | case) and the bank's fee for
--     it (0 until a settlement line states it);
--   reconciliation_payouts: per agency, bank and business day, the payout seen on the agency's
--     treasury statement (no row when none was seen).
-- Until settlement files are imported nothing is matched: a payment is `case` while an
-- unresolved exception names it, else `pending`.
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).

CREATE OR REPLACE VIEW reconciliation_payments AS
    SELECT a.id AS attempt_id,
           COALESCE(a.paid_at, a.updated_at) AS paid_at,
           feegate_business_date(COALESCE(a.paid_at, a.updated_at)) AS business_date,
           CASE WHEN EXISTS (SELECT 1 FROM payment_exceptions e
                              WHERE e.attempt_id = a.id AND e.resolved_at IS NULL)
                THEN 'case' ELSE 'pending' END AS reconciliation,
           0::bigint AS fee
      FROM attempts a
     WHERE a.status = 'succeeded';

CREATE OR REPLACE VIEW reconciliation_payouts AS
    SELECT NULL::bigint AS agency_id, NULL::text AS bank, NULL::date AS business_date,
           NULL::bigint AS payout
     WHERE false;
