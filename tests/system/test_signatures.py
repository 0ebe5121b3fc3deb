"""Known-answer tests of the bank protocols' signing, with the expected digests computed here in
Python (hmac, hashlib, binascii) from the formats in docs/openapi.yaml, never by the project's C.

banksim shares the adapters' signing code, so an end-to-end run could not catch a mistake made
on both sides; these tests can. They ask the C through `banksim sign ...` (BANKSIM_BIN, default
build/banksim), and they drive a banksim of their own, acting as the gateway in Python. They need
neither PostgreSQL nor the gateway.
"""
import binascii
import hashlib
import hmac
import http.server
import json
import os
import queue
import socket
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
BANKSIM = os.environ.get("BANKSIM_BIN") or str(REPO / "build" / "banksim")

VNP_TMN, VNP_SECRET = "KATMN001", "kat-vnpay-secret"
MOMO_PARTNER, MOMO_ACCESS, MOMO_SECRET = "KATMOMO", "kat-momo-access", "kat-momo-secret"
VIETQR_SECRET = "kat-vietqr-secret"

VNP_QUERYDR = "RequestId|Version|Command|TmnCode|TxnRef|TransactionDate|CreateDate|IpAddr|OrderInfo"
VNP_REFUND = ("RequestId|Version|Command|TmnCode|TransactionType|TxnRef|Amount|TransactionNo|"
              "TransactionDate|CreateBy|CreateDate|IpAddr|OrderInfo")
VNP_QUERYDR_RESPONSE = ("ResponseId|Command|ResponseCode|Message|TmnCode|TxnRef|Amount|BankCode|"
                        "PayDate|TransactionNo|TransactionType|TransactionStatus|OrderInfo|"
                        "PromotionCode|PromotionAmount")
VNP_REFUND_RESPONSE = VNP_QUERYDR_RESPONSE.rsplit("|", 2)[0]

MOMO_KEYS = {
    "create": "accessKey amount extraData ipnUrl orderId orderInfo partnerCode redirectUrl "
              "requestId requestType",
    "create-response": "accessKey amount message orderId partnerCode payUrl requestId "
                       "responseTime resultCode",
    "query": "accessKey orderId partnerCode requestId",
    "refund": "accessKey amount description orderId partnerCode requestId transId",
    "ipn": "accessKey amount extraData message orderId orderInfo orderType partnerCode payType "
           "requestId responseTime resultCode transId",
}
# Not fixed by the banks' protocols; banksim and the adapter sign the query answer like the IPN and the
# refund answer over these keys.
MOMO_KEYS["query-response"] = MOMO_KEYS["ipn"]
MOMO_KEYS["refund-response"] = ("accessKey amount message orderId partnerCode requestId "
                                "responseTime resultCode transId")


# ------------------------------------------------------------------ the formats, in Python

def php_urlencode(s):
    """PHP urlencode: unreserved A-Za-z0-9 - _ . ; space as '+'; the rest %XX upper-case."""
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        if c.isascii() and (c.isalnum() or c in "-_."):
            out.append(c)
        elif c == " ":
            out.append("+")
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def vnp_hash_data(params):
    items = sorted((k, v) for k, v in params.items()
                   if k.startswith("vnp_") and k not in ("vnp_SecureHash", "vnp_SecureHashType")
                   and v != "")
    return "&".join(php_urlencode(k) + "=" + php_urlencode(v) for k, v in items)


def vnp_secure_hash(secret, params):
    return hmac.new(secret.encode(), vnp_hash_data(params).encode(), hashlib.sha512).hexdigest()


def vnp_pipe_hash(secret, fields, obj):
    text = "|".join(str(obj.get("vnp_" + f, "")) for f in fields.split("|"))
    return hmac.new(secret.encode(), text.encode(), hashlib.sha512).hexdigest()


def momo_signature(secret, access_key, kind, obj):
    parts = []
    for k in MOMO_KEYS[kind].split():
        v = access_key if k == "accessKey" else obj.get(k, "")
        parts.append("%s=%s" % (k, v))
    return hmac.new(secret.encode(), "&".join(parts).encode(), hashlib.sha256).hexdigest()


def vietqr_signature(secret, ts, body):
    return hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()


def crc16_ccitt_false(data):
    return binascii.crc_hqx(data, 0xFFFF)


def tlv(text):
    """EMVCo TLV items of text as an ordered list of (id, value)."""
    items, i = [], 0
    while i < len(text):
        tag, length = text[i:i + 2], int(text[i + 2:i + 4])
        assert text[i + 2:i + 4].isdigit()
        items.append((tag, text[i + 4:i + 4 + length]))
        assert len(items[-1][1]) == length
        i += 4 + length
    return items


def vn_compact(t):
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(t + 7 * 3600))


# ------------------------------------------------------------------ asking the C

def banksim_sign(*args):
    if not os.access(BANKSIM, os.X_OK):
        pytest.fail("%s is not built (run make)" % BANKSIM)
    res = subprocess.run([BANKSIM, "sign", *args], capture_output=True, text=True, timeout=20)
    assert res.returncode == 0, res.stderr
    return res.stdout.rstrip("\n")


TRICKY = ["", "plain", "a b", "x+y", "~tilde", "*star", "-_.", "a&b=c", "100%", "/path?q#f",
          "L\u1ec7 ph\u00ed c\u1ea5p h\u1ed9 chi\u1ebfu", "\u0110\u1ee3t 1/2024", "tab\there",
          "quote\"'", "emoji \U0001F600", "http://127.0.0.1:8080/return/vnpay?x=1&y=2"]


@pytest.mark.parametrize("text", [t for t in TRICKY if t])
def test_vnpay_urlencode_is_phps(text):
    assert banksim_sign("vnpay", "encode", text) == php_urlencode(text)


def test_vnpay_secure_hash_of_parameters():
    params = {"vnp_Amount": "15000000", "vnp_TxnRef": "ABC12345678", "vnp_OrderInfo": TRICKY[10],
              "vnp_ReturnUrl": TRICKY[-1], "vnp_BankCode": "", "vnp_Locale": "vn",
              "vnp_SecureHashType": "SHA512", "other": "ignored", "vnp_Note": "a&b=c ~*"}
    args = ["%s=%s" % kv for kv in params.items()]
    assert banksim_sign("vnpay", "hashdata", *args) == vnp_hash_data(params)
    assert banksim_sign("vnpay", "params", VNP_SECRET, *args) == vnp_secure_hash(VNP_SECRET, params)


def test_vnpay_redirect_url():
    created = 1714530600
    out = banksim_sign("start", "vnpay", "bank_url=http://bank.test", "merchant_id=" + VNP_TMN,
                       "secret=" + VNP_SECRET, "return_url=http://127.0.0.1:8080/return/vnpay",
                       "ref=ABC12345678", "amount=200000", "description=" + TRICKY[10] + " - #1",
                       "ip=127.0.0.1", "created=%d" % created, "expires=%d" % (created + 900))
    url = urllib.parse.urlsplit(out)
    assert (url.scheme, url.netloc, url.path) == ("http", "bank.test", "/paymentv2/vpcpay.html")
    pairs = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
    params = dict(pairs)
    assert len(params) == len(pairs)
    assert params["vnp_SecureHash"] == vnp_secure_hash(VNP_SECRET, params)
    assert params["vnp_Version"] == "2.1.0" and params["vnp_Command"] == "pay"
    assert params["vnp_TmnCode"] == VNP_TMN and params["vnp_CurrCode"] == "VND"
    assert params["vnp_Amount"] == "20000000"
    assert params["vnp_TxnRef"] == "ABC12345678"
    assert params["vnp_OrderType"] == "other" and params["vnp_Locale"] == "vn"
    assert params["vnp_IpAddr"] == "127.0.0.1"
    assert params["vnp_ReturnUrl"] == "http://127.0.0.1:8080/return/vnpay"
    assert params["vnp_CreateDate"] == "20240501093000" == vn_compact(created)
    assert params["vnp_ExpireDate"] == vn_compact(created + 900)
    assert params["vnp_OrderInfo"] == "Le phi cap ho chieu 1"
    # The query string itself is the sorted, PHP-encoded text plus the hash.
    assert url.query == vnp_hash_data(params) + "&vnp_SecureHash=" + params["vnp_SecureHash"]


@pytest.mark.parametrize("text", TRICKY)
def test_vnpay_order_info_is_ascii_letters_digits_spaces(text):
    info = banksim_sign("vnpay", "orderinfo", text) if text else ""
    assert all(c.isascii() and (c.isalnum() or c == " ") for c in info), info
    assert len(info) <= 255


@pytest.mark.parametrize("kind,fields", [("querydr", VNP_QUERYDR), ("refund", VNP_REFUND),
                                         ("querydr-response", VNP_QUERYDR_RESPONSE),
                                         ("refund-response", VNP_REFUND_RESPONSE)])
def test_vnpay_merchant_api_hashes(kind, fields):
    obj = {"vnp_" + f: "%s-%d" % (f.lower(), i) for i, f in enumerate(fields.split("|"))}
    obj["vnp_OrderInfo"] = "Hoan tien GD ABC | 2"
    del obj["vnp_IpAddr" if "IpAddr" in fields else "vnp_Message"]  # a missing field counts as ""
    obj["vnp_Extra"] = "not signed"
    args = ["%s=%s" % kv for kv in obj.items()]
    assert banksim_sign("vnpay", kind, VNP_SECRET, *args) == vnp_pipe_hash(VNP_SECRET, fields, obj)


@pytest.mark.parametrize("kind", sorted(MOMO_KEYS))
def test_momo_signatures(kind):
    obj = {k: "v-%s \u00e1&=" % k for k in MOMO_KEYS[kind].split() if k != "accessKey"}
    obj["amount"] = "50000"
    obj["unsigned"] = "x"
    args = ["accessKey=" + MOMO_ACCESS] + ["%s=%s" % kv for kv in obj.items()]
    assert banksim_sign("momo", kind, MOMO_SECRET, *args) == \
        momo_signature(MOMO_SECRET, MOMO_ACCESS, kind, obj)


def test_momo_create_request():
    out = banksim_sign("start", "momo", "bank_url=http://momo.test", "merchant_id=" + MOMO_PARTNER,
                       "access_key=" + MOMO_ACCESS, "secret=" + MOMO_SECRET,
                       "ipn_url=http://127.0.0.1:8080/ipn/momo",
                       "return_url=http://127.0.0.1:8080/return/momo", "ref=ORD12345678",
                       "amount=50000", "description=" + TRICKY[10], "created=1714530600",
                       "expires=1714531500")
    first, body = out.split("\n", 1)
    assert first == "POST http://momo.test/v2/gateway/api/create"
    obj = json.loads(body)
    assert obj["requestType"] == "captureWallet"
    assert obj["orderId"] == obj["requestId"] == "ORD12345678"
    assert obj["amount"] == 50000 and obj["partnerCode"] == MOMO_PARTNER
    assert obj["ipnUrl"] == "http://127.0.0.1:8080/ipn/momo"
    assert obj["signature"] == momo_signature(MOMO_SECRET, MOMO_ACCESS, "create", obj)


def test_vietqr_webhook_signature():
    body = json.dumps({"transaction_id": "FT1", "account_no": "0011001234567", "amount": 200000,
                       "content": "N\u1ed9p ph\u00ed ABC12345678", "transaction_time":
                       "2024-05-01T09:31:00+07:00"}, ensure_ascii=False)
    assert banksim_sign("vietqr", "webhook", VIETQR_SECRET, "1714530660", body) == \
        vietqr_signature(VIETQR_SECRET, "1714530660", body.encode())


def test_vietqr_crc_check_value():
    assert banksim_sign("vietqr", "crc", "123456789") == "29B1"
    assert crc16_ccitt_false(b"123456789") == 0x29B1


@pytest.mark.parametrize("amount,ref", [(200000, "ABC12345678"), (1, "Z9"),
                                        (100000000000, "ABCDEFGHIJ0123456789")])
def test_vietqr_payload(amount, ref):
    payload = banksim_sign("vietqr", "payload", "970436", "0011001234567", str(amount), ref)
    assert payload.isascii()
    items = tlv(payload)
    assert [t for t, _ in items] == ["00", "01", "38", "53", "54", "58", "62", "63"]
    top = dict(items)
    assert top["00"] == "01" and top["01"] == "12" and top["53"] == "704" and top["58"] == "VN"
    assert top["54"] == str(amount)
    merchant = dict(tlv(top["38"]))
    assert merchant["00"] == "A000000727" and merchant["02"] == "QRIBFTTA"
    assert dict(tlv(merchant["01"])) == {"00": "970436", "01": "0011001234567"}
    assert dict(tlv(top["62"])) == {"08": ref}
    assert payload[-8:-4] == "6304"
    assert top["63"] == "%04X" % crc16_ccitt_false(payload[:-4].encode())


@pytest.mark.parametrize("content,normalized", [
    ("Nop phi abc12345678", "NOPPHIABC12345678"),
    ("ABC-1234.5678 / cam on!", "ABC12345678CAMON"),
    ("n\u1ed9p ph\u00ed \u0111\u1ee3t 1", "N\u1ed8PPH\u00cd\u0110\u1ee2T1"),
])
def test_vietqr_content_normalization(content, normalized):
    assert banksim_sign("vietqr", "normalize", content) == normalized


# ------------------------------------------------------------------ against a running banksim

class Notifications:
    """A stand-in gateway: records every notification banksim sends and answers as the gateway
    would."""

    def __init__(self):
        self.received = queue.Queue()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body=b""):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                outer.received.put(("GET", self.path, dict(self.headers), b""))
                self.answer(200, b'{"RspCode":"00","Message":"Confirm Success"}')

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.received.put(("POST", self.path, dict(self.headers), body))
                self.answer(204 if self.path.startswith("/ipn/momo") else 200,
                            b"" if self.path.startswith("/ipn/momo") else b'{"status":"ok"}')

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def next(self, timeout=5):
        return self.received.get(timeout=timeout)

    def none_within(self, seconds):
        try:
            got = self.received.get(timeout=seconds)
        except queue.Empty:
            return True
        self.received.put(got)
        return False

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def sim():
    if not os.access(BANKSIM, os.X_OK):
        pytest.fail("%s is not built (run make)" % BANKSIM)
    notes = Notifications()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEEGATE_", "BANKSIM_"))}
    env.update(BANKSIM_PORT="0", BANKSIM_HOST="127.0.0.1", FEEGATE_URL=notes.url,
               FEEGATE_VNPAY_TMN_CODE=VNP_TMN, FEEGATE_VNPAY_HASH_SECRET=VNP_SECRET,
               FEEGATE_MOMO_PARTNER_CODE=MOMO_PARTNER, FEEGATE_MOMO_ACCESS_KEY=MOMO_ACCESS,
               FEEGATE_MOMO_SECRET_KEY=MOMO_SECRET, FEEGATE_VIETQR_WEBHOOK_SECRET=VIETQR_SECRET)
    proc = subprocess.Popen([BANKSIM], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = BanksimLog(proc.stderr)
    try:
        start = log.wait_for("start")
        base = start["msg"].split()[2].rstrip(",")  # "listening on http://127.0.0.1:PORT, ..."
        yield {"url": base, "notes": notes, "log": log}
    finally:
        proc.terminate()
        try:
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            notes.close()
        log.thread.join(timeout=10)
        assert not log.bad, f"banksim wrote lines that are not one JSON object: {log.bad[:3]}"


class BanksimLog:
    """Drains banksim's stderr (so it never blocks on a full pipe) and checks each line is one
    JSON object in the gateway's shape, whatever bytes the requests carried."""

    def __init__(self, stream):
        self.lines, self.bad, self.cond = [], [], threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for raw in stream:
            try:
                line = json.loads(raw.decode("utf-8"))
                assert isinstance(line, dict)
                assert {"ts", "level", "pid", "component", "msg"} <= line.keys(), line
                assert line["component"] == "banksim", line
            except (ValueError, AssertionError) as e:
                self.bad.append((raw[:200], str(e)))
                continue
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def wait_for(self, event, timeout=10):
        with self.cond:
            ok = self.cond.wait_for(lambda: any(l.get("event") == event for l in self.lines), timeout)
            assert ok, f"banksim logged no {event!r} line: {self.lines} {self.bad}"
            return next(l for l in self.lines if l.get("event") == event)


@pytest.fixture(autouse=True)
def clean(request):
    if "sim" in request.fixturenames:
        s = request.getfixturevalue("sim")
        requests.post(s["url"] + "/admin/reset", timeout=5).raise_for_status()
        while not s["notes"].received.empty():
            s["notes"].received.get_nowait()
    yield


def vnpay_redirect_query(ref, amount, return_url="http://127.0.0.1:9/return/vnpay", secret=VNP_SECRET):
    now = int(time.time())
    params = {"vnp_Version": "2.1.0", "vnp_Command": "pay", "vnp_TmnCode": VNP_TMN,
              "vnp_Amount": str(amount * 100), "vnp_CurrCode": "VND", "vnp_TxnRef": ref,
              "vnp_OrderInfo": "Le phi " + ref, "vnp_OrderType": "other", "vnp_Locale": "vn",
              "vnp_ReturnUrl": return_url, "vnp_IpAddr": "127.0.0.1",
              "vnp_CreateDate": vn_compact(now), "vnp_ExpireDate": vn_compact(now + 900)}
    params["vnp_SecureHash"] = vnp_secure_hash(secret, params)
    return urllib.parse.urlencode(params)


def vnpay_pay(sim, ref, amount, action="approve", **knobs):
    page = requests.get(sim["url"] + "/paymentv2/vpcpay.html?" + vnpay_redirect_query(ref, amount), timeout=5)
    assert page.status_code == 200, page.text
    assert 'id="pay-form"' in page.text
    form = {"ref": ref, "action": action, **knobs}
    return requests.post(sim["url"] + "/paymentv2/confirm", data=form, allow_redirects=False, timeout=10)


def test_vnpay_pay_ipn_return(sim):
    resp = vnpay_pay(sim, "KATVNP0001", 150000)
    assert resp.status_code == 303
    ret = urllib.parse.urlsplit(resp.headers["Location"])
    assert ret.path == "/return/vnpay"
    ret_params = dict(urllib.parse.parse_qsl(ret.query, keep_blank_values=True))
    assert ret_params["vnp_SecureHash"] == vnp_secure_hash(VNP_SECRET, ret_params)
    method, path, _, _ = sim["notes"].next()
    ipn = urllib.parse.urlsplit(path)
    assert method == "GET" and ipn.path == "/ipn/vnpay"
    ipn_params = dict(urllib.parse.parse_qsl(ipn.query, keep_blank_values=True))
    assert ipn_params["vnp_SecureHash"] == vnp_secure_hash(VNP_SECRET, ipn_params)
    assert ipn_params["vnp_ResponseCode"] == "00" and ipn_params["vnp_TransactionStatus"] == "00"
    assert ipn_params["vnp_Amount"] == "15000000" and ipn_params["vnp_TxnRef"] == "KATVNP0001"
    # Paid once: the page says so and a second approve is refused.
    again = requests.post(sim["url"] + "/paymentv2/confirm", data={"ref": "KATVNP0001", "action": "approve"},
                          allow_redirects=False, timeout=5)
    assert again.status_code == 409


def test_vnpay_rejects_a_bad_redirect_signature(sim):
    q = vnpay_redirect_query("KATVNP0002", 1000, secret="wrong")
    page = requests.get(sim["url"] + "/paymentv2/vpcpay.html?" + q, timeout=5)
    assert page.status_code == 400 and 'data-code="70"' in page.text


def vnpay_api(sim, kind, fields, obj):
    obj = dict(obj)
    obj["vnp_SecureHash"] = vnp_pipe_hash(VNP_SECRET, fields, obj)
    resp = requests.post(sim["url"] + "/merchant_webapi/api/transaction", json=obj, timeout=5)
    assert resp.status_code == 200
    answer = resp.json()
    answer_fields = VNP_QUERYDR_RESPONSE if kind == "querydr" else VNP_REFUND_RESPONSE
    assert answer["vnp_SecureHash"] == vnp_pipe_hash(VNP_SECRET, answer_fields, answer)
    return answer


def test_vnpay_querydr_and_refund(sim):
    assert vnpay_pay(sim, "KATVNP0003", 100000).status_code == 303
    now = vn_compact(time.time())
    q = {"vnp_RequestId": "Q1", "vnp_Version": "2.1.0", "vnp_Command": "querydr",
         "vnp_TmnCode": VNP_TMN, "vnp_TxnRef": "KATVNP0003", "vnp_TransactionDate": now,
         "vnp_CreateDate": now, "vnp_IpAddr": "127.0.0.1", "vnp_OrderInfo": "Truy van"}
    a = vnpay_api(sim, "querydr", VNP_QUERYDR, q)
    assert (a["vnp_ResponseCode"], a["vnp_TransactionStatus"], a["vnp_Amount"]) == ("00", "00", "10000000")
    txn = a["vnp_TransactionNo"]
    assert vnpay_api(sim, "querydr", VNP_QUERYDR, dict(q, vnp_TxnRef="KATNONE"))["vnp_ResponseCode"] == "91"

    def refund(request_id, amount, kind="03"):
        r = {"vnp_RequestId": request_id, "vnp_Version": "2.1.0", "vnp_Command": "refund",
             "vnp_TmnCode": VNP_TMN, "vnp_TransactionType": kind, "vnp_TxnRef": "KATVNP0003",
             "vnp_Amount": str(amount * 100), "vnp_TransactionNo": txn, "vnp_TransactionDate": now,
             "vnp_CreateBy": "finance", "vnp_CreateDate": now, "vnp_IpAddr": "127.0.0.1",
             "vnp_OrderInfo": "Hoan tien"}
        return vnpay_api(sim, "refund", VNP_REFUND, r)

    first = refund("R1", 60000)
    assert first["vnp_ResponseCode"] == "00"
    assert refund("R1", 60000) == first            # a retried request gets the same answer
    assert refund("R2", 50000)["vnp_ResponseCode"] == "93"   # more than what is left
    assert refund("R3", 40000)["vnp_ResponseCode"] == "00"
    assert refund("R4", 1)["vnp_ResponseCode"] == "93"
    # A request whose hash does not match is refused with 97.
    bad = dict(q, vnp_SecureHash="0" * 128)
    resp = requests.post(sim["url"] + "/merchant_webapi/api/transaction", json=bad, timeout=5)
    assert resp.json()["vnp_ResponseCode"] == "97"


def momo_call(sim, path, kind, obj, answer_kind):
    obj = dict(obj, signature=momo_signature(MOMO_SECRET, MOMO_ACCESS, kind, obj))
    resp = requests.post(sim["url"] + path, json=obj, timeout=5)
    answer = resp.json()
    assert answer["signature"] == momo_signature(MOMO_SECRET, MOMO_ACCESS, answer_kind, answer)
    return resp.status_code, answer


def test_momo_create_pay_ipn_query_refund(sim):
    create = {"partnerCode": MOMO_PARTNER, "requestId": "KATMOMO001", "orderId": "KATMOMO001",
              "amount": 75000, "orderInfo": "L\u1ec7 ph\u00ed", "redirectUrl": "http://127.0.0.1:9/return/momo",
              "ipnUrl": sim["notes"].url + "/ipn/momo", "requestType": "captureWallet",
              "extraData": "", "lang": "vi"}
    status, a = momo_call(sim, "/v2/gateway/api/create", "create", create, "create-response")
    assert status == 200 and a["resultCode"] == 0
    page = requests.get(a["payUrl"], timeout=5)
    assert page.status_code == 200 and 'id="pay-form"' in page.text
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(a["payUrl"]).query)["t"][0]
    resp = requests.post(sim["url"] + "/momo/confirm", allow_redirects=False, timeout=10,
                         data={"orderId": "KATMOMO001", "t": token, "action": "approve"})
    assert resp.status_code == 303
    ret = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(resp.headers["Location"]).query,
                                      keep_blank_values=True))
    assert ret["signature"] == momo_signature(MOMO_SECRET, MOMO_ACCESS, "ipn", ret)
    method, path, _, body = sim["notes"].next()
    assert (method, path) == ("POST", "/ipn/momo")
    ipn = json.loads(body)
    assert ipn["signature"] == momo_signature(MOMO_SECRET, MOMO_ACCESS, "ipn", ipn)
    assert ipn["resultCode"] == 0 and ipn["amount"] == 75000

    query = {"partnerCode": MOMO_PARTNER, "requestId": "KATQ1", "orderId": "KATMOMO001", "lang": "vi"}
    _, q = momo_call(sim, "/v2/gateway/api/query", "query", query, "query-response")
    assert q["resultCode"] == 0 and q["transId"] == ipn["transId"]

    def refund(order_id, amount):
        r = {"partnerCode": MOMO_PARTNER, "orderId": order_id, "requestId": order_id,
             "amount": amount, "transId": ipn["transId"], "lang": "vi", "description": "Ho\u00e0n"}
        return momo_call(sim, "/v2/gateway/api/refund", "refund", r, "refund-response")[1]

    assert refund("KATRF1", 50000)["resultCode"] == 0
    assert refund("KATRF2", 25001)["resultCode"] == 1081
    assert refund("KATRF3", 25000)["resultCode"] == 0
    # A duplicate create with the same orderId but another request is refused.
    status, dup = momo_call(sim, "/v2/gateway/api/create", "create", dict(create, requestId="OTHER"),
                            "create-response")
    assert dup["resultCode"] == 41


def test_vietqr_transfer_notification(sim):
    payload = banksim_sign("vietqr", "payload", "970436", "0011001234567", "200000", "KATQR0001")
    resp = requests.post(sim["url"] + "/vietqr/transfer", json={"payload": payload}, timeout=10)
    assert resp.status_code == 200
    assert resp.json()["notification"]["status"] == 200
    method, path, headers, body = sim["notes"].next()
    assert (method, path) == ("POST", "/ipn/vietqr")
    assert headers["X-Signature"] == vietqr_signature(VIETQR_SECRET, headers["X-Timestamp"], body)
    assert abs(int(headers["X-Timestamp"]) - time.time()) < 60
    credit = json.loads(body)
    assert credit["account_no"] == "0011001234567" and credit["amount"] == 200000
    assert "KATQR0001" in credit["content"]
    assert set(credit) == {"transaction_id", "account_no", "amount", "content", "transaction_time"}


def test_faults(sim):
    url = sim["url"]
    # A dropped IPN never arrives, but the bank still knows the payment.
    assert vnpay_pay(sim, "KATVNP0010", 1000, drop="1").status_code == 303
    assert sim["notes"].none_within(0.5)
    # A broken signature and a wrong amount, each chosen on the approve button.
    assert vnpay_pay(sim, "KATVNP0011", 1000, bad_signature="1").status_code == 303
    _, path, _, _ = sim["notes"].next()
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
    assert params["vnp_SecureHash"] != vnp_secure_hash(VNP_SECRET, params)
    assert vnpay_pay(sim, "KATVNP0012", 1000, wrong_amount="1").status_code == 303
    _, path, _, _ = sim["notes"].next()
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
    assert params["vnp_SecureHash"] == vnp_secure_hash(VNP_SECRET, params)
    assert params["vnp_Amount"] == "200000"
    # A duplicated notification arrives twice.
    assert vnpay_pay(sim, "KATVNP0013", 1000, duplicate="1").status_code == 303
    assert sim["notes"].next()[1] == sim["notes"].next()[1]
    # The merchant API answers 503 once, then normally.
    r = requests.post(url + "/admin/faults", json={"bank": "momo", "api_status": 503, "api_status_times": 1},
                      timeout=5)
    assert r.status_code == 200 and r.json()["momo"]["api_status"] == 503 and r.json()["vnpay"]["api_status"] == 0
    query = {"partnerCode": MOMO_PARTNER, "requestId": "KATQ2", "orderId": "NONE", "lang": "vi"}
    query["signature"] = momo_signature(MOMO_SECRET, MOMO_ACCESS, "query", query)
    assert requests.post(url + "/v2/gateway/api/query", json=query, timeout=5).status_code == 503
    assert requests.post(url + "/v2/gateway/api/query", json=query, timeout=5).json()["resultCode"] == 42
    assert requests.post(url + "/admin/faults", json={"nonsense": 1}, timeout=5).status_code == 400
    # A stale VietQR timestamp is still correctly signed.
    resp = requests.post(url + "/vietqr/transfer", timeout=10, json={
        "account_no": "1", "amount": 5, "content": "x", "faults": {"stale_timestamp": True}})
    assert resp.status_code == 200
    _, _, headers, body = sim["notes"].next()
    assert time.time() - int(headers["X-Timestamp"]) > 300
    assert headers["X-Signature"] == vietqr_signature(VIETQR_SECRET, headers["X-Timestamp"], body)


def test_portal_sink_and_settlement(sim):
    url = sim["url"]
    r = requests.post(url + "/portal/webhook", data=b'{"id":"evt_1","type":"order.succeeded"}',
                      headers={"Feegate-Timestamp": "1714530600", "Feegate-Signature": "v1=abc",
                               "Content-Type": "application/json"}, timeout=5)
    assert r.status_code == 200
    got = requests.get(url + "/portal/webhooks", timeout=5).json()["data"]
    assert len(got) == 1 and got[0]["json"]["type"] == "order.succeeded"
    assert got[0]["headers"]["Feegate-Signature"] == "v1=abc"
    assert got[0]["body"] == '{"id":"evt_1","type":"order.succeeded"}'

    assert vnpay_pay(sim, "KATVNP0020", 12345).status_code == 303
    day = time.strftime("%Y%m%d", time.gmtime(time.time() + 7 * 3600))
    csv = requests.get(url + "/settlement/vnpay/" + day, timeout=5)
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("TmnCode,TransactionType,TxnRef")
    assert any(line.split(",")[2] == "KATVNP0020" and line.split(",")[6] == "1234500" for line in lines[1:])
    assert requests.get(url + "/settlement/vnpay/2024-01-01", timeout=5).status_code in (400, 404)


def test_banksim_log_is_json_lines_whatever_the_bytes(sim):
    """Invalid UTF-8 in a request path reaches banksim's log; every line stays one JSON object
    (the fixture parses each line), with the bad bytes written as U+FFFD."""
    port = int(sim["url"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"POST /portal/webhook/\xff\xc3x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                  b"Connection: close\r\n\r\n{}")
        answer = c.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    log = sim["log"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        hits = [l for l in list(log.lines) if l.get("event") == "portal_webhook" and "\ufffd" in l["msg"]]
        if hits:
            break
        time.sleep(0.05)
    assert hits, log.lines[-5:]
    assert hits[0]["msg"].endswith("/portal/webhook/\ufffd\ufffdx"), hits[0]
    assert not log.bad, log.bad[:3]


def test_admin_config_redirects_notifications(sim):
    url = sim["url"]
    r = requests.post(url + "/admin/config", json={"feegate_url": sim["notes"].url + "/other/"}, timeout=5)
    assert r.status_code == 200 and r.json()["feegate_url"] == sim["notes"].url + "/other"
    assert requests.post(url + "/vietqr/transfer", json={"account_no": "1", "amount": 5, "content": "x"},
                         timeout=10).status_code == 200
    assert sim["notes"].next()[1] == "/other/ipn/vietqr"
    requests.post(url + "/admin/reset", timeout=5).raise_for_status()
    assert requests.get(url + "/admin/config", timeout=5).json()["feegate_url"] == sim["notes"].url


def test_help():
    res = subprocess.run([BANKSIM, "--help"], capture_output=True, text=True, timeout=10)
    assert res.returncode == 0 and "/admin/faults" in res.stdout and "BANKSIM_PORT" in res.stdout
