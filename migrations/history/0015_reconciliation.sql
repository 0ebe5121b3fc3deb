-- Reconciliation: imported bank settlement files and treasury statements with their lines,
-- payment exceptions evolved into cases worked to an end (state, resolution, note, actions,
-- maker-checker), the ledger's fee and payout postings, the holiday calendar and the banks'
-- payout due days. Matching and case work are functions (migrations/functions/
-- reconciliation.sql, cases.sql).

-- ---------------------------------------------------------------- imported files
CREATE TABLE statements (
    id              uuid PRIMARY KEY DEFAULT feegate_uuid7(),
    source          text NOT NULL CHECK (source IN ('vnpay', 'momo', 'vietqr', 'camt053')),
    sha256          text NOT NULL UNIQUE,             -- of the file's bytes: the same file twice is one import
    account         text NOT NULL DEFAULT '',         -- camt053: the statement's account; bank files: ''
    business_date   date NOT NULL,
    lines           int NOT NULL,
    total           bigint NOT NULL,                  -- VND, as the file states it
    status          text NOT NULL DEFAULT 'imported' CHECK (status IN ('imported', 'superseded')),
    supersedes      uuid REFERENCES statements(id),   -- the earlier file of the same source, account and day
    matched         int NOT NULL DEFAULT 0,
    cases           int NOT NULL DEFAULT 0,
    imported_by     uuid,                             -- staff; NULL from the command line
    imported_at     timestamptz NOT NULL DEFAULT now()
);
-- one current file per source, account and business day; a correction supersedes the earlier
CREATE UNIQUE INDEX statements_current ON statements (source, account, business_date) WHERE status = 'imported';

-- Each line as the file gave it, and its outcome once matched. Written with COPY in the
-- import's transaction, so a refused file leaves nothing.
CREATE TABLE statement_lines (
    statement_id    uuid NOT NULL REFERENCES statements(id),
    line            int NOT NULL,                     -- the file's line number (CSV) or entry number (camt053)
    kind            text NOT NULL CHECK (kind IN ('payment', 'refund', 'credit', 'debit')),
    bank            text NOT NULL,                    -- the file's bank; camt053: the payout's bank or vietqr
    bank_order_ref  text NOT NULL DEFAULT '',
    bank_txn_id     text NOT NULL DEFAULT '',
    refund_ref      text NOT NULL DEFAULT '',
    refund_txn_id   text NOT NULL DEFAULT '',
    amount          bigint NOT NULL,
    fee             bigint NOT NULL DEFAULT 0,
    at              timestamptz,
    account_no      text NOT NULL DEFAULT '',
    content         text NOT NULL DEFAULT '',         -- transfer content, or the credit's RmtInf/Ustrd
    outcome         text CHECK (outcome IN ('matched', 'missing_in_ledger', 'amount_mismatch', 'duplicate',
                                            'refund_mismatch', 'payout', 'payout_amount_mismatch',
                                            'unexpected_credit', 'ignored')),
    attempt_id      uuid,
    refund_id       uuid,
    agency_id       bigint,
    payout_date     date,                             -- payout credits: the business day they pay out
    PRIMARY KEY (statement_id, line)
);
CREATE INDEX statement_lines_attempt ON statement_lines (attempt_id) WHERE attempt_id IS NOT NULL;
CREATE INDEX statement_lines_txn ON statement_lines (bank, bank_txn_id);

-- ---------------------------------------------------------------- cases
ALTER TABLE payment_exceptions DROP CONSTRAINT payment_exceptions_kind_check;
ALTER TABLE payment_exceptions ADD CONSTRAINT payment_exceptions_kind_check CHECK (kind IN (
    'late_success', 'double_payment', 'wrong_amount', 'unmatched_credit', 'txn_id_conflict',
    'missing_in_ledger', 'missing_at_bank', 'amount_mismatch', 'duplicate', 'refund_mismatch',
    'payout_missing', 'payout_amount_mismatch', 'unexpected_credit'));
-- The notification path's cases stay one per bank transaction and kind (its inserts rely on it);
-- reconciliation cases are one open case per kind and object (below), so a reopened one can exist.
ALTER TABLE payment_exceptions DROP CONSTRAINT payment_exceptions_bank_bank_txn_id_kind_key;
ALTER TABLE payment_exceptions
    ADD COLUMN state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    ADD COLUMN resolution text CHECK (resolution IN ('posted', 'refund', 'accepted', 'void', 'auto')),
    ADD COLUMN note text,
    ADD COLUMN statement_id uuid REFERENCES statements(id),
    ADD COLUMN line int,
    ADD COLUMN object text,                           -- what the case is about, for "one open case per kind and object"
    ADD COLUMN reopens uuid REFERENCES payment_exceptions(id),
    ADD COLUMN proposed_resolution text,              -- an `accepted` waiting for a second finance member
    ADD COLUMN proposed_by uuid,
    ADD COLUMN proposed_note text,
    ADD COLUMN transfer_id text,                      -- the correcting transfer of a `posted` resolution
    ADD COLUMN refund_id uuid;                        -- the refund a `refund` resolution started
CREATE UNIQUE INDEX payment_exceptions_notification ON payment_exceptions (bank, bank_txn_id, kind)
    WHERE statement_id IS NULL AND object IS NULL;
CREATE UNIQUE INDEX payment_exceptions_one_open ON payment_exceptions (kind, object)
    WHERE resolved_at IS NULL AND object IS NOT NULL;
CREATE INDEX payment_exceptions_attempt ON payment_exceptions (attempt_id) WHERE attempt_id IS NOT NULL;
ALTER TABLE payment_exceptions ADD CONSTRAINT payment_exceptions_resolved
    CHECK ((state = 'resolved') = (resolved_at IS NOT NULL) AND (state = 'resolved') = (resolution IS NOT NULL));

-- Who did what to a case, and when.
CREATE TABLE case_actions (
    id              bigserial PRIMARY KEY,
    case_id         uuid NOT NULL REFERENCES payment_exceptions(id),
    at              timestamptz NOT NULL DEFAULT now(),
    actor           text NOT NULL,                    -- a staff id, or "system" (matching)
    action          text NOT NULL,                    -- open, acknowledge, propose, resolve, approve
    note            text
);
CREATE INDEX case_actions_case ON case_actions (case_id, id);

-- Today's exceptions become cases: open, or resolved `void` with their note.
UPDATE payment_exceptions SET state = 'resolved', resolution = 'void', note = resolution_note
 WHERE resolved_at IS NOT NULL;
INSERT INTO case_actions (case_id, at, actor, action, note)
SELECT id, created_at, 'system', 'open', NULL FROM payment_exceptions;

-- ---------------------------------------------------------------- ledger
ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_code_check;
ALTER TABLE ledger_transfers ADD CONSTRAINT ledger_transfers_code_check
    CHECK (code IN ('payment', 'suspense', 'refund', 'correction', 'fee', 'payout'));
-- One fee posting per attempt.
CREATE UNIQUE INDEX ledger_one_fee_per_attempt ON ledger_transfers (attempt_id) WHERE code = 'fee';
-- The fee account the platform charges when it bears a bank's fee itself.
INSERT INTO ledger_accounts (name, type) VALUES ('fees:platform', 'fees') ON CONFLICT DO NOTHING;

-- By default the bank's fee is netted from the payout and borne by the agency; true: the
-- platform bears it (posted to fees:platform, and the agency is paid the gross).
ALTER TABLE agencies ADD COLUMN platform_bears_fee boolean NOT NULL DEFAULT false;

-- ---------------------------------------------------------------- calendar
-- Days banks do not pay out besides Saturdays and Sundays (Tết, the public holidays), kept by
-- the operator.
CREATE TABLE bank_holidays (
    day             date PRIMARY KEY,
    name            text NOT NULL
);
INSERT INTO bank_holidays (day, name) VALUES
    ('2026-01-01', 'Tết Dương lịch'),
    ('2026-02-16', 'Tết Nguyên đán'), ('2026-02-17', 'Tết Nguyên đán'), ('2026-02-18', 'Tết Nguyên đán'),
    ('2026-02-19', 'Tết Nguyên đán'), ('2026-02-20', 'Tết Nguyên đán'),
    ('2026-04-27', 'Giỗ Tổ Hùng Vương'), ('2026-04-30', 'Ngày Giải phóng miền Nam'),
    ('2026-05-01', 'Quốc tế Lao động'), ('2026-09-01', 'Quốc khánh'), ('2026-09-02', 'Quốc khánh'),
    ('2027-01-01', 'Tết Dương lịch');
-- How many banking days after its business day a bank's payout is due.
CREATE TABLE bank_payout_terms (
    bank            text PRIMARY KEY,
    due_days        int NOT NULL CHECK (due_days BETWEEN 0 AND 30)
);
INSERT INTO bank_payout_terms (bank, due_days) VALUES ('vnpay', 1), ('momo', 1);

-- Matching looks attempts up by the bank's transaction id and refunds by the bank's refund id;
-- opening a case looks up the last case of its kind and object (resolved ones too).
CREATE INDEX attempts_bank_txn ON attempts (bank, bank_txn_id) WHERE bank_txn_id IS NOT NULL;
CREATE INDEX refunds_bank_refund_id ON refunds (bank_refund_id) WHERE bank_refund_id IS NOT NULL;
CREATE INDEX payment_exceptions_object ON payment_exceptions (kind, object, created_at) WHERE object IS NOT NULL;
