"""The operator's side: /metrics as Prometheus' own linter sees it (`promtool check metrics`), the
figures an operator alerts on (breakers, outbox, batchers, sweeper, ledger check, process_*),
the alerting rules and dashboard in deploy/, and the gateway's log as valid JSON lines whatever
the bytes of a request."""
import hashlib
import hmac
import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import requests

from conftest import REPO, order_body

PROMTOOL = shutil.which("promtool")
RULES = REPO / "deploy" / "prometheus" / "feegate-alerts.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "feegate-dashboard.json"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


def need_promtool():
    if not PROMTOOL:
        pytest.fail("promtool not found: deploy/install-deps.sh installs Debian's prometheus package")


def scrape(url):
    r = requests.get(url + "/metrics", timeout=10)
    assert r.status_code == 200, r.text[:300]
    return r.text


def parse(text):
    helps, types, samples = {}, {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, doc = line[7:].partition(" ")
            helps[name] = doc
        elif line.startswith("# TYPE "):
            name, kind = line[7:].split()
            types[name] = kind
        elif line.strip():
            m = SAMPLE.match(line)
            assert m, f"not Prometheus text: {line!r}"
            samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return helps, types, samples


def values(samples, name):
    return {lab: v for (n, lab), v in samples.items() if n == name}


def promtool_metrics(text):
    need_promtool()
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def test_promtool_accepts_metrics_and_every_family_has_help(gateway, api, stack):
    # traffic for many routes and statuses, a 202 among them (a webhook redelivery)
    client = stack.create_client(webhook_url="http://127.0.0.1:9/hook")
    from conftest import Api
    portal = Api(gateway.url, client.key)
    try:
        o = portal.create(order_body()).json()
        assert portal.post(f"/v1/orders/{o['id']}/cancel").status_code == 200
        deadline = time.monotonic() + 10
        deliveries = []
        while time.monotonic() < deadline and not deliveries:
            deliveries = portal.get("/v1/webhook-deliveries").json()["data"]
            time.sleep(0.1)
        assert deliveries, "the cancel made no webhook delivery"
        r = portal.post(f"/v1/webhook-deliveries/{deliveries[0]['id']}/redeliver")
        assert r.status_code == 202, (r.status_code, r.text)
    finally:
        portal.close()
    assert api.create(order_body(amount=0)).status_code == 400
    assert requests.get(gateway.url + "/nope", timeout=5).status_code == 404

    text = scrape(gateway.url)
    rc, out = promtool_metrics(text)
    assert rc == 0 and out == "", f"promtool check metrics: rc {rc}\n{out}"

    helps, types, samples = parse(text)
    assert set(types) <= set(helps), f"TYPE without HELP: {sorted(set(types) - set(helps))}"
    assert all(helps[n].strip() for n in helps), "an empty HELP"
    statuses = {re.search(r'status="([^"]*)"', lab).group(1)
                for lab in values(samples, "feegate_http_requests_total")}
    assert "other" not in statuses, statuses
    assert {"200", "201", "202", "400", "404"} <= statuses, statuses
    assert values(samples, "feegate_http_requests_total").get(
        '{route="webhooks_redeliver",status="202"}', 0) >= 1, values(samples, "feegate_http_requests_total")


REQUIRED = {
    "feegate_bank_breaker_state": "gauge",
    "feegate_outbox_due": "gauge",
    "feegate_outbox_oldest_due_seconds": "gauge",
    "feegate_batch_size_items": "histogram",
    "feegate_batch_wait_seconds": "histogram",
    "feegate_batch_pending_items": "gauge",
    "feegate_sweeper_lag_seconds": "gauge",
    "feegate_ledger_check_violations": "gauge",
    "feegate_ledger_check_last_run_timestamp_seconds": "gauge",
    "feegate_webhooks_failed_total": "counter",
    "feegate_webhooks_delivered_total": "counter",
    "feegate_db_pool_connections": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_start_time_seconds": "gauge",
}


def test_operator_figures_are_present_and_plausible(gateway, api, stack):
    for _ in range(3):
        assert api.create(order_body()).status_code == 201
    before = int(time.time())
    stack.cli("ledger", "check")
    deadline = time.monotonic() + 30
    while True:
        helps, types, samples = parse(scrape(gateway.url))
        checked = values(samples, "feegate_ledger_check_last_run_timestamp_seconds").get("", 0)
        if checked >= before or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for name, kind in REQUIRED.items():
        assert types.get(name) == kind, (name, types.get(name))
        assert name in helps, name
    assert before <= checked <= time.time() + 1, (before, checked)
    assert values(samples, "feegate_ledger_check_violations") == {"": 0.0}

    breakers = values(samples, "feegate_bank_breaker_state")
    assert {'{bank="vnpay"}', '{bank="momo"}', '{bank="vietqr"}'} <= set(breakers), breakers
    assert all(v in (0, 1, 2) for v in breakers.values()), breakers

    sizes = values(samples, 'feegate_batch_size_items_count')
    assert sizes.get('{batcher="intake"}', 0) >= 1, sizes
    waits = values(samples, 'feegate_batch_wait_seconds_count')
    assert waits.get('{batcher="intake"}', 0) >= 3, waits
    assert 0 <= values(samples, "feegate_sweeper_lag_seconds")[""] < 30, samples

    start = values(samples, "process_start_time_seconds")[""]
    assert time.time() - 86400 < start <= time.time(), start
    assert values(samples, "process_resident_memory_bytes")[""] > 1 << 20
    assert values(samples, "process_open_fds")[""] >= 3
    assert values(samples, "process_cpu_seconds_total")[""] > 0


def test_outbox_metrics_see_rows_left_due(gateway, api, stack):
    """Five rows due for a while that the relay cannot claim (locked by this test: the claim skips
    locked rows) show in feegate_outbox_due and feegate_outbox_oldest_due_seconds."""
    order = api.create(order_body()).json()
    with psycopg.connect(stack.database_url, connect_timeout=5) as conn:
        ids = [r[0] for r in conn.execute(
            "INSERT INTO webhook_deliveries (client_id, order_id, type, payload, next_attempt_at) "
            "SELECT o.client_id, o.id, 'order.test', '{}', now() + interval '2 seconds' "
            "FROM orders o, generate_series(1, 5) WHERE o.id = %s RETURNING id", (order["id"],)).fetchall()]
        conn.commit()
        # locked before they are due, so no claim can take them; they stay due while locked
        conn.execute("SELECT 1 FROM webhook_deliveries WHERE id = ANY(%s) FOR UPDATE", (ids,))
        try:
            deadline = time.monotonic() + 15
            due = oldest = 0
            while time.monotonic() < deadline:
                _, _, samples = parse(scrape(gateway.url))
                due = values(samples, "feegate_outbox_due")[""]
                oldest = values(samples, "feegate_outbox_oldest_due_seconds")[""]
                if due >= 5 and oldest >= 1:
                    break
                time.sleep(0.2)
            assert due >= 5 and oldest >= 1, (due, oldest)
        finally:
            conn.execute("DELETE FROM webhook_deliveries WHERE id = ANY(%s)", (ids,))
            conn.commit()


def test_alert_rules_pass_promtool_and_use_metrics_that_exist(gateway):
    need_promtool()
    r = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    import yaml
    doc = yaml.safe_load(RULES.read_text())
    rules = [rule for g in doc["groups"] for rule in g["rules"]]
    names = {rule["alert"] for rule in rules}
    for wanted in ("FeegateBankCircuitOpen", "FeegateOutboxBacklogGrowing", "FeegateNotificationsFailing",
                   "FeegateDatabaseUnavailable", "FeegateLedgerCheckFailing"):
        assert wanted in names, (wanted, names)
    _, types, _ = parse(scrape(gateway.url))
    known = set(types) | {n + s for n, t in types.items() if t == "histogram" for s in ("_bucket", "_sum", "_count")}
    for rule in rules:
        used = set(re.findall(r"\b((?:feegate|process)_[a-z_]+)", rule["expr"]))
        assert used, rule
        assert used <= known, (rule["alert"], used - known)
        assert rule.get("annotations", {}).get("summary"), rule


def test_dashboard_is_grafana_json_over_metrics_that_exist(gateway):
    doc = json.loads(DASHBOARD.read_text())
    assert doc["title"] and doc["panels"] and doc.get("schemaVersion")
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 8, exprs
    _, types, _ = parse(scrape(gateway.url))
    known = set(types) | {n + s for n, t in types.items() if t == "histogram" for s in ("_bucket", "_sum", "_count")}
    used = set()
    for e in exprs:
        used |= set(re.findall(r"\b((?:feegate|process)_[a-z_]+)", e))
    assert used <= known, used - known
    for wanted in ("feegate_bank_breaker_state", "feegate_outbox_due", "feegate_outbox_oldest_due_seconds",
                   "feegate_webhooks_failed_total", "feegate_ledger_check_violations"):
        assert wanted in used, wanted


def test_gateway_log_is_json_lines_whatever_the_bytes(gateway_factory, free_tcp_port):
    """Requests whose paths decode to invalid UTF-8, answered 503 by a gateway whose database
    cannot be reached (a 5xx is logged with its route, never its path, which may carry a
    checkout token): every line of its log parses as JSON."""
    gw = gateway_factory(DATABASE_URL=f"postgresql://feegate@127.0.0.1:{free_tcp_port}/feegate",
                         FEEGATE_DB_TIMEOUT_MS=1000)
    for path in ("/v1/orders/%FF%FE", "/v1/orders/%C3%28x", "/v1/orders/%ED%A0%80"):
        r = requests.get(gw.url + path, headers={"Authorization": "Bearer fgk_" + "0" * 32}, timeout=10)
        assert r.status_code == 503, (path, r.status_code)
    assert gw.stop() == 0
    lines = gw.log_path.read_bytes().splitlines()
    assert lines
    logged = []
    for line in lines:
        text = line.decode("utf-8")  # raises on invalid UTF-8
        if text.startswith("---- feegate serve"):
            continue  # the test harness's own marker between runs
        obj = json.loads(text)
        assert {"ts", "level", "pid", "component", "msg"} <= obj.keys(), obj
        logged.append(obj["msg"])
    assert sum("orders_get -> 503" in m for m in logged) == 3, logged[-10:]
    assert not any("/v1/orders/" in m for m in logged), logged[-10:]


def json_log(path):
    """Every line of a gateway log as a JSON object (the harness's run markers skipped)."""
    out = []
    for line in path.read_bytes().splitlines():
        text = line.decode("utf-8")  # raises on invalid UTF-8
        if not text.startswith("---- feegate serve"):
            out.append(json.loads(text))
    return out


def test_gateway_log_stays_json_when_a_signed_notification_carries_invalid_utf8(gateway_factory, stack):
    """Bytes that do reach the log: a correctly signed VNPAY notification whose vnp_TxnRef is not
    UTF-8 is logged with that reference (an unknown order). The line is valid JSON, the bad
    bytes written as U+FFFD."""
    gw = gateway_factory()
    env = stack.env
    ref = b"ZZ\xff\xfe\xc3(\xed\xa0\x80Q"

    def enc(v):  # PHP's urlencode, over bytes
        return "".join(chr(b) if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "-_.") else "%%%02X" % b
                       for b in (v if isinstance(v, bytes) else v.encode()))

    params = {"vnp_Amount": "20000000", "vnp_BankCode": "NCB", "vnp_BankTranNo": "VNP1",
              "vnp_CardType": "ATM", "vnp_OrderInfo": "x", "vnp_PayDate": time.strftime(
                  "%Y%m%d%H%M%S", time.gmtime(time.time() + 7 * 3600)),
              "vnp_ResponseCode": "00", "vnp_TmnCode": env["FEEGATE_VNPAY_TMN_CODE"],
              "vnp_TransactionNo": "1", "vnp_TransactionStatus": "00", "vnp_TxnRef": ref}
    data = "&".join(f"{k}={enc(v)}" for k, v in sorted(params.items()))  # docs/openapi.yaml: VNPAY
    sig = hmac.new(env["FEEGATE_VNPAY_HASH_SECRET"].encode(), data.encode(), hashlib.sha512).hexdigest()
    r = requests.get(f"{gw.url}/ipn/vnpay?{data}&vnp_SecureHash={sig}", timeout=15)
    assert r.status_code == 200 and r.json()["RspCode"] != "97", r.text  # signature accepted
    assert gw.stop() == 0
    msgs = [o["msg"] for o in json_log(gw.log_path)]
    assert any("vnpay notification for ZZ\ufffd" in m for m in msgs), msgs[-10:]


@pytest.fixture
def free_tcp_port():
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_gateway_stopped_while_its_workers_start_stops_cleanly(gateway_factory):
    """SIGTERM in the first milliseconds, before a worker has its handler: the signal waits for
    the handler (the worker drains and exits 0), so the stop is clean. Before, a worker still
    starting was killed by it and the gateway exited 1 about one time in ten."""
    unclean = []
    for i in range(15):
        gw = gateway_factory()
        requests.get(f"{gw.url}/healthz", timeout=5)
        time.sleep(0.02 * (i % 4))
        rc = gw.stop()
        if rc != 0:
            unclean.append((i, rc))
    assert not unclean, f"stops with a non-zero exit (attempt, status): {unclean}"
