-- The schema of a new database: what replaying migrations/history/ (0001-0018) builds, written
-- once, table by table. Tables, indexes, constraints and seed rows only: it names no stored
-- function. The functions, and the triggers and column defaults that run them, are in
-- migrations/functions/ (triggers.sql, ids.sql), applied after this file. `feegate migrate`
-- applies it to a database whose schema_migrations is empty, records every history file as
-- applied, then applies the numbered migrations above history/ and the function files; an
-- existing database is upgraded by the history files it lacks instead (migrations/README.md).
-- tests/system/test_migrate.py checks that both paths give the same schema.
-- Times are timestamptz (stored in UTC); money is BIGINT VND.

-- ---------------------------------------------------------------- agencies, portal clients, staff
CREATE TABLE agencies (
    id              bigserial PRIMARY KEY,
    code            text NOT NULL UNIQUE CHECK (code ~ '^[A-Z0-9_]{2,32}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    account_bin     text NOT NULL CHECK (account_bin ~ '^[0-9]{6}$'),
    account_number  text NOT NULL CHECK (account_number ~ '^[0-9A-Z]{1,19}$'),
    account_holder  text NOT NULL CHECK (length(account_holder) BETWEEN 1 AND 99),
    banks           text[] NOT NULL DEFAULT '{vnpay,momo,vietqr}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- false: the bank's fee is netted from the payout and borne by the agency; true: the
    -- platform bears it (posted to fees:platform, and the agency is paid the gross)
    platform_bears_fee boolean NOT NULL DEFAULT false,
    tax_code        text CHECK (tax_code ~ '^[0-9]{10}(-[0-9]{3})?$')
);

CREATE TABLE clients (
    id              uuid PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    key_hash        text NOT NULL UNIQUE,       -- hex SHA-256 of the API key; the key is never stored
    webhook_url     text,
    webhook_secret  text,                       -- needed in clear to sign webhooks
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz
);

CREATE TABLE client_agencies (
    client_id       uuid NOT NULL REFERENCES clients(id),
    agency_id       bigint NOT NULL REFERENCES agencies(id),
    PRIMARY KEY (client_id, agency_id)
);

-- Staff sign in with e-mail, scrypt password and TOTP (with lockout); scripts use API tokens
-- (staff_tokens). Agency staff are bound to their agencies in staff_agencies.
CREATE TABLE staff (
    id              uuid PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    role            text NOT NULL CONSTRAINT staff_role_check CHECK (role IN ('agency', 'finance', 'admin', 'auditor')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz,
    email           text UNIQUE CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
    password_hash   text,                       -- scrypt$N$r$p$salt$hash (lib/passwd.c)
    totp_secret     text,                       -- base32; NULL until enrolled
    totp_last_step  bigint,                     -- a code is accepted once
    recovery_hashes text[] NOT NULL DEFAULT '{}',   -- SHA-256 of unused recovery codes
    failed_logins   int NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    setup_hash      text UNIQUE,                -- SHA-256 of a one-time setup link's token
    setup_expires_at timestamptz
);

CREATE TABLE staff_agencies (
    staff_id        uuid NOT NULL REFERENCES staff(id),
    agency_id       bigint NOT NULL REFERENCES agencies(id),
    PRIMARY KEY (staff_id, agency_id)
);

-- API tokens for scripts: several per staff member, each with its owner's role, revocable.
CREATE TABLE staff_tokens (
    id              uuid PRIMARY KEY,
    staff_id        uuid NOT NULL REFERENCES staff(id),
    token_hash      text NOT NULL UNIQUE,       -- hex SHA-256 of the token
    label           text NOT NULL DEFAULT '' CHECK (length(label) <= 100),
    created_by      uuid REFERENCES staff(id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);
CREATE INDEX staff_tokens_staff ON staff_tokens (staff_id);

-- ---------------------------------------------------------------- fee orders and bank attempts
-- Orders name their client and agency without foreign keys: with them every insert took a KEY
-- SHARE lock on the same client and agency rows (~40 % of an insert's cost on a batch of
-- 1,000). The ids come only from authenticated lookups inside feegate, and clients, agencies,
-- orders, attempts and ledger accounts are never deleted (functions/triggers.sql refuses it).
-- The same holds for the posting path below; `feegate ledger check` verifies every reference.
CREATE TABLE orders (
    id              uuid PRIMARY KEY,
    client_id       uuid NOT NULL,
    agency_id       bigint NOT NULL,
    reference       text NOT NULL,
    description     text NOT NULL,
    amount          bigint NOT NULL CHECK (amount BETWEEN 1 AND 100000000000),
    currency        text NOT NULL DEFAULT 'VND' CHECK (currency = 'VND'),
    status          text NOT NULL DEFAULT 'created' CHECK (status IN
                    ('created', 'pending', 'succeeded', 'cancelled', 'expired',
                     'partially_refunded', 'refunded')),
    items           json,                        -- json, not jsonb: kept as the portal sent it
    procedure       text,
    payer           json,
    metadata        json,
    return_url      text NOT NULL,
    checkout_token  text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    UNIQUE (client_id, reference)
);
CREATE INDEX orders_open_expiry ON orders (expires_at) WHERE status IN ('created', 'pending');
-- Order search: newest first within a client or an agency (feegate_orders_find).
CREATE INDEX orders_client_id_desc ON orders (client_id, id DESC);
CREATE INDEX orders_agency_id_desc ON orders (agency_id, id DESC);

-- The allowed status changes, read by feegate_order_transition and the notification fast path.
CREATE TABLE order_transitions (
    from_status text NOT NULL,
    to_status   text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);
INSERT INTO order_transitions VALUES
    ('created', 'pending'), ('pending', 'created'),
    ('created', 'succeeded'), ('pending', 'succeeded'),
    ('created', 'cancelled'), ('pending', 'cancelled'),
    ('created', 'expired'), ('pending', 'expired'),
    ('succeeded', 'partially_refunded'), ('partially_refunded', 'partially_refunded'),
    ('succeeded', 'refunded'), ('partially_refunded', 'refunded');

CREATE TABLE attempts (
    id              uuid PRIMARY KEY,
    order_id        uuid NOT NULL REFERENCES orders(id),
    bank            text NOT NULL,
    bank_order_ref  text NOT NULL UNIQUE CHECK (bank_order_ref ~ '^[A-Z0-9]{8,20}$'),
    amount          bigint NOT NULL CHECK (amount > 0),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed', 'expired')),
    bank_txn_id     text,
    failure_code    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    bank_created_at timestamptz NOT NULL DEFAULT now(),
    last_query_at   timestamptz,                 -- when the sweeper last asked the bank
    -- the bank's own payment time of a succeeded attempt (its notification, status query or
    -- settlement line): a payment's business day is this time in Asia/Ho_Chi_Minh
    paid_at         timestamptz
);
CREATE INDEX attempts_order ON attempts (order_id);
-- The sweeper's candidates by index, however many attempts are pending: never asked about, by
-- age; asked before, by when (functions/sweeper.sql).
CREATE INDEX attempts_unqueried ON attempts (created_at) WHERE status = 'pending' AND last_query_at IS NULL;
CREATE INDEX attempts_queried ON attempts (last_query_at) WHERE status = 'pending' AND last_query_at IS NOT NULL;
-- Matching looks attempts up by the bank's transaction id.
CREATE INDEX attempts_bank_txn ON attempts (bank, bank_txn_id) WHERE bank_txn_id IS NOT NULL;
-- Reports and the collections view read a range of business days of payments by the bank's
-- payment time (the expression reconciliation_payments exposes as paid_at).
CREATE INDEX attempts_paid_time ON attempts ((COALESCE(paid_at, updated_at))) WHERE status = 'succeeded';
-- The index above is partial, so the planner takes no statistics from it: without these it
-- guesses a day holds 0.5 % of the payments, and joins a million rows by index lookups.
CREATE STATISTICS attempts_paid_time_stats ON (COALESCE(paid_at, updated_at)) FROM attempts;

-- Idempotency-Key records, written in the same transaction as the order they answer for.
CREATE TABLE idempotency_keys (
    client_id       uuid NOT NULL,
    idem_key        text NOT NULL,
    request_hash    text NOT NULL,               -- hex SHA-256 of the request body bytes
    http_status     int NOT NULL,
    response_body   text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, idem_key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);

CREATE TABLE settings (
    name    text PRIMARY KEY,
    value   text NOT NULL
);

-- ---------------------------------------------------------------- ledger
CREATE TABLE ledger_accounts (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,   -- bank:vnpay:clearing, agency:XNC:payable, suspense
    type        text NOT NULL CHECK (type IN ('bank_clearing', 'agency_payable', 'suspense', 'fees')),
    agency_id   bigint REFERENCES agencies(id),
    bank        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((type = 'agency_payable') = (agency_id IS NOT NULL)),
    CHECK ((type = 'bank_clearing') = (bank IS NOT NULL))
);
INSERT INTO ledger_accounts (name, type) VALUES ('suspense', 'suspense'), ('fees', 'fees');
INSERT INTO ledger_accounts (name, type, bank)
VALUES ('bank:vnpay:clearing', 'bank_clearing', 'vnpay'), ('bank:momo:clearing', 'bank_clearing', 'momo'),
       ('bank:vietqr:clearing', 'bank_clearing', 'vietqr');
-- The fee account the platform charges when it bears a bank's fee itself.
INSERT INTO ledger_accounts (name, type) VALUES ('fees:platform', 'fees');

-- The chain head: one row, locked last in every posting transaction.
CREATE TABLE ledger_chain (
    id          int PRIMARY KEY CHECK (id = 1),
    seq         bigint NOT NULL,
    hash        text NOT NULL
);
INSERT INTO ledger_chain VALUES (1, 0, repeat('0', 64));

CREATE TABLE ledger_transfers (
    id              text PRIMARY KEY,       -- the posting's idempotency id, e.g. pay:<attempt>
    seq             bigint NOT NULL UNIQUE, -- position in the hash chain
    debit_account   bigint NOT NULL,
    credit_account  bigint NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    code            text NOT NULL CHECK (code IN ('payment', 'suspense', 'refund', 'correction', 'fee', 'payout')),
    order_id        uuid,
    attempt_id      uuid,
    refund_id       uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    prev_hash       text NOT NULL,
    hash            text NOT NULL,          -- sha256(prev_hash | id | seq | debit | credit | amount | code | order | attempt | refund)
    CHECK (debit_account <> credit_account)
);
-- Never two payment transfers for one attempt, whatever the C does; one fee posting per attempt.
CREATE UNIQUE INDEX ledger_one_payment_per_attempt ON ledger_transfers (attempt_id) WHERE code = 'payment';
CREATE UNIQUE INDEX ledger_one_fee_per_attempt ON ledger_transfers (attempt_id) WHERE code = 'fee';
CREATE INDEX ledger_transfers_order ON ledger_transfers (order_id);

CREATE TABLE ledger_entries (
    id          bigserial PRIMARY KEY,
    transfer_id text NOT NULL,
    account_id  bigint NOT NULL,
    amount      bigint NOT NULL CHECK (amount <> 0), -- debit positive, credit negative
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Balances roll up from these append-only rows (index-only sums); nothing serializes an agency.
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, id) INCLUDE (amount);

-- Postings staged by a transaction (feegate_post), written to the ledger at its end.
CREATE UNLOGGED TABLE ledger_staging (
    txid        bigint NOT NULL DEFAULT txid_current(),
    ord         bigserial,
    id          text NOT NULL,
    debit       bigint NOT NULL,
    credit      bigint NOT NULL,
    amount      bigint NOT NULL,
    code        text NOT NULL,
    order_id    uuid,
    attempt_id  uuid,
    refund_id   uuid
);
CREATE INDEX ledger_staging_tx ON ledger_staging (txid, id);

-- ---------------------------------------------------------------- bank notifications
-- Every verified notification, once: a replay hits the unique key and changes nothing.
CREATE TABLE bank_notifications (
    id              bigserial PRIMARY KEY,
    bank            text NOT NULL,
    dedupe_key      text NOT NULL,          -- the bank's transaction id (or ref:status for failures)
    bank_order_ref  text,
    attempt_id      uuid,
    amount          bigint NOT NULL,
    success         boolean NOT NULL,
    outcome         text NOT NULL,
    source          text NOT NULL DEFAULT 'notification', -- or 'query' (the sweeper asked the bank)
    raw             text,
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (bank, dedupe_key)
);

-- ---------------------------------------------------------------- refunds
-- Requested by finance, sent through the bank's refund API (or kept as a payout instruction for
-- banks without one), posted as a reversing transfer when the bank confirms.
CREATE TABLE refunds (
    id              uuid PRIMARY KEY,
    order_id        uuid NOT NULL REFERENCES orders(id),
    attempt_id      uuid NOT NULL REFERENCES attempts(id),  -- the paid attempt it gives back
    amount          bigint NOT NULL CHECK (amount > 0),
    reason          text NOT NULL CHECK (length(reason) BETWEEN 1 AND 255),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    refund_ref      text NOT NULL UNIQUE CHECK (refund_ref ~ '^[A-Za-z0-9]{1,32}$'), -- sent to the bank; retries reuse it
    bank_refund_id  text,
    failure_reason  text,
    created_by      uuid NOT NULL REFERENCES staff(id),
    confirmed_by    uuid REFERENCES staff(id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    last_try_at     timestamptz
);
CREATE INDEX refunds_order ON refunds (order_id);
CREATE INDEX refunds_pending ON refunds (created_at) WHERE status = 'pending';
CREATE INDEX refunds_bank_refund_id ON refunds (bank_refund_id) WHERE bank_refund_id IS NOT NULL;
-- Reports read refunds by when the bank confirmed them.
CREATE INDEX refunds_succeeded_time ON refunds (updated_at) WHERE status = 'succeeded';

CREATE TABLE staff_idempotency_keys (
    staff_id        uuid NOT NULL REFERENCES staff(id),
    idem_key        text NOT NULL,
    request_hash    text NOT NULL,
    resource_id     uuid NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (staff_id, idem_key)
);

-- Two-person rule: a refund above the approval amount, and a VietQR payout confirmation, wait
-- here until a second finance member approves.
CREATE TABLE refund_approvals (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('refund', 'payout')),
    order_id        uuid NOT NULL REFERENCES orders(id),
    refund_id       uuid REFERENCES refunds(id),           -- payout: the refund to confirm
    amount          bigint NOT NULL CHECK (amount > 0),
    reason          text NOT NULL DEFAULT '',
    requested_by    uuid NOT NULL REFERENCES staff(id),
    requested_at    timestamptz NOT NULL DEFAULT now(),
    approved_by     uuid REFERENCES staff(id),
    approved_at     timestamptz,
    CHECK (approved_by IS NULL OR approved_by <> requested_by)
);
CREATE UNIQUE INDEX refund_approvals_one_payout ON refund_approvals (refund_id) WHERE kind = 'payout';

-- ---------------------------------------------------------------- portal webhooks
-- The outbox: written in the transaction that changes the order. id: feegate_uuid7() (ids.sql).
CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    client_id       uuid NOT NULL,
    order_id        uuid NOT NULL,
    type            text NOT NULL,
    payload         text NOT NULL,          -- the exact body POSTed
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     int,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    retry_from      timestamptz             -- a redelivery: its age counts from here, not the event
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_client ON webhook_deliveries (client_id, created_at DESC);
-- Whether an order has an event still in the outbox (a handed row must not overtake it). Not a
-- partial index of the pending rows: the planner, seeing few of them, then chose it to find the
-- rows of a batch of delivery results (a bitmap scan over every entry since the last vacuum).
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (order_id);

-- ---------------------------------------------------------------- reconciliation
-- Imported bank settlement files and treasury statements with their lines. Matching and case
-- work are functions (functions/reconciliation.sql, cases.sql). id: feegate_uuid7() (ids.sql).
CREATE TABLE statements (
    id              uuid PRIMARY KEY,
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

-- Cases for finance: money that arrived where it was not expected (from the notification path,
-- one per bank transaction and kind) and reconciliation's differences (one open case per kind
-- and object), worked to an end. id: feegate_uuid7() (ids.sql).
CREATE TABLE payment_exceptions (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL,
    bank            text NOT NULL,
    bank_txn_id     text,
    order_id        uuid REFERENCES orders(id),
    attempt_id      uuid REFERENCES attempts(id),
    agency_id       bigint REFERENCES agencies(id),  -- whose money: agency staff see their own
    amount          bigint NOT NULL,
    details         json,
    created_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    resolution_note text,
    state           text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    resolution      text CHECK (resolution IN ('posted', 'refund', 'accepted', 'void', 'auto')),
    note            text,
    statement_id    uuid REFERENCES statements(id),
    line            int,
    object          text,                             -- what the case is about, for "one open case per kind and object"
    reopens         uuid REFERENCES payment_exceptions(id),
    proposed_resolution text,                         -- an `accepted` waiting for a second finance member
    proposed_by     uuid,
    proposed_note   text,
    transfer_id     text,                             -- the correcting transfer of a `posted` resolution
    refund_id       uuid,                             -- the refund a `refund` resolution started
    -- CONTRACT's whole list of kinds, so cases of any kind it names can be recorded
    CONSTRAINT payment_exceptions_kind_check CHECK (kind IN (
        'late_success', 'double_payment', 'wrong_amount', 'unmatched_credit', 'txn_id_conflict',
        'missing_in_ledger', 'missing_at_bank', 'amount_mismatch', 'duplicate', 'refund_mismatch',
        'payout_missing', 'payout_amount_mismatch', 'unexpected_credit')),
    CONSTRAINT payment_exceptions_resolved
        CHECK ((state = 'resolved') = (resolved_at IS NOT NULL) AND (state = 'resolved') = (resolution IS NOT NULL))
);
CREATE UNIQUE INDEX payment_exceptions_notification ON payment_exceptions (bank, bank_txn_id, kind)
    WHERE statement_id IS NULL AND object IS NULL;
CREATE UNIQUE INDEX payment_exceptions_one_open ON payment_exceptions (kind, object)
    WHERE resolved_at IS NULL AND object IS NOT NULL;
CREATE INDEX payment_exceptions_attempt ON payment_exceptions (attempt_id) WHERE attempt_id IS NOT NULL;
-- opening a case looks up the last case of its kind and object (resolved ones too)
CREATE INDEX payment_exceptions_object ON payment_exceptions (kind, object, created_at) WHERE object IS NOT NULL;

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

-- ---------------------------------------------------------------- e-receipts
-- Signed e-receipts ("biên lai điện tử thu phí, lệ phí"): each agency's receipt series, one
-- receipt per succeeded payment, refund adjustments, and the public keys that verify them.
-- The numberer (functions/receipts.sql) runs after COMMIT, off the notification path.

-- One counter row per series; the counter restarts at 1 each calendar year (Asia/Ho_Chi_Minh).
CREATE TABLE receipt_series (
    id          bigserial PRIMARY KEY,
    agency_id   bigint NOT NULL REFERENCES agencies(id),
    template    text NOT NULL CHECK (template ~ '^[0-9A-Za-z/-]{1,20}$'), -- ký hiệu mẫu
    series      text NOT NULL CHECK (series ~ '^[0-9A-Z/-]{1,20}$'),     -- ký hiệu
    active      boolean NOT NULL DEFAULT true,
    year        int NOT NULL DEFAULT extract(year FROM now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::int,
    last_number bigint NOT NULL DEFAULT 0 CHECK (last_number >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (agency_id, template, series)
);
CREATE UNIQUE INDEX receipt_series_one_active ON receipt_series (agency_id) WHERE active;

CREATE TABLE receipts (
    code        text PRIMARY KEY,                 -- unguessable; the public page's path
    order_id    uuid NOT NULL UNIQUE REFERENCES orders(id), -- exactly one receipt per order
    attempt_id  uuid NOT NULL REFERENCES attempts(id),
    series_id   bigint NOT NULL REFERENCES receipt_series(id),
    year        int NOT NULL,
    number      bigint NOT NULL CHECK (number > 0),
    ledger_seq  bigint NOT NULL,                  -- the payment transfer's place in commit order
    body        jsonb NOT NULL,                   -- the signed fields (complete once signed)
    key_id      text,
    signature   text,                             -- base64url Ed25519 over the canonical body
    issued_at   timestamptz NOT NULL,
    signed_at   timestamptz,
    UNIQUE (series_id, year, number)
);
CREATE INDEX receipts_unsigned ON receipts (ledger_seq) WHERE signature IS NULL;
CREATE INDEX receipts_issued ON receipts (issued_at);

-- A refund never edits a receipt: it adds one of these, pointing at the original.
CREATE TABLE receipt_adjustments (
    id              bigserial PRIMARY KEY,
    receipt_code    text NOT NULL REFERENCES receipts(code),
    refund_id       uuid NOT NULL UNIQUE,
    kind            text NOT NULL CHECK (kind IN ('partial_refund', 'cancellation')),
    amount          bigint NOT NULL CHECK (amount > 0),
    refunded_total  bigint NOT NULL CHECK (refunded_total > 0),
    reason          text NOT NULL,
    ledger_seq      bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX receipt_adjustments_receipt ON receipt_adjustments (receipt_code, id);

-- The numberer's place in the ledger sequence (one row), and where the payments made before
-- receipts existed end (`feegate receipt backfill` numbers those).
CREATE TABLE receipt_cursor (
    id            int PRIMARY KEY CHECK (id = 1),
    seq           bigint NOT NULL,
    backfill_upto bigint NOT NULL
);
INSERT INTO receipt_cursor VALUES (1, 0, 0);

-- Every key that ever signed a receipt; a rotated-out key stays for verification.
CREATE TABLE receipt_keys (
    key_id      text PRIMARY KEY,
    alg         text NOT NULL DEFAULT 'Ed25519' CHECK (alg = 'Ed25519'),
    public_key  text NOT NULL UNIQUE,             -- base64url of the raw 32 bytes
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- audit
-- The action vocabulary: one list, every audit row names one of these.
CREATE TABLE audit_actions (name text PRIMARY KEY CHECK (name ~ '^[a-z_]+(\.[a-z_]+)*$'));
INSERT INTO audit_actions (name) VALUES
    ('login.ok'), ('login.failed'), ('login.locked'), ('logout'), ('password.change'), ('totp.enrol'),
    ('refund.create'), ('refund.confirm'), ('refund.approve'), ('statement.import'),
    ('case.acknowledge'), ('case.resolve'), ('case.approve'), ('export.download'),
    ('staff.create'), ('staff.disable'), ('token.create'), ('token.revoke');

-- Append-only: rows are written in the transaction of the action they record and never change.
CREATE TABLE audit_log (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor           uuid,                        -- staff id from the verified session or token
    actor_label     text NOT NULL DEFAULT '',    -- e-mail (or what was typed, for a failed sign-in)
    role            text NOT NULL DEFAULT '',
    action          text NOT NULL REFERENCES audit_actions(name),
    object          text NOT NULL DEFAULT '',
    outcome         text NOT NULL CHECK (outcome IN ('ok', 'denied', 'failed')),
    request_id      text NOT NULL DEFAULT '',
    ip              text NOT NULL DEFAULT '',
    user_agent      text NOT NULL DEFAULT '' CHECK (length(user_agent) <= 512),
    detail          text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_actor ON audit_log (actor, id DESC);

-- The chain is written after commit by one chainer (feegate_audit_chain), so no action's
-- transaction waits on a chain head row. seq is the chain's order.
CREATE TABLE audit_chain (
    seq             bigint PRIMARY KEY,
    audit_id        bigint NOT NULL UNIQUE REFERENCES audit_log(id),
    prev_hash       text NOT NULL,
    hash            text NOT NULL,
    chained_at      timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- reports
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
