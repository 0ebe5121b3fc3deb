"""Per-client rate limits kept in Redis (issue 15): one budget shared by every worker of every
gateway on the same Redis; 429 `rate_limited` with a Retry-After that a client can trust; and,
with Redis killed or frozen, the workers' own buckets limit (never unlimited) while every
request is still answered at once.

Each test uses a client of its own, so no other test's traffic counts against its budget. The
requests are GET /v1/orders/{unknown id} (404 once past the limit check), each on a new
connection, so SO_REUSEPORT spreads them over both workers of a gateway."""
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import TIME_SCALE, error_of


def probe(url, key):
    """One request; (status, Retry-After or None, seconds taken)."""
    t0 = time.monotonic()
    r = requests.get(f"{url}/v1/orders/{uuid.uuid4()}", headers={"Authorization": f"Bearer {key}",
                                                                  "Connection": "close"}, timeout=10)
    took = time.monotonic() - t0
    assert r.status_code in (404, 429), (r.status_code, r.text[:200])
    if r.status_code == 429:
        assert error_of(r)["code"] == "rate_limited", r.text
    return r.status_code, r.headers.get("Retry-After"), took


def redis_keys(stack, pattern):
    return stack.redis("EVAL", "return #redis.call('KEYS', ARGV[1])", "0", pattern)


def test_two_gateways_share_one_budget(gateway_factory, stack):
    """Two gateways of two workers each: the requests they accept together stay within one
    budget (30 a 30 s window), not one per gateway (60) or per worker."""
    client = stack.create_client()
    env = dict(FEEGATE_RATE_LIMIT_RPS=1, FEEGATE_RATE_LIMIT_WINDOW_S=30, FEEGATE_WORKERS=2)
    gws = [gateway_factory(**env), gateway_factory(**env)]
    accepted = [0, 0]
    refused = [0, 0]
    t0 = time.monotonic()
    for i in range(120):
        status, retry, _ = probe(gws[i % 2].url, client.key)
        if status == 404:
            accepted[i % 2] += 1
        else:
            refused[i % 2] += 1
            assert retry and retry.isdigit(), retry
    elapsed = time.monotonic() - t0
    total = sum(accepted)
    # a sliding window lets the part of the previous window that slid out back in: over
    # `elapsed` seconds at most budget * (1 + elapsed / window)
    bound = 30 * (1 + elapsed / 30) + 1
    print(f"shared budget: accepted {accepted} refused {refused} in {elapsed:.1f} s (bound {bound:.0f})")
    assert 30 <= total <= bound, (accepted, elapsed)
    assert total < 60  # one budget per gateway would have let 60 through
    assert all(accepted) and all(refused), (accepted, refused)  # both gateways counted, both refused
    assert redis_keys(stack, f"rl:c:{client.id}:*") >= 1


def test_retry_after_is_plausible(gateway_factory, stack):
    """Retry-After is one whole number of seconds, no longer than the sliding window needs
    (two windows at most), and a retry after it passes."""
    client = stack.create_client()
    gw = gateway_factory(FEEGATE_RATE_LIMIT_RPS=1, FEEGATE_RATE_LIMIT_WINDOW_S=4)
    for _ in range(20):
        status, retry, _ = probe(gw.url, client.key)
        if status == 429:
            break
    else:
        pytest.fail("20 requests against a budget of 4 were never refused")
    assert retry is not None and retry.isdigit(), f"Retry-After {retry!r}"  # also: just one header
    wait = int(retry)
    assert 1 <= wait <= 8, wait
    assert probe(gw.url, client.key)[0] == 429  # at once: still refused
    time.sleep(wait + 0.3)
    assert probe(gw.url, client.key)[0] == 404, f"refused again after waiting Retry-After ({wait} s)"


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_redis_down_local_buckets_limit(fault, gateway_factory, stack):
    """Redis killed, or frozen with SIGSTOP: every request is still answered promptly (no wait
    for Redis beyond FEEGATE_RATE_LIMIT_WAIT_MS), the workers' own buckets still refuse past
    their share of the budget with Retry-After, and once Redis is back the counting returns
    to it."""
    client = stack.create_client()
    gw = gateway_factory(FEEGATE_RATE_LIMIT_RPS=1, FEEGATE_RATE_LIMIT_WINDOW_S=20, FEEGATE_WORKERS=2,
                         FEEGATE_REDIS_TIMEOUT_MS=200, FEEGATE_RATE_LIMIT_WAIT_MS=50,
                         FEEGATE_RATE_LIMIT_FALLBACK_MS=1000)
    probe(gw.url, client.key)  # the key is looked up and cached before the fault
    pid = int(Path(stack.facts["REDIS_PIDFILE"]).read_text().strip())
    statuses, slowest = [], 0.0
    try:
        os.kill(pid, signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
        t0 = time.monotonic()
        for _ in range(80):
            status, retry, took = probe(gw.url, client.key)
            statuses.append(status)
            slowest = max(slowest, took)
            if status == 429:
                assert retry and retry.isdigit() and 1 <= int(retry) <= 20, retry
        elapsed = time.monotonic() - t0
    finally:
        if fault == "killed":
            deadline = time.monotonic() + 10
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)  # until it is reaped: stack.sh would take it for a running Redis
            stack.redis_start()
        else:
            os.kill(pid, signal.SIGCONT)
    accepted = statuses.count(404)
    # each worker's bucket: a share of 0.5 a second with 10 of burst; both together 20 and 1/s
    bound = 20 + elapsed * 1 + 2
    print(f"redis {fault}: accepted {accepted} of {len(statuses)} in {elapsed:.1f} s "
          f"(bound {bound:.0f}), slowest answer {slowest * 1000:.0f} ms")
    assert statuses.count(429) > 0, "Redis down opened the limit"
    assert 1 <= accepted <= bound, (accepted, elapsed)
    assert slowest < 1.0 * TIME_SCALE, f"a request waited {slowest:.2f} s with Redis {fault}"
    # back on Redis: the counting resumes there once the fallback period is over
    stack.redis("EVAL", "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 0",
                "0", f"rl:c:{client.id}:*")
    deadline = time.monotonic() + 15 * TIME_SCALE
    while redis_keys(stack, f"rl:c:{client.id}:*") == 0:
        assert time.monotonic() < deadline, "the rate limit never went back to Redis"
        probe(gw.url, client.key)
        time.sleep(0.2)
