-- Time-ordered ids, and the columns that take one by default.
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).
-- A column default that runs a function is set here, beside the function, and not in
-- schema.sql or a numbered migration (those name no stored function). Setting a default locks
-- its table for a moment when this file is applied again: keep it for ids.

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

-- The ledger transfer that posts an attempt's payment (clearing to the agency's payable): one
-- per attempt, so a replayed notification cannot post it twice.
CREATE OR REPLACE FUNCTION feegate_payment_transfer_id(p_attempt uuid) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'pay:' || p_attempt
$$;

ALTER TABLE webhook_deliveries ALTER COLUMN id SET DEFAULT feegate_uuid7();
ALTER TABLE payment_exceptions ALTER COLUMN id SET DEFAULT feegate_uuid7();
ALTER TABLE statements ALTER COLUMN id SET DEFAULT feegate_uuid7();
