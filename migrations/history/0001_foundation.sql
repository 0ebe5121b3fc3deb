-- Agencies, portal clients, staff, fee orders, attempts, idempotency records.
-- Times are timestamptz (stored in UTC); money is BIGINT VND.

CREATE TABLE agencies (
    id              bigserial PRIMARY KEY,
    code            text NOT NULL UNIQUE CHECK (code ~ '^[A-Z0-9_]{2,32}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    account_bin     text NOT NULL CHECK (account_bin ~ '^[0-9]{6}$'),
    account_number  text NOT NULL CHECK (account_number ~ '^[0-9A-Z]{1,19}$'),
    account_holder  text NOT NULL CHECK (length(account_holder) BETWEEN 1 AND 99),
    banks           text[] NOT NULL DEFAULT '{vnpay,momo,vietqr}',
    created_at      timestamptz NOT NULL DEFAULT now()
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

CREATE TABLE staff (
    id              uuid PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    role            text NOT NULL CHECK (role IN ('agency', 'finance', 'admin')),
    agency_id       bigint REFERENCES agencies(id),
    token_hash      text NOT NULL UNIQUE,       -- hex SHA-256 of the token
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz,
    CHECK ((role = 'agency') = (agency_id IS NOT NULL))
);

CREATE TABLE orders (
    id              uuid PRIMARY KEY,
    client_id       uuid NOT NULL REFERENCES clients(id),
    agency_id       bigint NOT NULL REFERENCES agencies(id),
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
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attempts_order ON attempts (order_id);

-- Idempotency-Key records, written in the same transaction as the order they answer for.
CREATE TABLE idempotency_keys (
    client_id       uuid NOT NULL REFERENCES clients(id),
    idem_key        text NOT NULL,
    request_hash    text NOT NULL,               -- hex SHA-256 of the request body bytes
    http_status     int NOT NULL,
    response_body   text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, idem_key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);

-- Group-committed order intake: one call inserts a whole batch in one transaction. Nothing in
-- it raises for an expected outcome (duplicate reference, replayed key): each item's outcome
-- is a row. A concurrent request holding the same key makes this wait for its commit (the
-- unique index), bounded by lock_timeout; the gateway answers 409 idempotency_key_in_use then.
CREATE FUNCTION feegate_intake(batch json)
RETURNS TABLE (r_idx int, r_outcome text, r_status int, r_body text, r_order_id uuid)
LANGUAGE plpgsql SET lock_timeout = '10s' AS $$
DECLARE
    it json;
    prev record;
    existing uuid;
BEGIN
    FOR it IN SELECT value FROM json_array_elements(batch) LOOP
        r_idx := (it->>'i')::int;
        r_body := NULL;
        r_order_id := NULL;
        IF it->>'idem_key' IS NOT NULL THEN
            INSERT INTO idempotency_keys (client_id, idem_key, request_hash, http_status, response_body)
            VALUES ((it->>'client_id')::uuid, it->>'idem_key', it->>'idem_hash', 201, it->>'response')
            ON CONFLICT DO NOTHING;
            IF NOT FOUND THEN
                SELECT k.request_hash, k.http_status, k.response_body INTO prev
                  FROM idempotency_keys k
                 WHERE k.client_id = (it->>'client_id')::uuid AND k.idem_key = it->>'idem_key';
                IF prev.request_hash IS DISTINCT FROM it->>'idem_hash' THEN
                    r_outcome := 'key_reused'; r_status := 422;
                ELSE
                    r_outcome := 'replay'; r_status := prev.http_status; r_body := prev.response_body;
                END IF;
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;
        INSERT INTO orders (id, client_id, agency_id, reference, description, amount, currency,
                            items, procedure, payer, metadata, return_url, checkout_token,
                            created_at, updated_at, expires_at)
        VALUES ((it->>'id')::uuid, (it->>'client_id')::uuid, (it->>'agency_id')::bigint,
                it->>'reference', it->>'description', (it->>'amount')::bigint, 'VND',
                it->'items', it->>'procedure', it->'payer', it->'metadata', it->>'return_url',
                it->>'checkout_token', (it->>'created_at')::timestamptz,
                (it->>'created_at')::timestamptz, (it->>'expires_at')::timestamptz)
        ON CONFLICT (client_id, reference) DO NOTHING;
        IF FOUND THEN
            r_outcome := 'created'; r_status := 201; r_order_id := (it->>'id')::uuid;
        ELSE
            SELECT o.id INTO existing FROM orders o
             WHERE o.client_id = (it->>'client_id')::uuid AND o.reference = it->>'reference';
            -- A 409 is not kept as the key's answer: the key stays free for a corrected body.
            IF it->>'idem_key' IS NOT NULL THEN
                DELETE FROM idempotency_keys k
                 WHERE k.client_id = (it->>'client_id')::uuid AND k.idem_key = it->>'idem_key';
            END IF;
            r_outcome := 'duplicate'; r_status := 409; r_order_id := existing;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

-- The one place an order's status changes (later migrations extend it): returns the outcome
-- of a requested transition as text, never raising for an expected refusal.
CREATE FUNCTION feegate_order_transition(p_order uuid, p_client uuid, p_to text)
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
    RETURN 'changed';
END
$$;
