-- What a passing `feegate ledger check` has verified, so the next check can start from there
-- (`--incremental`): the chain up to seq (whose transfer's hash is hash), the entries up to
-- entry_id, and the objects (orders, attempts, refunds, cases, statements) as they stood when
-- the oldest transaction then open began (since). A full check re-reads everything.
CREATE TABLE ledger_checkpoints (
    id          bigserial PRIMARY KEY,
    seq         bigint NOT NULL,
    hash        text NOT NULL,
    entry_id    bigint NOT NULL,
    since       timestamptz NOT NULL,
    full_check  boolean NOT NULL,
    transfers   bigint NOT NULL,       -- how many transfers this check read
    seconds     double precision NOT NULL,
    checked_at  timestamptz NOT NULL DEFAULT now()
);
