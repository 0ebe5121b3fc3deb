"""The crash matrix (issue 15): under mixed load, `kill -9` a random worker, and sometimes the
master, at random moments; restart; go on. After every cycle: `feegate ledger check`, and
banksim's own record of what it paid against feegate's attempts, orders and ledger — zero
differences, zero double postings, zero lost acknowledged orders or notifications.

Seeded and replayable: CHAOS_SEED (printed at the start, and in every failure) decides every
choice of the run — kill moments and targets, banks, amounts, banksim's knobs per payment
(duplicates, reordering, drops, delays, declines). CHAOS_CYCLES sets the length: the default
short form runs inside `make test`; `make chaos CYCLES=500 [SEED=S]` is the long form.
"""
import ctypes
import os
import random
import signal
import threading
import time
import uuid

import requests

from bankflow import *

CYCLES = int(os.environ.get("CHAOS_CYCLES", "4"))
SEED = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1, 2**31))
LOAD_THREADS = 3
SETTLE_S = 40  # longest wait for banksim's retries and the sweeper's status queries per cycle
GATEWAY_ENV = dict(FEEGATE_QUERY_AFTER_S=1, FEEGATE_SWEEP_INTERVAL_MS=200, FEEGATE_BANK_TIMEOUT_MS=2000,
                   FEEGATE_SHUTDOWN_TIMEOUT_MS=3000, FEEGATE_DB_TIMEOUT_MS=3000)


def children_of(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return out


def subreaper(on):
    """While on, orphaned workers of a killed master are re-parented to this process, so they can
    be found and reaped here. Only for this test: a daemon started meanwhile (Redis, PostgreSQL
    by other tests) would otherwise stay this process's zombie once killed."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0)


def reap(pid, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.02)


class Ledger:
    """What the load saw acknowledged, to be found again after every cycle."""

    def __init__(self):
        self.lock = threading.Lock()
        self.orders = {}        # order id -> (reference, amount) answered 201
        self.unanswered = []    # references whose create never got an answer
        self.payments = []      # dict(bank, ref, order_id, amount, action, txn, knobs)
        self.counts = {"orders": 0, "order_retries": 0, "checkouts": 0, "checkout_failed": 0,
                       "approved": 0, "declined": 0}

    def count(self, key, n=1):
        with self.lock:
            self.counts[key] += n


class Load:
    """LOAD_THREADS portals-and-citizens: each flow is an order (with an Idempotency-Key, retried
    with the same key and body while the gateway is down), then mostly a checkout at a random
    bank and the citizen's approval or decline at banksim with random notification faults."""

    def __init__(self, gw_url, sim, key, agencies, seed, book):
        self.url, self.sim, self.key, self.agencies = gw_url, sim, key, agencies
        self.seed, self.book = seed, book
        self.stop = threading.Event()
        self.threads = []

    def start(self, cycle):
        self.stop.clear()
        self.threads = [threading.Thread(target=self.run, args=(random.Random(f"{self.seed}/{cycle}/{i}"),),
                                         daemon=True) for i in range(LOAD_THREADS)]
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)
            assert not t.is_alive(), "a load thread did not finish"

    def create(self, rng):
        body = order_body(reference=f"CH-{rng.getrandbits(64):016x}", agency=rng.choice(self.agencies),
                          amount=rng.randrange(10, 5000) * 1000)
        data = to_json_bytes(body)
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json",
                   "Idempotency-Key": f"chaos-{body['reference']}"}
        for attempt in range(60):
            if attempt:
                self.book.count("order_retries")
                time.sleep(0.1)
            try:
                r = requests.post(self.url + "/v1/orders", data=data, headers=headers, timeout=10)
            except requests.RequestException:
                continue
            if r.status_code == 201:
                o = r.json()
                with self.book.lock:
                    self.book.orders[o["id"]] = (body["reference"], body["amount"])
                self.book.count("orders")
                return o
            if r.status_code in (503, 409):  # unavailable, or the key still in flight
                continue
            raise AssertionError(f"seed {self.seed}: order answered {r.status_code}: {r.text[:300]}")
        with self.book.lock:
            self.book.unanswered.append(body["reference"])
        return None

    def run(self, rng):
        while not self.stop.is_set():
            order = self.create(rng)
            if order is None or rng.random() < 0.15:
                continue
            bank = rng.choice(("vnpay", "momo", "vietqr"))
            knob = rng.choice(("none", "none", "duplicate", "reorder", "drop", "delay"))
            if bank == "vietqr" and knob == "drop":
                knob = "duplicate"  # VietQR has no status query: a dropped credit is found by reconciliation
            action = "decline" if bank != "vietqr" and rng.random() < 0.1 else "approve"
            knobs = {"duplicate": {"duplicate": True}, "reorder": {"reorder": True, "reorder_hold_ms": 400},
                     "drop": {"drop": True}, "delay": {"delay_ms": rng.randrange(50, 600)}}.get(knob, {})
            self.book.count("checkouts")
            try:
                started = start_payment(self.sim, order, bank)
            except (AssertionError, requests.RequestException, AttributeError):
                self.book.count("checkout_failed")  # the worker died under the citizen: they try later
                continue
            answer = approve(self.sim, started, order, action, **knobs)
            txn = answer["transaction_id"] if bank == "vietqr" else None
            with self.book.lock:
                self.book.payments.append({"bank": bank, "ref": started["ref"], "order_id": order["id"],
                                           "amount": order["amount"], "action": action, "txn": txn,
                                           "knob": knob})
            self.book.count("approved" if action == "approve" else "declined")
            time.sleep(rng.uniform(0, 0.05))


def problems(stack, sim, book, client_id, t_start):
    """Every difference between what was acknowledged, what banksim paid and what feegate holds."""
    out = []
    with book.lock:
        orders = dict(book.orders)
        unanswered = list(book.unanswered)
        payments = list(book.payments)
    rows = stack.query("SELECT id::text, reference, amount FROM orders WHERE client_id = %s", (client_id,))
    held = {r[0]: (r[1], r[2]) for r in rows}
    lost = [oid for oid, v in orders.items() if held.get(oid) != v]
    if lost:
        out.append(f"{len(lost)} acknowledged orders missing or changed: {lost[:5]}")
    by_ref = {}
    for _, (ref, _) in held.items():
        by_ref[ref] = by_ref.get(ref, 0) + 1
    twice = [r for r, n in by_ref.items() if n > 1]
    if twice:
        out.append(f"orders created twice: {twice[:5]}")
    atts = stack.query(
        "SELECT a.bank, a.bank_order_ref, a.status, a.bank_txn_id, o.amount, o.id::text, a.id::text "
        "FROM attempts a JOIN orders o ON o.id = a.order_id WHERE o.client_id = %s", (client_id,))
    # banksim's record of what it paid for this run's citizens: the payments they approved at
    # its pages (whatever feegate knows of them) and any other of this client's attempts
    # (payments of earlier tests, which the shared gateway may still be settling, are not ours)
    mine = {(p["bank"], p["txn"] if p["bank"] == "vietqr" else p["ref"]) for p in payments}
    mine |= {(r[0], r[1]) for r in atts if r[0] != "vietqr"}
    paid = {}
    for p in sim.payments(status="succeeded"):
        if (p["bank"], p["ref"]) in mine:
            paid[(p["bank"], p["txn_id"])] = p
    by_att_ref = {r[1]: r for r in atts}
    ours = {(r[0], r[3]): r for r in atts if r[2] == "succeeded"}
    for key, p in paid.items():
        if key not in ours:
            out.append(f"banksim paid {key} ({p['amount']} VND, ref {p['ref']}) but feegate has no succeeded attempt")
        elif ours[key][4] != p["amount"]:
            out.append(f"{key}: banksim paid {p['amount']}, feegate's order is {ours[key][4]}")
    for key, r in ours.items():
        if key not in paid:
            out.append(f"feegate has attempt {r[1]} succeeded as {key}, which banksim never paid")
    for p in payments:
        r = by_att_ref.get(p["ref"])
        if r is None:
            out.append(f"attempt {p['ref']} the citizen paid at {p['bank']} is not in feegate")
        elif p["action"] == "decline" and r[2] not in ("failed", "expired"):
            out.append(f"declined attempt {p['ref']} is {r[2]}")
    # the ledger: one payment transfer per succeeded attempt, of its amount, none for others
    pay = stack.query(
        "SELECT t.attempt_id::text, count(*), sum(t.amount) FROM ledger_transfers t JOIN orders o ON o.id = t.order_id "
        "WHERE o.client_id = %s AND t.code = 'payment' GROUP BY 1", (client_id,))
    posted = {r[0]: (r[1], r[2]) for r in pay}
    for r in atts:
        want = (1, r[4]) if r[2] == "succeeded" else None
        if posted.get(r[6]) != want:
            out.append(f"attempt {r[1]} ({r[2]}): payment transfers {posted.get(r[6])}, want {want}")
    doubled = stack.query("SELECT attempt_id::text FROM ledger_transfers WHERE code = 'payment' "
                          "GROUP BY attempt_id HAVING count(*) > 1")
    if doubled:
        out.append(f"double postings: {doubled[:5]}")
    for bank in ("vnpay", "momo", "vietqr"):
        bank_sum = sum(p["amount"] for (b, _), p in paid.items() if b == bank)
        ledger_sum = sum(r[4] for (b, _), r in ours.items() if b == bank)
        if bank_sum != ledger_sum:
            out.append(f"{bank}: banksim paid {bank_sum} VND, feegate posted {ledger_sum}")
    # acknowledged bank notifications: each one's effect is in feegate
    acked = 0
    for n in sim.notifications():
        if n.get("at", 0) < t_start - 1 or "status" not in n:
            continue
        ok = n["status"] in (200, 204) and ('"RspCode":"00"' in n.get("answer", "") or
                                            '"RspCode":"02"' in n.get("answer", "") or n["bank"] != "vnpay")
        ref = n.get("ref")
        if not ok or (n["bank"], ref) not in mine:
            continue
        acked += 1
        if n["bank"] == "vietqr":
            if ("vietqr", ref) not in ours:
                out.append(f"VietQR credit {ref} acknowledged but not applied")
        elif ref in by_att_ref and by_att_ref[ref][2] == "pending":
            out.append(f"{n['bank']} notification for {ref} acknowledged but the attempt is still pending")
    book.acked_notifications = acked
    for ref in unanswered:
        if by_ref.get(ref, 0) > 1:
            out.append(f"unanswered order {ref} exists {by_ref[ref]} times")
    r = ledger_check(stack)
    if r.returncode != 0:
        out.append(f"feegate ledger check failed: {r.stdout[-800:]} {r.stderr[-400:]}")
    return out, len(paid)


class ChaosGateway:
    """The gateway under test, restarted in place (same port) when its master is killed."""

    def __init__(self, stack):
        self.stack = stack
        self.port = free_port()
        self.log_path = stack.dir / f"gateway-chaos-{self.port}.log"
        self.gw = None
        self.groups = set()  # process groups of every master started, each ended at the end

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        env = dict(GATEWAY_ENV)
        self.gw = Gateway(self.stack, self.port, env, self.log_path)
        self.gw.start()
        return self

    def workers(self):
        return children_of(self.gw.pid)

    def kill_worker(self, rng):
        pids = self.workers()
        assert pids, "the gateway has no workers"
        os.kill(rng.choice(pids), signal.SIGKILL)

    def kill_master(self, rng):
        """kill -9 of the master alone: its workers go on serving as orphans while a new master
        starts on the same port (SO_REUSEPORT), then they die too, as a service manager would
        end them (the whole process group of the old master)."""
        old = self.gw.pid
        self.groups.add(old)
        os.kill(old, signal.SIGKILL)
        self.gw.proc.wait(10)
        self.gw.log.close()
        time.sleep(rng.uniform(0, 0.5))
        self.start()
        time.sleep(rng.uniform(0, 0.5))
        kill_group(old)

    def stop(self):
        if self.gw:
            self.groups.add(self.gw.pid)
            if self.gw.stop() is None:
                self.gw.kill()
        for pgid in self.groups:
            kill_group(pgid)


def kill_group(pgid):
    """SIGKILL to a gateway's process group (its master was started as a session leader), and
    the orphans of it that were re-parented to this process reaped."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for pid in children_of(os.getpid()):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[2]) == pgid:
            reap(pid)


def test_crash_matrix(stack, sim):
    print(f"\nchaos: seed {SEED}, {CYCLES} cycles (replay: make chaos SEED={SEED} CYCLES={CYCLES})")
    rng = random.Random(SEED)
    subreaper(True)
    client = stack.create_client(agencies=(stack.env["FEEGATE_AGENCY"], stack.env["FEEGATE_AGENCY_2"]),
                                 name=f"Chaos portal {uuid.uuid4().hex[:6]}")
    book = Ledger()
    cg = ChaosGateway(stack).start()
    kills = {"worker": 0, "master": 0}
    t_run = time.monotonic()
    t_start = time.time()
    settle_max = 0.0
    try:
        for bank in ("vnpay", "momo", "vietqr"):
            # a bank retries a notification that got no answer while the gateway restarts
            sim.faults(bank=bank, retries=8, retry_delay_ms=500, timeout_ms=3000)
        with sim.notifying(cg.url):
            load = Load(cg.url, sim, client.key, (stack.env["FEEGATE_AGENCY"], stack.env["FEEGATE_AGENCY_2"]),
                        SEED, book)
            for cycle in range(CYCLES):
                load.start(cycle)
                time.sleep(rng.uniform(0.3, 2.0))
                if rng.random() < 0.2:
                    cg.kill_master(rng)
                    kills["master"] += 1
                else:
                    cg.kill_worker(rng)
                    kills["worker"] += 1
                time.sleep(rng.uniform(0.5, 2.0))
                load.join()
                t0 = time.monotonic()
                deadline = t0 + SETTLE_S
                while True:
                    found, n_paid = problems(stack, sim, book, client.id, t_start)
                    if not found or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                settle_max = max(settle_max, time.monotonic() - t0)
                assert not found, (f"seed {SEED}, cycle {cycle + 1}/{CYCLES}, kills {kills}: "
                                   + "; ".join(found[:20]))
                if CYCLES > 20 and (cycle + 1) % 10 == 0:
                    print(f"chaos: cycle {cycle + 1}/{CYCLES}: {book.counts}, paid {n_paid}, kills {kills}",
                          flush=True)
    finally:
        cg.stop()
        subreaper(False)
    elapsed = time.monotonic() - t_run
    knobs = {}
    for p in book.payments:
        knobs[p["knob"]] = knobs.get(p["knob"], 0) + 1
    print(f"chaos: seed {SEED}: {CYCLES} cycles in {elapsed:.0f} s, kills {kills}; {book.counts}; "
          f"knobs {knobs}; banksim paid {n_paid}; acknowledged notifications {book.acked_notifications}; "
          f"longest settle {settle_max:.1f} s; all held")
    assert book.counts["orders"] > CYCLES and book.counts["approved"] > 0, book.counts
