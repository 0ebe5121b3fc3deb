#!/usr/bin/python3
"""make ha: feegate's several-machine shape on this machine, and four faults under load.

Each host is a network namespace with one veth into a bridge that lives in a namespace of its
own (fgha-br), on 10.231.0.0/24, a range of the test's own; this process reaches them from
10.231.0.1. The hosts, with the addresses of deploy/ha/'s plan (10.0.10.x there):

    etcd1-3  .11-.13  etcd (data on tmpfs) and a Redis Sentinel each
    pg1-2    .21-.22  Patroni and its PostgreSQL (synchronous standby), as user postgres
    gw1-2    .31-.32  feegate serve, FEEGATE_WORKERS=2, a multi-host DATABASE_URL
    lb       .40      HAProxy (deploy/ha/haproxy.cfg) in front of gw1 and gw2
    bank     .50      banksim
    redis1-2 .61-.62  Redis master and replica

The configs are deploy/ha/'s files with the plan's addresses changed to the test's and paths
under a work folder in /var/tmp. An open-loop stream (orders with Idempotency-Key, signed VNPAY
notifications, and the same notification sent to both gateways at once) runs through HAProxy
while the faults come one after another: SIGKILL of the primary's postmaster, a partition of
the (new) primary (its veth down), SIGKILL of a gateway, SIGKILL of the Redis master. After
each: every order and notification that got a success answer is in the primary exactly once,
`feegate ledger check` is clean, and one line is printed:

    HA-RESULT fault=<name> acked=<n> lost=<n> double=<n> window_ms=<n>

acked counts the success answers of that fault's phase; lost and double count over every
success answer so far; window_ms runs from the first failed answer after the fault to the first
good one after it (0: no answer failed). Exit status 1 on any loss, double, failed ledger check
or a fault the cluster did not recover from. Everything is torn down at the end, on failure and
on SIGINT/SIGTERM too.

Usage (root): tests/ha/run.py [BUILD_DIR]
Environment: HA_PHASE_S (seconds of load per fault, default 35), HA_FAULTS (a comma list of
  the faults to run, in their order; default all four; make test's short form runs
  kill_primary), HA_ORDER_RPS (default 8), HA_NOTIFY_RPS (default 3), HA_KEEP=1 (keep the work
  folder and logs). One run at a time on a machine: a lock (/run/lock/feegate-ha.lock) makes a
  second wait.
"""
import fcntl
import concurrent.futures
import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import psycopg
import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "build").resolve()
FEEGATE = BUILD / "feegate"
BANKSIM = BUILD / "banksim"
DEPLOY = REPO / "deploy" / "ha"
NET = "10.231.0"
PLAN_NET = "10.0.10"
NS = "fgha"
HOSTS = {"etcd1": 11, "etcd2": 12, "etcd3": 13, "pg1": 21, "pg2": 22, "gw1": 31, "gw2": 32,
         "lb": 40, "bank": 50, "redis1": 61, "redis2": 62}
PHASE_S = float(os.environ.get("HA_PHASE_S", 35))
ORDER_RPS = float(os.environ.get("HA_ORDER_RPS", 8))
NOTIFY_RPS = float(os.environ.get("HA_NOTIFY_RPS", 3))
PG_USER = "postgres"
PG_BIN = "/usr/lib/postgresql/15/bin"
VN_TZ = datetime.timezone(datetime.timedelta(hours=7))
T0 = time.monotonic()


def log(msg):
    print(f"ha [{time.monotonic() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def addr(host):
    return f"{NET}.{HOSTS[host]}"


def sh(*argv, check=True, timeout=60, **kw):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def plan_to_test(text):
    return text.replace(PLAN_NET + ".", NET + ".")


class Failed(Exception):
    pass


# ------------------------------------------------------------------------------ the network

class Network:
    def __init__(self):
        self.made = False

    def ns(self, host):
        return f"{NS}-{host}"

    def leftovers(self):
        out = sh("ip", "netns", "list", check=False).stdout
        return [l.split()[0] for l in out.splitlines() if l.startswith(NS + "-")]

    def up(self):
        self.down()  # a run that was killed outright leaves its namespaces behind
        route = sh("ip", "-4", "route", "show", f"{NET}.0/24", check=False).stdout.strip()
        if route:
            raise Failed(f"{NET}.0/24 is already routed on this machine ({route}); the test needs it")
        self.made = True
        br = self.ns("br")
        sh("ip", "netns", "add", br)
        sh("ip", "-n", br, "link", "set", "lo", "up")
        sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", br, "link", "set", "br0", "up")
        sh("ip", "link", "add", f"{NS}0", "type", "veth", "peer", "name", "v-root", "netns", br)
        sh("ip", "addr", "add", f"{NET}.1/24", "dev", f"{NS}0")
        sh("ip", "link", "set", f"{NS}0", "up")
        sh("ip", "-n", br, "link", "set", "v-root", "master", "br0", "up")
        for host in HOSTS:
            ns = self.ns(host)
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"v-{host}", "netns", br)
            sh("ip", "-n", ns, "addr", "add", f"{addr(host)}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", br, "link", "set", f"v-{host}", "master", "br0", "up")
        log(f"network: {len(HOSTS)} hosts on {NET}.0/24 behind a bridge in {br}")

    def cut(self, host):
        sh("ip", "-n", self.ns("br"), "link", "set", f"v-{host}", "down")

    def heal(self, host):
        sh("ip", "-n", self.ns("br"), "link", "set", f"v-{host}", "up")

    def down(self):
        for ns in self.leftovers():
            # whatever still runs in one of the test's namespaces was started by the test
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", f"{NS}0", check=False)


# ------------------------------------------------------------------------------ processes

class Procs:
    def __init__(self, work):
        self.work = work
        self.procs = {}
        self.logs = work / "logs"
        self.logs.mkdir()

    def start(self, name, host, argv, user=None, env=None):
        cmd = ["ip", "netns", "exec", f"{NS}-{host}"]
        if user:  # setpriv execs: the pid is the program's own
            cmd += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]
        cmd += [str(a) for a in argv]
        out = open(self.logs / f"{name}.log", "ab")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, env=env, cwd="/")
        out.close()
        self.procs[name] = p
        return p

    def kill(self, name, sig=signal.SIGKILL):
        p = self.procs.get(name)
        if p and p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass

    def stop_all(self):
        for name in reversed(list(self.procs)):
            self.kill(name, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for name in self.procs:
            self.kill(name)

    def tail(self, name, n=25):
        try:
            return "\n".join((self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def wait_for(what, pred, timeout, interval=0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - any failure means "not yet"
            last = e
        time.sleep(interval)
    raise Failed(f"{what}: not within {timeout:.0f} s" + (f" (last error: {last})" if last else ""))


# ------------------------------------------------------------------------------ the cluster

class Cluster:
    def __init__(self, work, procs, net):
        self.work = work
        self.procs = procs
        self.net = net
        self.pw = {k: secrets.token_hex(12) for k in ("superuser", "replication", "rewind", "feegate")}
        self.shm = Path(tempfile.mkdtemp(prefix="feegate-ha-etcd.", dir="/dev/shm"))
        self.env = {}

    # --- etcd
    def start_etcd(self):
        for i in (1, 2, 3):
            conf = yaml.safe_load(plan_to_test((DEPLOY / f"etcd-{i}.yml").read_text()))
            conf["data-dir"] = str(self.shm / f"etcd{i}")
            conf["initial-cluster-token"] = f"feegate-ha-{os.getpid()}"
            path = self.work / f"etcd-{i}.yml"
            path.write_text(yaml.safe_dump(conf))
            self.procs.start(f"etcd{i}", f"etcd{i}", ["etcd", "--config-file", path])
        eps = ",".join(f"http://{addr(f'etcd{i}')}:2379" for i in (1, 2, 3))
        wait_for("etcd healthy", lambda: sh("etcdctl", f"--endpoints={eps}", "endpoint", "health",
                                            check=False, timeout=20).returncode == 0, 60, 1)
        log("etcd: three members healthy (heartbeat 500 ms, election 5 s, data on tmpfs)")

    # --- Patroni / PostgreSQL
    def patroni_conf(self, member):
        conf = yaml.safe_load(plan_to_test((DEPLOY / f"patroni-{member}.yml").read_text()))
        d = self.work / member
        d.mkdir(mode=0o700)
        shutil.chown(d, PG_USER, PG_USER)
        pg = conf["postgresql"]
        pg["data_dir"] = str(d / "data")
        pg["pgpass"] = str(d / "pgpass")
        pg["parameters"]["unix_socket_directories"] = str(d)
        for role, key in (("superuser", "superuser"), ("replication", "replication"), ("rewind", "rewind")):
            pg["authentication"][role]["password"] = self.pw[key]
        conf["bootstrap"]["dcs"]["postgresql"]["parameters"].update(
            shared_buffers="64MB", max_connections=100, wal_keep_size="128MB")
        conf["namespace"] = f"/feegate-ha-{os.getpid()}/"
        path = d / "patroni.yml"
        path.write_text(yaml.safe_dump(conf))
        shutil.chown(path, PG_USER, PG_USER)
        path.chmod(0o600)
        return path

    def start_patroni(self, member):
        self.procs.start(f"patroni-{member}", member, ["patroni", self.work / member / "patroni.yml"], user=PG_USER)

    def members(self):
        """Patroni's view: [{name, role, state, lag, host}] from any member that answers."""
        for m in ("pg1", "pg2"):
            try:
                r = requests.get(f"http://{addr(m)}:8008/cluster", timeout=1)
                if r.status_code == 200:
                    return r.json()["members"]
            except requests.RequestException:
                continue
        return []

    def leader(self):
        for m in self.members():
            if m["role"] == "leader" and m["state"] == "running":
                return m["name"]
        return None

    def healthy(self):
        """A running leader and a streaming synchronous standby."""
        ms = self.members()
        roles = {m["role"]: m for m in ms}
        sync = roles.get("sync_standby")
        return (roles.get("leader", {}).get("state") == "running" and sync is not None
                and sync.get("state") in ("streaming", "running"))

    def start_postgres(self):
        for m in ("pg1", "pg2"):
            self.patroni_conf(m)
        self.start_patroni("pg1")
        wait_for("pg1 bootstrapped as leader", lambda: self.leader() == "pg1", 120, 1)
        self.start_patroni("pg2")
        wait_for("pg2 a synchronous standby", self.healthy, 180, 1)
        log("PostgreSQL: pg1 leader, pg2 synchronous standby (Patroni)")
        with psycopg.connect(host=addr("pg1"), user="postgres", password=self.pw["superuser"],
                             dbname="postgres", autocommit=True, connect_timeout=5) as c:
            c.execute(f"CREATE ROLE feegate LOGIN PASSWORD '{self.pw['feegate']}'")
            c.execute("CREATE DATABASE feegate OWNER feegate")
        hosts = ",".join(f"{addr(m)}:5432" for m in ("pg1", "pg2"))
        self.database_url = (f"postgresql://feegate:{self.pw['feegate']}@{hosts}/feegate"
                             "?target_session_attrs=read-write&connect_timeout=3")

    def postmaster_pid(self, member):
        first = (self.work / member / "data" / "postmaster.pid").read_text().splitlines()[0]
        return int(first)

    # --- Redis and Sentinel
    def start_redis(self):
        for i, name in ((1, "redis1"), (2, "redis2")):
            d = self.work / name
            d.mkdir()
            base = plan_to_test((DEPLOY / "redis.conf").read_text())
            base = re.sub(r"^dir .*$", f"dir {d}", base, flags=re.M)
            base = re.sub(r"^supervised .*$", "supervised no", base, flags=re.M)
            base = re.sub(r"^bind .*$", f"bind {addr(name)} 127.0.0.1", base, flags=re.M)
            (d / "redis.conf").write_text(base)
            conf = d / "redis.conf"
            if i == 2:
                rep = plan_to_test((DEPLOY / "redis-replica.conf").read_text())
                rep = rep.replace("/etc/feegate/redis.conf", str(d / "redis.conf"))
                (d / "replica.conf").write_text(rep)
                conf = d / "replica.conf"
            self.procs.start(name, name, ["redis-server", conf])
        for i in (1, 2, 3):
            d = self.work / f"sentinel{i}"
            d.mkdir()
            s = plan_to_test((DEPLOY / "sentinel.conf").read_text())
            s = re.sub(r"^dir .*$", f"dir {d}", s, flags=re.M)
            s = re.sub(r"^supervised .*$", "supervised no", s, flags=re.M)
            (d / "sentinel.conf").write_text(s)
            self.procs.start(f"sentinel{i}", f"etcd{i}", ["redis-sentinel", d / "sentinel.conf"])
        wait_for("Redis replica in sync", lambda: "master_link_status:up" in
                 redis_cmd(addr("redis2"), 6379, "INFO", "replication"), 30)
        wait_for("sentinels see each other", lambda: "num-other-sentinels" in str(
            redis_cmd(addr("etcd1"), 26379, "SENTINEL", "master", "feegate")) and
            sentinel_others(addr("etcd1")) >= 2, 40, 1)
        log("Redis: redis1 master, redis2 replica, three sentinels")

    def redis_master(self):
        for i in (1, 2, 3):
            try:
                r = redis_cmd(addr(f"etcd{i}"), 26379, "SENTINEL", "get-master-addr-by-name", "feegate")
                return r[0]
            except Exception:  # noqa: BLE001
                continue
        return None


def redis_cmd(host, port, *args, timeout=2):
    """One command over RESP; returns the reply (str, int, list)."""
    import socket
    payload = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = str(a).encode()
        payload.append(b"$%d\r\n%s\r\n" % (len(b), b))
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(b"".join(payload))
        f = s.makefile("rb")

        def read():
            line = f.readline().rstrip(b"\r\n")
            t, rest = line[:1], line[1:].decode()
            if t == b"+":
                return rest
            if t == b"-":
                raise RuntimeError(rest)
            if t == b":":
                return int(rest)
            if t == b"$":
                n = int(rest)
                if n < 0:
                    return None
                data = f.read(n + 2)[:-2]
                return data.decode(errors="replace")
            if t == b"*":
                n = int(rest)
                return [read() for _ in range(max(n, 0))]
            raise RuntimeError(f"bad reply {line!r}")
        return read()


def sentinel_others(host):
    r = redis_cmd(host, 26379, "SENTINEL", "master", "feegate")
    d = dict(zip(r[::2], r[1::2]))
    return int(d.get("num-other-sentinels", 0))


# ------------------------------------------------------------------------------ feegate

class Feegate:
    def __init__(self, work, procs, cluster):
        self.work = work
        self.procs = procs
        self.cluster = cluster
        self.bank = {
            "FEEGATE_VNPAY_TMN_CODE": "HA" + secrets.token_hex(3).upper(),
            "FEEGATE_VNPAY_HASH_SECRET": secrets.token_hex(16).upper(),
            "FEEGATE_MOMO_PARTNER_CODE": "MOMOHA" + secrets.token_hex(3).upper(),
            "FEEGATE_MOMO_ACCESS_KEY": secrets.token_hex(8),
            "FEEGATE_MOMO_SECRET_KEY": secrets.token_hex(16),
            "FEEGATE_VIETQR_WEBHOOK_SECRET": secrets.token_hex(24),
        }
        self.lb = f"http://{addr('lb')}:8080"
        self.banksim_url = f"http://{addr('bank')}:8090"

    def base_env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("FEEGATE_", "BANKSIM_", "PG", "REDIS_")) and k != "DATABASE_URL"}
        env.update(self.bank)
        env.update(DATABASE_URL=self.cluster.database_url,
                   FEEGATE_MIGRATIONS=str(REPO / "migrations"))
        return env

    def cli(self, *args):
        r = subprocess.run([str(FEEGATE), *args], capture_output=True, text=True, timeout=120,
                           env=self.base_env())
        if r.returncode != 0:
            raise Failed(f"feegate {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()[-800:]}")
        return r.stdout

    def setup(self):
        self.cli("migrate")
        self.cli("agency", "create", "--code", "XNC", "--name", "Cục Quản lý Xuất nhập cảnh",
                 "--account", "970436:0011001234567:CUC QUAN LY XUAT NHAP CANH", "--banks", "vnpay,momo,vietqr")
        out = self.cli("client", "create", "--name", "Cổng Dịch vụ công", "--agency", "XNC")
        lines = [l.strip() for l in out.splitlines() if l.strip()]
        self.api_key = lines[-1].split(": ", 1)[-1]
        self.client_id = dict(l.split(": ", 1) for l in lines[:-1] if ": " in l)["client_id"]
        self.receipt_key = self.work / "receipt-key.pem"
        self.cli("receipt", "keygen", str(self.receipt_key))
        log("feegate: migrated (against the leader, by the multi-host URL), agency and client made")

    def start_banksim(self):
        env = {k: v for k, v in self.base_env().items() if k != "DATABASE_URL"}
        env.update(BANKSIM_HOST=addr("bank"), BANKSIM_PORT="8090", BANKSIM_URL=self.banksim_url,
                   FEEGATE_URL=self.lb)
        self.procs.start("banksim", "bank", [BANKSIM], env=env)
        wait_for("banksim", lambda: requests.get(self.banksim_url + "/healthz", timeout=1).ok, 20)

    def start_gateway(self, gw):
        env = self.base_env()
        env.update(
            FEEGATE_NODE_NAME=gw, FEEGATE_LISTEN=addr(gw), FEEGATE_PORT="8080", FEEGATE_WORKERS="2",
            FEEGATE_PUBLIC_URL=self.lb, BANKSIM_URL=self.banksim_url,
            REDIS_URL=f"redis://{addr('redis1')}:6379/0",
            FEEGATE_REDIS_SENTINELS=",".join(f"{addr(f'etcd{i}')}:26379" for i in (1, 2, 3)),
            FEEGATE_REDIS_MASTER_NAME="feegate",
            FEEGATE_RECEIPT_KEY=str(self.receipt_key),
            # the partitioned host's address costs an ARP timeout (about 3 s) per connection try
            FEEGATE_DB_CONNECT_TIMEOUT_MS="5000",
            FEEGATE_QUERY_AFTER_S="3600", FEEGATE_RATE_LIMIT_RPS="100000",
            FEEGATE_SHUTDOWN_TIMEOUT_MS="5000")
        self.procs.start(gw, gw, [FEEGATE, "serve"], env=env)
        url = f"http://{addr(gw)}:8080"
        try:
            wait_for(f"{gw} ready", lambda: requests.get(url + "/readyz", timeout=1).status_code == 200, 30)
        except Failed:
            raise Failed(f"{gw} did not become ready:\n{self.procs.tail(gw)}")

    def start_lb(self):
        cfg = plan_to_test((DEPLOY / "haproxy.cfg").read_text())
        cfg = cfg.replace("/run/haproxy/feegate.sock", str(self.work / "haproxy.sock"))
        cfg = cfg.replace("bind 127.0.0.1:8404", f"bind {addr('lb')}:8404")
        path = self.work / "haproxy.cfg"
        path.write_text(cfg)
        sh("haproxy", "-c", "-q", "-f", path)
        self.procs.start("haproxy", "lb", ["haproxy", "-db", "-f", path])
        wait_for("HAProxy with both gateways up", lambda: lb_up(self) == {"gw1", "gw2"}, 20)
        log("HAProxy: both gateways up (checked on /readyz)")


def lb_up(fg):
    r = requests.get(f"http://{addr('lb')}:8404/stats;csv", timeout=1)
    up = set()
    for line in r.text.splitlines():
        f = line.split(",")
        if len(f) > 17 and f[0] == "gateways" and f[1].startswith("gw") and f[17].startswith("UP"):
            up.add(f[1])
    return up


# ------------------------------------------------------------------------------ the load

def php_urlencode(s):
    return urllib.parse.quote_plus(s, safe="").replace("~", "%7E")


def vnpay_ipn_query(tmn, secret, ref, amount, txn_no):
    """A successful VNPAY IPN, signed as tests/bench/vnpay_ipn.py signs it."""
    now = datetime.datetime.now(VN_TZ)
    params = {
        "vnp_TmnCode": tmn, "vnp_Amount": str(amount * 100), "vnp_BankCode": "NCB",
        "vnp_BankTranNo": f"VNP{txn_no}", "vnp_CardType": "ATM", "vnp_OrderInfo": f"Thanh toan {ref}",
        "vnp_PayDate": now.strftime("%Y%m%d%H%M%S"), "vnp_ResponseCode": "00",
        "vnp_TransactionNo": txn_no, "vnp_TransactionStatus": "00", "vnp_TxnRef": ref,
    }
    fields = sorted((k, v) for k, v in params.items() if v != "")
    data = "&".join(f"{php_urlencode(k)}={php_urlencode(v)}" for k, v in fields)
    digest = hmac.new(secret.encode(), data.encode(), hashlib.sha512).hexdigest()
    return f"{data}&vnp_SecureHash={digest}"


class Load:
    """Open loop: a clock submits work at fixed rates whatever the answers take; each request is
    tried up to three times (a bank and a portal retry too) with the same key."""

    TRIES = 3

    def __init__(self, fg):
        self.fg = fg
        self.lock = threading.Lock()
        self.answers = []        # (send_t, done_t, ok, via_lb)
        self.orders = {}         # reference -> order id (acked)
        self.order_acked_t = {}  # reference -> time acked
        self.notes = {}          # bank_order_ref -> txn no (acked)
        self.note_acked_t = {}
        self.pool = []           # prepared attempts: (ref, amount)
        self.dup_pairs = 0
        self.dup_both_00 = 0
        self.stop = threading.Event()
        self.exec = concurrent.futures.ThreadPoolExecutor(max_workers=48)
        self.headers = {"Authorization": f"Bearer {fg.api_key}", "Content-Type": "application/json"}
        self.txn_seq = int(time.time()) % 100000 * 100000

    def record(self, send_t, ok, via_lb=True):
        with self.lock:
            self.answers.append((send_t, time.monotonic(), ok, via_lb))

    def order_body(self, ref):
        return json.dumps({"reference": ref, "agency": "XNC", "description": "Lệ phí cấp hộ chiếu phổ thông",
                           "amount": 200000, "return_url": "https://dichvucong.example.vn/ket-qua"},
                          ensure_ascii=False, separators=(",", ":")).encode()

    def post_order(self, ref, record=True):
        body = self.order_body(ref)
        h = dict(self.headers, **{"Idempotency-Key": "ha-" + ref})
        for i in range(self.TRIES):
            t = time.monotonic()
            try:
                r = requests.post(self.fg.lb + "/v1/orders", data=body, headers=h, timeout=12)
                ok = r.status_code in (200, 201)
            except requests.RequestException:
                ok, r = False, None
            if record:
                self.record(t, ok)
            if ok:
                return r.json()
            if self.stop.is_set():
                return None
            time.sleep(1 + i)
        return None

    def order_task(self):
        ref = "HA-" + uuid.uuid4().hex[:20]
        o = self.post_order(ref)
        if o:
            with self.lock:
                self.orders[ref] = o["id"]
                self.order_acked_t[ref] = time.monotonic()

    def next_txn(self):
        with self.lock:
            self.txn_seq += 1
            return str(self.txn_seq)

    def send_ipn(self, base, query):
        try:
            r = requests.get(base + "/ipn/vnpay?" + query, timeout=12)
            code = r.json().get("RspCode") if r.status_code == 200 else None
        except (requests.RequestException, ValueError):
            code = None
        return code

    def note_task(self, dup):
        with self.lock:
            if not self.pool:
                return
            ref, amount = self.pool.pop()
        txn = self.next_txn()
        q = vnpay_ipn_query(self.fg.bank["FEEGATE_VNPAY_TMN_CODE"], self.fg.bank["FEEGATE_VNPAY_HASH_SECRET"],
                            ref, amount, txn)
        ok = False
        if dup:
            # the same notification to both gateways at once, around HAProxy
            barrier = threading.Barrier(2)
            codes = [None, None]

            def one(i, gw):
                barrier.wait(timeout=5)
                t = time.monotonic()
                codes[i] = self.send_ipn(f"http://{addr(gw)}:8080", q)
                self.record(t, codes[i] in ("00", "02"), via_lb=False)
            ts = [threading.Thread(target=one, args=(i, gw)) for i, gw in enumerate(("gw1", "gw2"))]
            for th in ts:
                th.start()
            for th in ts:
                th.join()
            ok = any(c in ("00", "02") for c in codes)
            with self.lock:
                self.dup_pairs += 1
                self.dup_both_00 += codes == ["00", "00"]
        if not ok:
            for i in range(self.TRIES):
                t = time.monotonic()
                code = self.send_ipn(self.fg.lb, q)
                ok = code in ("00", "02")
                self.record(t, ok)
                if ok or self.stop.is_set():
                    break
                time.sleep(1 + i)
        if ok:
            with self.lock:
                self.notes[ref] = txn
                self.note_acked_t[ref] = time.monotonic()

    def prepare(self, n):
        """Orders with an open VNPAY attempt each, for the notifications to pay."""
        def one(_):
            o = self.post_order("HAP-" + uuid.uuid4().hex[:20], record=False)
            if not o:
                return None
            token = o["checkout_url"].rsplit("/", 1)[1]
            r = requests.post(f"{self.fg.lb}/checkout/{token}", data={"bank": "vnpay"},
                              allow_redirects=False, timeout=15)
            if r.status_code != 303:
                return None
            q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.headers["Location"]).query))
            return q["vnp_TxnRef"], int(q["vnp_Amount"]) // 100
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as ex:
            got = [x for x in ex.map(one, range(n)) if x]
        if len(got) < n * 0.95:
            raise Failed(f"only {len(got)} of {n} attempts prepared")
        self.pool = got
        log(f"load: {len(got)} VNPAY attempts opened for the notification stream")

    def clock(self):
        period = 1.0 / (ORDER_RPS + NOTIFY_RPS)
        share = ORDER_RPS / (ORDER_RPS + NOTIFY_RPS)
        n = 0
        acc = 0.0
        next_t = time.monotonic()
        notes = 0
        while not self.stop.is_set():
            n += 1
            acc += share
            if acc >= 1:
                acc -= 1
                self.exec.submit(self.order_task)
            else:
                notes += 1
                self.exec.submit(self.note_task, notes % 3 == 0)  # every third one is a pair
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)

    def start(self):
        self.thread = threading.Thread(target=self.clock, daemon=True)
        self.thread.start()

    def finish(self):
        self.stop.set()
        self.thread.join()
        self.exec.shutdown(wait=True)

    def window_ms(self, since):
        """First failed answer after `since` to the first good answer after it (HAProxy's
        traffic; the pairs sent straight to a gateway are not what a portal sees)."""
        with self.lock:
            ans = sorted((d, ok) for s, d, ok, lb in self.answers if lb and d >= since)
        first_fail = next((d for d, ok in ans if not ok), None)
        if first_fail is None:
            return 0, None
        first_good = next((d for d, ok in ans if ok and d > first_fail), None)
        if first_good is None:
            return None, first_fail
        return int((first_good - first_fail) * 1000), first_fail

    def acked_between(self, t0, t1):
        with self.lock:
            return (sum(1 for t in self.order_acked_t.values() if t0 <= t < t1)
                    + sum(1 for t in self.note_acked_t.values() if t0 <= t < t1))

    def snapshot(self):
        with self.lock:
            return dict(self.orders), dict(self.notes)


class Duties:
    """Which gateway holds the duties (sweeper, webhook relay): feegate_duty_held of each
    gateway's /metrics, twice a second. A gateway that does not answer holds nothing."""

    def __init__(self):
        self.samples = []  # (t, {gw: 0|1})
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def poll(self):
        while not self.stop.is_set():
            held = {}
            for gw in ("gw1", "gw2"):
                try:
                    r = requests.get(f"http://{addr(gw)}:8080/metrics", timeout=0.5)
                    m = re.search(r"^feegate_duty_held(?:\{[^}]*\})? (\d+)", r.text, re.M)
                    held[gw] = int(m.group(1)) if m else None
                except requests.RequestException:
                    held[gw] = 0
            self.samples.append((time.monotonic(), held))
            self.stop.wait(0.5)

    def holders(self):
        return [gw for gw, v in (self.samples[-1][1].items() if self.samples else []) if v]

    def supported(self):
        return any(v is not None for _, h in self.samples for v in h.values())

    def summary(self, t0, t1):
        """(most holders at once for longer than 2 s, longest time with none in ms, holders at t1)."""
        ss = [(t, sum(v or 0 for v in h.values())) for t, h in self.samples if t0 <= t <= t1]
        longest_none = longest_two = 0.0
        none_since = two_since = None
        for t, n in ss:
            none_since = (none_since or t) if n == 0 else None
            two_since = (two_since or t) if n >= 2 else None
            if none_since is not None:
                longest_none = max(longest_none, t - none_since)
            if two_since is not None:
                longest_two = max(longest_two, t - two_since)
        last = [gw for gw, v in (self.samples[-1][1].items() if self.samples else []) if v]
        return longest_two, int(longest_none * 1000), last


# ------------------------------------------------------------------------------ checks

def verify(fg, cluster, load):
    """(lost, double, ledger_ok, where) over every success answer so far, read on the primary."""
    orders, notes = load.snapshot()
    leader = cluster.leader()
    with psycopg.connect(cluster.database_url, autocommit=True, connect_timeout=5) as c:
        in_recovery = c.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        where = c.execute("SELECT inet_server_addr()::text").fetchone()[0]
        if in_recovery:
            raise Failed("the read-write URL reached a standby")
        rows = c.execute("SELECT reference, id::text, count(*) OVER (PARTITION BY reference) FROM orders "
                         "WHERE client_id = %s AND reference = ANY(%s)",
                         (fg.client_id, list(orders))).fetchall()
        found = {}
        double = 0
        for ref, oid, n in rows:
            found.setdefault(ref, set()).add(oid)
            if n > 1:
                double += 1
        lost = sum(1 for ref, oid in orders.items() if oid not in found.get(ref, ()))
        rows = c.execute(
            "SELECT a.bank_order_ref, a.status, "
            " (SELECT count(*) FROM ledger_transfers t WHERE t.attempt_id = a.id AND t.code = 'payment'), "
            " (SELECT count(*) FROM bank_notifications n WHERE n.bank = 'vnpay' AND n.attempt_id = a.id AND n.success) "
            "FROM attempts a WHERE a.bank_order_ref = ANY(%s)", (list(notes),)).fetchall()
        by_ref = {r[0]: r for r in rows}
        for ref in notes:
            r = by_ref.get(ref)
            if r is None or r[1] != "succeeded" or r[2] == 0:
                lost += 1
            elif r[2] > 1 or r[3] > 1:
                double += 1
    r = subprocess.run([str(FEEGATE), "ledger", "check"], capture_output=True, text=True, timeout=300,
                       env=fg.base_env())
    if r.returncode != 0:
        log(f"ledger check failed:\n{(r.stdout + r.stderr)[-1500:]}")
    return lost, double, r.returncode == 0, f"{leader} ({where})"


# ------------------------------------------------------------------------------ faults

def fault_kill_primary(ctx):
    leader = ctx.cluster.leader()
    pid = ctx.cluster.postmaster_pid(leader)
    log(f"fault: SIGKILL of {leader}'s postmaster (pid {pid})")
    t = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_for("a new leader", lambda: (ctx.cluster.leader() or leader) != leader, 90)
    log(f"  {ctx.cluster.leader()} leads; waiting for {leader} to rejoin as synchronous standby")
    return t, lambda: None


def fault_partition_primary(ctx):
    leader = ctx.cluster.leader()
    log(f"fault: {leader} partitioned away (its veth down)")
    t = time.monotonic()
    ctx.net.cut(leader)
    wait_for("a new leader", lambda: (ctx.cluster.leader() or leader) != leader, 90)
    log(f"  {ctx.cluster.leader()} leads")

    def heal():
        log(f"  partition of {leader} healed; waiting for it to rejoin as synchronous standby")
        ctx.net.heal(leader)
    return t, heal


def fault_kill_gateway(ctx):
    # the gateway that holds the duties, so that their takeover is tried too
    holders = ctx.duties.holders()
    gw = holders[0] if holders else "gw1"
    other = "gw2" if gw == "gw1" else "gw1"
    log(f"fault: SIGKILL of gateway {gw} (master and workers)"
        + (", the one that holds the duties" if holders else ""))
    t = time.monotonic()
    ctx.procs.kill(gw)
    wait_for(f"HAProxy takes {gw} out", lambda: lb_up(ctx.fg) == {other}, 20)
    if holders:
        wait_for(f"{other} takes the duties over", lambda: ctx.duties.holders() == [other], 30)
        log(f"  {other} holds the duties {int((time.monotonic() - t) * 1000)} ms after the kill")

    def restart():
        # the phase's first half runs on the other gateway alone
        time.sleep(max(0.0, t + PHASE_S / 2 - time.monotonic()))
        log(f"  {gw} started again")
        ctx.fg.start_gateway(gw)
        wait_for(f"HAProxy takes {gw} back", lambda: lb_up(ctx.fg) == {"gw1", "gw2"}, 20)
    return t, restart


def fault_kill_redis_master(ctx):
    master = ctx.cluster.redis_master()
    name = next(h for h in ("redis1", "redis2") if addr(h) == master)
    log(f"fault: SIGKILL of the Redis master {name}")
    t = time.monotonic()
    ctx.procs.kill(name)
    wait_for("Sentinel promotes the replica", lambda: ctx.cluster.redis_master() not in (None, master), 60)
    log(f"  Sentinel names {ctx.cluster.redis_master()} master "
        f"{int((time.monotonic() - t) * 1000)} ms after the kill")

    def redis_back(gw):
        r = requests.get(f"http://{addr(gw)}:8080/readyz", timeout=1)
        return r.json().get("redis") == "ok"

    def followed():
        # the gateways ask the sentinels for the master (FEEGATE_REDIS_SENTINELS)
        wait_for("both gateways on the new Redis master",
                 lambda: redis_back("gw1") and redis_back("gw2"), 60, 0.5)
        log(f"  both gateways' /readyz say Redis ok {int((time.monotonic() - t) * 1000)} ms after the kill")
    return t, followed


ALL_FAULTS = {"kill_primary": fault_kill_primary, "partition_primary": fault_partition_primary,
              "kill_gateway": fault_kill_gateway, "kill_redis_master": fault_kill_redis_master}
FAULTS = [(n, ALL_FAULTS[n]) for n in
          (os.environ.get("HA_FAULTS") or ",".join(ALL_FAULTS)).split(",") if n]


class Ctx:
    pass


def run(ctx):
    ctx.net.up()
    ctx.cluster.start_etcd()
    ctx.cluster.start_postgres()
    ctx.cluster.start_redis()
    ctx.fg.setup()
    ctx.fg.start_banksim()
    ctx.fg.start_gateway("gw1")
    ctx.fg.start_gateway("gw2")
    ctx.fg.start_lb()
    duties = ctx.duties = Duties()
    duties.thread.start()
    load = Load(ctx.fg)
    # one attempt per notification (a pair is one); a phase outlasts PHASE_S by its recovery
    load.prepare(int(NOTIFY_RPS * (PHASE_S + 30) * len(FAULTS)) + 50)
    load.start()
    log(f"load: {ORDER_RPS:g} orders/s and {NOTIFY_RPS:g} notifications/s (every third one sent to both "
        f"gateways at once) through HAProxy, open loop")
    results = []
    failed = False
    t_prev = time.monotonic()
    time.sleep(5)
    for name, fault in FAULTS:
        t_fault, after = fault(ctx)
        wait_for("an answer after the fault", lambda: load.window_ms(t_fault)[0] is not None, 120)
        after()
        if name in ("kill_primary", "partition_primary"):
            wait_for("the cluster healthy again (leader and synchronous standby)", ctx.cluster.healthy, 180, 1)
            log(f"  healthy: {ctx.cluster.leader()} leads, the other is its synchronous standby")
        rest = PHASE_S - (time.monotonic() - t_fault)
        if rest > 0:
            time.sleep(rest)
        t_check = time.monotonic()
        lost, double, ledger_ok, where = verify(ctx.fg, ctx.cluster, load)
        window, first_fail = load.window_ms(t_fault)
        acked = load.acked_between(t_prev, t_check)
        t_prev = t_check
        line = f"HA-RESULT fault={name} acked={acked} lost={lost} double={double} window_ms={window}"
        print(line, flush=True)
        results.append(line)
        log(f"  checked on the primary {where}: ledger check {'clean' if ledger_ok else 'FAILED'}"
            + (f"; first failed answer {int((first_fail - t_fault) * 1000)} ms after the fault"
               if first_fail else "; no answer failed"))
        if lost or double or not ledger_ok:
            failed = True
        if duties.supported():
            two_s, none_ms, holders = duties.summary(t_fault, time.monotonic())
            log(f"  duties: {' '.join(holders) or 'nobody'} holds them now; none held for at most "
                f"{none_ms} ms in the phase; two held for {two_s:.1f} s at most")
            if two_s > 2 or not holders:
                log("  FAILED: the duties ran on two gateways for more than 2 s, or on none at the end")
                failed = True
    load.finish()
    duties.stop.set()
    lost, double, ledger_ok, where = verify(ctx.fg, ctx.cluster, load)
    orders, notes = load.snapshot()
    log(f"end: {len(orders)} orders and {len(notes)} notifications acknowledged, {load.dup_pairs} sent to both "
        f"gateways at once ({load.dup_both_00} answered 00 by both, each applied once: checked above); "
        f"lost={lost} double={double} ledger check {'clean' if ledger_ok else 'FAILED'} on {where}")
    if lost or double or not ledger_ok:
        failed = True
    return 1 if failed else 0


def try_lock(f):
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def main():
    if os.geteuid() != 0:
        sys.exit("tests/ha/run.py: run as root (network namespaces)")
    for b in (FEEGATE, BANKSIM):
        if not os.access(b, os.X_OK):
            sys.exit(f"tests/ha/run.py: {b} is not built (make all)")
    for tool in ("etcd", "etcdctl", "patroni", "haproxy", "redis-server", "redis-sentinel", "ip", "setpriv"):
        if not shutil.which(tool):
            sys.exit(f"tests/ha/run.py: {tool} not found (deploy/install-deps.sh ha)")
    unknown = set((os.environ.get("HA_FAULTS") or "").split(",")) - set(ALL_FAULTS) - {""}
    if unknown:
        sys.exit(f"tests/ha/run.py: unknown fault(s) {', '.join(sorted(unknown))}; known: {', '.join(ALL_FAULTS)}")
    # the namespaces and the address range are the machine's: one run at a time, and what a
    # killed run left behind is removed only by the run that holds the lock
    lock = open("/run/lock/feegate-ha.lock", "w")
    log("waiting for the lock of another run" if not try_lock(lock) else "lock taken")
    fcntl.flock(lock, fcntl.LOCK_EX)
    work = Path(tempfile.mkdtemp(prefix="feegate-ha.", dir="/var/tmp"))
    work.chmod(0o755)
    ctx = Ctx()
    ctx.net = Network()
    ctx.procs = Procs(work)
    ctx.cluster = Cluster(work, ctx.procs, ctx.net)
    ctx.fg = Feegate(work, ctx.procs, ctx.cluster)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rc = 1
    try:
        rc = run(ctx)
    except Failed as e:
        log(f"FAILED: {e}")
    except KeyboardInterrupt as e:
        log(f"interrupted ({e})")
        rc = 130
    except Exception as e:  # noqa: BLE001 - reported, then torn down
        log(f"FAILED: {type(e).__name__}: {e}")
        import traceback
        traceback.print_exc()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        log("tearing down")
        ctx.procs.stop_all()
        ctx.net.down()
        shutil.rmtree(ctx.cluster.shm, ignore_errors=True)
        if rc != 0 or os.environ.get("HA_KEEP") == "1":
            log(f"logs kept in {work}/logs")
        else:
            shutil.rmtree(work, ignore_errors=True)
        log(f"done in {time.monotonic() - T0:.0f} s, exit {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
