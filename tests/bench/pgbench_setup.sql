-- Tables for the pgbench ceilings (tests/bench/run.sh), in their own schema of the bench stack's
-- database. Not part of feegate's schema.
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

-- insert-only: one durable row per transaction, about the size of an order row
CREATE TABLE bench.orders (
    id          bigserial PRIMARY KEY,
    reference   text NOT NULL,
    amount      bigint NOT NULL,
    description text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- naive posting: every payment updates one hot balance row and appends its entry
CREATE TABLE bench.balances (
    account_id int PRIMARY KEY,
    balance    bigint NOT NULL
);
CREATE TABLE bench.entries (
    id         bigserial PRIMARY KEY,
    account_id int NOT NULL,
    amount     bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO bench.balances VALUES (1, 0);

-- feegate's own posting (pgbench_apply.sql): the next block of 100 prepared attempts
CREATE SEQUENCE bench.apply_block;
