"""The HTTP edge: framing (RFC 9112), deadlines, caps, error shape, raw-path routing, browser
headers, the streamed request body, and TLS. Raw sockets where a client library would hide the
bytes on the wire."""
import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import error_of, free_port, order_body, to_json_bytes


# ------------------------------------------------------------------------------ socket utilities

def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=timeout)
    s.settimeout(timeout)
    return s


def read_all(s):
    """Everything until the server closes (or the socket's timeout)."""
    out = b""
    while True:
        try:
            b = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not b:
            break
        out += b
    return out


def responses(data):
    """Splits raw bytes into [(status, headers, body)] (Content-Length framed answers)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


def assert_json_error(resp, status, code=None):
    st, headers, body = resp
    assert st == status, (st, headers, body[:300])
    assert headers.get("content-type", "").startswith("application/json"), headers
    assert re.fullmatch(r"[A-Za-z0-9_-]{8,23}", headers.get("x-request-id", "")), headers
    err = json.loads(body)["error"]
    assert err["request_id"] == headers["x-request-id"]
    if code:
        assert err["code"] == code, err
    return err


def port_of(gw):
    return gw.url.rsplit(":", 1)[1]


def new_order(api, **kw):
    r = api.create(order_body(**kw))
    assert r.status_code == 201, r.text
    return r.json()


def token_of(order):
    return order["checkout_url"].rstrip("/").rsplit("/", 1)[1]


def worker_pids(master_pid):
    kids = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [int(k) for k in kids]


def vm_rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# ------------------------------------------------------------------------------ framing

def test_two_different_content_lengths_are_refused_and_nothing_is_smuggled(gateway):
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    s = connect(gateway.port)
    s.sendall(b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 0\r\nContent-Length: " + str(len(smuggled)).encode() + b"\r\n\r\n" + smuggled)
    got = responses(read_all(s))
    s.close()
    assert len(got) == 1, got  # one answer, and the connection closed: no second request ran
    assert_json_error(got[0], 400, "validation_failed")
    assert got[0][1].get("connection") == "close"


def test_content_length_with_chunked_is_refused(gateway):
    s = connect(gateway.port)
    s.sendall(b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"0\r\n\r\n")
    got = responses(read_all(s))
    s.close()
    assert len(got) == 1
    assert_json_error(got[0], 400, "validation_failed")


def test_malformed_request_line_and_oversized_head_are_json_with_request_id(gateway):
    s = connect(gateway.port)
    s.sendall(b"GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n")
    got = responses(read_all(s))
    s.close()
    assert_json_error(got[0], 400, "validation_failed")
    s = connect(gateway.port)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
    got = responses(read_all(s))
    s.close()
    assert_json_error(got[0], 431, "request_header_fields_too_large")
    s = connect(gateway.port)
    s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")  # HTTP/1.1 without Host
    got = responses(read_all(s))
    s.close()
    assert_json_error(got[0], 400)


def test_body_over_the_cap_is_refused_before_it_is_sent(gateway, stack):
    s = connect(gateway.port)
    # Only the head: the answer must come without the server waiting for the 2 MiB.
    s.sendall(b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + stack.env["FEEGATE_API_KEY"].encode()
              + b"\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\n\r\n")
    got = responses(read_all(s))
    s.close()
    assert len(got) == 1
    assert_json_error(got[0], 413, "payload_too_large")


def test_chunked_body_over_the_cap_is_refused(gateway):
    s = connect(gateway.port)
    s.sendall(b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % 65536 + b"a" * 65536 + b"\r\n"
    try:
        for _ in range(40):  # 2.5 MiB, over the 1 MiB cap
            s.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    got = responses(read_all(s))
    s.close()
    assert got, "no answer"
    assert_json_error(got[0], 413, "payload_too_large")


def test_keep_alive_and_pipelining(gateway):
    s = connect(gateway.port)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got = responses(read_all(s))
    s.close()
    assert [g[0] for g in got] == [200, 200, 200], got
    assert got[2][1].get("connection") == "close"
    assert len({g[1]["x-request-id"] for g in got}) == 3


def test_expect_100_continue(gateway, stack):
    s = connect(gateway.port)
    body = to_json_bytes(order_body())
    s.sendall(b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + stack.env["FEEGATE_API_KEY"].encode()
              + b"\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nConnection: close\r\n"
              + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    first = s.recv(100)
    assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), first
    s.sendall(body)
    rest = first[len(b"HTTP/1.1 100 Continue\r\n\r\n"):] + read_all(s)
    got = responses(rest)
    s.close()
    assert got[0][0] == 201, got


# ------------------------------------------------------------------------------ raw-path routing

def test_encoded_slash_and_nul_are_not_decoded_into_routes(api, gateway):
    order = new_order(api)
    oid = order["id"]
    r = api.post(f"/v1/orders/{oid}%2Fcancel")  # one segment "ID%2Fcancel": a GET-only route
    assert r.status_code in (404, 405), r.text
    r = api.get(f"/v1/orders/{oid}%00garbage")
    assert r.status_code == 404, r.text
    r = api.get(f"/v1/orders/{oid}%2F")
    assert r.status_code == 404, r.text
    assert api.get(f"/v1/orders/{oid}").json()["status"] == "created"
    r = api.get(f"/v1/orders?reference={order['reference']}%00zz")
    assert r.status_code == 400 and error_of(r)["field"] == "reference", r.text
    token = token_of(order)
    assert requests.get(f"{gateway.url}/checkout/{token}%00x", timeout=10).status_code == 404
    assert requests.get(f"{gateway.url}/checkout/{token}%2F", timeout=10).status_code == 404
    assert requests.get(f"{gateway.url}/checkout/{token}", timeout=10).status_code == 200


# ------------------------------------------------------------------------------ browser pages

def test_html_answers_carry_csp_frame_and_referrer_protection(api, gateway):
    order = new_order(api)
    r = requests.get(order["checkout_url"], timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    csp = r.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, csp
    assert r.headers.get("X-Frame-Options") == "DENY"
    assert r.headers.get("Referrer-Policy") == "same-origin"
    r = requests.post(order["checkout_url"], data={"bank": "vietqr"}, timeout=10)
    assert r.status_code == 200 and "frame-ancestors 'none'" in r.headers.get("Content-Security-Policy", "")
    assert r.headers.get("X-Frame-Options") == "DENY"


def test_checkout_post_from_a_foreign_origin_is_refused(api, gateway):
    order = new_order(api)
    url = order["checkout_url"]
    r = requests.post(url, data={"bank": "vietqr"}, headers={"Origin": "https://evil.example"},
                      timeout=10, allow_redirects=False)
    assert r.status_code == 403, r.text
    assert error_of(r)["code"] == "forbidden"
    assert api.get(f"/v1/orders/{order['id']}").json()["attempts"] == []
    r = requests.post(url, data={"bank": "vietqr"}, headers={"Origin": gateway.url}, timeout=10,
                      allow_redirects=False)
    assert r.status_code in (200, 303), r.text
    r = requests.post(url, data={"bank": "vietqr"}, timeout=10, allow_redirects=False)  # no Origin
    assert r.status_code in (200, 303), r.text


def test_checkout_token_never_reaches_the_log(gateway_factory, stack):
    dead = free_port()
    gw = gateway_factory(DATABASE_URL=f"postgresql://nobody:x@127.0.0.1:{dead}/none",
                         FEEGATE_DB_CONNECT_TIMEOUT_MS=200, FEEGATE_DB_TIMEOUT_MS=300)
    token = secrets.token_urlsafe(32)
    for _ in range(3):
        r = requests.get(f"{gw.url}/checkout/{token}", timeout=10)
        assert r.status_code >= 500, r.status_code
        r = requests.post(f"{gw.url}/checkout/{token}", data={"bank": "vnpay"}, timeout=10)
        assert r.status_code >= 500, r.status_code
    time.sleep(0.3)
    log = gw.log_path.read_text(errors="replace")
    assert "checkout_page" in log, "the error line names the route"
    assert token not in log


# ------------------------------------------------------------------------------ deadlines

def test_slow_head_is_cut_at_its_deadline_while_others_are_served(gateway_factory):
    gw = gateway_factory(FEEGATE_HTTP_HEAD_TIMEOUT_MS=1500, FEEGATE_HTTP_IDLE_TIMEOUT_S=60)
    slow = [connect(port_of(gw)) for _ in range(10)]
    for s in slow:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    cut = set()
    for i in range(20):  # one header line each 0.4 s: 8 s in all, far past the deadline
        time.sleep(0.4)
        assert requests.get(gw.url + "/healthz", timeout=5).status_code == 200
        for n, s in enumerate(slow):
            if n in cut:
                continue
            try:
                s.sendall(b"X-Drip-%d: 1\r\n" % i)
            except (BrokenPipeError, ConnectionResetError):
                cut.add(n)
    for s in slow:
        s.settimeout(2)
        got = responses(read_all(s))
        s.close()
        assert got, "a slow head was never answered"
        assert_json_error(got[0], 408, "request_timeout")


def test_slow_body_is_cut_below_the_minimum_rate(gateway_factory, stack):
    gw = gateway_factory(FEEGATE_HTTP_HEAD_TIMEOUT_MS=1000, FEEGATE_HTTP_BODY_MIN_RATE=1000)
    s = connect(port_of(gw))
    s.sendall(b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + stack.env["FEEGATE_API_KEY"].encode()
              + b"\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    closed = False
    for _ in range(30):  # 10 bytes every 0.2 s: 50 B/s, under 1000 B/s
        time.sleep(0.2)
        try:
            s.sendall(b" " * 10)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
    s.settimeout(3)
    got = responses(read_all(s))
    s.close()
    assert got, f"no answer (closed={closed})"
    assert_json_error(got[0], 408, "request_timeout")
    assert requests.get(gw.url + "/healthz", timeout=5).status_code == 200


def test_idle_keep_alive_connection_is_closed(gateway_factory):
    gw = gateway_factory(FEEGATE_HTTP_IDLE_TIMEOUT_S=1)
    s = connect(port_of(gw))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(10)
    data = read_all(s)  # the answer, then the close once idle
    assert [g[0] for g in responses(data)] == [200]


def test_connection_cap_refuses_clearly_and_recovers(gateway_factory):
    gw = gateway_factory(FEEGATE_WORKERS=1, FEEGATE_MAX_CONNECTIONS=8)
    held = []
    for _ in range(8):
        s = connect(port_of(gw))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert responses(s.recv(4096))[0][0] == 200
        held.append(s)
    extra = connect(port_of(gw))
    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    got = responses(read_all(extra))
    extra.close()
    assert len(got) == 1
    err = assert_json_error(got[0], 503, "unavailable")
    assert got[0][1].get("retry-after")
    assert "connections" in err["message"]
    for s in held[:4]:
        s.close()
    time.sleep(0.3)
    assert requests.get(gw.url + "/healthz", timeout=5).status_code == 200
    for s in held[4:]:
        s.close()
    assert "http_connections_refused_total 1" in requests.get(gw.url + "/metrics", timeout=5).text


# ------------------------------------------------------------------------------ streamed bodies

def test_streamed_body_of_100_mb_keeps_memory_flat(gateway_factory):
    # Under the sanitizers' build (make asan) every freed block waits in ASan's quarantine (256
    # MiB by default) before it is reused, which would read as growth here: a 1 MiB quarantine
    # keeps the measure about what the gateway holds. (Without ASan the variable is not read.)
    asan = os.environ.get("ASAN_OPTIONS")
    gw = gateway_factory(FEEGATE_WORKERS=1, FEEGATE_TEST_SINK=1,
                         ASAN_OPTIONS=f"{asan + ':' if asan else ''}quarantine_size_mb=1")
    (worker,) = worker_pids(gw.pid)
    before = vm_rss_kib(worker)
    block = hashlib.sha256(b"feegate").digest() * 2048  # 64 KiB
    total = 100 * 1024 * 1024
    digest = hashlib.sha256()
    peak = [before]

    class Body:  # a sized iterable: requests sends it with Content-Length, block by block
        def __len__(self):
            return total

        def __iter__(self):
            sent = 0
            while sent < total:
                digest.update(block)
                sent += len(block)
                if sent % (8 << 20) == 0:
                    peak[0] = max(peak[0], vm_rss_kib(worker))
                yield block

    r = requests.post(gw.url + "/v1/_test/sink", data=Body(), timeout=120,
                      headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert r.json() == {"bytes": total, "sha256": digest.hexdigest()}
    after = vm_rss_kib(worker)
    peak[0] = max(peak[0], after)
    # The body never sits in memory: 100 MiB passed, the worker grew by a few MiB at most.
    assert peak[0] - before < 16 * 1024, (before, peak[0], after)
    # chunked too
    r = requests.post(gw.url + "/v1/_test/sink", data=(block for _ in range(64)), timeout=60)
    assert r.json()["bytes"] == 64 * len(block)


def test_streamed_route_has_its_own_cap(gateway_factory):
    gw = gateway_factory(FEEGATE_WORKERS=1, FEEGATE_TEST_SINK=1, FEEGATE_MAX_STATEMENT_BYTES=3 * 1024 * 1024)
    # Declared over the cap: refused at once, no byte of the body read.
    s = connect(port_of(gw))
    s.sendall(b"POST /v1/_test/sink HTTP/1.1\r\nHost: x\r\nContent-Length: 4194305\r\n\r\n")
    got = responses(read_all(s))
    s.close()
    assert_json_error(got[0], 413, "payload_too_large")
    # Above the orders' 1 MiB cap but under the statement cap: accepted.
    r = requests.post(gw.url + "/v1/_test/sink", data=b"x" * (2 * 1024 * 1024), timeout=30)
    assert r.status_code == 200 and r.json()["bytes"] == 2 * 1024 * 1024
    # Chunked past the cap: 413 while it arrives.
    s = connect(port_of(gw))
    s.sendall(b"POST /v1/_test/sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % 65536 + b"a" * 65536 + b"\r\n"
    try:
        for _ in range(80):
            s.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    got = responses(read_all(s))
    s.close()
    assert_json_error(got[0], 413, "payload_too_large")


def test_test_sink_is_off_by_default(gateway):
    r = requests.post(gateway.url + "/v1/_test/sink", data=b"x", timeout=10)
    assert r.status_code == 404


# ------------------------------------------------------------------------------ TLS

def make_cert(dirpath, cn):
    dirpath.mkdir(exist_ok=True)
    cert, key = dirpath / "cert.pem", dirpath / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={cn}",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def s_client(port, *args):
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                       input=b"Q\n", capture_output=True, timeout=20)
    return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def test_tls_versions_suites_reload_and_the_citizen_flow(gateway_factory, stack, tmp_path):
    cert, key = make_cert(tmp_path / "one", "feegate-one")
    tls_port = free_port()
    gw = gateway_factory(FEEGATE_TLS_PORT=tls_port, FEEGATE_TLS_CERT=cert, FEEGATE_TLS_KEY=key)
    rc, out = s_client(tls_port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    # refused: the server answers a protocol_version alert and no cipher is agreed
    assert rc != 0 and "alert protocol version" in out and "Cipher is (NONE)" in out, out
    for flag, proto in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        rc, out = s_client(tls_port, flag)
        assert rc == 0 and proto in out, out
        suite = re.search(r"Cipher is (\S+)", out).group(1)
        assert "GCM" in suite or "CHACHA20" in suite, suite
    rc, out = s_client(tls_port, "-tls1_2", "-cipher", "AES128-SHA:ECDHE-RSA-AES128-SHA256")
    assert rc != 0, out  # CBC suites are not offered
    # The citizen flow once over TLS.
    base = f"https://127.0.0.1:{tls_port}"
    h = {"Authorization": f"Bearer {stack.env['FEEGATE_API_KEY']}", "Content-Type": "application/json"}
    r = requests.post(base + "/v1/orders", data=to_json_bytes(order_body()), headers=h, verify=str(cert), timeout=10)
    assert r.status_code == 201, r.text
    order = r.json()
    page = requests.get(f"{base}/checkout/{token_of(order)}", verify=str(cert), timeout=10)
    assert page.status_code == 200 and "vietqr" in page.text.lower()
    r = requests.post(f"{base}/checkout/{token_of(order)}", data={"bank": "vietqr"}, verify=str(cert), timeout=10)
    assert r.status_code == 200 and "000201" in r.text, r.text[:300]
    # SIGHUP reloads the certificate without a restart.
    new_cert, new_key = make_cert(tmp_path / "two", "feegate-two")
    os.replace(new_cert, cert)
    os.replace(new_key, key)
    os.kill(gw.pid, 1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rc, out = s_client(tls_port, "-tls1_3")
        if "feegate-two" in out:
            break
        time.sleep(0.2)
    assert "CN = feegate-two" in out or "CN=feegate-two" in out, out
    assert requests.get(gw.url + "/healthz", timeout=5).status_code == 200


# ------------------------------------------------------------------------------ list routes

def test_list_routes_validate_every_parameter(api, stack, gateway):
    from conftest import Api
    finance = Api(gateway.url, stack.env["FEEGATE_FINANCE_TOKEN"])
    order = new_order(api)
    for who, path in ((api, "/v1/orders?reference=x&bogus=1"), (api, "/v1/webhook-deliveries?colour=red"),
                      (finance, f"/v1/orders/{order['id']}/refunds?sort=asc"),
                      (finance, "/v1/ledger/accounts?agency=XNC")):
        r = who.get(path)
        assert r.status_code == 400, (path, r.text)
        assert error_of(r)["code"] == "validation_failed" and error_of(r)["field"] in path, (path, r.text)
    for who, path in ((api, "/v1/webhook-deliveries"), (finance, f"/v1/orders/{order['id']}/refunds"),
                      (finance, "/v1/ledger/accounts"), (api, f"/v1/orders?reference={order['reference']}")):
        for bad in ("limit=abc", "limit=0", "limit=100000", "cursor=%00", "limit=1&limit=2"):
            sep = "&" if "?" in path else "?"
            r = who.get(path + sep + bad)
            assert r.status_code == 400, (path, bad, r.text)
            assert error_of(r)["field"] in ("limit", "cursor"), (path, bad, r.text)
    r = api.get(f"/v1/orders?reference={order['reference']}&limit=5")
    assert r.status_code == 200 and [o["id"] for o in r.json()["data"]] == [order["id"]]
    r = api.get("/v1/webhook-deliveries?status=zzz")
    assert r.status_code == 400 and error_of(r)["field"] == "status"


def test_webhook_deliveries_are_paginated_newest_first(stack, gateway):
    from conftest import Api
    client = stack.create_client(agencies=("XNC",), webhook_url=f"http://127.0.0.1:{free_port()}/nowhere")
    portal = Api(gateway.url, client.key)
    ids = []
    for _ in range(3):
        o = new_order(portal)
        assert portal.post(f"/v1/orders/{o['id']}/cancel").status_code == 200
        ids.append(o["id"])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        everything = portal.get("/v1/webhook-deliveries?limit=500").json()["data"]
        if len(everything) >= 3:
            break
        time.sleep(0.1)
    assert len(everything) == 3, everything
    seen, cursor = [], None
    while True:
        r = portal.get("/v1/webhook-deliveries", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["data"]) <= 2
        seen += [d["id"] for d in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [d["id"] for d in everything]  # every delivery once, in the same newest-first order
    assert [d["order_id"] for d in everything] == ids[::-1]
    r = portal.get("/v1/webhook-deliveries", params={"cursor": "o:2"})
    assert r.status_code == 400 and error_of(r)["field"] == "cursor"
