-- What an agency owes: a refund made after its payment was paid out to the agency is debited to
-- the agency's receivable, not its payable, and the next matched payout nets the two (a
-- `netting` transfer, Dr payable, Cr receivable). Each agency gets the account; the trigger that
-- opens an agency's accounts (functions/triggers.sql) opens it for new ones.
ALTER TABLE ledger_accounts DROP CONSTRAINT IF EXISTS ledger_accounts_type_check;
ALTER TABLE ledger_accounts DROP CONSTRAINT IF EXISTS ledger_accounts_check;
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_type_check
    CHECK (type IN ('bank_clearing', 'agency_payable', 'agency_receivable', 'suspense', 'fees'));
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_check
    CHECK ((type IN ('agency_payable', 'agency_receivable')) = (agency_id IS NOT NULL));
ALTER TABLE ledger_transfers DROP CONSTRAINT IF EXISTS ledger_transfers_code_check;
ALTER TABLE ledger_transfers ADD CONSTRAINT ledger_transfers_code_check
    CHECK (code IN ('payment', 'suspense', 'refund', 'correction', 'fee', 'payout', 'netting'));
INSERT INTO ledger_accounts (name, type, agency_id)
SELECT 'agency:' || code || ':receivable', 'agency_receivable', id FROM agencies ON CONFLICT DO NOTHING;
