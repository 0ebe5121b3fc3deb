"""Shared fixtures and helpers of the bank-flow, ledger, refund and webhook system tests.

Test modules do `from bankflow import *`. What is here:
  * `banksim` (session): build/banksim started with the stack's credentials on the stack's
    BANKSIM_PORT, sending VNPAY and VietQR notifications to the shared gateway (MoMo's go to the
    ipnUrl of the create call). The demo client's webhook URL is $BANKSIM_URL/portal/webhook, so
    the demo client's portal webhooks land in banksim's sink.
  * `sim` (function): the same banksim with its fault knobs reset and its notification target
    restored before and after the test.
  * `finance`, `agency_staff`: Api objects holding the finance and agency-1 staff tokens.
  * the citizen's steps (checkout page, choose a bank, approve at the bank), the bank formats
    in Python (VNPAY IPN, MoMo IPN, VietQR credit, all signed here, not by the C), ledger and
    webhook queries, `feegate ledger check`.
  * business days in Vietnam (`vn_day`, `compact`) and camt.053 treasury statements (`camt053`).
"""
import contextlib
import datetime
import hashlib
import hmac
import html
import json
import os
import re
import signal
import subprocess
import time
import urllib.parse
import uuid
from zoneinfo import ZoneInfo
from pathlib import Path

import psycopg
import pytest
import requests

from conftest import REPO, Api, Gateway, error_of, free_port, order_body, tail, to_json_bytes, unique_ref

__all__ = [
    "REPO", "Api", "Gateway", "error_of", "free_port", "order_body", "tail", "to_json_bytes", "unique_ref",
    "Banksim", "banksim", "sim", "finance", "agency_staff", "dedicated_gateway",
    "wait_until", "new_order", "get_order", "wait_status", "checkout_html", "bank_buttons",
    "choose_bank", "vnpay_open", "vnpay_confirm", "momo_open", "momo_confirm", "vietqr_details",
    "vietqr_transfer", "start_payment", "approve", "pay_order", "paid_order", "attempt_of",
    "php_urlencode", "vnp_secure_hash", "vnpay_ipn_query", "vnpay_send_ipn", "vn_compact",
    "momo_signature", "momo_ipn_body", "vietqr_signature", "send_vietqr_credit",
    "transfers", "payment_transfers", "account_id", "account_balance", "notification_rows",
    "exception_rows", "ledger_check", "assert_ledger_ok", "assert_single_payment",
    "webhooks_for", "wait_webhook", "verify_webhook_signature", "psql_superuser", "scratch_database", "cli_on",
    "scratch_paid_order",
    "json_body", "last_notification", "park_pending_queries", "VN", "vn_day", "compact", "camt053",
]

BANKSIM_BIN = os.environ.get("BANKSIM_BIN") or str(REPO / "build" / "banksim")
if not os.path.isabs(BANKSIM_BIN):
    BANKSIM_BIN = str(REPO / BANKSIM_BIN)

_BANK_ENV = ("FEEGATE_VNPAY_TMN_CODE", "FEEGATE_VNPAY_HASH_SECRET", "FEEGATE_MOMO_PARTNER_CODE",
             "FEEGATE_MOMO_ACCESS_KEY", "FEEGATE_MOMO_SECRET_KEY", "FEEGATE_VIETQR_WEBHOOK_SECRET")


def wait_until(pred, timeout=10.0, interval=0.05, what="condition"):
    """Polls pred() until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def json_body(resp):
    try:
        return resp.json()
    except ValueError:
        raise AssertionError(f"not JSON ({resp.status_code}): {resp.text[:500]}")


# ------------------------------------------------------------------------------ banksim

class Banksim:
    """One banksim process and its admin API."""

    def __init__(self, stack, feegate_url, log_path):
        self.stack = stack
        self.port = int(stack.env["BANKSIM_PORT"])
        self.url = stack.env.get("BANKSIM_URL") or f"http://127.0.0.1:{self.port}"
        self.feegate_url = feegate_url
        self.log_path = Path(log_path)
        self.proc = None
        self.http = requests.Session()

    def start(self):
        if not os.access(BANKSIM_BIN, os.X_OK):
            pytest.fail(f"{BANKSIM_BIN} is not built (run make)", pytrace=False)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FEEGATE_", "BANKSIM_"))}
        env.update({k: self.stack.env[k] for k in _BANK_ENV if self.stack.env.get(k)})
        env.update(BANKSIM_HOST="127.0.0.1", BANKSIM_PORT=str(self.port), BANKSIM_URL=self.url,
                   FEEGATE_URL=self.feegate_url)
        try:
            requests.get(self.url + "/healthz", timeout=0.5)
            pytest.fail(f"something already answers on {self.url}", pytrace=False)
        except requests.RequestException:
            pass
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BANKSIM_BIN], env=env, cwd=REPO, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"banksim exited with {self.proc.returncode}:\n{tail(self.log_path)}",
                            pytrace=False)
            try:
                if self.http.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        pytest.fail(f"banksim did not answer /healthz:\n{tail(self.log_path)}", pytrace=False)

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()
        self.http.close()
        return self.proc.returncode

    # --- plain HTTP
    def get(self, path, **kw):
        kw.setdefault("timeout", 15)
        return self.http.get(self.url + path, **kw)

    def post(self, path, **kw):
        kw.setdefault("timeout", 15)
        return self.http.post(self.url + path, **kw)

    # --- admin API
    def faults(self, bank=None, **knobs):
        body = dict(knobs)
        if bank:
            body["bank"] = bank
        r = self.post("/admin/faults", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def reset_faults(self):
        r = self.post("/admin/reset?only=faults")
        assert r.status_code == 200, r.text

    def config(self, feegate_url=None):
        if feegate_url is None:
            r = self.get("/admin/config")
        else:
            r = self.post("/admin/config", json={"feegate_url": feegate_url})
        assert r.status_code == 200, r.text
        return r.json()

    @contextlib.contextmanager
    def notifying(self, url):
        """VNPAY and VietQR notifications go to url inside the block."""
        self.config(url)
        try:
            yield
        finally:
            self.config(self.feegate_url)

    def notifications(self, bank=None, ref=None):
        params = {k: v for k, v in (("bank", bank), ("ref", ref)) if v}
        r = self.get("/admin/notifications", params=params)
        assert r.status_code == 200, r.text
        return r.json()["data"]

    def payments(self, bank=None, ref=None, status=None):
        params = {k: v for k, v in (("bank", bank), ("ref", ref), ("status", status)) if v}
        r = self.get("/admin/payments", params=params)
        assert r.status_code == 200, r.text
        return r.json()["data"]

    def resend(self, bank, ref):
        r = self.post("/admin/resend", json={"bank": bank, "ref": ref})
        assert r.status_code == 202, r.text
        return r.json()

    def webhooks(self, since=0):
        r = self.get("/portal/webhooks", params={"since": since})
        assert r.status_code == 200, r.text
        return r.json()["data"]


# Every test module that does `from bankflow import *` registers its own copy of the session
# fixture below, so pytest may set it up once per module: they share one process, started by
# the first and stopped by the last.
_shared = {"sim": None, "users": 0}


@pytest.fixture(scope="session")
def banksim(stack, gateway):
    if _shared["sim"] is None:
        _shared["sim"] = Banksim(stack, gateway.url, stack.dir / "banksim.log").start()
    _shared["users"] += 1
    sim = _shared["sim"]
    yield sim
    _shared["users"] -= 1
    if _shared["users"] == 0:
        _shared["sim"] = None
        rc = sim.stop()
        assert rc == 0, f"banksim exited with {rc}:\n{tail(sim.log_path)}"


@pytest.fixture
def sim(banksim):
    banksim.reset_faults()
    banksim.config(banksim.feegate_url)
    yield banksim
    banksim.reset_faults()
    banksim.config(banksim.feegate_url)


@pytest.fixture
def finance(gateway, stack):
    a = Api(gateway.url, stack.env["FEEGATE_FINANCE_TOKEN"])
    yield a
    a.close()


@pytest.fixture
def agency_staff(gateway, stack):
    a = Api(gateway.url, stack.env["FEEGATE_AGENCY_TOKEN"])
    yield a
    a.close()


@contextlib.contextmanager
def dedicated_gateway(stack, **extra_env):
    """A gateway of our own (other settings), stopped at the end of the block."""
    port = free_port()
    gw = Gateway(stack, port, extra_env, stack.dir / f"gateway-{port}.log")
    gw.start()
    try:
        yield gw
    finally:
        if gw.stop() is None:
            gw.kill()


# ------------------------------------------------------------------------------ orders, checkout

def new_order(api, **kw):
    r = api.create(order_body(**kw))
    assert r.status_code == 201, r.text
    return r.json()


def get_order(api, order_id):
    r = api.get(f"/v1/orders/{order_id}")
    assert r.status_code == 200, r.text
    return r.json()


def wait_status(api, order_id, status, timeout=10):
    box = {}

    def check():
        box["o"] = get_order(api, order_id)
        return box["o"]["status"] == status and box["o"]

    try:
        return wait_until(check, timeout, what=f"order {order_id} to be {status}")
    except AssertionError:
        raise AssertionError(f"order {order_id} is {box['o']['status']}, not {status}: {box['o']}")


def checkout_html(order, base=None):
    url = order["checkout_url"]
    if base:
        url = base + "/checkout/" + url.rsplit("/", 1)[1]
    r = requests.get(url, timeout=10)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["Content-Type"].startswith("text/html"), r.headers
    return r.content.decode("utf-8")


def bank_buttons(page):
    return re.findall(r'<button[^>]*name="bank"[^>]*value="([a-z]+)"', page)


def choose_bank(order, bank, base=None):
    """The citizen's POST /checkout/{token} bank=...; the answer, redirects not followed."""
    url = order["checkout_url"]
    if base:
        url = base + "/checkout/" + url.rsplit("/", 1)[1]
    return requests.post(url, data={"bank": bank}, allow_redirects=False, timeout=15)


def _banksim_path(sim, location):
    assert location.startswith(sim.url + "/"), (location, sim.url)
    return location[len(sim.url):]


def vnpay_open(sim, location):
    """GET the VNPAY pay page the gateway redirected to; returns vnp_TxnRef."""
    r = sim.get(_banksim_path(sim, location))
    assert r.status_code == 200, r.text[:800]
    ref = re.search(r'id="ref">([^<]+)<', r.text).group(1)
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert q["vnp_TxnRef"] == ref
    return ref


def vnpay_confirm(sim, ref, action="approve", **knobs):
    data = {"ref": ref, "action": action}
    data.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in knobs.items()})
    return sim.post("/paymentv2/confirm", data=data, allow_redirects=False)


def momo_open(sim, location):
    """GET the MoMo pay page behind payUrl; returns (orderId, t)."""
    r = sim.get(_banksim_path(sim, location))
    assert r.status_code == 200, r.text[:800]
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert re.search(r'id="ref">([^<]+)<', r.text).group(1) == q["orderId"]
    return q["orderId"], q["t"]


def momo_confirm(sim, order_id, token, action="approve", **knobs):
    data = {"orderId": order_id, "t": token, "action": action}
    data.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in knobs.items()})
    return sim.post("/momo/confirm", data=data, allow_redirects=False)


def vietqr_details(resp):
    """The VietQR page's payload (EMVCo text), transfer content and account."""
    assert resp.status_code == 200, resp.text[:800]
    page = resp.content.decode("utf-8")
    payload = html.unescape(re.search(r'<textarea[^>]*id="payload"[^>]*>([^<]*)</textarea>', page).group(1))
    content = html.unescape(re.search(r'id="content">([^<]*)<', page).group(1)).strip()
    account = html.unescape(re.search(r'id="account">([^<]*)<', page).group(1)).strip()
    assert "<svg" in page, page[:500]
    return {"payload": payload, "content": content, "account": account, "page": page}


def vietqr_transfer(sim, account_no, amount, content, faults=None, wait=True):
    body = {"account_no": account_no, "amount": amount, "content": content}
    if faults:
        body["faults"] = faults
    if not wait:
        body["wait"] = False
    r = sim.post("/vietqr/transfer", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def start_payment(sim, order, bank, base=None):
    """Choose bank at checkout and open the bank's page. Returns a dict: ref (bank_order_ref),
    and the bank's page handles (momo token, vietqr details)."""
    r = choose_bank(order, bank, base)
    if bank == "vietqr":
        d = vietqr_details(r)
        return {"bank": bank, "ref": d["content"], "vietqr": d}
    assert r.status_code == 303, (r.status_code, r.text[:800])
    loc = r.headers["Location"]
    if bank == "vnpay":
        return {"bank": bank, "ref": vnpay_open(sim, loc), "location": loc}
    ref, token = momo_open(sim, loc)
    return {"bank": bank, "ref": ref, "token": token, "location": loc}


def approve(sim, started, order, action="approve", **knobs):
    """Pays (or declines) a started payment at the bank; returns banksim's answer."""
    bank = started["bank"]
    if bank == "vnpay":
        return vnpay_confirm(sim, started["ref"], action, **knobs)
    if bank == "momo":
        return momo_confirm(sim, started["ref"], started["token"], action, **knobs)
    assert action == "approve"
    d = started["vietqr"]
    return vietqr_transfer(sim, d["account"], order["amount"], d["content"], faults=knobs or None)


def attempt_of(order, ref):
    found = [a for a in order["attempts"] if a["bank_order_ref"] == ref]
    assert len(found) == 1, (ref, order["attempts"])
    return found[0]


def pay_order(api, sim, bank, order=None, **order_kw):
    """A new (or given) order paid at bank through banksim; waits for `succeeded`."""
    order = order or new_order(api, **order_kw)
    started = start_payment(sim, order, bank)
    r = approve(sim, started, order)
    if bank != "vietqr":
        assert r.status_code == 303, (r.status_code, r.text[:500])
    o = wait_status(api, order["id"], "succeeded")
    return o, started


paid_order = pay_order


# ------------------------------------------------------------------------------ bank formats in Python

def php_urlencode(s):
    out = []
    for b in str(s).encode("utf-8"):
        c = chr(b)
        if c.isascii() and (c.isalnum() or c in "-_."):
            out.append(c)
        elif c == " ":
            out.append("+")
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def _vnp_hash_data(params):
    items = sorted((k, v) for k, v in params.items()
                   if k.startswith("vnp_") and k not in ("vnp_SecureHash", "vnp_SecureHashType") and v != "")
    return "&".join(php_urlencode(k) + "=" + php_urlencode(v) for k, v in items)


def vnp_secure_hash(secret, params):
    return hmac.new(secret.encode(), _vnp_hash_data(params).encode(), hashlib.sha512).hexdigest()


def vn_compact(t):
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(t + 7 * 3600))


def vnpay_ipn_query(env, ref, amount, txn, response="00", status="00", secret=None, **extra):
    """A signed VNPAY IPN (or return) query string, as docs/openapi.yaml describes it."""
    params = {
        "vnp_Amount": str(amount * 100), "vnp_BankCode": "NCB", "vnp_BankTranNo": f"VNP{txn}",
        "vnp_CardType": "ATM", "vnp_OrderInfo": "Thanh toan le phi", "vnp_PayDate": vn_compact(time.time()),
        "vnp_ResponseCode": response, "vnp_TmnCode": env["FEEGATE_VNPAY_TMN_CODE"],
        "vnp_TransactionNo": str(txn), "vnp_TransactionStatus": status, "vnp_TxnRef": ref,
    }
    params.update({k: str(v) for k, v in extra.items()})
    params["vnp_SecureHash"] = vnp_secure_hash(secret or env["FEEGATE_VNPAY_HASH_SECRET"], params)
    return "&".join(php_urlencode(k) + "=" + php_urlencode(v) for k, v in params.items())


def vnpay_send_ipn(base_url, query, session=None):
    """GET /ipn/vnpay?query; returns (RspCode, response)."""
    r = (session or requests).get(f"{base_url}/ipn/vnpay?{query}", timeout=30)
    assert r.status_code == 200, r.text
    return json_body(r)["RspCode"], r


_MOMO_IPN_KEYS = ("accessKey amount extraData message orderId orderInfo orderType partnerCode payType "
                  "requestId responseTime resultCode transId").split()


def momo_signature(secret, access_key, keys, obj):
    text = "&".join("%s=%s" % (k, access_key if k == "accessKey" else obj.get(k, "")) for k in keys)
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def momo_ipn_body(env, order_id, amount, trans_id, result_code=0, bad_signature=False):
    obj = {"partnerCode": env["FEEGATE_MOMO_PARTNER_CODE"], "orderId": order_id, "requestId": order_id,
           "amount": amount, "orderInfo": "Thanh toan le phi", "orderType": "momo_wallet",
           "transId": trans_id, "resultCode": result_code, "message": "ok", "payType": "qr",
           "responseTime": int(time.time() * 1000), "extraData": ""}
    obj["signature"] = momo_signature(env["FEEGATE_MOMO_SECRET_KEY"], env["FEEGATE_MOMO_ACCESS_KEY"],
                                      _MOMO_IPN_KEYS, obj)
    if bad_signature:
        obj["signature"] = obj["signature"][:-1] + ("0" if obj["signature"][-1] != "0" else "1")
    return json.dumps(obj, separators=(",", ":")).encode()


def vietqr_signature(secret, ts, body):
    return hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()


def send_vietqr_credit(env, base_url, txn_id, account_no, amount, content, ts=None, secret=None):
    body = json.dumps({"transaction_id": txn_id, "account_no": account_no, "amount": amount,
                       "content": content, "transaction_time": "2026-05-01 10:00:00"},
                      ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    ts = str(int(time.time()) if ts is None else ts)
    sig = vietqr_signature(secret or env["FEEGATE_VIETQR_WEBHOOK_SECRET"], ts, body)
    return requests.post(f"{base_url}/ipn/vietqr", data=body, timeout=15,
                         headers={"Content-Type": "application/json", "X-Timestamp": ts, "X-Signature": sig})


# ------------------------------------------------------------------------------ the database

def transfers(stack, order_id=None, attempt_id=None, code=None):
    """Ledger transfers as dicts, with debit/credit account names."""
    rows = stack.query(
        "SELECT t.id, t.code, t.amount, d.name, c.name, t.order_id::text, t.attempt_id::text, "
        "t.refund_id::text FROM ledger_transfers t JOIN ledger_accounts d ON d.id = t.debit_account "
        "JOIN ledger_accounts c ON c.id = t.credit_account "
        "WHERE (%(o)s::uuid IS NULL OR t.order_id = %(o)s::uuid) "
        "AND (%(a)s::uuid IS NULL OR t.attempt_id = %(a)s::uuid) AND (%(c)s::text IS NULL OR t.code = %(c)s) "
        "ORDER BY t.seq", {"o": order_id, "a": attempt_id, "c": code})
    keys = ("id", "code", "amount", "debit", "credit", "order_id", "attempt_id", "refund_id")
    return [dict(zip(keys, r)) for r in rows]


def payment_transfers(stack, attempt_id):
    return transfers(stack, attempt_id=attempt_id, code="payment")


def account_id(stack, name):
    return stack.scalar("SELECT id FROM ledger_accounts WHERE name = %s", (name,))


def account_balance(stack, name):
    """Debits minus credits of an account (raw sum of its entries)."""
    return stack.scalar("SELECT coalesce(sum(e.amount), 0) FROM ledger_entries e JOIN ledger_accounts a "
                        "ON a.id = e.account_id WHERE a.name = %s", (name,))


def park_pending_queries(stack, bank, seconds=30, keep=()):
    """Keeps every sweeper from asking `bank` about attempts other tests left pending for a while,
    so a test that makes that bank's API fail does not open the shared gateway's circuit breaker
    through them. `keep`: bank_order_refs left alone."""
    stack.query("UPDATE attempts SET last_query_at = now() + make_interval(secs => %s) "
                "WHERE bank = %s AND status = 'pending' AND NOT (bank_order_ref = ANY(%s))",
                (seconds, bank, list(keep)))


def notification_rows(stack, bank, ref=None, attempt_id=None):
    rows = stack.query(
        "SELECT dedupe_key, bank_order_ref, attempt_id::text, amount, success, outcome, source "
        "FROM bank_notifications WHERE bank = %(b)s AND (%(r)s::text IS NULL OR bank_order_ref = %(r)s) "
        "AND (%(a)s::uuid IS NULL OR attempt_id = %(a)s::uuid) ORDER BY id",
        {"b": bank, "r": ref, "a": attempt_id})
    keys = ("dedupe_key", "ref", "attempt_id", "amount", "success", "outcome", "source")
    return [dict(zip(keys, r)) for r in rows]


def exception_rows(stack, order_id=None, bank_txn_id=None):
    rows = stack.query(
        "SELECT id::text, kind, bank, bank_txn_id, order_id::text, attempt_id::text, amount FROM payment_exceptions "
        "WHERE (%(o)s::uuid IS NULL OR order_id = %(o)s::uuid) AND (%(t)s::text IS NULL OR bank_txn_id = %(t)s) "
        "ORDER BY created_at", {"o": order_id, "t": bank_txn_id})
    keys = ("id", "kind", "bank", "bank_txn_id", "order_id", "attempt_id", "amount")
    return [dict(zip(keys, r)) for r in rows]


def ledger_check(stack, database_url=None, *args):
    """`feegate ledger check [args]` on the stack's database, or the one at database_url."""
    env = dict(os.environ, DATABASE_URL=database_url or stack.database_url)
    return subprocess.run([stack.bin, "ledger", "check", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def assert_ledger_ok(stack):
    r = ledger_check(stack)
    assert r.returncode == 0, f"feegate ledger check failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"


def assert_single_payment(stack, order, ref, bank):
    """The attempt `ref` of order is succeeded with exactly one payment transfer of the order's
    amount, debit bank:<bank>:clearing, credit agency:<agency>:payable."""
    att = attempt_of(order, ref)
    assert att["status"] == "succeeded", att
    assert att["bank_txn_id"], att
    pays = payment_transfers(stack, att["id"])
    assert len(pays) == 1, pays
    t = pays[0]
    assert (t["amount"], t["debit"], t["credit"], t["order_id"]) == (
        order["amount"], f"bank:{bank}:clearing", f"agency:{order['agency']}:payable", order["id"]), t
    all_pay = transfers(stack, order_id=order["id"], code="payment")
    assert len(all_pay) == 1, all_pay
    return att


def psql_superuser(stack, sql, dbname="feegate"):
    """psql as the PostgreSQL superuser over the stack's unix socket (as its OS user)."""
    f = stack.facts
    cmd = [f"{f['PG_BIN']}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", f["PG_SOCKET_DIR"],
           "-p", f["PG_PORT"], "-U", f.get("PG_SUPERUSER", "postgres"), "-d", dbname, "-c", sql]
    if os.geteuid() == 0 and f.get("PG_USER") and f["PG_USER"] != "root":
        cmd = ["runuser", "-u", f["PG_USER"], "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd="/")


@contextlib.contextmanager
def scratch_database(stack):
    """A new empty database owned by the gateway's role, dropped afterwards; yields its URL."""
    name = "feegate_scratch_" + uuid.uuid4().hex[:10]
    r = psql_superuser(stack, f"CREATE DATABASE {name} OWNER feegate", dbname="postgres")
    assert r.returncode == 0, r.stderr
    u = urllib.parse.urlsplit(stack.database_url)
    try:
        yield urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))
    finally:
        r = psql_superuser(stack, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", dbname="postgres")
        assert r.returncode == 0, r.stderr


def cli_on(stack, url, *args):
    """Runs a feegate command against the database at url; returns what it printed."""
    env = dict(os.environ, DATABASE_URL=url, FEEGATE_MIGRATIONS=str(REPO / "migrations"))
    r = subprocess.run([stack.bin, *args], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, f"feegate {' '.join(args)}: {r.stdout}{r.stderr}"
    return r.stdout


def scratch_paid_order(stack, url, code, ref, txn_id, webhook_url=None, amount=50000):
    """In a migrated database no gateway serves: agency `code`, a portal client of it, and an
    order of `amount` paid by one VNPAY notification applied in SQL. Returns (order, attempt)."""
    cli_on(stack, url, "agency", "create", "--code", code, "--name", f"Scratch agency {code}",
           "--account", "970436:0099887766:SCRATCH", "--banks", "vnpay")
    hook = ["--webhook-url", webhook_url] if webhook_url else []
    client = cli_on(stack, url, "client", "create", "--name", f"Scratch portal {code}", "--agency", code, *hook)
    client_id = [l.split(": ", 1)[1] for l in client.splitlines() if l.startswith("client_id: ")][0]
    order_id, attempt_id = str(uuid.uuid4()), str(uuid.uuid4())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO orders (id, client_id, agency_id, reference, description, amount, return_url, checkout_token, "
            "created_at, updated_at, expires_at) SELECT %s, %s, id, %s, 'Scratch fee', %s, "
            "'https://portal.example/r', %s, now(), now(), now() + interval '15 minutes' FROM agencies WHERE code = %s",
            (order_id, client_id, code + "-1", amount, uuid.uuid4().hex * 2, code))
        conn.execute("INSERT INTO attempts (id, order_id, bank, bank_order_ref, amount) "
                     "VALUES (%s, %s, 'vnpay', %s, %s)", (attempt_id, order_id, ref, amount))
        item = {"i": 0, "bank": "vnpay", "kind": "payment", "ref": ref, "amount": amount,
                "success": True, "txn_id": txn_id, "failure_code": "", "source": "notification"}
        out = conn.execute("SELECT r_outcome, r_status FROM feegate_apply_notifications(%s::json)",
                           (json.dumps([item]),)).fetchall()
        assert out == [("applied", "succeeded")], out
    return order_id, attempt_id


# ------------------------------------------------------------------------------ portal webhooks

def webhooks_for(sim, order_id, type_=None):
    out = []
    for w in sim.webhooks():
        doc = w.get("json") or {}
        if (doc.get("data") or {}).get("id") == order_id and (type_ is None or doc.get("type") == type_):
            out.append(w)
    return out


def wait_webhook(sim, order_id, type_, timeout=15):
    return wait_until(lambda: webhooks_for(sim, order_id, type_), timeout,
                      what=f"portal webhook {type_} for order {order_id}")[0]


def verify_webhook_signature(entry, secret, max_skew=300):
    h = {k.lower(): v for k, v in entry["headers"].items()}
    ts = h["feegate-timestamp"]
    assert ts.isdigit() and abs(int(ts) - time.time()) < max_skew, ts
    sig = h["feegate-signature"]
    assert sig.startswith("v1="), sig
    want = hmac.new(secret.encode(), ts.encode() + b"." + entry["body"].encode("utf-8"), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(sig[3:], want), (sig, want)
    return json.loads(entry["body"])


def last_notification(sim, bank, ref, after_id=0, timeout=10):
    """The newest notification attempt banksim logged for ref (with id > after_id) that has an answer."""
    def look():
        got = [n for n in sim.notifications(bank=bank, ref=ref) if n["id"] > after_id and "status" in n]
        return got[-1] if got else None
    return wait_until(look, timeout, what=f"a {bank} notification for {ref}")


# ------------------------------------------------------------------------------ statements

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def vn_day(offset=0):
    return datetime.datetime.now(VN).date() + datetime.timedelta(days=offset)


def compact(d):
    return d.strftime("%Y%m%d")


def camt053(account, day, entries, opening=0, closing=None, ns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"):
    """A camt.053 statement: entries are (amount, "CRDT"|"DBIT", reference, remittance)."""
    net = sum(a if cd == "CRDT" else -a for a, cd, _, _ in entries)
    closing = opening + net if closing is None else closing
    ntry = "".join(
        f"<Ntry><Amt Ccy=\"VND\">{a}</Amt><CdtDbtInd>{cd}</CdtDbtInd><BookgDt><Dt>{day}</Dt></BookgDt>"
        f"<AcctSvcrRef>{ref}</AcctSvcrRef><NtryDtls><TxDtls><RmtInf><Ustrd>{rmt}</Ustrd></RmtInf></TxDtls>"
        f"</NtryDtls></Ntry>" for a, cd, ref, rmt in entries)
    return (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Document xmlns=\"{ns}\"><BkToCstmrStmt>"
            f"<GrpHdr><MsgId>{uuid.uuid4().hex[:16]}</MsgId></GrpHdr><Stmt><Id>S1</Id>"
            f"<Acct><Id><Othr><Id>{account}</Id></Othr></Id></Acct>"
            f"<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"VND\">{opening}</Amt>"
            f"<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>"
            f"<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"VND\">{closing}</Amt>"
            f"<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>{ntry}</Stmt></BkToCstmrStmt></Document>"
            ).encode()
