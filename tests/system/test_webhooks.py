"""Portal webhooks (issue 3): the client's delivery list, retries with backoff while the portal
fails, dead-lettering, redelivery, and that a client sees and redelivers only its own."""
import contextlib
import hashlib
import hmac
import json
import os
import signal
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from bankflow import *


class Sink:
    """A portal webhook endpoint on loopback that answers `status` and records what it gets."""

    def __init__(self):
        self.status = 200
        self.received = []
        self.release = threading.Event()  # cleared: every request waits until it is set
        self.release.set()
        self.lock = threading.Lock()
        self.in_progress = 0
        self.most_in_progress = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a portal's web server would

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink.lock:
                    sink.in_progress += 1
                    sink.most_in_progress = max(sink.most_in_progress, sink.in_progress)
                sink.release.wait(30)
                with sink.lock:
                    sink.in_progress -= 1
                sink.received.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                      "status": sink.status, "at": time.time(), "peer": self.client_address})
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the relay opens up to FEEGATE_WEBHOOK_CONCURRENCY at once

        self.server = Server(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.close()


@pytest.fixture
def portal(stack, gateway, sink):
    """A portal client of its own whose webhooks go to the sink."""
    client = stack.create_client(agencies=("XNC",), webhook_url=sink.url + "/feegate/webhook")
    assert client.webhook_secret, "client create printed no webhook_secret"
    a = Api(gateway.url, client.key)
    a.client = client
    yield a
    a.close()


def deliveries(api, **params):
    r = api.get("/v1/webhook-deliveries", params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def delivery_of(api, order_id, type_):
    got = [d for d in deliveries(api, order_id=order_id) if d["type"] == type_]
    assert len(got) <= 1, got
    return got[0] if got else None


def wait_delivery(api, order_id, type_, pred, what, timeout=15):
    return wait_until(lambda: (lambda d: d if d and pred(d) else None)(delivery_of(api, order_id, type_)),
                      timeout, what=what)


def check_signature(req, secret):
    ts = req["headers"]["Feegate-Timestamp"]
    sig = req["headers"]["Feegate-Signature"]
    want = "v1=" + hmac.new(secret.encode(), ts.encode() + b"." + req["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(sig, want), (sig, want)
    assert abs(int(ts) - time.time()) < 300
    assert req["headers"]["Content-Type"].startswith("application/json")


def cancelled_order(api):
    o = new_order(api)
    r = api.post(f"/v1/orders/{o['id']}/cancel")
    assert r.status_code == 200, r.text
    return r.json()


def test_delivery_list_shows_the_clients_deliveries(portal, sink, api, sim, finance):
    o = cancelled_order(portal)
    d = wait_delivery(portal, o["id"], "order.cancelled", lambda d: d["status"] == "delivered", "the delivery")
    assert d["attempts"] == 1 and d["order_id"] == o["id"] and d["delivered_at"], d
    assert set(d) >= {"id", "order_id", "type", "status", "attempts", "created_at"}, d
    got = [r for r in sink.received if json.loads(r["body"])["data"]["id"] == o["id"]]
    assert len(got) == 1 and got[0]["path"] == "/feegate/webhook", got
    check_signature(got[0], portal.client.webhook_secret)
    doc = json.loads(got[0]["body"])
    assert doc["type"] == "order.cancelled" and doc["data"]["status"] == "cancelled" and doc["id"], doc
    assert doc["data"]["reference"] == o["reference"]

    listed = deliveries(portal)
    assert [(x["id"], x["order_id"]) for x in listed] == [(d["id"], o["id"])], listed  # its own only
    assert [x["id"] for x in deliveries(portal, status="delivered")].count(d["id"]) == 1
    assert d["id"] not in [x["id"] for x in deliveries(portal, status="pending")]
    assert d["id"] not in [x["id"] for x in deliveries(api)]  # not the demo client's
    r = portal.get("/v1/webhook-deliveries", params={"status": "nope"})
    assert r.status_code == 400 and error_of(r)["code"] == "validation_failed"
    assert finance.get("/v1/webhook-deliveries").status_code == 403

    # the demo client's deliveries (to banksim's sink) are listed for it
    paid, _ = pay_order(api, sim, "vnpay")
    types = wait_until(lambda: (lambda ds: {"order.pending", "order.succeeded"} <= {x["type"] for x in ds} and ds)(
        deliveries(api, order_id=paid["id"])), 10, what="the demo client's deliveries")
    assert all(x["order_id"] == paid["id"] for x in types)


def test_failing_portal_gets_retries_then_dead_then_redelivery(portal, sink, stack):
    sink.status = 500
    o = cancelled_order(portal)
    d = wait_delivery(portal, o["id"], "order.cancelled", lambda d: d["attempts"] >= 2,
                      "a second attempt", timeout=10)
    assert d["status"] == "pending" and d["last_status"] == 500 and d["next_attempt_at"], d
    reqs = [r for r in sink.received if json.loads(r["body"])["data"]["id"] == o["id"]]
    assert len(reqs) >= 2
    assert len({r["body"] for r in reqs}) == 1  # the same event each time
    gaps = [b["at"] - a["at"] for a, b in zip(reqs, reqs[1:])]
    assert all(g >= 0.5 for g in gaps), gaps  # backoff (1 s, +-25 %), not a hot loop
    for r in reqs:
        check_signature(r, portal.client.webhook_secret)

    # the portal keeps failing for longer than FEEGATE_WEBHOOK_MAX_AGE_S (25 h by default): make
    # the event that old and due now, and the next failure dead-letters it
    stack.query("UPDATE webhook_deliveries SET created_at = now() - interval '26 hours', next_attempt_at = now() "
                "WHERE id = %s", (d["id"],))
    dead = wait_delivery(portal, o["id"], "order.cancelled", lambda d: d["status"] == "dead", "dead-lettering")
    assert dead["attempts"] > d["attempts"] and dead["next_attempt_at"] is None, dead
    assert [x["id"] for x in deliveries(portal, status="dead")] == [dead["id"]]
    n = len(sink.received)
    time.sleep(1.5)
    assert len(sink.received) == n  # no more attempts

    # redelivered while the portal still fails: a new retry period, not dead at once
    r = portal.post(f"/v1/webhook-deliveries/{dead['id']}/redeliver")
    assert r.status_code == 202, r.text
    assert r.json()["id"] == dead["id"] and r.json()["status"] == "pending", r.text
    again = wait_delivery(portal, o["id"], "order.cancelled", lambda d: d["attempts"] > dead["attempts"],
                          "the redelivery attempt")
    time.sleep(0.3)
    again = delivery_of(portal, o["id"], "order.cancelled")
    assert again["status"] == "pending", again

    # the portal works again: redelivered, delivered once
    sink.status = 200
    r = portal.post(f"/v1/webhook-deliveries/{dead['id']}/redeliver")
    assert r.status_code == 202, r.text
    done = wait_delivery(portal, o["id"], "order.cancelled", lambda d: d["status"] == "delivered", "delivery")
    assert done["delivered_at"] and done["last_status"] == 200, done
    ok = [r for r in sink.received if json.loads(r["body"])["data"]["id"] == o["id"] and r["status"] == 200]
    assert len(ok) == 1, ok
    assert ok[0]["body"] == reqs[0]["body"]
    check_signature(ok[0], portal.client.webhook_secret)
    time.sleep(0.6)
    assert len([r for r in sink.received if json.loads(r["body"])["data"]["id"] == o["id"] and r["status"] == 200]) == 1


def test_dead_letter_after_the_configured_max_age(stack, gateway, sink):
    """On a gateway with FEEGATE_WEBHOOK_MAX_AGE_S=2, a portal that keeps failing has its event
    retried with growing delays, then dead-lettered; redelivered once it works, it is delivered.
    The shared gateway is paused meanwhile (SIGSTOP), so this gateway's relay is the only one."""
    client = stack.create_client(agencies=("XNC",), webhook_url=sink.url + "/hook")
    sink.status = 503
    with dedicated_gateway(stack, FEEGATE_WEBHOOK_MAX_AGE_S=2, FEEGATE_WEBHOOK_BACKOFF_MS=300) as gw:
        papi = Api(gw.url, client.key)
        os.killpg(gateway.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            o = cancelled_order(papi)
            dead = wait_delivery(papi, o["id"], "order.cancelled", lambda d: d["status"] == "dead",
                                 "dead-lettering", timeout=10)
            elapsed = time.monotonic() - t0
        finally:
            os.killpg(gateway.pid, signal.SIGCONT)
        assert dead["attempts"] >= 2 and dead["last_status"] == 503, dead
        assert elapsed < 6, elapsed
        reqs = [r for r in sink.received if json.loads(r["body"])["data"]["id"] == o["id"]]
        assert len(reqs) == dead["attempts"], (len(reqs), dead)
        gaps = [b["at"] - a["at"] for a, b in zip(reqs, reqs[1:])]
        # backoff grows (never shrinks by more than the relay's timer jitter, 50 ms)
        assert all(g >= 0.2 for g in gaps) and all(b >= a - 0.05 for a, b in zip(gaps, gaps[1:])), gaps
        time.sleep(0.8)
        assert len([r for r in sink.received if json.loads(r["body"])["data"]["id"] == o["id"]]) == len(reqs)

        sink.status = 204
        r = papi.post(f"/v1/webhook-deliveries/{dead['id']}/redeliver")
        assert r.status_code == 202 and r.json()["status"] == "pending", r.text
        done = wait_delivery(papi, o["id"], "order.cancelled", lambda d: d["status"] == "delivered", "delivery")
        assert done["last_status"] == 204, done
        check_signature(sink.received[-1], client.webhook_secret)
        papi.close()


def test_redeliver_only_own_deliveries(portal, api, sink):
    o = cancelled_order(portal)
    d = wait_delivery(portal, o["id"], "order.cancelled", lambda d: d["status"] == "delivered", "the delivery")
    r = api.post(f"/v1/webhook-deliveries/{d['id']}/redeliver")  # the demo client: not its delivery
    assert r.status_code == 404 and error_of(r)["code"] == "not_found", r.text
    for bad in (str(uuid.uuid4()), "not-a-uuid", "1"):
        r = portal.post(f"/v1/webhook-deliveries/{bad}/redeliver")
        assert r.status_code == 404 and error_of(r)["code"] == "not_found", (bad, r.text)
    assert delivery_of(portal, o["id"], "order.cancelled")["status"] == "delivered"
    assert portal.post(f"/v1/webhook-deliveries/{d['id']}/redeliver", key=None).status_code == 401
    # its own delivered event can be sent again: the same event, signed afresh
    r = portal.post(f"/v1/webhook-deliveries/{d['id']}/redeliver")
    assert r.status_code == 202, r.text
    got = wait_until(lambda: (lambda g: len(g) == 2 and g)(
        [x for x in sink.received if json.loads(x["body"])["data"]["id"] == o["id"]]), 10, what="the redelivered event")
    assert got[0]["body"] == got[1]["body"]
    check_signature(got[1], portal.client.webhook_secret)
    wait_delivery(portal, o["id"], "order.cancelled", lambda d: d["status"] == "delivered", "delivered again")


def test_a_backlog_larger_than_one_claim_is_delivered_once_each(portal, sink, stack):
    # 250 events: more than one claim (100 rows) and more than the relay's default concurrency
    # (100), so the relay has to claim again as calls finish and save answers in batches.
    n = 250
    orders = [new_order(portal) for _ in range(n)]
    for o in orders:
        r = portal.post(f"/v1/orders/{o['id']}/cancel")
        assert r.status_code == 200, r.text
    ids = {o["id"] for o in orders}

    def all_saved():
        rows = stack.query("SELECT status, attempts, count(*) FROM webhook_deliveries WHERE client_id = %s "
                           "GROUP BY 1, 2 ORDER BY 1, 2", (portal.client.id,))
        return [tuple(r) for r in rows] == [("delivered", 1, n)] or None

    wait_until(all_saved, 30, what="every delivery saved as delivered after one attempt")
    got = [r for r in sink.received if json.loads(r["body"])["data"]["id"] in ids]
    assert len(got) == n, len(got)
    assert len({r["headers"]["Feegate-Delivery"] for r in got}) == n  # each event once
    assert {json.loads(r["body"])["data"]["id"] for r in got} == ids
    # kept-alive connections are reused: far fewer connections than deliveries
    peers = {r["peer"] for r in got}
    assert len(peers) <= n // 2, f"{len(peers)} connections for {n} deliveries"
    for r in got:
        doc = json.loads(r["body"])
        assert doc["id"] == r["headers"]["Feegate-Delivery"] and doc["type"] == "order.cancelled", doc
        assert doc["data"]["status"] == "cancelled", doc
        check_signature(r, portal.client.webhook_secret)


def test_a_slow_portal_gets_its_share_of_calls_not_all_of_them(stack, gateway):
    """On a gateway allowing 10 webhook calls at once and 4 per portal, a portal that does not
    answer holds at most 8 (4, plus one claim of 4 while it was below its share), and another
    portal's webhooks go out meanwhile. The shared gateway is paused, so this relay is alone."""
    slow, fast = Sink(), Sink()
    slow.release.clear()
    try:
        slow_client = stack.create_client(agencies=("XNC",), webhook_url=slow.url + "/hook")
        fast_client = stack.create_client(agencies=("XNC",), webhook_url=fast.url + "/hook")
        with dedicated_gateway(stack, FEEGATE_WEBHOOK_CONCURRENCY=10, FEEGATE_WEBHOOK_PER_PORTAL=4,
                               FEEGATE_WEBHOOK_TIMEOUT_MS=30000) as gw:
            slow_api, fast_api = Api(gw.url, slow_client.key), Api(gw.url, fast_client.key)
            os.killpg(gateway.pid, signal.SIGSTOP)
            try:
                slow_ids = {cancelled_order(slow_api)["id"] for _ in range(30)}
                wait_until(lambda: slow.in_progress >= 4, 10, what="the slow portal holding calls")
                fast_ids = {cancelled_order(fast_api)["id"] for _ in range(12)}
                wait_until(lambda: {json.loads(r["body"])["data"]["id"] for r in fast.received} >= fast_ids, 15,
                           what="the other portal's webhooks while the slow one holds its calls")
                assert slow.most_in_progress <= 8, slow.most_in_progress
                assert not slow.received, "the slow portal answered before it was released"
                slow.release.set()
                wait_until(lambda: {json.loads(r["body"])["data"]["id"] for r in slow.received} >= slow_ids, 30,
                           what="the slow portal's webhooks once it answers")
            finally:
                os.killpg(gateway.pid, signal.SIGCONT)
            assert slow.most_in_progress <= 8, slow.most_in_progress
            slow_api.close()
            fast_api.close()
    finally:
        slow.release.set()
        slow.close()
        fast.close()


# ------------------------------------------------------------------ webhooks handed to the worker

def new_txn():
    return str(uuid.uuid4().int % 10 ** 14)


def counter(gw_url, name):
    for line in requests.get(gw_url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(f"feegate_{name}_total "):
            return int(line.split()[1])
    raise AssertionError(f"no feegate_{name}_total in /metrics")


def pending_vnpay_orders(stack, client, n, amount=231000):
    """n orders of `client` at XNC, each with one pending VNPAY attempt, written straight to the
    database (no checkout, so no order.pending webhook ahead of the payment's)."""
    tag = uuid.uuid4().hex[:8].upper()
    rows = stack.query(
        """WITH o AS (
             INSERT INTO orders (id, client_id, agency_id, reference, description, amount, status, return_url,
                                 checkout_token, created_at, updated_at, expires_at)
             SELECT feegate_uuid7(), %(c)s::uuid, (SELECT id FROM agencies WHERE code = 'XNC'), 'HAND-' || %(t)s || g,
                    'Le phi ho chieu', %(a)s, 'pending', 'https://portal.example/return', md5(random()::text),
                    now(), now(), now() + interval '1 hour'
               FROM generate_series(1, %(n)s) g RETURNING id, reference)
           INSERT INTO attempts (id, order_id, bank, bank_order_ref, amount)
           SELECT feegate_uuid7(), o.id, 'vnpay', 'HD' || %(t)s || lpad(substr(o.reference, 14), 4, '0'), %(a)s FROM o
           RETURNING order_id::text, bank_order_ref""", {"c": client.id, "t": tag, "a": amount, "n": n})
    return [(r[0], r[1]) for r in rows]


@contextlib.contextmanager
def portal_not_answering(stack, n, amount):
    """A portal client whose webhook endpoint holds every call until .release is set, and n of
    its orders with a pending VNPAY attempt each: (sink, client, [(order_id, ref)], {order_ids})."""
    slow = Sink()
    slow.release.clear()
    try:
        client = stack.create_client(agencies=("XNC",), webhook_url=slow.url + "/hook")
        orders = pending_vnpay_orders(stack, client, n, amount=amount)
        yield slow, client, orders, {o for o, _ in orders}
    finally:
        slow.release.set()
        slow.close()


def received_for(sink, order_ids, type_):
    return [r for r in sink.received
            if json.loads(r["body"])["data"]["id"] in order_ids and json.loads(r["body"])["type"] == type_]


def test_a_payment_webhook_is_sent_by_the_worker_that_applied_it(portal, sink, stack, gateway):
    """The notification's batch writes the order.succeeded row leased to its worker, which sends it
    after COMMIT: counted as handed, one attempt, delivered once, signed, without a claim."""
    env = stack.env
    (order_id, ref), = pending_vnpay_orders(stack, portal.client, 1)
    handed = counter(gateway.url, "webhooks_handed")
    assert vnpay_send_ipn(gateway.url, vnpay_ipn_query(env, ref, 231000, new_txn()))[0] == "00"
    wait_delivery(portal, order_id, "order.succeeded", lambda d: d["status"] == "delivered", "delivered")
    # (the sweeper may hand over the webhook of some other test's payment meanwhile)
    assert counter(gateway.url, "webhooks_handed") >= handed + 1
    rows = stack.query("SELECT type, status, attempts FROM webhook_deliveries WHERE order_id = %s", (order_id,))
    assert [tuple(r) for r in rows] == [("order.succeeded", "delivered", 1)], rows
    got = received_for(sink, {order_id}, "order.succeeded")
    assert len(got) == 1, got
    check_signature(got[0], portal.client.webhook_secret)
    doc = json.loads(got[0]["body"])
    assert doc["id"] == got[0]["headers"]["Feegate-Delivery"] and doc["data"]["status"] == "succeeded", doc
    assert_ledger_ok(stack)


def test_a_payment_does_not_overtake_an_earlier_event_of_its_order(api, sim, stack, gateway):
    """Paid while its order.pending webhook is still in the outbox (the portal does not answer),
    the order.succeeded row is not handed to the worker: it waits in the outbox behind the
    earlier one, and the portal gets both once it answers."""
    slow = Sink()
    slow.release.clear()
    try:
        client = stack.create_client(agencies=("XNC",), webhook_url=slow.url + "/hook")
        portal_api = Api(gateway.url, client.key)
        order = new_order(portal_api, amount=232000)
        r = requests.post(f"{gateway.url}/checkout/{order['checkout_url'].rsplit('/', 1)[1]}",
                          data={"bank": "vnpay"}, allow_redirects=False, timeout=30)
        assert r.status_code == 303, r.text[:300]
        ref = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.headers["Location"]).query))["vnp_TxnRef"]
        wait_until(lambda: slow.in_progress >= 1, 10, what="the order.pending call held by the portal")
        assert vnpay_send_ipn(gateway.url, vnpay_ipn_query(stack.env, ref, 232000, new_txn()))[0] == "00"
        # A handed row is written leased for exactly the lease (35 s with the shared gateway's
        # 5 s webhook timeout) from its own creation; a claimed one from the later claim.
        rows = stack.query("SELECT attempts, next_attempt_at = created_at + interval '35 seconds' "
                           "FROM webhook_deliveries WHERE order_id = %s AND type = 'order.succeeded'", (order["id"],))
        assert len(rows) == 1 and rows[0][1] is False, rows
        slow.release.set()
        wait_until(lambda: len(received_for(slow, {order["id"]}, "order.succeeded")) == 1, 15,
                   what="the order.succeeded webhook once the portal answers")
        assert len(received_for(slow, {order["id"]}, "order.pending")) == 1
        portal_api.close()
    finally:
        slow.release.set()
        slow.close()
    assert_ledger_ok(stack)


def test_handed_webhooks_without_room_go_back_to_the_outbox_and_are_delivered_once(stack, gateway):
    """A one-worker gateway allowing one webhook call at a time holds at most 4 handed rows while
    its portal does not answer; the rest go back to the outbox, due at once with no attempt
    counted. Once the portal answers, every payment's webhook is delivered exactly once."""
    n = 10
    with portal_not_answering(stack, n, 233000) as (slow, client, orders, ids):
        with dedicated_gateway(stack, FEEGATE_WORKERS=1, FEEGATE_WEBHOOK_CONCURRENCY=1, FEEGATE_WEBHOOK_PER_PORTAL=1,
                               FEEGATE_WEBHOOK_TIMEOUT_MS=30000) as gw:
            os.killpg(gateway.pid, signal.SIGSTOP)  # this gateway's relay alone
            try:
                for _, ref in orders:
                    assert vnpay_send_ipn(gw.url, vnpay_ipn_query(stack.env, ref, 233000, new_txn()))[0] == "00"
                assert counter(gw.url, "webhooks_handed") >= n

                def released():
                    rows = stack.query("SELECT count(*) FILTER (WHERE attempts = 0 AND next_attempt_at <= now()), "
                                       "count(*) FROM webhook_deliveries WHERE client_id = %s AND status = 'pending'",
                                       (client.id,))
                    return rows[0][0] >= n - 1 - 4 and rows[0][1] == n or None

                wait_until(released, 10, what="the rows beyond the 4 held given back to the outbox")
                assert slow.most_in_progress == 1, slow.most_in_progress
                slow.release.set()

                def all_delivered():
                    rows = stack.query("SELECT status, count(*) FROM webhook_deliveries WHERE client_id = %s "
                                       "GROUP BY 1", (client.id,))
                    return [tuple(r) for r in rows] == [("delivered", n)] or None

                wait_until(all_delivered, 30, what="every webhook delivered")
            finally:
                os.killpg(gateway.pid, signal.SIGCONT)
        got = received_for(slow, ids, "order.succeeded")
        assert len(got) == n, len(got)
        assert len({r["headers"]["Feegate-Delivery"] for r in got}) == n
        assert {json.loads(r["body"])["data"]["id"] for r in got} == ids
        for r in got:
            check_signature(r, client.webhook_secret)
    assert_ledger_ok(stack)


def test_a_draining_worker_gives_its_held_webhooks_back(stack, gateway):
    """SIGTERM while a worker holds handed webhook rows it had no room to send: it gives them back
    to the outbox (due at once, no attempt counted) rather than sitting on them until their
    lease ends, and the shared gateway's relay then delivers them."""
    n = 4
    with portal_not_answering(stack, n, 234000) as (slow, client, orders, ids):
        os.killpg(gateway.pid, signal.SIGSTOP)  # the dedicated gateway's relay alone for now
        try:
            with dedicated_gateway(stack, FEEGATE_WORKERS=1, FEEGATE_WEBHOOK_CONCURRENCY=1,
                                   FEEGATE_WEBHOOK_TIMEOUT_MS=30000, FEEGATE_SHUTDOWN_TIMEOUT_MS=1500) as gw:
                for _, ref in orders:
                    assert vnpay_send_ipn(gw.url, vnpay_ipn_query(stack.env, ref, 234000, new_txn()))[0] == "00"
                wait_until(lambda: slow.in_progress == 1, 10, what="one call held by the portal")
                rows = stack.query("SELECT count(*) FROM webhook_deliveries WHERE client_id = %s AND attempts = 1 "
                                   "AND next_attempt_at > now() + interval '20 seconds'", (client.id,))
                assert rows[0][0] == n, rows  # all handed, leased to this gateway
                assert gw.stop() is not None  # drains: the held rows go back, the call in flight is given up
            rows = stack.query("SELECT count(*) FILTER (WHERE attempts = 0 AND next_attempt_at <= now()), "
                               "count(*) FILTER (WHERE attempts = 1) FROM webhook_deliveries "
                               "WHERE client_id = %s AND status = 'pending'", (client.id,))
            assert tuple(rows[0]) == (n - 1, 1), rows
        finally:
            os.killpg(gateway.pid, signal.SIGCONT)
        slow.release.set()
        wait_until(lambda: {json.loads(r["body"])["data"]["id"] for r in received_for(slow, ids, "order.succeeded")}
                   >= ids - {orders[0][0]}, 20, what="the given-back webhooks, from the shared gateway's relay")
    assert_ledger_ok(stack)


# ------------------------------------------------------------------------------ retention

def outbox_rows(stack, client_id, tag, n, status, ended_days_ago=None, created_days_ago=None):
    """n outbox rows of one kind written straight into the table, typed `test.<tag>`: delivered
    or dead-lettered `ended_days_ago` (created then too, unless `created_days_ago`), or pending,
    created `created_days_ago` and due only tomorrow (so that no relay sends them meanwhile)."""
    created = created_days_ago if created_days_ago is not None else ended_days_ago
    stack.query(
        "INSERT INTO webhook_deliveries (client_id, order_id, type, payload, status, attempts, next_attempt_at, "
        "created_at, delivered_at) "
        "SELECT %(client)s, gen_random_uuid(), %(type)s, '{}', %(status)s, 1, "
        "CASE WHEN %(status)s = 'pending' THEN now() + interval '1 day' ELSE now() - make_interval(days => %(ended)s) END, "
        "now() - make_interval(days => %(created)s), "
        "CASE WHEN %(status)s = 'delivered' THEN now() - make_interval(days => %(ended)s) END "
        "FROM generate_series(1, %(n)s)",
        {"client": client_id, "type": f"test.{tag}", "status": status, "ended": ended_days_ago or 0,
         "created": created, "n": n})


def tagged(stack, tag):
    return stack.scalar("SELECT count(*) FROM webhook_deliveries WHERE type = %s", (f"test.{tag}",))


def test_retention_deletes_old_delivered_and_dead_rows_and_never_a_pending_one(stack, gateway):
    """feegate_webhook_retention(days, limit): delivered and dead rows whose end is older than
    the retention go, oldest first and at most `limit` a call; recent ones and pending ones,
    however old, stay."""
    client = stack.create_client(agencies=("XNC",))
    run = uuid.uuid4().hex[:8]
    outbox_rows(stack, client.id, f"{run}.old_delivered", 30, "delivered", ended_days_ago=8)
    outbox_rows(stack, client.id, f"{run}.old_dead", 5, "dead", ended_days_ago=9)
    outbox_rows(stack, client.id, f"{run}.recent_delivered", 7, "delivered", ended_days_ago=6)
    # created long ago, delivered just now (a redelivery): its age counts from the delivery
    outbox_rows(stack, client.id, f"{run}.redelivered", 3, "delivered", ended_days_ago=0, created_days_ago=20)
    outbox_rows(stack, client.id, f"{run}.old_pending", 4, "pending", created_days_ago=30)
    try:
        # the shared gateway's sweeper (7 days) may take some of the old rows meanwhile
        while stack.scalar("SELECT feegate_webhook_retention(7, 10)") == 10:
            pass
        assert tagged(stack, f"{run}.old_delivered") == 0
        assert tagged(stack, f"{run}.old_dead") == 0
        assert tagged(stack, f"{run}.recent_delivered") == 7
        assert tagged(stack, f"{run}.redelivered") == 3
        assert tagged(stack, f"{run}.old_pending") == 4
        assert stack.scalar("SELECT feegate_webhook_retention(7, 10)") == 0
        # a shorter retention reaches the recent ones, still never the pending ones
        while stack.scalar("SELECT feegate_webhook_retention(1, 1000)") > 0:
            pass
        assert tagged(stack, f"{run}.recent_delivered") == 0
        assert tagged(stack, f"{run}.redelivered") == 3
        assert tagged(stack, f"{run}.old_pending") == 4
        # found by the retention index, not a read of the outbox
        plan = "\n".join(r[0] for r in stack.query(
            "EXPLAIN SELECT ctid FROM webhook_deliveries w WHERE w.status <> 'pending' "
            "AND coalesce(w.delivered_at, w.next_attempt_at) < now() - make_interval(days => 7) "
            "ORDER BY coalesce(w.delivered_at, w.next_attempt_at) LIMIT 5000"))
        assert "webhook_deliveries_finished" in plan, plan
    finally:
        stack.query("DELETE FROM webhook_deliveries WHERE type LIKE %s", (f"test.{run}.%",))


def test_the_sweeper_deletes_rows_past_the_configured_retention_in_batches(stack, gateway):
    """A gateway with FEEGATE_WEBHOOK_RETENTION_DAYS=3 deletes 12,000 rows delivered 4 days ago
    (more than two of the sweeper's batches) within seconds of starting, and keeps the rows
    delivered 2 days ago and the pending ones. The shared gateway (7 days) touches none of them."""
    client = stack.create_client(agencies=("XNC",))
    run = uuid.uuid4().hex[:8]
    outbox_rows(stack, client.id, f"{run}.old", 12000, "delivered", ended_days_ago=4)
    outbox_rows(stack, client.id, f"{run}.recent", 10, "delivered", ended_days_ago=2)
    outbox_rows(stack, client.id, f"{run}.pending", 10, "pending", created_days_ago=10)
    try:
        with dedicated_gateway(stack, FEEGATE_WEBHOOK_RETENTION_DAYS=3) as gw:
            wait_until(lambda: tagged(stack, f"{run}.old") == 0, 30, interval=0.2,
                       what="the rows past retention to be deleted")
            assert tagged(stack, f"{run}.recent") == 10
            assert tagged(stack, f"{run}.pending") == 10
            wait_until(lambda: "delivered and dead webhook rows past retention deleted" in gw.log_path.read_text(),
                       5, what="the sweeper's log line")
    finally:
        stack.query("DELETE FROM webhook_deliveries WHERE type LIKE %s", (f"test.{run}.%",))
