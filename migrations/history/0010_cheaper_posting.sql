-- Time-ordered ids for webhook events and payment exceptions, and the first migration whose
-- stored functions live in function files (migrations/functions/, applied by `feegate migrate`
-- after the numbered migrations and again whenever they change), so that a changed function
-- is an edit of one file rather than a copy in a new migration. What changed in them, from a
-- per-statement profile of feegate_apply_notifications (auto_explain with nested statements,
-- one batch of 128 first successes):
--
-- * The portal webhook rows were 35 % of the batch: feegate_order_json ran two queries per
--   order. Orders are now rendered set-based by feegate_orders_json (one query for the whole
--   batch); feegate_order_json is that same renderer for one order, so the API and the webhooks
--   cannot drift apart.
-- * The batch was parsed from JSON three times; it is now parsed once into typed arrays.
-- * The fast path's payment transfers no longer go through the staging table: they are handed
--   to feegate_ledger_flush_with() at the end of the function, which chains them together with
--   whatever the per-item path staged, under the chain-head lock taken last as before.
-- * Webhook event ids are time-ordered (version 7) like order and attempt ids (below).

-- A time-ordered UUID (RFC 9562 version 7): 48 bits of Unix milliseconds, then random bits with
-- the version (7) and variant set. Rows keyed by it are appended at the right edge of their
-- indexes instead of touching a random page each (each first touch after a checkpoint writes a
-- full page image to the WAL). Built from a version 4 UUID: its version nibble 0100 becomes
-- 0111 by setting the two low bits (bits 52 and 53 of the bytea, counted from each byte's
-- least significant bit); the variant bits are already right.
CREATE OR REPLACE FUNCTION feegate_uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                                          placing substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                                          FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

ALTER TABLE webhook_deliveries ALTER COLUMN id SET DEFAULT feegate_uuid7();
ALTER TABLE payment_exceptions ALTER COLUMN id SET DEFAULT feegate_uuid7();

