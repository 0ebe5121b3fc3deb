"""The citizen's checkout page, and that it (and order intake) survive Redis being flushed or
down (docs/openapi.yaml, checkout; /readyz)."""
import html
import secrets
import time

import requests

from conftest import order_body


def agency_name(stack, code):
    return stack.scalar("SELECT name FROM agencies WHERE code = %s", (code,))


def new_order(api, **kw):
    r = api.create(order_body(**kw))
    assert r.status_code == 201, r.text
    return r.json()


def assert_checkout_page(stack, order, status=200):
    r = requests.get(order["checkout_url"], timeout=10)
    assert r.status_code == status, r.text[:500]
    assert r.headers["Content-Type"].startswith("text/html"), r.headers
    page = r.content.decode("utf-8")
    name = agency_name(stack, order["agency"])
    assert name in page or html.escape(name) in page, (name, page[:1000])
    assert html.escape(order["description"], quote=False) in page or html.escape(order["description"]) in page
    return page


def readyz(gateway):
    r = requests.get(gateway.url + "/readyz", timeout=10)
    return r.status_code, r.json()


def wait_ready(gateway, timeout=15):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = readyz(gateway)
        if last[0] == 200 and last[1].get("redis") == "ok":
            return last
        time.sleep(0.1)
    raise AssertionError(f"/readyz not ready after {timeout} s: {last}")


def test_checkout_page_shows_agency_description_and_amount(api, stack):
    o = new_order(api, amount=200000, description="Lệ phí cấp hộ chiếu — Nguyễn Văn Ánh")
    page = assert_checkout_page(stack, o)
    assert "200.000 ₫" in page
    o2 = new_order(api, agency="DKKD", amount=1234567, description="Phí đăng ký <doanh nghiệp> & hộ",
                   items=[{"code": "A", "name": "Lệ phí", "amount": 1000000},
                          {"code": "B", "name": "Phí công bố", "amount": 234567}])
    page2 = assert_checkout_page(stack, o2)
    assert "1.234.567 ₫" in page2
    assert "<doanh nghiệp>" not in page2  # HTML-escaped, not injected
    assert agency_name(stack, "DKKD") in page2
    o3 = new_order(api, amount=100000000000)
    assert "100.000.000.000 ₫" in assert_checkout_page(stack, o3)
    o4 = new_order(api, amount=5)
    assert "5 ₫" in assert_checkout_page(stack, o4)


def test_unknown_checkout_token_is_404(gateway):
    for token in (secrets.token_urlsafe(32), "short", "a" * 200, "..%2F..%2Fetc", "%00"):
        r = requests.get(f"{gateway.url}/checkout/{token}", timeout=10)
        assert r.status_code == 404, (token, r.status_code, r.text[:200])


def test_checkout_link_survives_redis_flushall(api, stack):
    o = new_order(api)
    assert_checkout_page(stack, o)  # cached now, if the gateway caches it
    assert stack.redis("FLUSHALL") == "OK"
    assert stack.redis("DBSIZE") == 0
    assert "200.000 ₫" in assert_checkout_page(stack, o)
    o2 = new_order(api)
    assert stack.redis("FLUSHALL") == "OK"
    assert_checkout_page(stack, o2)  # never viewed before the flush


def test_redis_down_orders_and_checkout_still_work(api, stack, gateway):
    before = new_order(api)
    assert_checkout_page(stack, before)
    status, body = readyz(gateway)
    assert status == 200 and body.get("redis") == "ok" and body.get("postgres") == "ok", body
    stack.redis_stop()
    try:
        # Redis holds only what may be lost: still ready, the body says Redis is away
        status, body = readyz(gateway)
        assert status == 200, body
        assert body.get("redis") == "unavailable" and body.get("postgres") == "ok", body
        assert body.get("status") == "degraded", body
        t0 = time.monotonic()
        during = [new_order(api) for _ in range(5)]
        assert time.monotonic() - t0 < 5, "order creation waits on the absent Redis"
        for o in [before] + during:
            assert "200.000 ₫" in assert_checkout_page(stack, o)
        got = api.get(f"/v1/orders/{during[0]['id']}")
        assert got.status_code == 200 and got.json()["status"] == "created"
    finally:
        stack.redis_start()
    status, body = wait_ready(gateway)
    assert body.get("redis") == "ok" and body.get("postgres") == "ok", body
    after = new_order(api)
    for o in (before, during[0], after):
        assert_checkout_page(stack, o)
