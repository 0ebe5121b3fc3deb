"""The double-entry ledger (issue 4): idempotent posting (through the gateway and in SQL),
concurrent notifications for one agency, a batch in which one item fails, append-only rows, and
`feegate ledger check` catching corrupted rows in a scratch database."""
import datetime
import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests

from bankflow import *


def vnpay_attempt(order, base=None):
    """Opens a VNPAY attempt at checkout (no bank call needed) and returns its vnp_TxnRef."""
    r = choose_bank(order, "vnpay", base)
    assert r.status_code == 303, r.text[:300]
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.headers["Location"]).query))["vnp_TxnRef"]


def new_txn():
    return str(uuid.uuid4().int % 10 ** 14)


# ------------------------------------------------------------------ idempotent posting

def test_the_same_notification_twice_posts_once(api, sim, stack, gateway):
    env = stack.env
    order = new_order(api, amount=410000)
    ref = vnpay_attempt(order)
    q = vnpay_ipn_query(env, ref, 410000, new_txn())
    assert vnpay_send_ipn(gateway.url, q)[0] == "00"
    assert vnpay_send_ipn(gateway.url, q)[0] == "02"
    o = get_order(api, order["id"])
    assert o["status"] == "succeeded"
    vnp_att = assert_single_payment(stack, o, ref, "vnpay")
    assert len(notification_rows(stack, "vnpay", attempt_id=vnp_att["id"])) == 1

    # MoMo: the same IPN twice, 204 both times, applied once
    order2 = new_order(api, amount=420000)
    started = start_payment(sim, order2, "momo")
    body = momo_ipn_body(env, started["ref"], 420000, int(new_txn()))
    for _ in range(2):
        r = requests.post(gateway.url + "/ipn/momo", data=body, timeout=10,
                          headers={"Content-Type": "application/json"})
        assert r.status_code == 204, r.text
    o2 = get_order(api, order2["id"])
    att = assert_single_payment(stack, o2, started["ref"], "momo")
    assert len(notification_rows(stack, "momo", attempt_id=att["id"])) == 1

    # another bank transaction for the attempt already paid: suspense, never a second payment
    txn2 = new_txn()
    assert vnpay_send_ipn(gateway.url, vnpay_ipn_query(env, ref, 410000, txn2))[0] == "00"
    assert get_order(api, order["id"]) == o
    assert_single_payment(stack, o, ref, "vnpay")
    t = transfers(stack, order_id=order["id"])
    assert [(x["code"], x["debit"], x["credit"]) for x in t] == [
        ("payment", "bank:vnpay:clearing", "agency:XNC:payable"), ("suspense", "bank:vnpay:clearing", "suspense")], t
    assert [e["kind"] for e in exception_rows(stack, order_id=order["id"])] == ["double_payment"]
    assert_ledger_ok(stack)


def test_feegate_post_same_id_twice_and_same_id_other_amount(stack):
    tid = f"test:post:{uuid.uuid4().hex}"
    fees, suspense = account_id(stack, "fees"), account_id(stack, "suspense")
    post = "SELECT feegate_post(%s, %s, %s, %s, 'correction', NULL, NULL, NULL)"
    with psycopg.connect(stack.database_url) as conn:  # one transaction, committed at the end
        assert conn.execute(post, (tid, fees, suspense, 1500)).fetchone()[0] == "posted"
        assert conn.execute(post, (tid, fees, suspense, 1500)).fetchone()[0] == "exists"  # staged
        assert conn.execute(post, (tid, fees, suspense, 1600)).fetchone()[0] == "conflict"
        assert conn.execute("SELECT feegate_ledger_flush()").fetchone()[0] == 1
    row = stack.query("SELECT amount, hash, seq FROM ledger_transfers WHERE id = %s", (tid,))
    assert len(row) == 1 and row[0][0] == 1500, row
    chain = stack.scalar("SELECT seq FROM ledger_chain")

    with psycopg.connect(stack.database_url) as conn:
        assert conn.execute(post, (tid, fees, suspense, 1500)).fetchone()[0] == "exists"
        assert conn.execute("SELECT feegate_ledger_flush()").fetchone()[0] == 0
    with psycopg.connect(stack.database_url) as conn:
        assert conn.execute(post, (tid, fees, suspense, 2000)).fetchone()[0] == "conflict"
        assert conn.execute(post, (tid, suspense, fees, 1500)).fetchone()[0] == "conflict"
        assert conn.execute("SELECT feegate_ledger_flush()").fetchone()[0] == 0
    assert stack.query("SELECT amount, hash, seq FROM ledger_transfers WHERE id = %s", (tid,)) == row
    assert stack.scalar("SELECT count(*) FROM ledger_entries WHERE transfer_id = %s", (tid,)) == 2
    assert stack.scalar("SELECT seq FROM ledger_chain") >= chain

    # corrections are new transfers: reverse the test posting
    with psycopg.connect(stack.database_url) as conn:
        assert conn.execute(post, (tid + ":rev", suspense, fees, 1500)).fetchone()[0] == "posted"
        assert conn.execute("SELECT feegate_ledger_flush()").fetchone()[0] == 1
    assert_ledger_ok(stack)


# ------------------------------------------------------------------ concurrency

N_ORDERS = 200
N_THREADS = 32


@pytest.fixture(scope="module")
def hot_agency(stack):
    """A fresh agency (so its payable balance is ours alone) and a client that may bill it."""
    code = "HOT" + uuid.uuid4().hex[:8].upper()
    stack.cli("agency", "create", "--code", code, "--name", f"Hot agency {code}",
              "--account", f"970436:{uuid.uuid4().int % 10 ** 12:012d}:HOT AGENCY", "--banks", "vnpay,momo,vietqr")
    client = stack.create_client(agencies=(code,))
    return code, client


def test_concurrent_notifications_for_one_agency(gateway, stack, hot_agency, finance, sim):
    code, client = hot_agency
    env = stack.env
    local = threading.local()

    def session():
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return local.s

    def make(i):
        amount = 10000 + 7 * i
        r = session().post(gateway.url + "/v1/orders", timeout=30,
                           headers={"Authorization": f"Bearer {client.key}", "Content-Type": "application/json"},
                           data=to_json_bytes(order_body(agency=code, amount=amount)))
        assert r.status_code == 201, r.text
        o = r.json()
        r = session().post(o["checkout_url"], data={"bank": "vnpay"}, allow_redirects=False, timeout=30)
        assert r.status_code == 303, r.text[:300]
        ref = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.headers["Location"]).query))["vnp_TxnRef"]
        return o["id"], ref, amount, vnpay_ipn_query(env, ref, amount, new_txn())

    with ThreadPoolExecutor(16) as ex:
        made = list(ex.map(make, range(N_ORDERS)))
    total = sum(m[2] for m in made)

    def notify(m):
        return vnpay_send_ipn(gateway.url, m[3], session())[0]

    t0 = time.monotonic()
    with ThreadPoolExecutor(N_THREADS) as ex:
        codes = list(ex.map(notify, made))
    elapsed = time.monotonic() - t0
    assert codes == ["00"] * N_ORDERS, sorted(set(codes))

    ids = [m[0] for m in made]
    rows = stack.query(
        "SELECT o.status, count(l.id) FILTER (WHERE l.code = 'payment'), coalesce(sum(l.amount), 0), o.amount "
        "FROM orders o LEFT JOIN ledger_transfers l ON l.order_id = o.id WHERE o.id = ANY(%s::uuid[]) "
        "GROUP BY o.id", (ids,))
    assert len(rows) == N_ORDERS
    bad = [r for r in rows if r[0] != "succeeded" or r[1] != 1 or r[2] != r[3]]
    assert not bad, bad[:5]
    assert account_balance(stack, f"agency:{code}:payable") == -total
    accounts = json_body(finance.get("/v1/ledger/accounts"))["data"]
    mine = [a for a in accounts if a["agency"] == code]
    assert sorted((a["name"], a["balance"]) for a in mine) == [(f"agency:{code}:payable", total),
                                                               (f"agency:{code}:receivable", 0)], mine

    # the same notifications again, concurrently: all replays, nothing posted twice
    with ThreadPoolExecutor(N_THREADS) as ex:
        codes = list(ex.map(notify, made))
    assert codes == ["02"] * N_ORDERS, sorted(set(codes))
    assert account_balance(stack, f"agency:{code}:payable") == -total
    assert stack.scalar("SELECT count(*) FROM ledger_transfers WHERE order_id = ANY(%s::uuid[])", (ids,)) == N_ORDERS
    assert_ledger_ok(stack)
    print(f"{N_ORDERS} concurrent IPNs applied in {elapsed:.2f} s")


def test_concurrent_successes_for_two_attempts_of_one_order_do_not_deadlock(api, stack, gateway, sim):
    """Each order has two VNPAY attempts and the bank confirms both at once (the citizen paid
    twice). Exactly one payment per order, the other success to suspense, every IPN answered
    00, and the database never has to break a deadlock: the issue asks for locks taken in a
    fixed order. (The attempt row is locked before its order, while the success path locks the
    order and then the order's other pending attempts.)"""
    env = stack.env
    log_offset = gateway.log_path.stat().st_size
    pg_log = Path(stack.facts["PG_LOG"])
    pg_offset = pg_log.stat().st_size if pg_log.exists() else 0
    def make(i):
        o = new_order(api, amount=450000 + i)
        refs = (vnpay_attempt(o), vnpay_attempt(o))
        return o, refs, [vnpay_ipn_query(env, r, o["amount"], new_txn()) for r in refs]

    with ThreadPoolExecutor(8) as ex:
        pairs = list(ex.map(make, range(150)))
    local = threading.local()

    def send(q):
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return vnpay_send_ipn(gateway.url, q, local.s)[0]

    with ThreadPoolExecutor(N_THREADS) as ex:
        codes = list(ex.map(send, [q for p in pairs for q in p[2]]))
    assert codes == ["00"] * len(codes), sorted(set(codes))
    for o, refs, _ in pairs:
        got = get_order(api, o["id"])
        assert got["status"] == "succeeded"
        assert [a["status"] for a in got["attempts"]] == ["succeeded", "succeeded"], got["attempts"]
        t = transfers(stack, order_id=o["id"])
        assert sorted(x["code"] for x in t) == ["payment", "suspense"], t
    assert_ledger_ok(stack)
    log = gateway_log_text(gateway.log_path, log_offset)
    deadlocks = [l for l in log.splitlines() if "40P01" in l]
    pg_text = gateway_log_text(pg_log, pg_offset) if pg_log.exists() else ""
    pg_deadlocks = [l for l in pg_text.splitlines() if "deadlock detected" in l or "CONTEXT" in l]
    assert not deadlocks, "deadlocks between notification batches:\n" + "\n".join(deadlocks[:5] + pg_deadlocks[:6])


def test_cancel_racing_a_success_notification(api, stack, gateway, sim):
    """The portal cancels while the bank's success arrives, for 120 orders at once: each order ends
    either succeeded (the cancel got 409) or cancelled with the money in suspense, never both,
    never lost, and no request fails."""
    env = stack.env
    log_offset = gateway.log_path.stat().st_size
    def make(i):
        o = new_order(api, amount=460000 + i)
        ref = vnpay_attempt(o)
        return [("ipn", o, vnpay_ipn_query(env, ref, o["amount"], new_txn())), ("cancel", o, None)]

    with ThreadPoolExecutor(8) as ex:
        jobs = [j for pair in ex.map(make, range(120)) for j in pair]
    local = threading.local()

    def go(job):
        if not hasattr(local, "s"):
            local.s = requests.Session()
        kind, o, q = job
        if kind == "ipn":
            return vnpay_send_ipn(gateway.url, q, local.s)[0]
        r = local.s.post(f"{gateway.url}/v1/orders/{o['id']}/cancel", timeout=30,
                         headers={"Authorization": f"Bearer {api.key}"})
        return r.status_code, r.text

    with ThreadPoolExecutor(N_THREADS) as ex:
        results = list(ex.map(go, jobs))
    for i in range(0, len(jobs), 2):
        o, ipn, (cancel, text) = jobs[i][1], results[i], results[i + 1]
        assert ipn == "00" and cancel in (200, 409), (f"POST /v1/orders/{o['id']}/cancel racing its success IPN: "
                                                      f"IPN {ipn}, cancel {cancel} {text}")
        got = get_order(api, o["id"])
        t = sorted(x["code"] for x in transfers(stack, order_id=o["id"]))
        if cancel == 200:
            assert got["status"] == "cancelled" and t == ["suspense"], (got, t)
            assert [e["kind"] for e in exception_rows(stack, order_id=o["id"])] == ["late_success"]
        else:
            assert got["status"] == "succeeded" and t == ["payment"], (got, t)
    assert_ledger_ok(stack)
    log = gateway_log_text(gateway.log_path, log_offset)
    assert "40P01" not in log, [l for l in log.splitlines() if "40P01" in l][:3]


def gateway_log_text(path, offset):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


# ------------------------------------------------------------------ one failing item

def test_a_batch_in_which_one_item_fails(api, stack, sim):
    """Through a gateway with one worker and a 100 ms group-commit window, ten concurrent IPNs
    share a batch; one of them makes the database raise (a trigger installed for this test). The
    batch is retried item by item: the nine others are applied, the bad one gets 99 and nothing
    of it is kept; once the database accepts it, a retry by the bank applies it."""
    env = stack.env
    tag = uuid.uuid4().hex[:10]
    poison_txn = "66" + str(uuid.uuid4().int % 10 ** 12)
    orders = [new_order(api, amount=430000 + i) for i in range(10)]
    refs = [vnpay_attempt(o) for o in orders]
    queries = [vnpay_ipn_query(env, ref, o["amount"], poison_txn if i == 3 else new_txn())
               for i, (o, ref) in enumerate(zip(orders, refs))]
    fn, trg = f"test_poison_{tag}", f"test_poison_{tag}"
    stack.query(f"""CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.dedupe_key = '{poison_txn}' THEN RAISE EXCEPTION 'poisoned notification for the test'; END IF;
        RETURN NEW; END $$""")
    try:
        stack.query(f"CREATE TRIGGER {trg} BEFORE INSERT ON bank_notifications FOR EACH ROW EXECUTE FUNCTION {fn}()")
        with dedicated_gateway(stack, FEEGATE_WORKERS=1, FEEGATE_BATCH_WINDOW_US=100000,
                               FEEGATE_BATCH_INFLIGHT=1) as gw:
            barrier = threading.Barrier(len(queries))

            def send(q):
                s = requests.Session()
                s.get(gw.url + "/healthz", timeout=5)  # connection open before the barrier
                barrier.wait()
                return vnpay_send_ipn(gw.url, q, s)[0]

            with ThreadPoolExecutor(len(queries)) as ex:
                codes = list(ex.map(send, queries))
            log = tail(gw.log_path, 400)
        assert codes == ["00"] * 3 + ["99"] + ["00"] * 6, codes
        assert "retrying its items one by one" in log, log[-3000:]
        for i, (o, ref) in enumerate(zip(orders, refs)):
            got = get_order(api, o["id"])
            if i == 3:
                assert got["status"] == "pending" and transfers(stack, order_id=o["id"]) == [], got
                assert notification_rows(stack, "vnpay", ref=ref) == []
            else:
                assert_single_payment(stack, got, ref, "vnpay")
    finally:
        stack.query(f"DROP TRIGGER IF EXISTS {trg} ON bank_notifications")
        stack.query(f"DROP FUNCTION IF EXISTS {fn}()")
    # the bank tries again later
    assert vnpay_send_ipn(stack.env["FEEGATE_URL"], queries[3])[0] == "00"
    assert_single_payment(stack, get_order(api, orders[3]["id"]), refs[3], "vnpay")
    assert_ledger_ok(stack)


def test_apply_notifications_is_all_or_nothing_per_call(api, stack, sim):
    """In SQL: a batch holding a malformed item raises and applies none of its items (which is
    why the gateway retries a failed batch item by item); the good items alone apply."""
    orders = [new_order(api, amount=440000 + i) for i in range(2)]
    refs = [vnpay_attempt(o) for o in orders]
    good = [{"i": i, "bank": "vnpay", "kind": "payment", "ref": ref, "amount": o["amount"], "success": True,
             "txn_id": new_txn(), "failure_code": "", "source": "notification"}
            for i, (o, ref) in enumerate(zip(orders, refs))]
    bad = dict(good[0], i=2, ref="FGNOSUCHREF01", amount="not a number")
    with pytest.raises(psycopg.Error):
        stack.query("SELECT * FROM feegate_apply_notifications(%s::json)", (json.dumps([good[0], bad, good[1]]),))
    for o in orders:
        assert get_order(api, o["id"])["status"] == "pending"
        assert transfers(stack, order_id=o["id"]) == []
    rows = stack.query("SELECT r_idx, r_outcome, r_status FROM feegate_apply_notifications(%s::json)",
                       (json.dumps(good),))
    assert sorted(rows) == [(0, "applied", "succeeded"), (1, "applied", "succeeded")], rows
    for o, ref in zip(orders, refs):
        assert_single_payment(stack, get_order(api, o["id"]), ref, "vnpay")
    # and once more: replays
    rows = stack.query("SELECT r_idx, r_outcome FROM feegate_apply_notifications(%s::json)", (json.dumps(good),))
    assert sorted(rows) == [(0, "replayed"), (1, "replayed")], rows
    assert_ledger_ok(stack)


# ------------------------------------------------------------------ append-only

@pytest.mark.parametrize("sql", [
    "UPDATE ledger_entries SET amount = amount WHERE id = (SELECT max(id) FROM ledger_entries)",
    "DELETE FROM ledger_entries WHERE id = (SELECT max(id) FROM ledger_entries)",
    "TRUNCATE ledger_entries CASCADE",
    "UPDATE ledger_transfers SET amount = amount WHERE seq = (SELECT max(seq) FROM ledger_transfers)",
    "DELETE FROM ledger_transfers WHERE seq = (SELECT max(seq) FROM ledger_transfers)",
    "TRUNCATE ledger_transfers CASCADE",
])
def test_ledger_rows_cannot_be_changed(sql, stack):
    if stack.scalar("SELECT count(*) FROM ledger_entries") == 0:
        with psycopg.connect(stack.database_url) as conn:
            conn.execute("SELECT feegate_post(%s, %s, %s, 1, 'correction', NULL, NULL, NULL)",
                         (f"test:seed:{uuid.uuid4().hex}", account_id(stack, "fees"), account_id(stack, "suspense")))
            conn.execute("SELECT feegate_ledger_flush()")
    before = stack.query("SELECT count(*), sum(amount), max(id) FROM ledger_entries")
    chain = stack.query("SELECT seq, hash FROM ledger_chain")
    with pytest.raises(psycopg.Error) as info:
        stack.query(sql)  # as the gateway's role, which owns the tables
    assert "immutable" in str(info.value), info.value
    r = psql_superuser(stack, sql)  # and as the PostgreSQL superuser
    assert r.returncode != 0 and "immutable" in r.stderr, (r.returncode, r.stdout, r.stderr)
    assert stack.query("SELECT count(*), sum(amount), max(id) FROM ledger_entries") == before
    assert stack.query("SELECT seq, hash FROM ledger_chain") == chain


# ------------------------------------------------------------------ ledger check on a scratch database

@pytest.fixture
def scratch_db(stack):
    with scratch_database(stack) as url:
        yield url


def test_ledger_check_catches_corrupted_rows_in_a_scratch_database(stack, scratch_db):
    cli_on(stack, scratch_db, "migrate")
    order_id, attempt_id = scratch_paid_order(stack, scratch_db, "SCR", "FGSCRATCH001", "900001")
    pay = f"pay:{attempt_id}"
    ok = ledger_check(stack, scratch_db)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok, 1 transfers" in ok.stdout, ok.stdout

    def tamper(table, sql):
        with psycopg.connect(scratch_db, autocommit=True) as conn:  # the owner may disable triggers
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            conn.execute(sql, (pay,))
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")

    # 1. one entry's amount changed: the transfer no longer balances
    tamper("ledger_entries", "UPDATE ledger_entries SET amount = amount + 1 WHERE transfer_id = %s AND amount > 0")
    bad = ledger_check(stack, scratch_db)
    assert bad.returncode != 0, bad.stdout
    assert pay in bad.stdout + bad.stderr, bad.stdout + bad.stderr
    assert "FAIL" in bad.stdout
    tamper("ledger_entries", "UPDATE ledger_entries SET amount = amount - 1 WHERE transfer_id = %s AND amount > 0")
    assert ledger_check(stack, scratch_db).returncode == 0

    # 2. the transfer's amount changed along with its entries: balanced, but the hash chain and
    #    the attempt's amount give it away
    tamper("ledger_entries", "UPDATE ledger_entries SET amount = amount * 2 WHERE transfer_id = %s")
    tamper("ledger_transfers", "UPDATE ledger_transfers SET amount = amount * 2 WHERE id = %s")
    bad = ledger_check(stack, scratch_db)
    assert bad.returncode != 0, bad.stdout
    text = bad.stdout + bad.stderr
    assert pay in text and "chain" in text, text
    tamper("ledger_entries", "UPDATE ledger_entries SET amount = amount / 2 WHERE transfer_id = %s")
    tamper("ledger_transfers", "UPDATE ledger_transfers SET amount = amount / 2 WHERE id = %s")
    assert ledger_check(stack, scratch_db).returncode == 0

    # 3. the payment transfer deleted (entries first): a paid order without its money
    tamper("ledger_entries", "DELETE FROM ledger_entries WHERE transfer_id = %s")
    tamper("ledger_transfers", "DELETE FROM ledger_transfers WHERE id = %s")
    bad = ledger_check(stack, scratch_db)
    assert bad.returncode != 0
    text = bad.stdout + bad.stderr
    assert attempt_id in text and order_id in text, text


def test_incremental_check_starts_from_the_last_checkpoint(stack, scratch_db):
    """A passing check records a checkpoint; `--incremental` re-reads only the transfers after it
    and the objects changed since, and still sees a change to what it skips when that change
    touches the checkpoint's transfer or an object updated since."""
    cli_on(stack, scratch_db, "migrate")

    def check(*args):
        return ledger_check(stack, scratch_db, *args)

    first = check("--incremental")  # no checkpoint yet: it says so and checks everything
    assert first.returncode == 0 and "no checkpoint yet" in first.stdout, first.stdout
    _, att1 = scratch_paid_order(stack, scratch_db, "INA", "FGINCR000001", "910001")
    full = check()
    assert full.returncode == 0 and "ok, 1 transfers" in full.stdout, full.stdout
    quiet = check("--incremental")
    assert quiet.returncode == 0 and "ok, 0 transfers since the checkpoint" in quiet.stdout, quiet.stdout
    assert "skip  debits equal credits overall" in quiet.stdout, quiet.stdout

    order2, att2 = scratch_paid_order(stack, scratch_db, "INB", "FGINCR000002", "910002")
    pay2 = f"pay:{att2}"
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        rows = conn.execute("SELECT count(*), max(seq) FROM ledger_checkpoints").fetchone()
    assert rows[0] >= 2 and rows[1] == 1, rows  # the full and the quiet check recorded seq 1

    def tamper(table, sql, arg):
        with psycopg.connect(scratch_db, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            conn.execute(sql, (arg,))
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")

    # a new transfer's entry altered: the incremental check reads it
    tamper("ledger_entries", "UPDATE ledger_entries SET amount = amount + 1 WHERE transfer_id = %s AND amount > 0", pay2)
    bad = check("--incremental")
    assert bad.returncode != 0 and pay2 in bad.stdout, bad.stdout
    tamper("ledger_entries", "UPDATE ledger_entries SET amount = amount - 1 WHERE transfer_id = %s AND amount > 0", pay2)
    good = check("--incremental")
    assert good.returncode == 0 and "ok, 1 transfers since the checkpoint" in good.stdout, good.stdout

    # an attempt verified before the checkpoint, now marked failed (so updated since): re-read
    tamper("attempts", "UPDATE attempts SET status = 'failed', updated_at = now() WHERE id = %s", att1)
    bad = check("--incremental")
    assert bad.returncode != 0 and f"pay:{att1}" in bad.stdout, bad.stdout
    tamper("attempts", "UPDATE attempts SET status = 'succeeded', updated_at = now() WHERE id = %s", att1)

    # the checkpoint's own transfer rewritten: the checkpoint no longer holds
    assert check().returncode == 0  # a checkpoint at seq 2
    tamper("ledger_transfers", "UPDATE ledger_transfers SET hash = repeat('a', 64) WHERE id = %s", pay2)
    bad = check("--incremental")
    assert bad.returncode != 0 and "FAIL  the checkpoint at transfer 2 still holds" in bad.stdout, bad.stdout
    # and a failing check records no checkpoint
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        assert conn.execute("SELECT max(seq) FROM ledger_checkpoints").fetchone()[0] == 2
        assert conn.execute("SELECT value FROM settings WHERE name = 'ledger_check'").fetchone()[0].split()[0] != "0"
    assert check().returncode != 0  # the full check sees it too (the chain)
    assert order2


def test_a_refund_after_its_payout_is_owed_by_the_agency_until_the_next_payout_nets_it(stack, scratch_db):
    """Day 1's payment is paid out; its refund, made after that, is debited to the agency's
    receivable (the agency owes it); day 2's bank file lists the refund, so day 2's payout is
    short by it, and matching that payout nets the receivable against what payable still holds.
    Imports through `feegate statement import`, as finance would."""
    cli_on(stack, scratch_db, "migrate")
    order_a, att_a = scratch_paid_order(stack, scratch_db, "RCV", "FGRCVA000001", "920001", amount=300000)
    d1, d2 = vn_day(-10), vn_day(-9)
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        # day 2's payment, for the same agency (its client), and both payments moved to their days
        client, agency = conn.execute("SELECT client_id, agency_id FROM orders WHERE id = %s", (order_a,)).fetchone()
        order_b, att_b = str(uuid.uuid4()), str(uuid.uuid4())
        conn.execute("INSERT INTO orders (id, client_id, agency_id, reference, description, amount, return_url, "
                     "checkout_token, created_at, updated_at, expires_at) VALUES (%s, %s, %s, 'RCV-2', 'fee', 200000, "
                     "'https://portal.example/r', %s, now(), now(), now() + interval '15 minutes')",
                     (order_b, client, agency, uuid.uuid4().hex * 2))
        conn.execute("INSERT INTO attempts (id, order_id, bank, bank_order_ref, amount) VALUES (%s, %s, 'vnpay', "
                     "'FGRCVB000002', 200000)", (att_b, order_b))
        item = {"i": 0, "bank": "vnpay", "kind": "payment", "ref": "FGRCVB000002", "amount": 200000,
                "success": True, "txn_id": "920002", "failure_code": "", "source": "notification"}
        assert conn.execute("SELECT r_outcome FROM feegate_apply_notifications(%s::json)",
                            (json.dumps([item]),)).fetchall() == [("applied",)]
        for att, day in ((att_a, d1), (att_b, d2)):
            conn.execute("UPDATE attempts SET paid_at = feegate_business_day_start(%s) + interval '12 hours' "
                         "WHERE id = %s", (day, att))
        account = conn.execute("SELECT account_number FROM agencies WHERE code = 'RCV'").fetchone()[0]

    def balance(kind):
        with psycopg.connect(scratch_db, autocommit=True) as conn:
            return conn.execute("SELECT coalesce(sum(e.amount), 0) FROM ledger_entries e JOIN ledger_accounts a "
                                "ON a.id = e.account_id WHERE a.name = %s", (f"agency:RCV:{kind}",)).fetchone()[0]

    def import_file(tmp_name, source, data):
        path = Path(tempfile.gettempdir()) / f"{uuid.uuid4().hex}-{tmp_name}"
        path.write_bytes(data)
        try:
            return cli_on(stack, scratch_db, "statement", "import", "--source", source, str(path))
        finally:
            path.unlink()

    tmn = stack.env.get("FEEGATE_VNPAY_TMN_CODE", "")

    def vnpay_file(day, lines):  # lines: (type, ref, txn, refund_ref, refund_txn, amount, fee)
        rows = ["TmnCode,TransactionType,TxnRef,TransactionNo,RefundRequestId,RefundTransactionNo,Amount,Fee,PayDate"]
        for t, ref, txn, rref, rtxn, amount, fee in lines:
            rows.append(f"{tmn},{t},{ref},{txn},{rref},{rtxn},{amount * 100},{fee * 100},{compact(day)}120000")
        rows.append(f"TOTAL,{compact(day)},{len(lines)},{sum(l[5] for l in lines)}")
        return ("\r\n".join(rows) + "\r\n").encode()

    def payout(day, amount):
        paid_on = day + datetime.timedelta(days=1)
        return camt053(account, paid_on.isoformat(), [(amount, "CRDT", f"P{uuid.uuid4().hex[:10]}",
                                                       f"FGPAYOUT VNPAY {compact(day)} RCV")])

    # day 1: the bank settles A, pays out A less its fee
    import_file("d1.csv", "vnpay", vnpay_file(d1, [("01", "FGRCVA000001", "920001", "", "", 300000, 3300)]))
    import_file("p1.xml", "camt053", payout(d1, 296700))
    # (entries sum debits positive: payable, a credit balance, still holds B's 200,000)
    assert balance("payable") == -200000 and balance("receivable") == 0

    # A is refunded in part after its payout: the agency owes it
    cli_on(stack, scratch_db, "staff", "create", "--name", "Receivable finance", "--role", "finance")
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        staff = conn.execute("SELECT id FROM staff").fetchone()[0]
        rid = str(uuid.uuid4())
        got = conn.execute("SELECT r_outcome FROM feegate_refund_create(%s, NULL, 100000, 'after payout', %s, %s, "
                           "'RCVREF0001', NULL, NULL)", (order_a, staff, rid)).fetchone()
        assert got == ("created",), got
        assert conn.execute("SELECT r_outcome FROM feegate_refund_complete(%s, true, 'RFRCV0001', NULL, %s)",
                            (rid, staff)).fetchone() == ("succeeded",)
        debit = conn.execute("SELECT a.name FROM ledger_transfers t JOIN ledger_accounts a ON a.id = t.debit_account "
                             "WHERE t.id = %s", (f"refund:{rid}",)).fetchone()[0]
    assert debit == "agency:RCV:receivable"
    assert balance("receivable") == 100000 and balance("payable") == -200000
    assert ledger_check(stack, scratch_db).returncode == 0
    # the settlement report shows what the agency owes, on a row of its own, from today on
    assert owed_rows(stack, scratch_db, vn_day(0)) == [{"date": vn_day(0).isoformat(), "agency": "RCV", "bank": None,
                                                        "count": 0, "gross": 0, "refunds": 0, "fees": 0, "net": 0,
                                                        "cases_open": 0, "payout": None, "receivable": 100000}]
    assert owed_rows(stack, scratch_db, d1) == []  # the refund came after day 1 ended
    assert owed_rows(stack, scratch_db, vn_day(0), "--bank", "vnpay") == []  # a bank's report: no agency rows

    # day 2: B settles, and the refund with it, so day 2's payout is short by the refund
    import_file("d2.csv", "vnpay", vnpay_file(d2, [("01", "FGRCVB000002", "920002", "", "", 200000, 2200),
                                                  ("02", "FGRCVA000001", "920001", "RCVREF0001", "RFRCV0001", 100000, 0)]))
    assert balance("payable") == -(200000 - 2200)
    import_file("p2.xml", "camt053", payout(d2, 200000 - 2200 - 100000))
    assert balance("payable") == 0 and balance("receivable") == 0
    assert owed_rows(stack, scratch_db, vn_day(0)) == []  # netted: the agency owes nothing
    net = transfers_on(scratch_db, f"net:RCV:vnpay:{compact(d2)}")
    assert net == [("agency:RCV:payable", "agency:RCV:receivable", 100000, "netting")], net
    ok = ledger_check(stack, scratch_db)
    assert ok.returncode == 0, ok.stdout
    assert "ok    every netting transfer" in ok.stdout


def owed_rows(stack, url, day, *args):
    """The settlement report's rows of what an agency owes (bank null) for one day, from the CLI."""
    out = Path(tempfile.gettempdir()) / f"{uuid.uuid4().hex}-owed.json"
    try:
        cli_on(stack, url, "report", "settlement", "--date", day.isoformat(), *args, "--format", "json",
               "--out", str(out))
        return [t for t in json.loads(out.read_text(encoding="utf-8"))["totals"] if t["bank"] is None]
    finally:
        out.unlink(missing_ok=True)


def transfers_on(url, transfer_id):
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT d.name, c.name, t.amount, t.code FROM ledger_transfers t "
                            "JOIN ledger_accounts d ON d.id = t.debit_account "
                            "JOIN ledger_accounts c ON c.id = t.credit_account WHERE t.id = %s", (transfer_id,)).fetchall()
