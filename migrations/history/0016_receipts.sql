-- Signed e-receipts ("biên lai điện tử thu phí, lệ phí"): each agency's receipt series, one
-- receipt per succeeded payment, refund adjustments, and the public keys that verify them.
-- The numberer (migrations/functions/receipts.sql) runs after COMMIT, off the notification
-- path: it follows the ledger's hash-chain sequence, which is assigned under the chain-head
-- lock and so is commit order.

-- The receipt's public code: derived from the checkout token (itself unguessable and never
-- shown to anyone but the payer and the portal), so the order's webhook can carry the receipt
-- URL before the receipt is numbered, and nobody can guess one from an order id.
CREATE FUNCTION feegate_receipt_code(p_token text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'R' || upper(substr(encode(sha256(convert_to('receipt:' || p_token, 'UTF8')), 'hex'), 1, 24))
$$;

ALTER TABLE agencies ADD COLUMN tax_code text CHECK (tax_code ~ '^[0-9]{10}(-[0-9]{3})?$');

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

CREATE FUNCTION feegate_receipt_default_series() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO receipt_series (agency_id, template, series) VALUES (NEW.id, '01BLP0-001', 'FG-E');
    RETURN NEW;
END
$$;
CREATE TRIGGER agencies_default_receipt_series AFTER INSERT ON agencies
    FOR EACH ROW EXECUTE FUNCTION feegate_receipt_default_series();
INSERT INTO receipt_series (agency_id, template, series) SELECT id, '01BLP0-001', 'FG-E' FROM agencies;

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

-- A signed receipt never changes; receipts are never deleted.
CREATE FUNCTION feegate_receipt_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.signature IS NULL THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'receipts are immutable once signed: % refused; refunds add adjustments', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER receipts_immutable BEFORE UPDATE OR DELETE ON receipts
    FOR EACH ROW EXECUTE FUNCTION feegate_receipt_immutable();

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
CREATE TRIGGER receipt_adjustments_immutable BEFORE UPDATE OR DELETE ON receipt_adjustments
    FOR EACH ROW EXECUTE FUNCTION feegate_ledger_immutable();

-- The numberer's place in the ledger sequence (one row), and where the payments made before
-- this feature end (`feegate receipt backfill` numbers those).
CREATE TABLE receipt_cursor (
    id            int PRIMARY KEY CHECK (id = 1),
    seq           bigint NOT NULL,
    backfill_upto bigint NOT NULL
);
INSERT INTO receipt_cursor SELECT 1, coalesce(max(seq), 0), coalesce(max(seq), 0) FROM ledger_transfers;

-- Every key that ever signed a receipt; a rotated-out key stays for verification.
CREATE TABLE receipt_keys (
    key_id      text PRIMARY KEY,
    alg         text NOT NULL DEFAULT 'Ed25519' CHECK (alg = 'Ed25519'),
    public_key  text NOT NULL UNIQUE,             -- base64url of the raw 32 bytes
    created_at  timestamptz NOT NULL DEFAULT now()
);
