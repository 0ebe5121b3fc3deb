-- An order's status, and its attempts' when they close.
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).

-- The one place an order's status changes on request: guarded by order_transitions, and
-- emitting the portal webhook (feegate_emit, webhooks.sql). Returns the outcome as text
-- (changed, unchanged, not_found, invalid_state), never raising for an expected refusal.
-- Cancelled and expired orders take their pending attempts with them.
CREATE OR REPLACE FUNCTION feegate_order_transition(p_order uuid, p_client uuid, p_to text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    cur text;
BEGIN
    SELECT status INTO cur FROM orders WHERE id = p_order AND (p_client IS NULL OR client_id = p_client)
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    IF cur = p_to THEN
        RETURN 'unchanged';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM order_transitions WHERE from_status = cur AND to_status = p_to) THEN
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

-- Closes a pending attempt that will not be paid (declined, failed to start, expired, or the
-- bank said so when asked). The order goes back to created while it can still be paid, else
-- it expires. The order is locked first (one lock order everywhere: orders, then attempts).
CREATE OR REPLACE FUNCTION feegate_close_attempt(p_attempt uuid, p_status text, p_code text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    o record;
BEGIN
    SELECT ord.id, ord.status, ord.expires_at INTO o FROM orders ord
     WHERE ord.id = (SELECT order_id FROM attempts WHERE id = p_attempt) FOR UPDATE;
    UPDATE attempts SET status = p_status, failure_code = p_code, updated_at = now()
     WHERE id = p_attempt AND status = 'pending' RETURNING * INTO a;
    IF NOT FOUND THEN
        RETURN 'unchanged';
    END IF;
    IF EXISTS (SELECT 1 FROM attempts WHERE order_id = a.order_id AND status = 'pending') THEN
        RETURN 'changed';
    END IF;
    IF o.status = 'pending' THEN
        PERFORM feegate_order_transition(a.order_id, NULL, CASE WHEN o.expires_at <= now() THEN 'expired' ELSE 'created' END);
    END IF;
    RETURN 'changed';
END
$$;

-- An attempt that could not be started or was declined.
CREATE OR REPLACE FUNCTION feegate_fail_attempt(p_attempt uuid, p_code text) RETURNS text LANGUAGE sql AS $$
    SELECT feegate_close_attempt(p_attempt, 'failed', p_code)
$$;
