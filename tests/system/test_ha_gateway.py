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
from bankflow import (assert_ledger_ok, assert_single_payment, banksim, get_order, new_order,  # noqa: F401
                      sim, start_payment, vnpay_ipn_query, vnpay_send_ipn)
from test_outages import (PG_GATEWAY, assert_acked_kept, faultproxy, order_probe,  # noqa: F401 (a fixture)
                          pg_stop_immediate, run_outage)


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


def test_duty_holder_cut_off_stops_before_the_takeover(gateway_factory, faultproxy, stack):
    """The holder reaches PostgreSQL through a TCP proxy that starts swallowing every byte both
    ways (a partition): the holder's check times out and it stops its duties within two
    periods, before the other gateway takes over (here as soon as the holder closes its side,
    which the proxy passes on; a session nobody closes ends by its idle timeout, next test)."""
    lock_id = random.randint(10_000_000, 2_000_000_000)
    pg_port = stack.facts["PG_PORT"]
    fp = faultproxy(f"127.0.0.1:{pg_port}")
    env = dict(FEEGATE_DUTY_LOCK_ID=lock_id, FEEGATE_DUTY_RETRY_MS=500, FEEGATE_WORKERS=1)
    a = gateway_factory(FEEGATE_NODE_NAME="gw-cut", DATABASE_URL=stack.database_url.replace(
        f":{pg_port}/", f":{fp.port}/"), **env)
    assert wait_one_holder([a]) is a
    b = gateway_factory(FEEGATE_NODE_NAME="gw-other", **env)
    time.sleep(1.0)
    assert holders([a, b]) == [a]
    t0 = time.monotonic()
    fp.mode("blackhole")
    try:
        lost = gained = None
        deadline = time.monotonic() + 15 * TIME_SCALE
        while time.monotonic() < deadline and (lost is None or gained is None):
            if lost is None and f"duty lock {lock_id} lost by node gw-cut" in a.log_path.read_text():
                lost = time.monotonic() - t0
            if gained is None and f"duty lock {lock_id} gained by node gw-other" in b.log_path.read_text():
                gained = time.monotonic() - t0
            time.sleep(0.02)
    finally:
        fp.mode("pass")
    print(f"\nduty holder cut off (500 ms period): it stopped after {lost} s, the other took over after {gained} s")
    assert lost is not None and gained is not None, (lost, gained)
    assert lost < gained, "the other gateway took the duties before the cut-off holder had stopped"
    assert lost <= 1.0 + 0.5 * TIME_SCALE


def worker_of(gw):
    kids = [int(e) for e in os.listdir("/proc") if e.isdigit() and _ppid(e) == gw.pid]
    assert len(kids) == 1, kids
    return kids[0]


def _ppid(pid):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[1])


def test_duty_holder_frozen_loses_its_session_after_three_periods(gateway_factory, stack):
    """A holder frozen with SIGSTOP: its kernel still answers TCP keepalives, so only the
    session's idle timeout (three periods) frees the lock; the other gateway then takes over,
    and the holder, thawed, finds its session gone and does not resume its duties."""
    lock_id = random.randint(10_000_000, 2_000_000_000)
    env = dict(FEEGATE_DUTY_LOCK_ID=lock_id, FEEGATE_DUTY_RETRY_MS=500, FEEGATE_WORKERS=1)
    a = gateway_factory(FEEGATE_NODE_NAME="gw-frozen", **env)
    assert wait_one_holder([a]) is a
    b = gateway_factory(FEEGATE_NODE_NAME="gw-other", **env)
    time.sleep(1.0)
    assert holders([a, b]) == [a]
    worker = worker_of(a)
    t0 = time.monotonic()
    os.kill(worker, signal.SIGSTOP)
    try:
        gained = None
        deadline = time.monotonic() + 15 * TIME_SCALE
        while time.monotonic() < deadline and gained is None:
            if f"duty lock {lock_id} gained by node gw-other" in b.log_path.read_text():
                gained = time.monotonic() - t0
            time.sleep(0.02)
    finally:
        os.kill(worker, signal.SIGCONT)
    print(f"\nduty holder frozen (500 ms period): the other took over after {gained} s")
    assert gained is not None
    # idle since its last check, at most one period before the freeze: at least two periods
    assert gained >= 0.95, "the lock was free before the idle timeout could have ended the session"
    deadline = time.monotonic() + 5 * TIME_SCALE
    while time.monotonic() < deadline and f"duty lock {lock_id} lost by node gw-frozen" not in a.log_path.read_text():
        time.sleep(0.05)
    assert f"duty lock {lock_id} lost by node gw-frozen" in a.log_path.read_text()
    time.sleep(1.0)
    assert holders([a, b]) == [b]


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


def test_same_notification_to_two_gateways_at_once_is_applied_once(api, sim, gateway, gateway_factory, stack):
    """The bank's IPN, sent ten times at once, half to each of two gateways over one database:
    one RspCode 00, the others 02 (already confirmed), one payment transfer, ledger clean."""
    other = gateway_factory(FEEGATE_DUTY_LOCK_ID=gateway.env["FEEGATE_DUTY_LOCK_ID"])
    order = new_order(api)
    started = start_payment(sim, order, "vnpay")
    query = vnpay_ipn_query(stack.env, started["ref"], order["amount"], str(random.randint(10**8, 10**9)))
    go = threading.Barrier(10)
    codes = []

    def send(url):
        go.wait(10)
        codes.append(vnpay_send_ipn(url, query)[0])

    threads = [threading.Thread(target=send, args=(g.url,)) for g in [gateway, other] * 5]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(codes) == ["00"] + ["02"] * 9, codes
    assert_single_payment(stack, get_order(api, order["id"]), started["ref"], "vnpay")
    assert_ledger_ok(stack)


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


def local_ports(pid):
    """The local TCP ports of process pid's sockets (from /proc: its fds' inodes)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[9] in inodes:
                ports.append(int(f[1].rsplit(":", 1)[1], 16))
    return ports


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
        # existing sessions keep their setting: end this gateway's (only: the shared gateway's
        # would come back read-only too), as a switchover does
        ports = local_ports(worker_of(gw))
        assert ports
        stack.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'feegate' AND client_port = ANY(%s)", (ports,))
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
    p = subprocess.Popen([stack.bin, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        _, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # the master and any worker it forked
        p.communicate()
        pytest.fail(f"{name}={value}: the gateway started instead of refusing")
    assert p.returncode != 0
    assert f"configuration error: {name}: " in err and reason in err, err
    password = urllib.parse.urlsplit(stack.database_url).password
    assert not password or password not in err


# ------------------------------------------------------------------------------ report replica

def settlement_csv(gw, stack):
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 7 * 3600))
    return requests.get(f"{gw.url}/v1/reports/settlement?date={day}&format=csv", timeout=60,
                        headers={"Authorization": f"Bearer {stack.env['FEEGATE_FINANCE_TOKEN']}"})


def test_report_without_replica_says_primary(gateway):
    r = settlement_csv(gateway, gateway.stack)
    assert r.status_code == 200, r.text
    assert r.headers["Feegate-Data-Source"] == "primary"


def test_report_replica_that_is_a_primary_is_not_read(gateway_factory, stack):
    """The replica URL names a server that is not in recovery (here: the primary itself). It may
    be a cut-off old primary, so the export reads DATABASE_URL's server and says why."""
    gw = gateway_factory(FEEGATE_REPLICA_URL=stack.database_url)
    r = settlement_csv(gw, stack)
    assert r.status_code == 200, r.text
    assert r.headers["Feegate-Data-Source"] == "primary; replica=not_standby"
    assert r.content.startswith(b"\xef\xbb\xbf")


def test_report_replica_unreachable_falls_back(gateway_factory, stack):
    closed = f"postgresql://feegate@127.0.0.1:{free_port()}/feegate"
    gw = gateway_factory(FEEGATE_REPLICA_URL=closed)
    t0 = time.monotonic()
    r = settlement_csv(gw, stack)
    assert r.status_code == 200, r.text
    assert r.headers["Feegate-Data-Source"] == "primary; replica=unreachable"
    assert time.monotonic() - t0 < 10
    text = requests.get(gw.url + "/metrics", timeout=5).text
    assert re.search(r"^feegate_report_replica_fallbacks_total [1-9]", text, re.M), text[-500:]


# ------------------------------------------------------------------------------ Redis Sentinel

def redis_cmd(port, *args, timeout=2):
    import socket
    parts = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"".join(parts))
        time.sleep(0.05)
        return s.recv(65536).decode(errors="replace")


class RedisTrio:
    """A master, its replica and one sentinel (quorum 1) on loopback, in a folder of their own."""

    def __init__(self, tmp):
        self.dir = tmp
        self.master, self.replica, self.sentinel = free_port(), free_port(), free_port()
        self.procs = {}

    def server(self, name, port, *extra):
        log = open(self.dir / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--dbfilename", f"{name}.rdb", *extra],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def wait(self, cond, what, timeout=15):
        deadline = time.monotonic() + timeout * TIME_SCALE
        while time.monotonic() < deadline:
            try:
                if cond():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"redis trio: {what} not seen in {timeout} s", pytrace=False)

    def start(self):
        self.server("master", self.master)
        self.wait(lambda: "PONG" in redis_cmd(self.master, "PING"), "master up")
        self.server("replica", self.replica, "--replicaof", "127.0.0.1", str(self.master))
        self.wait(lambda: "master_link_status:up" in redis_cmd(self.replica, "INFO", "replication"), "replica in sync")
        conf = self.dir / "sentinel.conf"
        conf.write_text(f"port {self.sentinel}\nbind 127.0.0.1\ndir {self.dir}\n"
                        f"sentinel monitor feegate 127.0.0.1 {self.master} 1\n"
                        "sentinel down-after-milliseconds feegate 1000\n"
                        "sentinel failover-timeout feegate 3000\n"
                        "sentinel parallel-syncs feegate 1\n")
        log = open(self.dir / "sentinel.log", "ab")
        self.procs["sentinel"] = subprocess.Popen(["redis-sentinel", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                                                  stdin=subprocess.DEVNULL, start_new_session=True)
        self.wait(lambda: str(self.replica) in redis_cmd(self.sentinel, "SENTINEL", "replicas", "feegate"),
                  "the sentinel knowing the replica")
        return self

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)


@pytest.fixture
def redis_trio(tmp_path):
    if not shutil_which("redis-sentinel"):
        pytest.fail("redis-sentinel not installed (deploy/install-deps.sh)", pytrace=False)
    trio = RedisTrio(tmp_path).start()
    yield trio
    trio.stop()


def shutil_which(name):
    import shutil
    return shutil.which(name)


def rl_keys(port):
    return "rl:" in redis_cmd(port, "KEYS", "rl:*")


def test_redis_sentinel_failover_is_followed(gateway_factory, stack, redis_trio):
    gw = gateway_factory(REDIS_URL="redis://127.0.0.1:1/0", FEEGATE_REDIS_SENTINELS=f"127.0.0.1:{redis_trio.sentinel}",
                         FEEGATE_WORKERS=1, FEEGATE_RATE_LIMIT_RPS=100000)
    key = stack.env["FEEGATE_API_KEY"]
    s = requests.Session()
    answers = []

    def request():
        r = s.get(f"{gw.url}/v1/orders?reference=none-{random.randint(0, 10**9)}", timeout=10,
                  headers={"Authorization": f"Bearer {key}"})
        answers.append(r.status_code)

    redis_trio.wait(lambda: readyz(gw).get("redis") == "ok", "the gateway on the master")
    request()
    assert rl_keys(redis_trio.master), "the rate limit did not count on the master"
    assert f"master feegate is 127.0.0.1:{redis_trio.master}" in gw.log_path.read_text()
    t0 = time.monotonic()
    os.killpg(redis_trio.procs["master"].pid, signal.SIGKILL)
    redis_trio.procs["master"].wait(10)
    followed = None
    deadline = time.monotonic() + 30 * TIME_SCALE
    while time.monotonic() < deadline:
        request()
        if followed is None and f"127.0.0.1:{redis_trio.replica}" in gw.log_path.read_text() \
                and readyz(gw).get("redis") == "ok":
            followed = time.monotonic() - t0
            break
        time.sleep(0.05)
    assert followed is not None, f"the gateway did not follow the failover:\n{tail(gw.log_path, 30)}"
    redis_cmd(redis_trio.replica, "FLUSHALL")
    # after Redis failed, the workers' own buckets decide for FEEGATE_RATE_LIMIT_FALLBACK_MS;
    # then the counting returns to Redis, now the promoted replica
    counted = False
    deadline = time.monotonic() + 10 * TIME_SCALE
    while not counted and time.monotonic() < deadline:
        request()
        counted = rl_keys(redis_trio.replica)
        time.sleep(0.1)
    assert counted, "the rate limit does not count on the promoted replica"
    print(f"\nredis sentinel failover followed {followed:.2f} s after the master was killed; "
          f"{len(answers)} requests, statuses {sorted(set(answers))}")
    assert set(answers) == {200}, answers
