-- A signed notification that reuses a bank transaction id already recorded for another payment
-- is not a replay: it becomes a case of its own kind for finance (see feegate_apply_notifications).
-- The list of kinds is CONTRACT's whole list, so cases of any kind it names can be recorded.
ALTER TABLE payment_exceptions DROP CONSTRAINT IF EXISTS payment_exceptions_kind_check;
ALTER TABLE payment_exceptions ADD CONSTRAINT payment_exceptions_kind_check CHECK (kind IN (
    'late_success', 'double_payment', 'wrong_amount', 'unmatched_credit', 'txn_id_conflict',
    'missing_in_ledger', 'missing_at_bank', 'amount_mismatch', 'duplicate', 'refund_mismatch',
    'payout_missing', 'payout_amount_mismatch', 'unexpected_credit'));
