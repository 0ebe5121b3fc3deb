-- An order's status, and its attempts' when they close.
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).

-- The one place an order's status changes, for one order or a batch of them: each order of
-- p_orders that order_transitions lets go from its status to p_to (and is not there already)
-- moves, emitting its portal webhook (feegate_emit_orders, webhooks.sql; p_lease_s as there:
-- > 0 hands the rows to the caller, who sends them). Returns the orders moved, each with its
-- handed webhook row if any. Cancelled and expired orders take their pending attempts with
-- them. The caller should hold the orders' locks already (orders first, by id: see
-- feegate_apply_notifications); the UPDATE takes any it lacks.
CREATE OR REPLACE FUNCTION feegate_orders_transition(p_orders uuid[], p_to text, p_lease_s int)
RETURNS TABLE (r_order uuid, r_delivery uuid, r_client uuid, r_url text, r_secret text, r_payload text)
LANGUAGE plpgsql AS $$
DECLARE
    v_moved uuid[];
BEGIN
    WITH m AS (
        UPDATE orders o SET status = p_to, updated_at = now()
         WHERE o.id = ANY (p_orders) AND o.status <> p_to
           AND EXISTS (SELECT 1 FROM order_transitions tr WHERE tr.from_status = o.status AND tr.to_status = p_to)
        RETURNING o.id)
    SELECT array_agg(m.id) INTO v_moved FROM m;
    IF v_moved IS NULL THEN
        RETURN;
    END IF;
    IF p_to IN ('cancelled', 'expired') THEN
        UPDATE attempts t SET status = 'expired', updated_at = now()
         WHERE t.order_id = ANY (v_moved) AND t.status = 'pending';
    END IF;
    RETURN QUERY
        WITH w AS (SELECT * FROM feegate_emit_orders(v_moved, p_lease_s) e)
        SELECT m.id, w.r_id, w.r_client, w.r_url, w.r_secret, w.r_payload
          FROM unnest(v_moved) AS m(id) LEFT JOIN w ON w.r_order = m.id;
END
$$;

-- One order's change on request (cancel, checkout, expiry, refunds): the outcome as text
-- (changed, unchanged, not_found, invalid_state), never raising for an expected refusal.
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
    IF NOT EXISTS (SELECT 1 FROM feegate_orders_transition(ARRAY[p_order], p_to, 0)) THEN
        RETURN 'invalid_state';
    END IF;
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
