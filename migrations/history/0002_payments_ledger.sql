-- Bank notifications, payment exceptions, the portal webhook outbox, and the double-entry
-- ledger that every money movement is posted to in the same transaction as its cause.

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
INSERT INTO ledger_accounts (name, type, agency_id)
SELECT 'agency:' || code || ':payable', 'agency_payable', id FROM agencies;

CREATE FUNCTION feegate_agency_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_accounts (name, type, agency_id)
    VALUES ('agency:' || NEW.code || ':payable', 'agency_payable', NEW.id) ON CONFLICT DO NOTHING;
    RETURN NEW;
END
$$;
CREATE TRIGGER agencies_account AFTER INSERT ON agencies FOR EACH ROW EXECUTE FUNCTION feegate_agency_account();

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
    debit_account   bigint NOT NULL REFERENCES ledger_accounts(id),
    credit_account  bigint NOT NULL REFERENCES ledger_accounts(id),
    amount          bigint NOT NULL CHECK (amount > 0),
    code            text NOT NULL CHECK (code IN ('payment', 'suspense', 'refund', 'correction')),
    order_id        uuid REFERENCES orders(id),
    attempt_id      uuid REFERENCES attempts(id),
    refund_id       uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    prev_hash       text NOT NULL,
    hash            text NOT NULL,          -- sha256(prev_hash | id | seq | debit | credit | amount | code | order | attempt | refund)
    CHECK (debit_account <> credit_account)
);
-- Never two payment transfers for one attempt, whatever the C does.
CREATE UNIQUE INDEX ledger_one_payment_per_attempt ON ledger_transfers (attempt_id) WHERE code = 'payment';
CREATE INDEX ledger_transfers_order ON ledger_transfers (order_id);

CREATE TABLE ledger_entries (
    id          bigserial PRIMARY KEY,
    transfer_id text NOT NULL REFERENCES ledger_transfers(id),
    account_id  bigint NOT NULL REFERENCES ledger_accounts(id),
    amount      bigint NOT NULL CHECK (amount <> 0), -- debit positive, credit negative
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Balances roll up from these append-only rows (index-only sums); nothing serializes an agency.
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, id) INCLUDE (amount);

CREATE FUNCTION feegate_ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are immutable: % on % refused; post a correcting transfer instead',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER ledger_transfers_immutable BEFORE UPDATE OR DELETE ON ledger_transfers
    FOR EACH ROW EXECUTE FUNCTION feegate_ledger_immutable();
CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION feegate_ledger_immutable();
CREATE TRIGGER ledger_entries_immutable BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION feegate_ledger_immutable();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION feegate_ledger_immutable();

CREATE FUNCTION feegate_account_id(p_name text) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT id FROM ledger_accounts WHERE name = p_name
$$;

CREATE FUNCTION feegate_transfer_hash(p_prev text, p_id text, p_seq bigint, p_debit bigint, p_credit bigint,
                                      p_amount bigint, p_code text, p_order uuid, p_attempt uuid, p_refund uuid)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(concat_ws('|', p_prev, p_id, p_seq, p_debit, p_credit, p_amount, p_code,
        coalesce(p_order::text, ''), coalesce(p_attempt::text, ''), coalesce(p_refund::text, '')), 'UTF8')), 'hex')
$$;

-- Postings staged by a transaction, written to the ledger by feegate_ledger_flush() at its end.
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

-- Posts one transfer: 'posted', 'exists' (same id, same content) or 'conflict' (same id, other
-- content: nothing changes). The transfer is staged; feegate_ledger_flush() chains and writes it.
CREATE FUNCTION feegate_post(p_id text, p_debit bigint, p_credit bigint, p_amount bigint, p_code text,
                             p_order uuid, p_attempt uuid, p_refund uuid)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t record;
BEGIN
    SELECT * INTO t FROM ledger_transfers WHERE id = p_id;
    IF NOT FOUND THEN
        SELECT id, debit AS debit_account, credit AS credit_account, amount, code, order_id, attempt_id, refund_id
          INTO t FROM ledger_staging WHERE id = p_id AND txid = txid_current();
    END IF;
    IF FOUND THEN
        IF t.debit_account = p_debit AND t.credit_account = p_credit AND t.amount = p_amount AND t.code = p_code
           AND t.order_id IS NOT DISTINCT FROM p_order AND t.attempt_id IS NOT DISTINCT FROM p_attempt
           AND t.refund_id IS NOT DISTINCT FROM p_refund THEN
            RETURN 'exists';
        END IF;
        RETURN 'conflict';
    END IF;
    IF p_amount IS NULL OR p_amount <= 0 OR p_debit IS NULL OR p_credit IS NULL OR p_debit = p_credit THEN
        RETURN 'invalid';
    END IF;
    INSERT INTO ledger_staging (id, debit, credit, amount, code, order_id, attempt_id, refund_id)
    VALUES (p_id, p_debit, p_credit, p_amount, p_code, p_order, p_attempt, p_refund);
    RETURN 'posted';
END
$$;

-- Writes the staged transfers of this transaction, extending the hash chain once: the chain
-- head is locked here, last, so concurrent batches do everything else in parallel.
CREATE FUNCTION feegate_ledger_flush() RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    head record;
    s record;
    n int := 0;
    h text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ledger_staging WHERE txid = txid_current()) THEN
        RETURN 0;
    END IF;
    SELECT seq, hash INTO head FROM ledger_chain WHERE id = 1 FOR UPDATE;
    h := head.hash;
    FOR s IN SELECT * FROM ledger_staging WHERE txid = txid_current() ORDER BY ord LOOP
        head.seq := head.seq + 1;
        INSERT INTO ledger_transfers (id, seq, debit_account, credit_account, amount, code, order_id,
                                      attempt_id, refund_id, prev_hash, hash)
        VALUES (s.id, head.seq, s.debit, s.credit, s.amount, s.code, s.order_id, s.attempt_id, s.refund_id, h,
                feegate_transfer_hash(h, s.id, head.seq, s.debit, s.credit, s.amount, s.code, s.order_id,
                                      s.attempt_id, s.refund_id));
        h := feegate_transfer_hash(h, s.id, head.seq, s.debit, s.credit, s.amount, s.code, s.order_id,
                                   s.attempt_id, s.refund_id);
        INSERT INTO ledger_entries (transfer_id, account_id, amount)
        VALUES (s.id, s.debit, s.amount), (s.id, s.credit, -s.amount);
        n := n + 1;
    END LOOP;
    DELETE FROM ledger_staging WHERE txid = txid_current();
    UPDATE ledger_chain SET seq = head.seq, hash = h WHERE id = 1;
    RETURN n;
END
$$;

-- ---------------------------------------------------------------- payments
ALTER TABLE attempts ADD COLUMN bank_created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE attempts ADD COLUMN last_query_at timestamptz;
CREATE INDEX attempts_pending ON attempts (created_at) WHERE status = 'pending';

-- Every verified notification, once: a replay hits the unique key and changes nothing.
CREATE TABLE bank_notifications (
    id              bigserial PRIMARY KEY,
    bank            text NOT NULL,
    dedupe_key      text NOT NULL,          -- the bank's transaction id (or ref:status for failures)
    bank_order_ref  text,
    attempt_id      uuid REFERENCES attempts(id),
    amount          bigint NOT NULL,
    success         boolean NOT NULL,
    outcome         text NOT NULL,
    source          text NOT NULL DEFAULT 'notification', -- or 'query' (the sweeper asked the bank)
    raw             text,
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (bank, dedupe_key)
);

-- Money that arrived where it was not expected, and other cases for finance to work.
CREATE TABLE payment_exceptions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind            text NOT NULL CHECK (kind IN ('late_success', 'double_payment', 'wrong_amount',
                                                  'unmatched_credit')),
    bank            text NOT NULL,
    bank_txn_id     text,
    order_id        uuid REFERENCES orders(id),
    attempt_id      uuid REFERENCES attempts(id),
    agency_id       bigint REFERENCES agencies(id),
    amount          bigint NOT NULL,
    details         json,
    created_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    resolution_note text,
    UNIQUE (bank, bank_txn_id, kind)
);

-- The portal webhook outbox: written in the transaction that changes the order.
CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id       uuid NOT NULL REFERENCES clients(id),
    order_id        uuid NOT NULL REFERENCES orders(id),
    type            text NOT NULL,
    payload         text NOT NULL,          -- the exact body POSTed
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     int,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_client ON webhook_deliveries (client_id, created_at DESC);

-- The order as the API and the portal webhooks show it; p_base is the public URL the checkout
-- link starts with. Optional fields that are absent are left out; attempts keep their nulls.
CREATE FUNCTION feegate_order_json(p_order uuid, p_base text) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT (rtrim(json_strip_nulls(json_build_object(
        'id', o.id, 'reference', o.reference, 'agency', a.code, 'description', o.description,
        'amount', o.amount, 'currency', o.currency, 'status', o.status, 'items', o.items,
        'procedure', o.procedure, 'payer', o.payer, 'metadata', o.metadata,
        'checkout_url', p_base || '/checkout/' || o.checkout_token, 'return_url', o.return_url,
        'created_at', to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'expires_at', to_char(o.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))::text, '}')
        || ',"attempts":' || coalesce((SELECT json_agg(json_build_object(
            'id', t.id, 'bank', t.bank, 'bank_order_ref', t.bank_order_ref, 'status', t.status,
            'bank_txn_id', t.bank_txn_id, 'failure_code', t.failure_code,
            'created_at', to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'updated_at', to_char(t.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
            ORDER BY t.created_at, t.id) FROM attempts t WHERE t.order_id = o.id)::text, '[]') || '}')::json
      FROM orders o JOIN agencies a ON a.id = o.agency_id WHERE o.id = p_order
$$;

CREATE TABLE settings (
    name    text PRIMARY KEY,
    value   text NOT NULL
);

-- Queues the portal webhook for an order's new status (only for clients with a webhook URL).
CREATE FUNCTION feegate_emit(p_order uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    o record;
    base text := coalesce((SELECT value FROM settings WHERE name = 'public_url'), '');
    ev uuid := gen_random_uuid();
BEGIN
    SELECT ord.id, ord.status, ord.client_id, c.webhook_url INTO o
      FROM orders ord JOIN clients c ON c.id = ord.client_id WHERE ord.id = p_order;
    IF o.webhook_url IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO webhook_deliveries (id, client_id, order_id, type, payload)
    VALUES (ev, o.client_id, o.id, 'order.' || o.status,
            json_build_object('id', ev, 'type', 'order.' || o.status,
                              'created_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                              'data', feegate_order_json(o.id, base))::text);
END
$$;

-- The one place an order's status changes: guarded, and emitting the portal webhook.
CREATE OR REPLACE FUNCTION feegate_order_transition(p_order uuid, p_client uuid, p_to text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    cur text;
    allowed text[];
BEGIN
    SELECT status INTO cur FROM orders WHERE id = p_order AND (p_client IS NULL OR client_id = p_client)
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    IF cur = p_to THEN
        RETURN 'unchanged';
    END IF;
    allowed := CASE p_to
        WHEN 'pending'            THEN ARRAY['created']
        WHEN 'created'            THEN ARRAY['pending']
        WHEN 'succeeded'          THEN ARRAY['created', 'pending']
        WHEN 'cancelled'          THEN ARRAY['created', 'pending']
        WHEN 'expired'            THEN ARRAY['created', 'pending']
        WHEN 'partially_refunded' THEN ARRAY['succeeded', 'partially_refunded']
        WHEN 'refunded'           THEN ARRAY['succeeded', 'partially_refunded']
        ELSE ARRAY[]::text[] END;
    IF NOT cur = ANY (allowed) THEN
        RETURN 'invalid_state';
    END IF;
    UPDATE orders SET status = p_to, updated_at = now() WHERE id = p_order;
    IF p_to IN ('cancelled', 'expired') THEN
        UPDATE attempts SET status = 'expired', updated_at = now()
         WHERE order_id = p_order AND status = 'pending';
    END IF;
    PERFORM feegate_emit(p_order);
    RETURN 'changed';
END
$$;

-- Opens a bank attempt for a checkout: the order must be created or pending and not expired.
CREATE FUNCTION feegate_open_attempt(p_token text, p_bank text, p_attempt uuid, p_ref text)
RETURNS TABLE (r_outcome text, r_order uuid, r_amount bigint, r_description text, r_created_ms bigint,
               r_expires_ms bigint, r_bin text, r_account text, r_holder text)
LANGUAGE plpgsql AS $$
DECLARE
    o record;
BEGIN
    SELECT ord.*, a.banks, a.account_bin, a.account_number, a.account_holder INTO o
      FROM orders ord JOIN agencies a ON a.id = ord.agency_id WHERE ord.checkout_token = p_token FOR UPDATE OF ord;
    IF NOT FOUND THEN
        r_outcome := 'not_found'; RETURN NEXT; RETURN;
    END IF;
    r_order := o.id;
    IF NOT p_bank = ANY (o.banks) THEN
        r_outcome := 'bank_not_enabled'; RETURN NEXT; RETURN;
    END IF;
    IF o.status NOT IN ('created', 'pending') THEN
        r_outcome := 'state_' || o.status; RETURN NEXT; RETURN;
    END IF;
    IF o.expires_at <= now() THEN
        r_outcome := 'state_expired'; RETURN NEXT; RETURN;
    END IF;
    INSERT INTO attempts (id, order_id, bank, bank_order_ref, amount) VALUES (p_attempt, o.id, p_bank, p_ref, o.amount);
    IF o.status = 'created' THEN
        PERFORM feegate_order_transition(o.id, NULL, 'pending');
    END IF;
    r_outcome := 'opened'; r_amount := o.amount; r_description := o.description;
    r_created_ms := (extract(epoch FROM now()) * 1000)::bigint;
    r_expires_ms := (extract(epoch FROM o.expires_at) * 1000)::bigint;
    r_bin := o.account_bin; r_account := o.account_number; r_holder := o.account_holder;
    RETURN NEXT;
END
$$;

-- An attempt that could not be started (the bank refused or did not answer): the order goes
-- back to created so the citizen can choose again.
CREATE FUNCTION feegate_fail_attempt(p_attempt uuid, p_code text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    a record;
BEGIN
    UPDATE attempts SET status = 'failed', failure_code = p_code, updated_at = now()
     WHERE id = p_attempt AND status = 'pending' RETURNING * INTO a;
    IF NOT FOUND THEN
        RETURN 'unchanged';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM attempts WHERE order_id = a.order_id AND status = 'pending') THEN
        PERFORM feegate_order_transition(a.order_id, NULL, 'created');
    END IF;
    RETURN 'changed';
END
$$;

-- Applies a batch of verified bank notifications in one transaction (group commit). Each item:
-- {i, bank, kind: payment|credit, ref, candidates (credit), amount, success, txn_id,
--  failure_code, account_no, raw, source}. Returns one outcome per item:
-- applied | replayed | unknown_order | wrong_amount. Nothing raises for an expected case.
CREATE FUNCTION feegate_apply_notifications(batch json)
RETURNS TABLE (r_idx int, r_outcome text, r_order uuid, r_status text)
LANGUAGE plpgsql AS $$
DECLARE
    it json;
    att record;
    ord record;
    v_bank text;
    v_amount bigint;
    v_txn text;
    v_key text;
    v_clearing bigint;
    v_payable bigint;
    v_suspense bigint := feegate_account_id('suspense');
    v_kind text;
    v_exc text;
BEGIN
    FOR it IN SELECT value FROM json_array_elements(batch) LOOP
        r_idx := (it->>'i')::int;
        r_order := NULL;
        r_status := NULL;
        v_bank := it->>'bank';
        v_amount := (it->>'amount')::bigint;
        v_txn := nullif(it->>'txn_id', '');
        v_clearing := feegate_account_id('bank:' || v_bank || ':clearing');
        IF v_clearing IS NULL THEN
            INSERT INTO ledger_accounts (name, type, bank) VALUES ('bank:' || v_bank || ':clearing', 'bank_clearing', v_bank)
            ON CONFLICT DO NOTHING;
            v_clearing := feegate_account_id('bank:' || v_bank || ':clearing');
        END IF;
        att := NULL;
        -- Which attempt is this about?
        IF it->>'kind' = 'credit' THEN
            SELECT t.* INTO att FROM attempts t JOIN orders o ON o.id = t.order_id JOIN agencies a ON a.id = o.agency_id
             WHERE t.bank = v_bank AND t.bank_order_ref IN (SELECT json_array_elements_text(it->'candidates'))
               AND t.amount = v_amount AND a.account_number = it->>'account_no'
             ORDER BY (t.status = 'pending') DESC, t.created_at DESC LIMIT 1 FOR UPDATE OF t;
        ELSE
            SELECT t.* INTO att FROM attempts t WHERE t.bank = v_bank AND t.bank_order_ref = it->>'ref' FOR UPDATE;
            IF NOT FOUND THEN
                r_outcome := 'unknown_order'; RETURN NEXT; CONTINUE;
            END IF;
            IF att.amount <> v_amount THEN
                INSERT INTO payment_exceptions (kind, bank, bank_txn_id, order_id, attempt_id, amount, details)
                VALUES ('wrong_amount', v_bank, coalesce(v_txn, it->>'ref'), att.order_id, att.id, v_amount,
                        json_build_object('expected', att.amount, 'received', v_amount, 'success', (it->>'success')::boolean))
                ON CONFLICT DO NOTHING;
                r_order := att.order_id;
                r_outcome := 'wrong_amount'; RETURN NEXT; CONTINUE;
            END IF;
        END IF;

        -- A replay of something already applied changes nothing.
        v_key := CASE WHEN (it->>'success')::boolean THEN coalesce(v_txn, 'ref:' || (it->>'ref'))
                      ELSE 'failed:' || coalesce(it->>'ref', '') || ':' || coalesce(v_txn, '') END;
        INSERT INTO bank_notifications (bank, dedupe_key, bank_order_ref, attempt_id, amount, success, outcome, source, raw)
        VALUES (v_bank, v_key, coalesce(att.bank_order_ref, it->>'ref'), att.id, v_amount, (it->>'success')::boolean,
                'applied', coalesce(it->>'source', 'notification'), it->>'raw')
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            r_order := att.order_id;
            r_outcome := 'replayed'; RETURN NEXT; CONTINUE;
        END IF;

        IF NOT (it->>'success')::boolean THEN
            -- A failure: only a pending attempt fails; the order may be tried at another bank.
            IF att.id IS NOT NULL AND att.status = 'pending' THEN
                PERFORM feegate_fail_attempt(att.id, coalesce(nullif(it->>'failure_code', ''), 'declined'));
                r_outcome := 'applied';
            ELSE
                r_outcome := 'replayed';
            END IF;
            r_order := att.order_id;
            RETURN NEXT; CONTINUE;
        END IF;

        IF att.id IS NULL THEN
            -- A signed credit that matches no attempt: money received all the same.
            PERFORM feegate_post('credit:' || v_bank || ':' || v_txn, v_clearing, v_suspense, v_amount, 'suspense',
                                 NULL, NULL, NULL);
            INSERT INTO payment_exceptions (kind, bank, bank_txn_id, amount, details)
            VALUES ('unmatched_credit', v_bank, v_txn, v_amount,
                    json_build_object('account_no', it->>'account_no', 'content', it->>'content'))
            ON CONFLICT DO NOTHING;
            r_outcome := 'applied'; RETURN NEXT; CONTINUE;
        END IF;

        SELECT o.* INTO ord FROM orders o WHERE o.id = att.order_id FOR UPDATE;
        r_order := ord.id;
        IF att.status = 'succeeded' THEN
            -- The same attempt paid twice (another bank transaction): the second is suspense.
            v_kind := 'double_payment';
        ELSIF ord.status IN ('created', 'pending') THEN
            v_kind := NULL;
        ELSE
            v_kind := CASE WHEN ord.status IN ('succeeded', 'partially_refunded', 'refunded')
                           THEN 'double_payment' ELSE 'late_success' END;
        END IF;

        IF att.status <> 'succeeded' THEN
            UPDATE attempts SET status = 'succeeded', bank_txn_id = v_txn, failure_code = NULL, updated_at = now()
             WHERE id = att.id;
        END IF;
        IF v_kind IS NULL THEN
            v_payable := (SELECT id FROM ledger_accounts WHERE agency_id = ord.agency_id AND type = 'agency_payable');
            PERFORM feegate_post('pay:' || att.id, v_clearing, v_payable, v_amount, 'payment', ord.id, att.id, NULL);
            -- Other attempts still open for this order will not be needed.
            UPDATE attempts SET status = 'expired', updated_at = now()
             WHERE order_id = ord.id AND status = 'pending' AND id <> att.id;
            PERFORM feegate_order_transition(ord.id, NULL, 'succeeded');
        ELSE
            PERFORM feegate_post('suspense:' || v_bank || ':' || coalesce(v_txn, att.bank_order_ref), v_clearing,
                                 v_suspense, v_amount, 'suspense', ord.id, att.id, NULL);
            INSERT INTO payment_exceptions (kind, bank, bank_txn_id, order_id, attempt_id, agency_id, amount, details)
            VALUES (v_kind, v_bank, coalesce(v_txn, att.bank_order_ref), ord.id, att.id, ord.agency_id, v_amount,
                    json_build_object('order_status', ord.status))
            ON CONFLICT DO NOTHING;
        END IF;
        SELECT status INTO r_status FROM orders WHERE id = ord.id;
        r_outcome := 'applied';
        RETURN NEXT;
    END LOOP;
    PERFORM feegate_ledger_flush();
END
$$;

-- Closes a pending attempt that will not be paid (declined, failed to start, expired, or the
-- bank said so when asked). The order goes back to created while it can still be paid, else
-- it expires.
CREATE FUNCTION feegate_close_attempt(p_attempt uuid, p_status text, p_code text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    o record;
BEGIN
    UPDATE attempts SET status = p_status, failure_code = p_code, updated_at = now()
     WHERE id = p_attempt AND status = 'pending' RETURNING * INTO a;
    IF NOT FOUND THEN
        RETURN 'unchanged';
    END IF;
    IF EXISTS (SELECT 1 FROM attempts WHERE order_id = a.order_id AND status = 'pending') THEN
        RETURN 'changed';
    END IF;
    SELECT status, expires_at INTO o FROM orders WHERE id = a.order_id;
    IF o.status = 'pending' THEN
        PERFORM feegate_order_transition(a.order_id, NULL, CASE WHEN o.expires_at <= now() THEN 'expired' ELSE 'created' END);
    END IF;
    RETURN 'changed';
END
$$;

CREATE OR REPLACE FUNCTION feegate_fail_attempt(p_attempt uuid, p_code text) RETURNS text LANGUAGE sql AS $$
    SELECT feegate_close_attempt(p_attempt, 'failed', p_code)
$$;

-- Orders that were never taken to a bank expire on the clock.
CREATE FUNCTION feegate_expire_due(p_limit int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    o record;
    n int := 0;
BEGIN
    FOR o IN SELECT id FROM orders WHERE status = 'created' AND expires_at < now()
              ORDER BY expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
        IF feegate_order_transition(o.id, NULL, 'expired') = 'changed' THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;

-- Pending attempts to ask their bank about: those whose order has expired (before expiring
-- them) and those older than p_after_s (a notification may have been lost). Claimed with
-- last_query_at, so several sweepers never ask twice at once.
CREATE FUNCTION feegate_attempts_to_query(p_after_s int, p_limit int)
RETURNS TABLE (r_id uuid, r_bank text, r_ref text, r_txn text, r_amount bigint, r_description text,
               r_created bigint, r_past_expiry_s bigint)
LANGUAGE sql AS $$
    UPDATE attempts t SET last_query_at = now()
      FROM orders o
     WHERE o.id = t.order_id AND t.id IN (
           SELECT t2.id FROM attempts t2 JOIN orders o2 ON o2.id = t2.order_id
            WHERE t2.status = 'pending'
              AND (o2.expires_at < now() OR t2.created_at < now() - make_interval(secs => p_after_s))
              AND (t2.last_query_at IS NULL
                   OR t2.last_query_at < now() - make_interval(secs => least(p_after_s, 10)))
            ORDER BY t2.created_at LIMIT p_limit FOR UPDATE OF t2 SKIP LOCKED)
    RETURNING t.id, t.bank, t.bank_order_ref, t.bank_txn_id, t.amount, o.description,
              extract(epoch FROM t.created_at)::bigint, extract(epoch FROM now() - o.expires_at)::bigint
$$;

-- Webhook deliveries that are due, leased for p_lease_s so no other relay takes them meanwhile.
CREATE FUNCTION feegate_claim_deliveries(p_limit int, p_lease_s int)
RETURNS TABLE (r_id uuid, r_url text, r_secret text, r_payload text, r_attempts int, r_age_s bigint)
LANGUAGE sql AS $$
    UPDATE webhook_deliveries d
       SET next_attempt_at = now() + make_interval(secs => p_lease_s), attempts = d.attempts + 1
      FROM clients c
     WHERE c.id = d.client_id AND d.id IN (
           SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()
            ORDER BY next_attempt_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
    RETURNING d.id, c.webhook_url, c.webhook_secret, d.payload, d.attempts,
              extract(epoch FROM now() - d.created_at)::bigint
$$;

CREATE FUNCTION feegate_delivery_json(d webhook_deliveries) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', d.id, 'order_id', d.order_id, 'type', d.type, 'status', d.status,
        'attempts', d.attempts, 'last_status', d.last_status, 'last_error', d.last_error,
        'created_at', to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'next_attempt_at', CASE WHEN d.status = 'pending'
            THEN to_char(d.next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END,
        'delivered_at', to_char(d.delivered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;

CREATE FUNCTION feegate_exception_json(e payment_exceptions) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', e.id, 'kind', e.kind, 'bank', e.bank, 'bank_txn_id', e.bank_txn_id,
        'order_id', e.order_id, 'attempt_id', e.attempt_id,
        'agency', (SELECT code FROM agencies WHERE id = e.agency_id), 'amount', e.amount, 'details', e.details,
        'created_at', to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'resolved_at', to_char(e.resolved_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'resolution_note', e.resolution_note)
$$;
