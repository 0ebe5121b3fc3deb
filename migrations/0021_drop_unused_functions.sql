-- Stored functions nothing calls any more, dropped so that each one left has a caller and one
-- definition (in migrations/functions/):
--
-- * feegate_claim_deliveries(int, int): the relay's claim before it skipped busy portals; the
--   gateway calls the three-argument claim (functions/webhooks.sql).
-- * feegate_emit_orders(uuid[]): a wrapper of feegate_emit_orders(uuid[], 0) nobody called.
-- * feegate_order_json(uuid, text): the one-order renderer; the API renders the order it
--   creates in C and reads orders with feegate_orders_json (functions/render.sql), and the
--   webhooks use feegate_orders_json too.
-- * feegate_exception_json(payment_exceptions): replaced by feegate_case_json when exceptions
--   became cases.
-- * feegate_refundable(uuid): the remainder a refund may ask for now comes from
--   feegate_refundable(uuid, boolean) (functions/refunds.sql), which is also what a confirmed
--   refund leaves; the formula had two homes.
--
-- IF EXISTS: a database made from schema.sql never had them.
DROP FUNCTION IF EXISTS feegate_claim_deliveries(int, int);
DROP FUNCTION IF EXISTS feegate_emit_orders(uuid[]);
DROP FUNCTION IF EXISTS feegate_order_json(uuid, text);
DROP FUNCTION IF EXISTS feegate_exception_json(payment_exceptions);
DROP FUNCTION IF EXISTS feegate_refundable(uuid);
