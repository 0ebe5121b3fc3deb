"""Idempotency-Key on POST /v1/orders (docs/openapi.yaml): replay byte for byte, 422 on another body,
key validation, concurrency, answers given before any work are not stored, and a request whose
key is in use waits (up to FEEGATE_IDEMPOTENCY_WAIT_MS, default 10 s, then 409)."""
import hashlib
import threading
import time
import uuid

import pytest
import requests

from conftest import Api, error_of, order_body, to_json_bytes


def new_key():
    return f"idem-{uuid.uuid4()}"


def orders_with_ref(stack, client_id, ref):
    return stack.scalar("SELECT count(*) FROM orders WHERE client_id = %s AND reference = %s",
                        (client_id, ref))


def test_same_key_same_body_replays_byte_for_byte(api, stack):
    key = new_key()
    body = order_body()
    raw = to_json_bytes(body)
    first = api.create(raw=raw, idem=key)
    assert first.status_code == 201, first.text
    for _ in range(3):
        again = api.create(raw=raw, idem=key)
        assert again.status_code == first.status_code
        assert again.content == first.content
    assert orders_with_ref(stack, stack.env["FEEGATE_CLIENT_ID"], body["reference"]) == 1
    assert stack.scalar("SELECT count(*) FROM orders WHERE reference = %s", (body["reference"],)) == 1


def test_same_key_other_body_is_422(api, stack):
    key = new_key()
    body = order_body()
    first = api.create(body, idem=key)
    assert first.status_code == 201, first.text
    other = order_body(reference=body["reference"], amount=body["amount"] + 1)
    r = api.create(other, idem=key)
    assert r.status_code == 422, r.text
    assert error_of(r)["code"] == "idempotency_key_reused"
    # "byte for byte": the same JSON with other whitespace is another body
    r = api.create(raw=to_json_bytes(body) + b" ", idem=key)
    assert r.status_code == 422, r.text
    assert error_of(r)["code"] == "idempotency_key_reused"
    # the stored answer is unchanged by the refused attempts
    again = api.create(raw=to_json_bytes(body), idem=key)
    assert again.status_code == 201 and again.content == first.content
    assert stack.scalar("SELECT count(*) FROM orders WHERE reference = %s", (body["reference"],)) == 1


def test_key_is_scoped_to_the_client(api, other_api):
    key = new_key()
    a = api.create(order_body(), idem=key)
    assert a.status_code == 201, a.text
    b = other_api.create(order_body(), idem=key)
    assert b.status_code == 201, b.text
    assert a.json()["id"] != b.json()["id"]


@pytest.mark.parametrize("key", ["k" * 256, "khóa-thanh-toán".encode("utf-8"), b"caf\xe9-latin1", b"tab\there", ""],
                         ids=["256 chars", "utf-8 non-ascii", "latin-1 byte", "control char", "empty"])
def test_invalid_key_is_400(api, stack, key):
    body = order_body()
    r = api.create(body, idem=key)
    assert r.status_code == 400, r.text
    assert error_of(r)["code"] == "validation_failed"
    assert stack.scalar("SELECT count(*) FROM orders WHERE reference = %s", (body["reference"],)) == 0


def test_longest_and_shortest_valid_keys(gateway, stack):
    fresh = Api(gateway.url, stack.create_client().key)  # its keys are all unused
    try:
        for key in ("x" * 255, "1", "~!#$%&'*+-.^_`|", "with space"):
            body = order_body()
            r = fresh.create(body, idem=key)
            assert r.status_code == 201, (key, r.text)
            again = fresh.create(body, idem=key)
            assert again.status_code == 201 and again.content == r.content
    finally:
        fresh.close()


def test_fifty_concurrent_requests_with_one_key(gateway, stack):
    key = new_key()
    body = order_body()
    raw = to_json_bytes(body)
    n = 50
    barrier = threading.Barrier(n)
    answers = [None] * n

    def one(i):
        s = requests.Session()
        headers = {"Authorization": f"Bearer {stack.env['FEEGATE_API_KEY']}",
                   "Content-Type": "application/json", "Idempotency-Key": key}
        barrier.wait(timeout=30)
        try:
            r = s.post(gateway.url + "/v1/orders", data=raw, headers=headers, timeout=30)
            answers[i] = (r.status_code, r.content)
        except requests.RequestException as e:
            answers[i] = ("error", repr(e).encode())
        finally:
            s.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(a is not None for a in answers)
    distinct = set(answers)
    assert len(distinct) == 1, distinct
    status, content = answers[0]
    assert status == 201, content
    assert stack.scalar("SELECT count(*) FROM orders WHERE reference = %s", (body["reference"],)) == 1
    assert stack.scalar("SELECT count(*) FROM idempotency_keys WHERE idem_key = %s", (key,)) == 1


def test_answers_before_any_work_are_not_stored(api, stack):
    key = new_key()
    good = order_body()
    # 400 (validation), 400 (invalid JSON), 401: none of them binds the key
    r = api.create(order_body(reference=good["reference"], amount=0), idem=key)
    assert r.status_code == 400, r.text
    r = api.create(raw=b"{not json", idem=key)
    assert r.status_code == 400, r.text
    r = api.create(good, idem=key, key="fgk_wrong")
    assert r.status_code == 401, r.text
    r = api.create(good, idem=key)
    assert r.status_code == 201, r.text
    again = api.create(good, idem=key)
    assert again.status_code == 201 and again.content == r.content


def test_oversized_body_does_not_bind_the_key(api):
    key = new_key()
    big = to_json_bytes(order_body())[:-1] + b',"metadata":{"pad":"' + b"x" * (1 << 20) + b'"}}'
    r = api.create(raw=big, idem=key)
    assert r.status_code == 413
    r = api.create(order_body(), idem=key)
    assert r.status_code == 201, r.text


# ------------------------------------------------------------------------------ a key in use

class HeldKey:
    """Simulates a first request with this key that is still being processed, as the gateway's
    own intake transaction holds it: the key's advisory lock (feegate_idem_lock_key) and its row
    in idempotency_keys, in a transaction left open until release(), which rolls it back as a
    failed first attempt would."""

    def __init__(self, stack, client_id, key, body_bytes):
        self.conn = stack.connect()
        self.conn.autocommit = False
        self.conn.execute("SELECT pg_advisory_xact_lock(feegate_idem_lock_key(%s, %s))", (client_id, key))
        self.conn.execute(
            "INSERT INTO idempotency_keys (client_id, idem_key, request_hash, http_status, response_body)"
            " VALUES (%s, %s, %s, 201, '{}')", (client_id, key, hashlib.sha256(body_bytes).hexdigest()))

    def release(self):
        if self.conn is not None:
            self.conn.rollback()
            self.conn.close()
            self.conn = None


def timed_create(url, api_key, raw, idem, results, name):
    t0 = time.monotonic()
    try:
        r = requests.post(url + "/v1/orders", data=raw, timeout=40, headers={
            "Authorization": f"Bearer {api_key}", "Content-Type": "application/json", "Idempotency-Key": idem})
        results[name] = (time.monotonic() - t0, r)
    except requests.RequestException as e:
        results[name] = (time.monotonic() - t0, e)


def test_request_waits_while_its_key_is_in_use(gateway, stack):
    key, raw = new_key(), to_json_bytes(order_body())
    held = HeldKey(stack, stack.env["FEEGATE_CLIENT_ID"], key, raw)
    results = {}
    try:
        t = threading.Thread(target=timed_create,
                             args=(gateway.url, stack.env["FEEGATE_API_KEY"], raw, key, results, "r"))
        t.start()
        time.sleep(1.0)
        assert "r" not in results, f"answered while the key was in use: {results}"
    finally:
        held.release()
    t.join(20)
    elapsed, r = results["r"]
    assert isinstance(r, requests.Response), r
    assert r.status_code == 201, r.text
    assert 0.9 <= elapsed < 3, elapsed


def test_key_in_use_for_longer_than_the_default_wait_is_409(gateway, stack):
    key, raw = new_key(), to_json_bytes(order_body())
    held = HeldKey(stack, stack.env["FEEGATE_CLIENT_ID"], key, raw)
    results = {}
    try:
        timed_create(gateway.url, stack.env["FEEGATE_API_KEY"], raw, key, results, "r")
    finally:
        held.release()
    elapsed, r = results["r"]
    assert isinstance(r, requests.Response), r
    assert r.status_code == 409, (elapsed, r.text)
    assert error_of(r)["code"] == "idempotency_key_in_use"
    assert 9.5 <= elapsed < 12, elapsed  # "up to 10 s"


def test_key_in_use_honours_FEEGATE_IDEMPOTENCY_WAIT_MS(gateway_factory, stack):
    gw = gateway_factory(FEEGATE_IDEMPOTENCY_WAIT_MS=1000)
    key, raw = new_key(), to_json_bytes(order_body())
    held = HeldKey(stack, stack.env["FEEGATE_CLIENT_ID"], key, raw)
    results = {}
    try:
        timed_create(gw.url, stack.env["FEEGATE_API_KEY"], raw, key, results, "r")
    finally:
        held.release()
    elapsed, r = results["r"]
    assert isinstance(r, requests.Response), r
    assert (r.status_code, error_of(r)["code"]) == (409, "idempotency_key_in_use"), (elapsed, r.text)
    assert 0.9 <= elapsed < 2.5, elapsed


def batched_with_a_held_key(gw, stack, hold_s, others=5):
    """Sends a request whose key is in use and, 5 ms later, `others` unrelated orders (no key)
    that fall in the same group-commit window; releases the key after hold_s. Returns
    (held answer, [unrelated answers]) as (seconds, response) pairs."""
    api_key = stack.env["FEEGATE_API_KEY"]
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    assert requests.post(gw.url + "/v1/orders", data=to_json_bytes(order_body()), headers=headers,
                         timeout=10).status_code == 201  # key cached, pool connected
    key, raw = new_key(), to_json_bytes(order_body())
    held = HeldKey(stack, stack.env["FEEGATE_CLIENT_ID"], key, raw)
    results = {}
    threads = [threading.Thread(target=timed_create, args=(gw.url, api_key, raw, key, results, "held"))]

    def plain(name):
        t0 = time.monotonic()
        r = requests.post(gw.url + "/v1/orders", data=to_json_bytes(order_body()), headers=headers, timeout=40)
        results[name] = (time.monotonic() - t0, r)

    threads += [threading.Thread(target=plain, args=(f"o{i}",)) for i in range(others)]
    try:
        threads[0].start()
        time.sleep(0.005)
        for t in threads[1:]:
            t.start()
        time.sleep(hold_s)
    finally:
        held.release()
    for t in threads:
        t.join(40)
    return results.pop("held"), list(results.values())


def test_a_key_in_use_does_not_delay_unrelated_orders(gateway_factory, stack):
    # one worker and a 50 ms group-commit window: the requests below share one batch
    gw = gateway_factory(FEEGATE_WORKERS=1, FEEGATE_BATCH_WINDOW_US=50000)
    (held_s, held_r), others = batched_with_a_held_key(gw, stack, hold_s=2.5)
    assert held_r.status_code == 201 and held_s >= 2.4, (held_s, held_r.text)
    assert all(r.status_code == 201 for _, r in others), [(s, r.text[:100]) for s, r in others]
    slow = sorted(round(s, 2) for s, _ in others if s > 1.0)
    assert not slow, f"orders without an Idempotency-Key waited {slow} s for another request's key"


def test_key_in_use_is_409_after_10_s_even_when_batched(gateway_factory, stack):
    gw = gateway_factory(FEEGATE_WORKERS=1, FEEGATE_BATCH_WINDOW_US=50000)
    (held_s, held_r), others = batched_with_a_held_key(gw, stack, hold_s=12.5)
    assert held_r.status_code == 409 and error_of(held_r)["code"] == "idempotency_key_in_use", \
        (round(held_s, 2), held_r.status_code, held_r.text[:200])
    assert 9.5 <= held_s < 11.5, held_s
    assert all(r.status_code == 201 for _, r in others)
