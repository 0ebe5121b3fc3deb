"""The benchmark load generator measures what it should (tests/bench/loadgen.c).

Against tests/bench/ceiling.c in its fixed-delay mode, a server whose latency is known: the
percentiles land on the delay, the achieved rate matches the offered one, and a server that
stalls shows the stall in p99 and max for every request that was due during it, not only for
the ones already on the wire (no coordinated omission). Those need no PostgreSQL; the tools are
built here with cc when BUILD_DIR/bench/ lacks them or they are older than their sources.

test_flow_pays_every_order runs the flow scenario (order, checkout, signed VNPAY IPN, status
read) against the real stack (the shared gateway, PostgreSQL, Redis, banksim) and checks in the
database that every flow paid its order once.

test_bench_quick_runs runs `tests/bench/run.sh BUILD_DIR quick` (`make bench QUICK=1`, about
a minute and a half; it starts its own stack).
"""
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from bankflow import assert_ledger_ok, banksim, wait_until  # noqa: F401 (banksim is a fixture)

REPO = Path(__file__).resolve().parents[2]
BENCH_SRC = REPO / "tests" / "bench"
CFLAGS = ["-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror", "-Wshadow",
          "-Wstrict-prototypes", "-Wno-unused-parameter"]
LIBS = ["-levent", "-lssl", "-lcrypto", "-ljansson", "-lm"]


def build_dir():
    feegate = os.environ.get("FEEGATE_BIN")
    return Path(feegate).resolve().parent if feegate else REPO / "build"


@pytest.fixture(scope="session")
def tools(tmp_path_factory):
    """Paths of loadgen and ceiling, fresh."""
    sources = {
        "loadgen": [BENCH_SRC / "loadgen.c", BENCH_SRC / "hist.c", BENCH_SRC / "vnpay_ipn.c"],
        "ceiling": [BENCH_SRC / "ceiling.c"],
    }
    newest = max(p.stat().st_mtime for p in BENCH_SRC.glob("*.[ch]"))
    built = build_dir() / "bench"
    if all((built / name).exists() and (built / name).stat().st_mtime >= newest for name in sources):
        return {name: built / name for name in sources}
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc):
        pytest.fail(f"{cc} not found: cannot build the bench tools")
    out = tmp_path_factory.mktemp("bench-tools")
    paths = {}
    for name, srcs in sources.items():
        target = out / name
        res = subprocess.run([cc, *CFLAGS, "-o", str(target), *map(str, srcs), *LIBS],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, f"building {name} failed:\n{res.stderr}"
        paths[name] = target
    return paths


@contextmanager
def server(tools, tmp_path, delay_ms=0, workers=1):
    """The ceiling server on a free loopback port, in its own process group."""
    port_file = tmp_path / f"port-{time.monotonic_ns()}"
    args = [str(tools["ceiling"]), "--workers", str(workers), "--port-file", str(port_file)]
    if delay_ms:
        args += ["--delay-ms", str(delay_ms)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, f"ceiling exited: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "ceiling did not start in 10 s"
            time.sleep(0.02)
        yield int(port_file.read_text()), proc
    finally:
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        proc.stderr.close()


def loadgen_args(tools, port, *extra):
    return [str(tools["loadgen"]), "--url", f"http://127.0.0.1:{port}", "--scenario", "fixed", *map(str, extra)]


def run_loadgen(tools, port, *extra, timeout=60):
    res = subprocess.run(loadgen_args(tools, port, *extra), capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"loadgen failed ({res.returncode}):\n{res.stderr}"
    return json.loads(res.stdout)


def slow_count(result, threshold_ms):
    """Samples at or above threshold_ms, from the histogram (bucket tops in microseconds)."""
    return sum(n for top_us, n in result["histogram"]["buckets"] if top_us >= threshold_ms * 1000)


def test_fixed_delay_gives_the_delay(tools, tmp_path):
    with server(tools, tmp_path, delay_ms=20) as (port, _):
        r = run_loadgen(tools, port, "--rate", 400, "--duration", 3, "--warmup", 0.5,
                        "--connections", 32, "--histogram")
    lat = r["latency_ms"]
    assert r["errors"]["total"] == 0, r
    assert r["requests"] == 1200 and r["completed"] == 1200, r
    assert abs(r["achieved_rate"] - 400) <= 400 * 0.02, r
    # nothing can be faster than the delay (latency counts from the intended send time)
    assert lat["min"] >= 19.95, lat
    assert 20 <= lat["p50"] <= 30, lat
    assert 20 <= lat["p99"] <= 80, lat
    assert lat["p50"] <= lat["p99"] <= lat["p99_9"] <= lat["max"], lat
    assert sum(n for _, n in r["histogram"]["buckets"]) == r["completed"]
    assert r["status"] == {"200": 1200}


def test_a_stall_shows_in_the_tail(tools, tmp_path):
    """SIGSTOP the server for 300 ms: every request due meanwhile is late, not just 8."""
    connections, rate = 8, 400
    with server(tools, tmp_path, delay_ms=2) as (port, proc):
        lg = subprocess.Popen(loadgen_args(tools, port, "--rate", rate, "--duration", 4, "--warmup", 0.5,
                                           "--connections", connections, "--histogram"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1.5)  # well inside the measured window
            os.killpg(proc.pid, signal.SIGSTOP)
            time.sleep(0.3)
            os.killpg(proc.pid, signal.SIGCONT)
            out, err = lg.communicate(timeout=60)
        finally:
            if lg.poll() is None:
                lg.kill()
                lg.wait()
    assert lg.returncode == 0, err
    r = json.loads(out)
    lat = r["latency_ms"]
    assert r["errors"]["total"] == 0, r
    assert lat["max"] >= 250, lat
    assert lat["p99"] >= 150, lat
    assert lat["p50"] < 30, lat
    # requests due in the first 200 ms of the stall waited at least 100 ms: about 80 of them.
    # A closed-loop tool would have seen at most one per connection.
    slow = slow_count(r, 100)
    assert slow >= 40 and slow > 2 * connections, (slow, lat)


def test_saturation_finds_a_known_capacity(tools, tmp_path):
    """4 connections to a 20 ms server carry at most 200 requests/s."""
    with server(tools, tmp_path, delay_ms=20) as (port, _):
        r = run_loadgen(tools, port, "--find-saturation", "--connections", 4, "--rate-start", 60,
                        "--rate-factor", 1.5, "--step-duration", 1, "--step-warmup", 0.3,
                        "--step-pause", 0.1, "--refine", 2, "--duration", 1, "--warmup", 0.3,
                        timeout=120)
    assert r["mode"] == "saturation"
    assert 130 <= r["saturation_rate"] <= 200, [(s["offered_rate"], s["achieved_rate"]) for s in r["steps"]]
    failed = [s for s in r["steps"] if not s["pass"]]
    assert failed and min(s["offered_rate"] for s in failed) > r["saturation_rate"]
    half = r["at_half"]
    assert half["offered_rate"] == pytest.approx(r["saturation_rate"] / 2, rel=0.01)
    assert half["errors"]["total"] == 0 and 20 <= half["latency_ms"]["p50"] <= 30
    assert "histogram" in half


def test_saturation_stops_at_rate_max(tools, tmp_path):
    with server(tools, tmp_path) as (port, _):
        r = run_loadgen(tools, port, "--find-saturation", "--connections", 8, "--rate-start", 500,
                        "--rate-factor", 2, "--rate-max", 2000, "--step-duration", 0.5,
                        "--step-warmup", 0.1, "--step-pause", 0, "--duration", 0.5, "--warmup", 0)
    assert [s["offered_rate"] for s in r["steps"]] == [500, 1000, 2000]
    assert r["saturation_rate"] == 2000 and r.get("capped_at_rate_max") is True
    assert r["at_half"]["offered_rate"] == 1000


def test_idle_connections(tools, tmp_path):
    with server(tools, tmp_path, workers=2) as (port, _):
        res = subprocess.run([str(tools["loadgen"]), "--url", f"http://127.0.0.1:{port}", "--idle", "300",
                              "--hold", "0.2", "--path", "/"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    line = json.loads(res.stdout.splitlines()[0])
    assert line == {"mode": "idle", "requested": 300, "open": 300, "failed": 0}


def test_only_loopback(tools):
    res = subprocess.run([str(tools["loadgen"]), "--url", "http://192.0.2.1:80", "--scenario", "fixed",
                          "--rate", "1", "--duration", "1"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "loopback" in res.stderr


def test_flow_pays_every_order(tools, stack, gateway, banksim):
    """20 flows/s for 1 s of warm-up and 3 s measured: 80 orders, each created, sent to VNPAY at
    checkout, paid by a signed IPN and read back as succeeded, with nothing failing."""
    env = stack.env
    tag = f"systest{uuid.uuid4().hex[:10]}"
    res = subprocess.run(
        [str(tools["loadgen"]), "--url", gateway.url, "--scenario", "flow", "--rate", "20", "--duration", "3",
         "--warmup", "1", "--connections", "8", "--tag", tag, "--bearer", env["FEEGATE_API_KEY"],
         "--agency", env["FEEGATE_AGENCY"], "--vnpay-tmn-code", env["FEEGATE_VNPAY_TMN_CODE"],
         "--vnpay-secret", env["FEEGATE_VNPAY_HASH_SECRET"]],
        capture_output=True, text=True, timeout=60, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout)
    assert r["errors"]["total"] == 0, r.get("first_error", r["errors"])
    assert r["requests"] == 60 and r["completed"] == 60, r
    assert r["status"] == {"201": 60, "303": 60, "200": 120}, r["status"]
    steps = r["flow_steps"]
    assert [s["step"] for s in steps] == ["order", "checkout", "ipn", "status"], steps
    assert [s["status"] for s in steps] == [{"201": 60}, {"303": 60}, {"200": 60}, {"200": 60}], steps
    # the steps add up to the flow (each starts where the previous one ended)
    assert sum(s["latency_ms"]["mean"] for s in steps) == pytest.approx(r["latency_ms"]["mean"], rel=0.05, abs=0.5)

    # warm-up flows run in full too: 80 orders, each succeeded with one paid VNPAY attempt and one
    # payment transfer of its amount from VNPAY's clearing account to the agency's payable account
    rows = stack.query(
        "SELECT o.id::text, o.status, o.amount, "
        "       (SELECT count(*) FROM attempts a WHERE a.order_id = o.id AND a.bank = 'vnpay' "
        "           AND a.status = 'succeeded' AND a.bank_txn_id IS NOT NULL), "
        "       (SELECT count(*) FROM attempts a WHERE a.order_id = o.id), "
        "       (SELECT array_agg(t.amount || ' ' || d.name || ' ' || c.name) FROM ledger_transfers t "
        "          JOIN ledger_accounts d ON d.id = t.debit_account JOIN ledger_accounts c ON c.id = t.credit_account "
        "         WHERE t.order_id = o.id AND t.code = 'payment') "
        "  FROM orders o WHERE o.reference LIKE %s", (f"LG-{tag}-%",))
    assert len(rows) == 80, len(rows)
    want_transfer = [f"200000 bank:vnpay:clearing agency:{env['FEEGATE_AGENCY']}:payable"]
    for order_id, status, amount, paid_attempts, attempts, pays in rows:
        assert (status, amount, paid_attempts, attempts, pays) == ("succeeded", 200000, 1, 1, want_transfer), order_id
    notified = stack.scalar(
        "SELECT count(*) FROM bank_notifications n JOIN attempts a ON a.id = n.attempt_id "
        "JOIN orders o ON o.id = a.order_id WHERE o.reference LIKE %s AND n.bank = 'vnpay' AND n.success "
        "AND n.outcome = 'applied'", (f"LG-{tag}-%",))
    assert notified == 80
    assert_ledger_ok(stack)

    # and the portal heard of each payment: the demo client's webhooks land in banksim
    ids = {row[0] for row in rows}

    def all_delivered():
        docs = [w.get("json") or {} for w in banksim.webhooks()]
        got = {(d.get("data") or {}).get("id") for d in docs if d.get("type") == "order.succeeded"}
        return ids <= got

    wait_until(all_delivered, timeout=30, what="order.succeeded webhooks for the 80 orders")


def test_bench_quick_runs():
    """`make bench QUICK=1` runs end to end on a stack of its own (its figures are not judged
    here: speed is measured by `make bench`, never asserted in tests)."""
    res = subprocess.run(["bash", str(BENCH_SRC / "run.sh"), str(build_dir()), "quick"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    results = json.loads((REPO / "bench" / "results.json").read_text())
    assert {s["name"] for s in results["scenarios"]} >= {"http_ceiling", "intake", "status_reads", "pg_ledger",
                                                          "pg_apply"}
    # the database-alone posting paid every prepared attempt (or the scenario fails); both it and
    # the ledger-alone posting count items, 100 per pgbench transaction
    for name in ("pg_ledger", "pg_apply"):
        row = next(s for s in results["scenarios"] if s["name"] == name)
        assert "error" not in row, row
        assert row["rate"] == row["pgbench"]["tps"] * 100, row
