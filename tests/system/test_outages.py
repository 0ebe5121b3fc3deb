"""Outages under a steady request rate (issue 15), each printing its measured outage window:
PostgreSQL stopped `-m immediate` and frozen (SIGSTOP); Redis killed, flushed and frozen;
banksim slow, failing and unreachable; and build/faultproxy between the gateway and banksim and
between the gateway and PostgreSQL injecting latency, resets, blackholes and half-open
connections. For each: during it only the success answer or a clear 503 (checkout: the bank's
502/503 page), nothing acknowledged lost, and service back without a restart of any process.

The outage window is the time from the first probe that did not succeed in time (LATE_S) to
the first of the unbroken run of timely successes after it, with probes sent on a fixed schedule (RATE a second, each
probe's time its intended send time, so a stall is not hidden)."""
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from bankflow import *

RATE = 20            # probes a second, spread over PROBE_THREADS schedules
PROBE_THREADS = 4
FAULT_S = 2.0        # how long each fault lasts
RECOVERY_S = 15      # service must be back within this after the fault ends
LATE_S = 1.0         # a success this long after its intended send time counts as outage too
FAULTPROXY_BIN = Path(os.environ.get("FEEGATE_BIN") or REPO / "build" / "feegate").parent / "faultproxy"
WINDOWS = {}         # name -> measured window, printed at the end of each test


# ------------------------------------------------------------------------------ the fault proxy

class FaultProxy:
    """build/faultproxy on a free port in front of target (HOST:PORT)."""

    def __init__(self, target, log_path, sock_dir, port=0):
        self.target, self.log_path = target, log_path
        self.control = str(Path(sock_dir) / f"fp-{uuid.uuid4().hex[:8]}.sock")
        self.port = port
        self.proc = None

    def start(self):
        assert os.access(FAULTPROXY_BIN, os.X_OK), f"{FAULTPROXY_BIN} is not built (run make)"
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(FAULTPROXY_BIN), str(self.port), self.target, self.control],
                                     stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        line = self.proc.stdout.readline().decode()
        assert line.startswith("port "), f"faultproxy did not start: {line!r}"
        self.port = int(line.split()[1])
        return self

    def mode(self, *words):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.control)
            s.sendall((" ".join(str(w) for w in words) + "\n").encode())
            answer = s.makefile().readline()
        assert answer.startswith("ok "), answer
        return answer

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc:
            self.proc.stdout.close()
            self.log.close()


@pytest.fixture
def faultproxy(stack):
    started = []

    def start(target, port=0):
        fp = FaultProxy(target, stack.dir / "faultproxy.log", stack.dir, port).start()
        started.append(fp)
        return fp

    yield start
    for fp in started:
        fp.stop()


def test_faultproxy_modes(faultproxy, banksim):
    """The proxy itself: each mode does what it says, against banksim's /healthz."""
    fp = faultproxy(f"127.0.0.1:{banksim.port}")
    url = f"http://127.0.0.1:{fp.port}/healthz"
    assert requests.get(url, timeout=5).status_code == 200
    fp.mode("latency", 300)
    t0 = time.monotonic()
    assert requests.get(url, timeout=5).status_code == 200
    assert time.monotonic() - t0 >= 0.55  # both directions held back
    fp.mode("reset")
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)
    for mode in ("blackhole", "halfopen"):
        fp.mode(mode)
        with pytest.raises((requests.Timeout, requests.ConnectionError)):
            requests.get(url, timeout=(1, 1))
    assert "mode=halfopen" in fp.mode("status")
    fp.mode("pass")
    assert requests.get(url, timeout=5).status_code == 200


# ------------------------------------------------------------------------------ the steady prober

class Prober:
    """Probes on a fixed schedule: PROBE_THREADS threads, each RATE/PROBE_THREADS a second. A probe
    is fn() -> ("ok", detail) | ("clear", detail) (a clear refusal: 503 unavailable and the like)
    | ("bad", detail)."""

    def __init__(self, fn, rate=RATE):
        self.fn, self.rate = fn, rate
        self.results = []  # (intended time, done time, verdict, detail)
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def run(self, i, t0):
        period = PROBE_THREADS / self.rate
        n = 0
        while not self.stop.is_set():
            due = t0 + (n + i / PROBE_THREADS) * period
            n += 1
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                verdict, detail = self.fn()
            except requests.RequestException as e:
                verdict, detail = "bad", repr(e)[:200]
            if verdict == "ok" and time.monotonic() - due > LATE_S:
                verdict = "late"
            with self.lock:
                self.results.append((due, time.monotonic(), verdict, detail))

    def __enter__(self):
        t0 = time.monotonic()
        self.threads = [threading.Thread(target=self.run, args=(i, t0), daemon=True) for i in range(PROBE_THREADS)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def wait_ok(self, since, n=10, timeout=RECOVERY_S):
        """Waits for n successes in a row among the probes sent after `since`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                after = sorted((r for r in self.results if r[0] >= since), key=lambda r: r[0])
            if len(after) >= n and all(r[2] == "ok" for r in after[-n:]):
                return
            time.sleep(0.1)
        tailv = after[-5:] if after else []
        raise AssertionError(f"service not back {timeout} s after the fault ended: {tailv}")

    def window(self):
        rs = sorted(self.results, key=lambda r: r[0])
        bad = [i for i, r in enumerate(rs) if r[2] != "ok"]
        if not bad:
            return 0.0
        first, last = bad[0], bad[-1]
        end = rs[last + 1][0] if last + 1 < len(rs) else rs[last][1]
        return end - rs[first][0]

    def summary(self):
        out = {}
        for r in self.results:
            key = r[2] if r[2] in ("ok", "late") else f"{r[2]}:{r[3][:40]}"
            out[key] = out.get(key, 0) + 1
        if self.results:
            out["slowest_s"] = round(max(r[1] - r[0] for r in self.results), 2)
        return out


def order_probe(url, key, acked):
    """POST /v1/orders; a 201 is kept in `acked` to be found in the database afterwards."""
    s = requests.Session()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def probe():
        body = order_body()
        r = s.post(url + "/v1/orders", data=to_json_bytes(body), timeout=(3, 10),
                   headers=dict(headers, **{"Idempotency-Key": f"out-{body['reference']}"}))
        if r.status_code == 201:
            acked.append((r.json()["id"], body["reference"]))
            return "ok", "201"
        if r.status_code == 503 and r.headers.get("Retry-After", "").isdigit():
            try:
                if r.json()["error"]["code"] == "unavailable":
                    return "clear", "503 unavailable"
            except (ValueError, KeyError, TypeError):
                pass
        return "bad", f"{r.status_code} {r.text[:120]}"
    return probe


def assert_acked_kept(stack, acked):
    ids = [a[0] for a in acked]
    found = stack.scalar("SELECT count(*) FROM orders WHERE id = ANY(%s::uuid[])", (ids,))
    assert found == len(ids), f"{len(ids) - found} of {len(ids)} orders answered 201 are not in the database"


def worker_pids(gw):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == gw.pid:
                out.append(int(entry))
    return sorted(out)


def run_outage(name, gw, probe, inject, clear, expect_refusals=True, fault_s=FAULT_S):
    """Steady probes; inject(); fault_s; clear(); recovery. Returns the prober."""
    pids = worker_pids(gw)
    assert pids, "no workers"
    with Prober(probe) as p:
        time.sleep(1.0)
        t_inject = time.monotonic()
        inject()
        try:
            time.sleep(fault_s)
        finally:
            clear()
        t_clear = time.monotonic()
        p.wait_ok(t_clear)
        time.sleep(0.5)
    window = p.window()
    WINDOWS[name] = window
    after = sorted((r for r in p.results if r[0] >= t_clear), key=lambda r: r[0])
    back = next((r[0] - t_clear for i, r in enumerate(after) if all(x[2] == "ok" for x in after[i:])), None)
    print(f"\noutage {name}: window {window:.2f} s at {RATE}/s (fault held {t_clear - t_inject:.1f} s, "
          f"back {back if back is None else round(back, 2)} s after it ended); "
          f"{p.summary()}", flush=True)
    bad = [r for r in p.results if r[2] == "bad"]
    assert not bad, f"{name}: answers that were neither success nor a clear refusal: {bad[:8]}"
    if expect_refusals:
        assert any(r[2] == "clear" for r in p.results), f"{name}: the fault was never seen: {p.summary()}"
    else:
        assert window == 0.0, f"{name}: service failed during the fault: {p.summary()}"
    assert gw.proc.poll() is None and worker_pids(gw) == pids, f"{name}: a gateway process restarted"
    return p


# ------------------------------------------------------------------------------ PostgreSQL

def as_pg_user(stack, argv):
    f = stack.facts
    if os.geteuid() == 0 and f.get("PG_USER") and f["PG_USER"] != "root":
        argv = ["runuser", "-u", f["PG_USER"], "--"] + argv
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/")


def pg_stop_immediate(stack):
    r = as_pg_user(stack, [f"{stack.facts['PG_BIN']}/pg_ctl", "-D", str(stack.pgdata), "-m", "immediate",
                           "-w", "-t", "30", "stop"])
    assert r.returncode == 0, r.stdout + r.stderr


def signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


PG_GATEWAY = dict(FEEGATE_DB_TIMEOUT_MS=1000, FEEGATE_IDEMPOTENCY_WAIT_MS=1000, FEEGATE_DB_CONNECT_TIMEOUT_MS=1000)


def test_outage_postgres_stopped_immediate(gateway_factory, stack):
    gw = gateway_factory(**PG_GATEWAY)
    acked = []
    run_outage("postgres stopped -m immediate", gw, order_probe(gw.url, stack.env["FEEGATE_API_KEY"], acked),
               lambda: pg_stop_immediate(stack), stack.pg_start)
    assert_acked_kept(stack, acked)
    assert_ledger_ok(stack)


def test_outage_postgres_frozen(gateway_factory, stack):
    gw = gateway_factory(**PG_GATEWAY)
    acked = []
    frozen = []

    def freeze():
        frozen.extend(stack.postgres_pids())
        signal_all(frozen, signal.SIGSTOP)

    def thaw():
        signal_all(frozen, signal.SIGCONT)
        signal_all(stack.postgres_pids(), signal.SIGCONT)

    # longer than the 1 s query deadline plus the idempotency wait, so answers run out of time
    run_outage("postgres frozen (SIGSTOP)", gw, order_probe(gw.url, stack.env["FEEGATE_API_KEY"], acked),
               freeze, thaw, fault_s=4.0)
    assert_acked_kept(stack, acked)


@pytest.mark.parametrize("mode", ["latency", "reset", "blackhole", "halfopen"])
def test_outage_proxy_to_postgres(mode, gateway_factory, faultproxy, stack):
    pg_port = stack.facts["PG_PORT"]
    fp = faultproxy(f"127.0.0.1:{pg_port}")
    db_url = stack.database_url.replace(f":{pg_port}/", f":{fp.port}/")
    assert db_url != stack.database_url
    gw = gateway_factory(DATABASE_URL=db_url, **PG_GATEWAY)
    acked = []
    words = ("latency", 1500) if mode == "latency" else (mode,)
    run_outage(f"proxy to postgres: {' '.join(map(str, words))}", gw,
               order_probe(gw.url, stack.env["FEEGATE_API_KEY"], acked), lambda: fp.mode(*words),
               lambda: fp.mode("pass"))
    assert_acked_kept(stack, acked)


def test_outage_proxy_to_postgres_small_latency_is_no_outage(gateway_factory, faultproxy, stack):
    pg_port = stack.facts["PG_PORT"]
    fp = faultproxy(f"127.0.0.1:{pg_port}")
    gw = gateway_factory(DATABASE_URL=stack.database_url.replace(f":{pg_port}/", f":{fp.port}/"), **PG_GATEWAY)
    acked = []
    run_outage("proxy to postgres: latency 50", gw, order_probe(gw.url, stack.env["FEEGATE_API_KEY"], acked),
               lambda: fp.mode("latency", 50), lambda: fp.mode("pass"), expect_refusals=False)
    assert_acked_kept(stack, acked)


# ------------------------------------------------------------------------------ Redis

def redis_pid(stack):
    return int(Path(stack.facts["REDIS_PIDFILE"]).read_text().strip())


def checkout_probe(url, key, acked, old_orders):
    """An order, then its checkout page, then the page of an order made before the fault (its
    Redis session may be gone: the link must still work)."""
    s = requests.Session()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    n = [0]

    def probe():
        r = s.post(url + "/v1/orders", data=to_json_bytes(order_body()), headers=headers, timeout=(3, 10))
        if r.status_code != 201:
            return "bad", f"order {r.status_code} {r.text[:100]}"
        o = r.json()
        acked.append((o["id"], o["reference"]))
        n[0] += 1
        for link in (o["checkout_url"], old_orders[n[0] % len(old_orders)]["checkout_url"]):
            page = s.get(url + "/checkout/" + link.rsplit("/", 1)[1], timeout=(3, 10))
            if page.status_code != 200:
                return "bad", f"checkout {page.status_code}"
        return "ok", "201+200"
    return probe


@pytest.mark.parametrize("fault", ["killed", "flushed", "frozen"])
def test_outage_redis(fault, gateway_factory, stack):
    gw = gateway_factory(FEEGATE_REDIS_TIMEOUT_MS=200)
    key = stack.env["FEEGATE_API_KEY"]
    api = Api(gw.url, key)
    old = [new_order(api) for _ in range(5)]
    acked = []
    held = []

    def inject():
        if fault == "killed":
            os.kill(redis_pid(stack), signal.SIGKILL)
        elif fault == "flushed":
            assert stack.redis("FLUSHALL") == "OK"
        else:
            held.append(redis_pid(stack))
            os.kill(held[0], signal.SIGSTOP)

    def clear():
        if fault == "killed":
            stack.redis_start()
        elif fault == "frozen":
            os.kill(held[0], signal.SIGCONT)

    run_outage(f"redis {fault}", gw, checkout_probe(gw.url, key, acked, old), inject, clear,
               expect_refusals=False)
    assert_acked_kept(stack, acked)
    api.close()


# ------------------------------------------------------------------------------ banksim

BANK_GATEWAY = dict(FEEGATE_BANK_TIMEOUT_MS=1000, FEEGATE_BREAKER_COOLDOWN_MS=1000)


def momo_checkout_probe(url, key, acked):
    """An order, then the citizen choosing MoMo (the gateway calls MoMo's create through the
    proxy): 303 to the pay page, or during the fault the bank-unavailable page (502, or 503 while
    the circuit is open)."""
    s = requests.Session()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def probe():
        r = s.post(url + "/v1/orders", data=to_json_bytes(order_body()), headers=headers, timeout=(3, 10))
        if r.status_code != 201:
            return "bad", f"order {r.status_code} {r.text[:100]}"
        o = r.json()
        acked.append((o["id"], o["reference"]))
        c = s.post(url + "/checkout/" + o["checkout_url"].rsplit("/", 1)[1], data={"bank": "momo"},
                   allow_redirects=False, timeout=(3, 10))
        if c.status_code == 303:
            return "ok", "303"
        if c.status_code in (502, 503) and c.headers.get("Content-Type", "").startswith("text/html"):
            return "clear", f"{c.status_code} bank unavailable page"
        return "bad", f"checkout {c.status_code} {c.text[:100]}"
    return probe


@pytest.mark.parametrize("fault", ["slow", "failing", "unreachable", "proxy latency", "proxy reset",
                                   "proxy blackhole", "proxy halfopen"])
def test_outage_banksim(fault, gateway_factory, faultproxy, stack, sim):
    fp = faultproxy(f"127.0.0.1:{sim.port}")
    proxied = f"http://127.0.0.1:{fp.port}"
    gw = gateway_factory(FEEGATE_MOMO_URL=proxied, FEEGATE_VNPAY_URL=proxied, **BANK_GATEWAY)
    acked = []
    box = {}

    def inject():
        if fault == "slow":
            sim.faults(bank="momo", api_delay_ms=1500)
        elif fault == "failing":
            sim.faults(bank="momo", api_status=503)
        elif fault == "unreachable":
            box["port"] = fp.port
            fp.stop()  # connection refused
        else:
            word = fault.split()[1]
            fp.mode(*(("latency", 1500) if word == "latency" else (word,)))

    def clear():
        if fault in ("slow", "failing"):
            sim.reset_faults()
        elif fault == "unreachable":
            fp.port = box["port"]
            fp.start()
        else:
            fp.mode("pass")

    run_outage(f"banksim {fault}", gw, momo_checkout_probe(gw.url, stack.env["FEEGATE_API_KEY"], acked),
               inject, clear, fault_s=3.0)
    assert_acked_kept(stack, acked)
    # the orders whose checkout failed went back to `created` (the citizen may choose again)
    assert stack.scalar("SELECT count(*) FROM orders WHERE id = ANY(%s::uuid[]) AND status NOT IN "
                        "('created', 'pending')", ([a[0] for a in acked],)) == 0
