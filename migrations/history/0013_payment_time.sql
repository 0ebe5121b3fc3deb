-- The bank's own payment time of a succeeded attempt (from its notification, its status query
-- or its settlement line): a payment's business day is this time in Asia/Ho_Chi_Minh. Attempts
-- paid before this column existed take the time feegate recorded the success.
ALTER TABLE attempts ADD COLUMN paid_at timestamptz;
UPDATE attempts SET paid_at = updated_at WHERE status = 'succeeded' AND paid_at IS NULL;
