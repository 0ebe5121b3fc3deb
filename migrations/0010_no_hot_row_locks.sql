-- Foreign keys on the posting path made every posting take a KEY SHARE lock on the same rows:
-- the agency's payable account (every payment to one agency), the client (every webhook, every
-- Idempotency-Key), and ran one referential query per inserted row; profiling a batch of 1,000
-- notifications put 31 % of its time in those checks. The referenced rows are never deleted
-- (the triggers below refuse it), the only writers are the functions of these migrations, and
-- `feegate ledger check` verifies every reference, so the references stay true without the
-- per-row locks.
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_client_id_fkey;
ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_debit_account_fkey;
ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_credit_account_fkey;
ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_order_id_fkey;
ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_attempt_id_fkey;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_transfer_id_fkey;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_account_id_fkey;
ALTER TABLE bank_notifications DROP CONSTRAINT bank_notifications_attempt_id_fkey;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_client_id_fkey;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_order_id_fkey;

CREATE TRIGGER ledger_accounts_never_delete BEFORE DELETE ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION feegate_never_delete();
CREATE TRIGGER orders_never_delete BEFORE DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION feegate_never_delete();
CREATE TRIGGER attempts_never_delete BEFORE DELETE ON attempts
    FOR EACH ROW EXECUTE FUNCTION feegate_never_delete();
CREATE TRIGGER ledger_accounts_no_truncate BEFORE TRUNCATE ON ledger_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION feegate_never_delete();
CREATE TRIGGER orders_no_truncate BEFORE TRUNCATE ON orders
    FOR EACH STATEMENT EXECUTE FUNCTION feegate_never_delete();
CREATE TRIGGER attempts_no_truncate BEFORE TRUNCATE ON attempts
    FOR EACH STATEMENT EXECUTE FUNCTION feegate_never_delete();
