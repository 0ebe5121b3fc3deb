"""Fixtures for the feegate system tests: the real gateway against a real PostgreSQL and Redis.

tests/system/run.sh starts PostgreSQL and Redis with deploy/stack.sh in a temporary folder and
exports FEEGATE_STACK_DIR (holding `env` and `stack.env`), FEEGATE_BIN and BANKSIM_BIN. When
FEEGATE_STACK_DIR is not set (pytest run by hand), the session starts a stack of its own in a
temporary folder and destroys it at the end.

The gateway is started here, not by run.sh:
  * `gateway`         session-scoped, on the stack's FEEGATE_PORT, FEEGATE_WORKERS=2, logging to
                      $FEEGATE_STACK_DIR/gateway.log; stopped with SIGTERM at the end (exit 0).
  * `gateway_factory` function-scoped: start(**env) runs another gateway with extra settings on
                      a free port of its own (FEEGATE_PORT and FEEGATE_PUBLIC_URL set), so a test
                      that needs e.g. FEEGATE_DB_TIMEOUT_MS=1000 does not disturb the shared one.
Other helpers: `stack` (env, facts, stack.sh subcommands, psycopg queries, Redis commands, the
PostgreSQL processes, new clients and staff), `api` (an HTTP client holding the demo API key),
`order_body()` (a valid order body with a fresh reference).
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
STACK_SH = REPO / "deploy" / "stack.sh"
# How much slower than a normal build the gateway under test may be: `make asan` sets it (the
# sanitizers' build answers several times slower); tests scale their time limits by it.
TIME_SCALE = float(os.environ.get("FEEGATE_TEST_TIME_SCALE") or 1)

# Settings of the gateway that a stray variable in the caller's environment must not change.
_GATEWAY_SETTINGS = (
    "FEEGATE_CONFIG", "FEEGATE_LISTEN", "FEEGATE_PORT", "FEEGATE_WORKERS", "FEEGATE_PUBLIC_URL",
    "FEEGATE_DB_POOL_SIZE", "FEEGATE_DB_TIMEOUT_MS", "FEEGATE_DB_CONNECT_TIMEOUT_MS",
    "FEEGATE_IDEMPOTENCY_WAIT_MS", "FEEGATE_REDIS_TIMEOUT_MS", "FEEGATE_MAX_BODY_BYTES",
    "FEEGATE_MAX_JSON_DEPTH", "FEEGATE_BATCH_WINDOW_US", "FEEGATE_BATCH_MAX",
    "FEEGATE_HTTP_IDLE_TIMEOUT_S", "FEEGATE_SHUTDOWN_TIMEOUT_MS", "FEEGATE_AUTH_CACHE_TTL_S",
    "FEEGATE_LOG_LEVEL",
    "FEEGATE_HTTP_HEAD_TIMEOUT_MS", "FEEGATE_HTTP_BODY_MIN_RATE", "FEEGATE_MAX_CONNECTIONS",
    "FEEGATE_MAX_STATEMENT_BYTES", "FEEGATE_TLS_PORT", "FEEGATE_TLS_CERT", "FEEGATE_TLS_KEY", "FEEGATE_TEST_SINK",
    "FEEGATE_RATE_LIMIT_RPS", "FEEGATE_RATE_LIMIT_WINDOW_S", "FEEGATE_RATE_LIMIT_STORE",
    "FEEGATE_RATE_LIMIT_WAIT_MS", "FEEGATE_RATE_LIMIT_FALLBACK_MS",
    "FEEGATE_NODE_NAME", "FEEGATE_DUTY_LOCK_ID", "FEEGATE_DUTY_RETRY_MS", "FEEGATE_REPLICA_URL",
    "FEEGATE_REPLICA_MAX_LAG_S", "FEEGATE_REDIS_SENTINELS", "FEEGATE_REDIS_MASTER_NAME",
)


# ------------------------------------------------------------------------------ small helpers

def read_kv(path):
    """KEY=value lines (value unquoted or single-quoted), as deploy/stack.sh writes them."""
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        if len(v) >= 2 and v[0] == v[-1] == "'":
            v = v[1:-1]
        out[k.strip()] = v
    return out


def free_port():
    """A free TCP port on 127.0.0.1 below the ephemeral range (so no outgoing connection of
    this machine can be holding it a moment later)."""
    try:
        lo, hi = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except OSError:
        lo, hi = 32768, 60999
    first, last = (20000, lo - 1) if lo - 1 > 21000 else (hi + 1, 65000)
    for _ in range(500):
        port = random.randint(first, last)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        return port
    raise RuntimeError("no free TCP port found")


def tail(path, n=60):
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


def unique_ref(prefix="T"):
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def order_body(**overrides):
    """A valid order body with a fresh reference; a value of None removes that field."""
    body = {
        "reference": unique_ref(),
        "agency": "XNC",
        "description": "Lệ phí cấp hộ chiếu phổ thông",
        "amount": 200000,
        "return_url": "https://dichvucong.example.vn/thanh-toan/ket-qua",
    }
    for k, v in overrides.items():
        if v is None:
            body.pop(k, None)
        else:
            body[k] = v
    return body


def error_of(resp):
    """The {"error": {...}} object of an error answer, checking its shape on the way."""
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    doc = resp.json()
    assert isinstance(doc, dict) and isinstance(doc.get("error"), dict), doc
    err = doc["error"]
    assert isinstance(err.get("code"), str) and err["code"], doc
    assert isinstance(err.get("message"), str) and err["message"], doc
    if "field" in err:
        assert isinstance(err["field"], str), doc
    return err


# ------------------------------------------------------------------------------ the stack

class Client:
    def __init__(self, client_id, key, webhook_secret=None):
        self.id = client_id
        self.key = key
        self.webhook_secret = webhook_secret


class Stack:
    """The PostgreSQL + Redis stack of deploy/stack.sh in one folder."""

    def __init__(self, directory, feegate_bin):
        self.dir = Path(directory)
        self.bin = str(feegate_bin)
        self.env = read_kv(self.dir / "env")
        self.facts = read_kv(self.dir / "stack.env")
        for key in ("FEEGATE_URL", "FEEGATE_PORT", "FEEGATE_API_KEY", "FEEGATE_AGENCY",
                    "FEEGATE_AGENCY_2", "FEEGATE_AGENCY_TOKEN", "FEEGATE_FINANCE_TOKEN",
                    "DATABASE_URL", "REDIS_URL"):
            assert self.env.get(key), f"{self.dir}/env lacks {key}"
        self.database_url = self.env["DATABASE_URL"]
        self.redis_port = int(self.facts["REDIS_PORT"])
        self.pgdata = Path(self.facts["PGDATA"])

    # --- deploy/stack.sh subcommands
    def cmd(self, sub, timeout=120):
        r = subprocess.run(["bash", str(STACK_SH), sub, str(self.dir)], capture_output=True,
                           text=True, timeout=timeout)
        assert r.returncode == 0, f"stack.sh {sub} failed ({r.returncode}):\n{r.stdout}{r.stderr}"

    def pg_stop(self):
        self.cmd("pg-stop")

    def pg_start(self):
        self.cmd("pg-start")

    def redis_stop(self):
        self.cmd("redis-stop")

    def redis_start(self):
        self.cmd("redis-start")

    # --- PostgreSQL
    def connect(self):
        return psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)

    def query(self, sql, params=None):
        with self.connect() as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def scalar(self, sql, params=None):
        rows = self.query(sql, params)
        assert len(rows) == 1, rows
        return rows[0][0]

    def postmaster_pid(self):
        first = (self.pgdata / "postmaster.pid").read_text().splitlines()[0]
        return int(first.strip())

    def postgres_pids(self):
        """The postmaster and its children (every PostgreSQL process of the stack)."""
        master = self.postmaster_pid()
        pids = [master]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == master:
                pids.append(int(entry.name))
        return pids

    # --- Redis (RESP over a plain socket; no client library needed)
    def redis(self, *args, timeout=5):
        parts = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = a.encode() if isinstance(a, str) else a
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        with socket.create_connection(("127.0.0.1", self.redis_port), timeout=timeout) as s:
            s.sendall(b"".join(parts))
            data = b""
            while not data.endswith(b"\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        line = data.split(b"\r\n", 1)[0].decode()
        if line.startswith("-"):
            raise RuntimeError(f"redis error: {line}")
        if line[:1] == ":":
            return int(line[1:])
        return line[1:]

    # --- CLI
    def cli(self, *args):
        env = dict(os.environ, DATABASE_URL=self.database_url)
        r = subprocess.run([self.bin, *args], capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, f"feegate {' '.join(args)} failed ({r.returncode}): {r.stderr}"
        return r.stdout

    def create_client(self, agencies=("XNC",), name=None, webhook_url=None):
        args = ["client", "create", "--name", name or f"Test client {uuid.uuid4().hex[:8]}"]
        for a in agencies:
            args += ["--agency", a]
        if webhook_url:
            args += ["--webhook-url", webhook_url]
        out = self.cli(*args)
        lines = [l.strip() for l in out.splitlines() if l.strip()]
        labelled = dict(l.split(": ", 1) for l in lines[:-1] if ": " in l)
        key = lines[-1].split(": ", 1)[-1]
        assert labelled.get("client_id") and key, out
        return Client(labelled["client_id"], key, labelled.get("webhook_secret"))

    def create_staff(self, role, agency=None, name=None):
        args = ["staff", "create", "--name", name or f"Staff {uuid.uuid4().hex[:8]}", "--role", role]
        if agency:
            args += ["--agency", agency]
        out = self.cli(*args)
        return [l.strip() for l in out.splitlines() if l.strip()][-1].split(": ", 1)[-1]


@pytest.fixture(scope="session")
def stack():
    feegate_bin = Path(os.environ.get("FEEGATE_BIN") or REPO / "build" / "feegate")
    if not feegate_bin.is_absolute():
        feegate_bin = REPO / feegate_bin
    if not os.access(feegate_bin, os.X_OK):
        pytest.fail(f"{feegate_bin} not found: run `make all && bash tests/system/run.sh build`",
                    pytrace=False)
    given = os.environ.get("FEEGATE_STACK_DIR")
    if given:
        yield Stack(given, feegate_bin)
        return
    # Run by hand: a stack of our own, destroyed at the end.
    directory = tempfile.mkdtemp(prefix="feegate-system.")
    os.chmod(directory, 0o755)
    env = dict(os.environ, STACK_FREE_PORTS="1", FEEGATE_BIN=str(feegate_bin))
    try:
        r = subprocess.run(["bash", str(STACK_SH), "start", directory], env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"stack.sh start failed:\n{r.stderr}"
        yield Stack(directory, feegate_bin)
    finally:
        subprocess.run(["bash", str(STACK_SH), "destroy", directory], capture_output=True, timeout=120)
        shutil.rmtree(directory, ignore_errors=True)


# ------------------------------------------------------------------------------ the gateway

class Gateway:
    """One `feegate serve` (master and workers) with the stack's environment."""

    def __init__(self, stack, port, extra_env, log_path):
        self.stack = stack
        self.port = int(port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path)
        env = {k: v for k, v in os.environ.items() if k not in _GATEWAY_SETTINGS}
        env.update(stack.env)
        env.update({"FEEGATE_WORKERS": "2", "FEEGATE_PORT": str(self.port),
                    "FEEGATE_PUBLIC_URL": self.url,
                    "FEEGATE_MIGRATIONS": os.environ.get("FEEGATE_MIGRATIONS", str(REPO / "migrations"))})
        # Each gateway of a test has a duty lock of its own (its sweeper and relay run as they
        # did with one gateway), unless the test makes several share one (test_ha_gateway.py).
        env["FEEGATE_DUTY_LOCK_ID"] = str(self.port)
        env.update({k: str(v) for k, v in extra_env.items()})
        self.env = env
        self.shutdown_timeout_s = int(env.get("FEEGATE_SHUTDOWN_TIMEOUT_MS", "15000")) / 1000
        self.proc = None
        self.returncode = None

    @property
    def pid(self):
        return self.proc.pid

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        self.log.write(f"---- feegate serve on port {self.port} ----\n".encode())
        self.log.flush()
        self.proc = subprocess.Popen([self.stack.bin, "serve"], cwd=REPO, env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout=15):
        timeout *= TIME_SCALE
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"feegate serve exited with {self.proc.returncode} at start:\n"
                            f"{tail(self.log_path)}", pytrace=False)
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        pytest.fail(f"feegate serve did not answer /healthz in {timeout} s:\n{tail(self.log_path)}",
                    pytrace=False)

    def terminate(self):
        """SIGTERM to the master only (it forwards it to its workers)."""
        os.kill(self.proc.pid, signal.SIGTERM)

    def stop(self, timeout=None):
        """SIGTERM, wait; returns the exit status (None when it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout=timeout or self.shutdown_timeout_s + 5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                self.returncode = None
                self.log.close()
                return None
        self.returncode = self.proc.returncode
        self.log.close()
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def gateway(stack):
    # every test signs in from 127.0.0.1: the per-address sign-in limit is for real offices
    gw = Gateway(stack, stack.env["FEEGATE_PORT"], {"FEEGATE_LOGIN_RATE_PER_IP": 100000}, stack.dir / "gateway.log")
    gw.start()
    yield gw
    rc = gw.stop()
    assert rc == 0, f"the shared gateway exited with {rc}:\n{tail(gw.log_path)}"


@pytest.fixture(autouse=True)
def _shared_gateway_alive(request):
    """A test using the shared gateway fails at once, with its log, if that gateway is gone
    (rather than with "connection refused" somewhere in the test)."""
    if "gateway" in request.fixturenames:
        gw = request.getfixturevalue("gateway")
        if gw.proc.poll() is not None:
            pytest.fail(f"the shared gateway (pid {gw.proc.pid}) exited with {gw.proc.returncode} before "
                        f"this test:\n{tail(gw.log_path, 20)}", pytrace=False)
    yield


@pytest.fixture
def gateway_factory(stack):
    """start(**env) -> a Gateway on its own free port with those extra settings."""
    started = []

    def start(wait=True, **extra_env):
        port = free_port()
        gw = Gateway(stack, port, extra_env, stack.dir / f"gateway-{port}.log")
        started.append(gw)
        return gw.start(wait=wait)

    yield start
    for gw in started:
        if gw.proc is not None and gw.proc.poll() is None:
            if gw.stop() is None:
                gw.kill()


# ------------------------------------------------------------------------------ HTTP

class Api:
    """requests against one gateway, with a default bearer key."""

    def __init__(self, base_url, key):
        self.base = base_url
        self.key = key
        self.session = requests.Session()

    def request(self, method, path, *, key="default", headers=None, timeout=15, **kw):
        h = {}
        if key == "default":
            key = self.key
        if key is not None:
            h["Authorization"] = f"Bearer {key}"
        h.update(headers or {})
        return self.session.request(method, self.base + path, headers=h, timeout=timeout, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def create(self, body=None, *, idem=None, raw=None, headers=None, **kw):
        """POST /v1/orders with a dict body (sent as compact UTF-8 JSON) or raw bytes."""
        h = {"Content-Type": "application/json"}
        if idem is not None:
            h["Idempotency-Key"] = idem
        h.update(headers or {})
        data = raw if raw is not None else to_json_bytes(order_body() if body is None else body)
        return self.post("/v1/orders", data=data, headers=h, **kw)

    def close(self):
        self.session.close()


def to_json_bytes(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@pytest.fixture
def api(gateway, stack):
    a = Api(gateway.url, stack.env["FEEGATE_API_KEY"])
    yield a
    a.close()


@pytest.fixture(scope="session")
def xnc_only_client(stack):
    """A second portal client that may bill agency XNC only."""
    return stack.create_client(agencies=("XNC",))


@pytest.fixture
def other_api(gateway, xnc_only_client):
    a = Api(gateway.url, xnc_only_client.key)
    yield a
    a.close()
