-- The ledger: accounts and their balances, posting a transfer, and writing staged and given
-- transfers with one hash-chain extension per transaction. The tables are in schema.sql; the
-- triggers that keep entries and transfers append-only in triggers.sql.
-- A function file: `feegate migrate` applies it again whenever it changes (see cli_migrate).

-- An account's id by name (bank:<bank>:clearing, agency:<code>:payable, suspense...).
CREATE OR REPLACE FUNCTION feegate_account_id(p_name text) RETURNS bigint LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT id FROM ledger_accounts WHERE name = p_name);
END
$$;

-- The sign an account's balance is shown in: debit-normal accounts (a bank's clearing, an
-- agency's receivable) show debits minus credits, the others credits minus debits, so every
-- balance reads as a positive amount in normal use.
CREATE OR REPLACE FUNCTION feegate_account_sign(p_type text) RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_type IN ('bank_clearing', 'agency_receivable') THEN 1 ELSE -1 END
$$;

-- An account's debits minus credits, with what this transaction has staged but not yet written.
CREATE OR REPLACE FUNCTION feegate_balance_staged(p_account bigint) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT sum(amount) FROM ledger_entries WHERE account_id = p_account), 0)
         + coalesce((SELECT sum(CASE WHEN debit = p_account THEN amount ELSE -amount END) FROM ledger_staging
                      WHERE txid = txid_current() AND p_account IN (debit, credit)), 0)
$$;

-- An account as GET /v1/ledger/accounts shows it, its balance in its own sign.
CREATE OR REPLACE FUNCTION feegate_account_json(a ledger_accounts) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', a.id, 'name', a.name, 'type', a.type,
        'agency', (SELECT code FROM agencies WHERE id = a.agency_id), 'bank', a.bank,
        'balance', coalesce((SELECT sum(amount) FROM ledger_entries WHERE account_id = a.id), 0)
                   * feegate_account_sign(a.type))
$$;

-- Posts one transfer: 'posted', 'exists' (same id, same content) or 'conflict' (same id, other
-- content: nothing changes). The transfer is staged; feegate_ledger_flush() chains and writes it.
CREATE OR REPLACE FUNCTION feegate_post(p_id text, p_debit bigint, p_credit bigint, p_amount bigint, p_code text,
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

-- A transfer's link in the hash chain. STABLE, not IMMUTABLE: concat_ws and convert_to are
-- stable, and an IMMUTABLE SQL function whose body is not is never inlined -- each call ran as
-- a separate SQL function execution (30 us a transfer in the profile).
CREATE OR REPLACE FUNCTION feegate_transfer_hash(p_prev text, p_id text, p_seq bigint, p_debit bigint, p_credit bigint,
                                                 p_amount bigint, p_code text, p_order uuid, p_attempt uuid, p_refund uuid)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to(concat_ws('|', p_prev, p_id, p_seq, p_debit, p_credit, p_amount, p_code,
        coalesce(p_order::text, ''), coalesce(p_attempt::text, ''), coalesce(p_refund::text, '')), 'UTF8')), 'hex')
$$;

-- Writes the given transfers to the ledger: their entries first, then one chain extension under
-- the chain-head lock (taken last: nothing else may be locked after it), the transfers and the
-- new head in one statement. The lock is held until COMMIT, so concurrent batches pass through
-- it one after another: only what needs the head is done while holding it. (A batch's fixed
-- cost is mostly its number of statements: this was seven, a tenth of a small batch.)
CREATE OR REPLACE FUNCTION feegate_ledger_write(p_ids text[], p_debit bigint[], p_credit bigint[],
                                                p_amount bigint[], p_code text[], p_order uuid[],
                                                p_attempt uuid[], p_refund uuid[])
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    head record;
    h text;
    n int := coalesce(cardinality(p_ids), 0);
    prevs text[];
    hashes text[];
BEGIN
    IF n = 0 THEN
        RETURN 0;
    END IF;
    INSERT INTO ledger_entries (transfer_id, account_id, amount)
    SELECT x.id, side.account, side.amount
      FROM unnest(p_ids, p_debit, p_credit, p_amount) AS x(id, debit, credit, amount)
           CROSS JOIN LATERAL (VALUES (x.debit, x.amount), (x.credit, -x.amount)) AS side(account, amount);
    SELECT l.seq, l.hash INTO head FROM ledger_chain l WHERE l.id = 1 FOR UPDATE;
    prevs := array_fill(NULL::text, ARRAY[n]);
    hashes := array_fill(NULL::text, ARRAY[n]);
    h := head.hash;
    FOR k IN 1 .. n LOOP
        prevs[k] := h;
        h := feegate_transfer_hash(h, p_ids[k], head.seq + k, p_debit[k], p_credit[k], p_amount[k], p_code[k],
                                   p_order[k], p_attempt[k], p_refund[k]);
        hashes[k] := h;
    END LOOP;
    WITH t AS (
        INSERT INTO ledger_transfers (id, seq, debit_account, credit_account, amount, code, order_id, attempt_id,
                                      refund_id, prev_hash, hash)
        SELECT x.id, head.seq + x.k, x.debit, x.credit, x.amount, x.code, x.ord, x.att, x.ref, x.prev, x.hash
          FROM unnest(p_ids, p_debit, p_credit, p_amount, p_code, p_order, p_attempt, p_refund, prevs, hashes)
               WITH ORDINALITY AS x(id, debit, credit, amount, code, ord, att, ref, prev, hash, k))
    UPDATE ledger_chain SET seq = head.seq + n, hash = h WHERE id = 1;
    RETURN n;
END
$$;

-- Writes the given transfers, then what this transaction staged (feegate_post), to the ledger.
CREATE OR REPLACE FUNCTION feegate_ledger_flush_with(p_ids text[], p_debit bigint[], p_credit bigint[],
                                                     p_amount bigint[], p_code text[], p_order uuid[],
                                                     p_attempt uuid[], p_refund uuid[])
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    st record;
    n int := coalesce(cardinality(p_ids), 0);
BEGIN
    FOR st IN SELECT * FROM ledger_staging WHERE txid = txid_current() ORDER BY ord LOOP
        n := n + 1;
        p_ids[n] := st.id;
        p_debit[n] := st.debit;
        p_credit[n] := st.credit;
        p_amount[n] := st.amount;
        p_code[n] := st.code;
        p_order[n] := st.order_id;
        p_attempt[n] := st.attempt_id;
        p_refund[n] := st.refund_id;
    END LOOP;
    DELETE FROM ledger_staging WHERE txid = txid_current();
    RETURN feegate_ledger_write(p_ids, p_debit, p_credit, p_amount, p_code, p_order, p_attempt, p_refund);
END
$$;

CREATE OR REPLACE FUNCTION feegate_ledger_flush() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    RETURN feegate_ledger_flush_with('{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}');
END
$$;
