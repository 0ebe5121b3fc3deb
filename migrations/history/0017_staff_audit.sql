-- Staff sign-in (e-mail, scrypt password, TOTP, lockout), staff bound to several agencies,
-- API tokens of their own, the auditor role, and the append-only audit log with its chain.

ALTER TABLE staff DROP CONSTRAINT staff_role_check;
ALTER TABLE staff ADD CONSTRAINT staff_role_check CHECK (role IN ('agency', 'finance', 'admin', 'auditor'));
ALTER TABLE staff DROP CONSTRAINT staff_check;
ALTER TABLE staff
    ADD COLUMN email            text UNIQUE CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
    ADD COLUMN password_hash    text,            -- scrypt$N$r$p$salt$hash (lib/passwd.c)
    ADD COLUMN totp_secret      text,            -- base32; NULL until enrolled
    ADD COLUMN totp_last_step   bigint,          -- a code is accepted once
    ADD COLUMN recovery_hashes  text[] NOT NULL DEFAULT '{}',   -- SHA-256 of unused recovery codes
    ADD COLUMN failed_logins    int NOT NULL DEFAULT 0,
    ADD COLUMN locked_until     timestamptz,
    ADD COLUMN setup_hash       text UNIQUE,     -- SHA-256 of a one-time setup link's token
    ADD COLUMN setup_expires_at timestamptz;

-- Agency staff may be bound to several agencies.
CREATE TABLE staff_agencies (
    staff_id        uuid NOT NULL REFERENCES staff(id),
    agency_id       bigint NOT NULL REFERENCES agencies(id),
    PRIMARY KEY (staff_id, agency_id)
);
INSERT INTO staff_agencies (staff_id, agency_id) SELECT id, agency_id FROM staff WHERE agency_id IS NOT NULL;

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
INSERT INTO staff_tokens (id, staff_id, token_hash, label)
SELECT gen_random_uuid(), id, token_hash, 'initial' FROM staff WHERE token_hash IS NOT NULL;

ALTER TABLE staff DROP COLUMN agency_id, DROP COLUMN token_hash;

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

CREATE FUNCTION feegate_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = '42501';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION feegate_audit_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION feegate_audit_refuse();
CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION feegate_audit_refuse();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION feegate_audit_refuse();

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

-- Order search: newest first within a client or an agency (feegate_orders_find).
CREATE INDEX orders_client_id_desc ON orders (client_id, id DESC);
CREATE INDEX orders_agency_id_desc ON orders (agency_id, id DESC);
