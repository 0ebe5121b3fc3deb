-- The citizen's checkout: reading the order for its pages, the VietQR transfer already
-- shown, and opening a bank attempt. A function file: applied again whenever it changes.

-- The order's open VietQR attempt (the newest pending one), with what its page shows, so that
-- choosing VietQR again, or the page's refresh, shows the same transfer content instead of
-- opening another attempt. No row when the order is not open or has no such attempt.
CREATE OR REPLACE FUNCTION feegate_checkout_vietqr(p_token text)
RETURNS TABLE (r_attempt uuid, r_ref text, r_amount bigint, r_description text, r_created_ms bigint,
               r_expires_ms bigint, r_bin text, r_account text, r_holder text)
LANGUAGE sql STABLE AS $$
    SELECT t.id, t.bank_order_ref, o.amount, o.description, (extract(epoch FROM t.created_at) * 1000)::bigint,
           (extract(epoch FROM o.expires_at) * 1000)::bigint, a.account_bin, a.account_number, a.account_holder
      FROM orders o
      JOIN agencies a ON a.id = o.agency_id
      JOIN LATERAL (SELECT * FROM attempts x WHERE x.order_id = o.id AND x.bank = 'vietqr' AND x.status = 'pending'
                     ORDER BY x.created_at DESC LIMIT 1) t ON true
     WHERE o.checkout_token = p_token AND o.status IN ('created', 'pending') AND o.expires_at > now()
$$;

-- Opens a bank attempt for a checkout: the order must be created or pending and not expired,
-- and the bank enabled for its agency. A created order becomes pending.
CREATE OR REPLACE FUNCTION feegate_open_attempt(p_token text, p_bank text, p_attempt uuid, p_ref text)
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
