-- Settlement reports and the agency collections view.
--
-- The State Treasury books fee revenue under budget codes: chapter (mã chương), economic
-- sub-item (mã NDKT) and administrative unit (mã ĐBHC). An agency sets its own, and may set
-- other codes for a procedure; a report line takes the procedure's row, else the agency's
-- (procedure '').
CREATE TABLE budget_codes (
    agency_id   bigint NOT NULL REFERENCES agencies(id),
    procedure   text NOT NULL DEFAULT '' CHECK (length(procedure) <= 64),
    chapter     text NOT NULL CHECK (chapter ~ '^[0-9]{3}$'),
    ndkt        text NOT NULL CHECK (ndkt ~ '^[0-9]{4}$'),
    dbhc        text NOT NULL CHECK (dbhc ~ '^[0-9]{2,5}$'),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agency_id, procedure)
);

-- Reports and the collections view read a range of business days: payments by the bank's
-- payment time (the expression reconciliation_payments exposes as paid_at), refunds by when
-- the bank confirmed them.
CREATE INDEX attempts_paid_time ON attempts ((COALESCE(paid_at, updated_at))) WHERE status = 'succeeded';
CREATE INDEX refunds_succeeded_time ON refunds (updated_at) WHERE status = 'succeeded';
-- The index above is partial, so the planner takes no statistics from it: without these it
-- guesses a day holds 0.5 % of the payments, and joins a million rows by index lookups.
CREATE STATISTICS attempts_paid_time_stats ON (COALESCE(paid_at, updated_at)) FROM attempts;
