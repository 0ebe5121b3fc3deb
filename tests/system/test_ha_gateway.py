"""The gateway's side of running several gateways (docs/ha.md): the duty lock (one sweeper and
webhook relay across gateways, taken over when its holder dies), a multi-host DATABASE_URL and
the reconnect after the primary restarts, the report replica with its fallback, and Redis
Sentinel. On the one-machine stack; the namespace test of several hosts is tests/ha/."""
import os
import random
import re
import signal
import subprocess
import threading
import time
import urllib.parse

import pytest
import requests

from conftest import TIME_SCALE, free_port, tail
from bankflow import assert_ledger_ok
from test_outages import (PG_GATEWAY, assert_acked_kept, order_probe, pg_stop_immediate,
                          run_outage)


def readyz(gw):
    try:
        r = requests.get(gw.url + "/readyz", timeout=2)
        return r.json()
    except (requests.RequestException, ValueError):
        return {}


def duty_metric(gw):
    text = requests.get(gw.url + "/metrics", timeout=5).text
    m = re.search(r"^feegate_duty_held (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def holders(gws):
    return [g for g in gws if g.proc.poll() is None and readyz(g).get("duties") == "held"]


def wait_one_holder(gws, timeout=10):
    deadline = time.monotonic() + timeout * TIME_SCALE
    while time.monotonic() < deadline:
        h = holders(gws)
        if len(h) == 1:
            return h[0]
        assert len(h) < 2, "two gateways hold the duties at once"
        time.sleep(0.05)
    pytest.fail(f"no gateway took the duties in {timeout} s:\n" + "\n".join(tail(g.log_path, 10) for g in gws),
                pytrace=False)


class Watcher:
    """Polls every gateway's /readyz in a thread; remembers any moment two held the duties."""

    def __init__(self, gws):
        self.gws, self.both, self.stop = gws, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            h = holders(self.gws)
            if len(h) > 1:
                self.both.append([g.port for g in h])
            time.sleep(0.02)

    def __enter__(self):
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join(10)


def lock_backend(stack, lock_id):
    rows = stack.query("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                       "AND classid = 0 AND objid = %s AND objsubid = 1", (lock_id,))
    return [r[0] for r in rows]


@pytest.fixture
def pair(gateway_factory):
    lock_id = random.randint(10_000_000, 2_000_000_000)
    env = dict(FEEGATE_DUTY_LOCK_ID=lock_id, FEEGATE_DUTY_RETRY_MS=200, FEEGATE_WORKERS=1)
    a = gateway_factory(FEEGATE_NODE_NAME="gw-a", **env)
    b = gateway_factory(FEEGATE_NODE_NAME="gw-b", **env)
    return lock_id, [a, b]


def test_duty_lock_one_holder_then_takeover_when_it_dies(pair, stack):
    lock_id, gws = pair
    with Watcher(gws) as w:
        holder = wait_one_holder(gws)
        other = next(g for g in gws if g is not holder)
        time.sleep(1.5)  # several retry periods: the other keeps trying and keeps failing
        assert holders(gws) == [holder]
        assert duty_metric(holder) == 1 and duty_metric(other) == 0
        assert len(lock_backend(stack, lock_id)) == 1
        name = holder.env["FEEGATE_NODE_NAME"]
        assert f"duty lock {lock_id} gained by node {name}" in holder.log_path.read_text()
        assert readyz(other)["node"] == other.env["FEEGATE_NODE_NAME"]
        t0 = time.monotonic()
        os.killpg(holder.pid, signal.SIGKILL)  # the kernel closes its sockets: the lock goes at once
        holder.proc.wait(10)
        new = wait_one_holder([other], timeout=10)
        took = time.monotonic() - t0
    print(f"\nduty takeover after SIGKILL of the holder: {took:.2f} s")
    assert new is other and took < 3 * TIME_SCALE
    assert not w.both, f"two holders at once: {w.both[:5]}"
    assert f"duty lock {lock_id} gained by node {other.env['FEEGATE_NODE_NAME']}" in other.log_path.read_text()


def test_duty_holder_stops_when_its_lock_session_ends(pair, stack):
    lock_id, gws = pair
    with Watcher(gws) as w:
        holder = wait_one_holder(gws)
        pids = lock_backend(stack, lock_id)
        assert len(pids) == 1
        assert stack.scalar("SELECT application_name FROM pg_stat_activity WHERE pid = %s", (pids[0],)) == "feegate-duty"
        stack.query("SELECT pg_terminate_backend(%s)", (pids[0],))
        deadline = time.monotonic() + 5 * TIME_SCALE
        while time.monotonic() < deadline and "duty lock %d lost" % lock_id not in holder.log_path.read_text():
            time.sleep(0.05)
        assert f"duty lock {lock_id} lost by node {holder.env['FEEGATE_NODE_NAME']}" in holder.log_path.read_text()
        again = wait_one_holder(gws, timeout=10)
        time.sleep(0.5)
    assert again in gws and len(lock_backend(stack, lock_id)) == 1
    assert not w.both, f"two holders at once: {w.both[:5]}"


def test_duty_released_on_sigterm(pair):
    _, gws = pair
    holder = wait_one_holder(gws)
    other = next(g for g in gws if g is not holder)
    t0 = time.monotonic()
    holder.terminate()
    wait_one_holder([other], timeout=10)
    took = time.monotonic() - t0
    assert holder.proc.wait(30) == 0
    print(f"\nduty takeover after SIGTERM of the holder: {took:.2f} s")
    assert took < 3 * TIME_SCALE


def test_one_sweeper_across_gateways_expires_orders(pair, stack):
    """Orders expire (the sweeper runs) with two gateways sharing one duty lock."""
    _, gws = pair
    wait_one_holder(gws)
    api_key = stack.env["FEEGATE_API_KEY"]
    from conftest import order_body, to_json_bytes
    body = order_body(expires_in=60)
    r = requests.post(gws[0].url + "/v1/orders", data=to_json_bytes(body), timeout=10,
                      headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    stack.query("UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = %s", (r.json()["id"],))
    deadline = time.monotonic() + 10 * TIME_SCALE
    while time.monotonic() < deadline:
        if stack.scalar("SELECT status FROM orders WHERE id = %s", (r.json()["id"],)) == "expired":
            return
        time.sleep(0.2)
    pytest.fail("the order did not expire: no sweeper ran")


# ------------------------------------------------------------------------------ PostgreSQL failover

def multi_host_url(database_url, first_port):
    """The stack's URL with a closed port as its first host and target_session_attrs=read-write."""
    u = urllib.parse.urlsplit(database_url)
    userinfo, _, hostport = u.netloc.rpartition("@")
    host, _, port = hostport.rpartition(":")
    query = urllib.parse.parse_qsl(u.query)
    query = [(k, v) for k, v in query if k != "target_session_attrs"] + [("target_session_attrs", "read-write")]
    netloc = f"{userinfo}@{host}:{first_port},{host}:{port}" if userinfo else f"{host}:{first_port},{host}:{port}"
    return urllib.parse.urlunsplit((u.scheme, netloc, u.path, urllib.parse.urlencode(query), ""))


def test_multi_host_url_first_host_closed(gateway_factory, stack):
    url = multi_host_url(stack.database_url, free_port())
    gw = gateway_factory(DATABASE_URL=url)
    body = readyz(gw)
    assert body.get("postgres") == "ok", body
    acked = []
    probe = order_probe(gw.url, stack.env["FEEGATE_API_KEY"], acked)
    assert [probe()[0] for _ in range(5)] == ["ok"] * 5
    assert_acked_kept(stack, acked)
    assert stack.database_url.split("@")[-1] not in gw.log_path.read_text()  # the URL is not logged


def test_primary_restart_immediate_multi_host(gateway_factory, stack):
    """pg_ctl stop -m immediate, then start, under a stream of orders, with a multi-host URL:
    503 unavailable with Retry-After in the gap, then 201 again without a restart of the
    gateway; nothing answered 201 is lost."""
    gw = gateway_factory(DATABASE_URL=multi_host_url(stack.database_url, free_port()), **PG_GATEWAY)
    acked = []
    p = run_outage("primary restarted -m immediate (multi-host URL)", gw,
                   order_probe(gw.url, stack.env["FEEGATE_API_KEY"], acked), lambda: pg_stop_immediate(stack),
                   stack.pg_start, fault_s=1.0)
    assert any(r[2] == "clear" for r in p.results)
    assert_acked_kept(stack, acked)
    assert_ledger_ok(stack)


def test_read_only_primary_is_left_and_reconnected(gateway_factory, stack):
    """A server that turned read-only (a demoted primary) answers 25006: the gateway drops the
    connection, answers 503, and reconnects; here the same server is writable again at once."""
    gw = gateway_factory(FEEGATE_DB_POOL_SIZE=1, FEEGATE_WORKERS=1)
    key = stack.env["FEEGATE_API_KEY"]
    acked = []
    probe = order_probe(gw.url, key, acked)
    assert probe()[0] == "ok"
    db = stack.scalar("SELECT current_database()")
    stack.query(f'ALTER DATABASE "{db}" SET default_transaction_read_only = on')
    try:
        # existing sessions keep their setting: end them, as a switchover does
        stack.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'feegate' AND pid <> pg_backend_pid()")
        seen = set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "25006" not in gw.log_path.read_text():
            seen.add(probe()[1])
            time.sleep(0.05)
    finally:
        with stack.connect() as conn:  # a new session is read-only now: this one is not
            conn.execute("SET default_transaction_read_only = off")
            conn.execute(f'ALTER DATABASE "{db}" RESET default_transaction_read_only')
    assert "25006" in gw.log_path.read_text(), seen
    assert seen <= {"201", "503 unavailable"}, seen
    assert "503 unavailable" in seen
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and probe()[0] != "ok":
        time.sleep(0.1)
    assert probe()[0] == "ok"
    assert_acked_kept(stack, acked)


# ------------------------------------------------------------------------------ bad settings

@pytest.mark.parametrize("name,value,reason", [
    ("FEEGATE_REDIS_SENTINELS", "127.0.0.1", "is not host:port"),
    ("FEEGATE_REDIS_SENTINELS", "127.0.0.1:26379,", "ends with a comma"),
    ("FEEGATE_REDIS_SENTINELS", "a:99999", "is not host:port"),
    ("FEEGATE_DUTY_RETRY_MS", "5", "out of range"),
    ("FEEGATE_REPLICA_URL", "postgresql://h/db?nonsense=1", "not a valid libpq URI"),
    ("DATABASE_URL", "postgresql://h1:5432,h2:x/db", "not a valid libpq URI"),
])
def test_bad_ha_settings_stop_start_up(stack, name, value, reason):
    env = dict(os.environ, **stack.env)
    env[name] = value
    r = subprocess.run([stack.bin, "serve"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert f"configuration error: {name}: " in r.stderr and reason in r.stderr, r.stderr
    assert "password" not in r.stderr.lower() or name != "DATABASE_URL"
