"""Every banksim fault knob against the real gateway (issue 3): each test asserts the order's final
state and that no payment was applied twice (one payment transfer per attempt, one
bank_notifications row per bank transaction), then runs `feegate ledger check`."""
import os
import signal
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bankflow import *

BANKS = ["vnpay", "momo", "vietqr"]


def notify_attempts(sim, bank, ref, n, timeout=10):
    """Waits until banksim has logged n answered notification attempts for ref; returns them."""
    return wait_until(lambda: (lambda got: len(got) >= n and got)(
        [x for x in sim.notifications(bank=bank, ref=ref) if "status" in x]), timeout,
        what=f"{n} {bank} notification attempts for {ref}")


def notice_ref(started, answer=None):
    """banksim's ref of a payment's notifications: the attempt ref, or VietQR's transaction id."""
    return answer["transaction_id"] if started["bank"] == "vietqr" else started["ref"]


def assert_nothing_applied(stack, api, order, started, status="pending"):
    o = get_order(api, order["id"])
    assert o["status"] == status, o
    att = attempt_of(o, started["ref"])
    assert att["status"] == "pending" and att["bank_txn_id"] is None, att
    assert transfers(stack, order_id=order["id"]) == []
    assert notification_rows(stack, started["bank"], attempt_id=att["id"]) == []
    return o


def cancel_leftover(api, order):
    """The bank took this payment but the gateway refused its notification: cancel the order so
    the shared gateway's sweeper does not learn of the payment (and post it) during later tests."""
    r = api.post(f"/v1/orders/{order['id']}/cancel")
    assert r.status_code == 200, r.text


def expire_order(stack, order, refs=()):
    """The order's time is up; its attempts (refs) are made the oldest pending ones, so the
    sweeper asks about them first (it takes 20 a sweep, oldest first)."""
    stack.query("UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = %s", (order["id"],))
    if refs:
        stack.query("UPDATE attempts SET created_at = created_at - interval '1 day' WHERE bank_order_ref = ANY(%s)",
                    (list(refs),))


def gateway_log_since(path, offset):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


# ------------------------------------------------------------------ notification knobs

@pytest.mark.parametrize("bank", BANKS)
def test_delayed_notification(bank, api, sim, stack):
    order = new_order(api, amount=210000)
    started = start_payment(sim, order, bank)
    t0 = time.monotonic()
    answer = approve(sim, started, order, delay_ms=900)
    if bank == "vietqr":
        assert answer["notification"]["state"] == "delayed", answer
    else:
        assert answer.status_code == 303
    assert time.monotonic() - t0 < 0.7  # the bank did not wait for its notification
    assert get_order(api, order["id"])["status"] == "pending"
    o = wait_status(api, order["id"], "succeeded", timeout=10)
    assert time.monotonic() - t0 >= 0.85
    att = assert_single_payment(stack, o, started["ref"], bank)
    assert len(notification_rows(stack, bank, attempt_id=att["id"])) == 1
    assert_ledger_ok(stack)


@pytest.mark.parametrize("bank", BANKS)
def test_duplicated_notification_is_applied_once(bank, api, sim, stack):
    order = new_order(api, amount=220000)
    started = start_payment(sim, order, bank)
    answer = approve(sim, started, order, duplicate=True)
    sent = notify_attempts(sim, bank, notice_ref(started, answer if bank == "vietqr" else None), 2)
    answers = [(n["status"], n["answer"]) for n in sent]
    if bank == "vnpay":
        assert [a[1] for a in answers] == ['{"RspCode":"00","Message":"Confirm Success"}',
                                           '{"RspCode":"02","Message":"Order already confirmed"}'], answers
    elif bank == "momo":
        assert [a[0] for a in answers] == [204, 204], answers
    else:
        assert answers == [(200, '{"status":"ok"}')] * 2, answers
    o = wait_status(api, order["id"], "succeeded")
    att = assert_single_payment(stack, o, started["ref"], bank)
    assert len(notification_rows(stack, bank, attempt_id=att["id"])) == 1
    time.sleep(0.3)
    assert len(webhooks_for(sim, order["id"], "order.succeeded")) == 1
    assert_ledger_ok(stack)


def test_reordered_notifications_decline_arrives_after_success(api, sim, stack):
    """Two VNPAY attempts on one order: the first is declined, the second paid, and the bank
    delivers the decline after the success. The success stands; the late decline changes nothing."""
    order = new_order(api, amount=230000)
    a1 = start_payment(sim, order, "vnpay")
    a2 = start_payment(sim, order, "vnpay")
    r1 = vnpay_confirm(sim, a1["ref"], "decline", reorder=True, reorder_hold_ms=20000)
    assert r1.status_code == 303
    time.sleep(0.2)
    assert get_order(api, order["id"])["status"] == "pending"  # the decline is held back
    r2 = vnpay_confirm(sim, a2["ref"], "approve", reorder=True)
    assert r2.status_code == 303
    first = notify_attempts(sim, "vnpay", a1["ref"], 1)[0]
    second = notify_attempts(sim, "vnpay", a2["ref"], 1)[0]
    assert second["id"] < first["id"], (first, second)  # the success went out first
    assert '"RspCode":"00"' in second["answer"], second
    assert '"RspCode":"02"' in first["answer"], first
    o = wait_status(api, order["id"], "succeeded")
    assert_single_payment(stack, o, a2["ref"], "vnpay")
    assert attempt_of(o, a1["ref"])["status"] == "expired"
    assert_ledger_ok(stack)


def test_reordered_notifications_of_two_orders(api, sim, stack):
    o1, o2 = new_order(api, amount=240000), new_order(api, amount=250000)
    s1, s2 = start_payment(sim, o1, "momo"), start_payment(sim, o2, "momo")
    assert approve(sim, s1, o1, reorder=True, reorder_hold_ms=20000).status_code == 303
    time.sleep(0.2)
    assert get_order(api, o1["id"])["status"] == "pending"
    assert approve(sim, s2, o2, reorder=True).status_code == 303
    n1 = notify_attempts(sim, "momo", s1["ref"], 1)[0]
    n2 = notify_attempts(sim, "momo", s2["ref"], 1)[0]
    assert n2["id"] < n1["id"] and n1["status"] == n2["status"] == 204, (n1, n2)
    for order, started in ((o1, s1), (o2, s2)):
        o = wait_status(api, order["id"], "succeeded")
        assert_single_payment(stack, o, started["ref"], "momo")
    assert_ledger_ok(stack)


def test_dropped_notifications_are_recovered_by_the_status_query(api, sim, stack):
    """Nothing reaches the gateway; a gateway whose sweeper asks after 1 s learns the payment
    from VNPAY querydr (after two 503 answers) and MoMo query (after calls that time out)."""
    o_v, o_m, o_d = new_order(api, amount=260000), new_order(api, amount=270000), new_order(api, amount=275000)
    s_v, s_m, s_d = start_payment(sim, o_v, "vnpay"), start_payment(sim, o_m, "momo"), start_payment(sim, o_d, "momo")
    assert approve(sim, s_v, o_v, drop=True).status_code == 303
    assert approve(sim, s_m, o_m, drop=True).status_code == 303
    assert approve(sim, s_d, o_d, action="decline", drop=True).status_code == 303  # a lost decline
    for s in (s_v, s_m, s_d):
        logged = sim.notifications(bank=s["bank"], ref=s["ref"])
        assert [n.get("state") for n in logged] == ["dropped"], logged
    time.sleep(0.3)
    assert get_order(api, o_v["id"])["status"] == "pending"
    assert get_order(api, o_m["id"])["status"] == "pending"
    # The sweeper asks about the oldest pending attempts first (20 a sweep): make ours the oldest,
    # so attempts other tests left pending do not delay them (see the starvation test below).
    stack.query("UPDATE attempts SET created_at = created_at - interval '1 day' WHERE bank_order_ref = ANY(%s)",
                ([s_v["ref"], s_m["ref"], s_d["ref"]],))
    park_pending_queries(stack, "momo", keep=(s_m["ref"], s_d["ref"]))
    # VNPAY's API answers 503 twice; MoMo's does not answer at all for a while
    sim.faults(bank="vnpay", api_status=503, api_status_times=2)
    sim.faults(bank="momo", api_hang=True)
    with dedicated_gateway(stack, FEEGATE_QUERY_AFTER_S=1, FEEGATE_SWEEP_INTERVAL_MS=200,
                           FEEGATE_BANK_TIMEOUT_MS=500) as gw:
        wait_until(lambda: "status query for %s at momo" % s_m["ref"] in gateway_log_since(gw.log_path, 0), 10,
                   what="a MoMo status query that timed out")
        assert get_order(api, o_m["id"])["status"] == "pending"
        sim.faults(bank="momo", api_hang=False)
        for order, started in ((o_v, s_v), (o_m, s_m)):
            o = wait_status(api, order["id"], "succeeded", timeout=20)
            att = assert_single_payment(stack, o, started["ref"], started["bank"])
            rows = notification_rows(stack, started["bank"], attempt_id=att["id"])
            assert [(r["source"], r["success"]) for r in rows] == [("query", True)], rows
            wait_webhook(sim, order["id"], "order.succeeded")
        # the lost decline: MoMo says the payment failed, so the order can be paid again
        o = wait_status(api, o_d["id"], "created", timeout=10)
        att = attempt_of(o, s_d["ref"])
        assert att["status"] == "failed" and att["failure_code"] == "1006", att
        assert transfers(stack, order_id=o_d["id"]) == []
    assert sim.faults()["vnpay"]["api_status"] == 0  # both 503s were used
    assert_ledger_ok(stack)


def _expired_vnpay_payment(sim, stack, started):
    """Re-signs the gateway's VNPAY redirect with an expiry in the past and opens it at banksim,
    so banksim's payment is over its time (the gateway's own redirect expires with the order)."""
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(started["location"]).query))
    now = time.time()
    q["vnp_CreateDate"] = vn_compact(now - 600)
    q["vnp_ExpireDate"] = vn_compact(now - 60)
    q.pop("vnp_SecureHash", None)
    q["vnp_SecureHash"] = vnp_secure_hash(stack.env["FEEGATE_VNPAY_HASH_SECRET"], q)
    query = "&".join(php_urlencode(k) + "=" + php_urlencode(v) for k, v in q.items())
    r = sim.get("/paymentv2/vpcpay.html?" + query)
    assert r.status_code == 200 and "payment time is over" in r.text, r.text[:800]


def test_success_after_expiry_goes_to_suspense(api, sim, stack, finance, agency_staff):
    """allow_expired: the bank takes a payment after the order expired. The order stays expired,
    the attempt is succeeded, the money is posted to suspense and listed for finance."""
    order = new_order(api, amount=280000)
    r = choose_bank(order, "vnpay")
    assert r.status_code == 303
    started = {"bank": "vnpay", "location": r.headers["Location"],
               "ref": dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.headers["Location"]).query))["vnp_TxnRef"]}
    _expired_vnpay_payment(sim, stack, started)
    expire_order(stack, order, [started["ref"]])
    # the sweeper asks VNPAY before expiring the order; VNPAY says the payment is over
    o = wait_status(api, order["id"], "expired", timeout=15)
    assert attempt_of(o, started["ref"])["status"] in ("failed", "expired")
    wait_webhook(sim, order["id"], "order.expired")

    # without allow_expired the bank refuses (code 11): a failure, nothing changes
    r = vnpay_confirm(sim, started["ref"], "approve")
    assert r.status_code == 303
    assert "vnp_ResponseCode=11" in r.headers["Location"]
    n = notify_attempts(sim, "vnpay", started["ref"], 1)[-1]
    assert '"RspCode":"02"' in n["answer"] or '"RspCode":"00"' in n["answer"], n
    assert get_order(api, order["id"])["status"] == "expired"
    assert transfers(stack, order_id=order["id"]) == []

    # with allow_expired the money arrives after all
    r = vnpay_confirm(sim, started["ref"], "approve", allow_expired=True)
    assert r.status_code == 303 and "vnp_ResponseCode=00" in r.headers["Location"], r.headers
    n = notify_attempts(sim, "vnpay", started["ref"], 2)[-1]
    assert '"RspCode":"00"' in n["answer"], n
    o = get_order(api, order["id"])
    assert o["status"] == "expired", o
    att = attempt_of(o, started["ref"])
    txn = sim.payments(bank="vnpay", ref=started["ref"])[0]["txn_id"]
    assert att["status"] == "succeeded" and att["bank_txn_id"] == txn, att
    t = transfers(stack, order_id=order["id"])
    assert [(x["code"], x["debit"], x["credit"], x["amount"]) for x in t] == [
        ("suspense", "bank:vnpay:clearing", "suspense", 280000)], t
    exc = exception_rows(stack, order_id=order["id"])
    assert [(e["kind"], e["bank_txn_id"], e["amount"]) for e in exc] == [("late_success", txn, 280000)], exc

    listed = json_body(finance.get("/v1/exceptions"))["data"]
    mine = [e for e in listed if e["order_id"] == order["id"]]
    assert len(mine) == 1 and mine[0]["kind"] == "late_success" and mine[0]["amount"] == 280000, mine
    assert mine[0]["agency"] == "XNC" and mine[0]["bank"] == "vnpay"
    assert any(e["order_id"] == order["id"] for e in json_body(agency_staff.get("/v1/exceptions"))["data"])
    assert api.get("/v1/exceptions").status_code == 403
    time.sleep(0.3)
    assert not webhooks_for(sim, order["id"], "order.succeeded")
    assert_ledger_ok(stack)


def test_success_after_cancel_goes_to_suspense(api, sim, stack, finance):
    order = new_order(api, amount=290000)
    started = start_payment(sim, order, "momo")
    r = api.post(f"/v1/orders/{order['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert approve(sim, started, order).status_code == 303
    n = notify_attempts(sim, "momo", started["ref"], 1)[0]
    assert n["status"] == 204, n
    o = get_order(api, order["id"])
    assert o["status"] == "cancelled"
    assert attempt_of(o, started["ref"])["status"] == "succeeded"
    t = transfers(stack, order_id=order["id"])
    assert [(x["code"], x["debit"], x["credit"]) for x in t] == [("suspense", "bank:momo:clearing", "suspense")]
    assert [e["kind"] for e in exception_rows(stack, order_id=order["id"])] == ["late_success"]
    assert any(e["order_id"] == order["id"] for e in json_body(finance.get("/v1/exceptions"))["data"])
    assert_ledger_ok(stack)


@pytest.mark.parametrize("bank", ["vnpay", "momo"])
def test_wrong_amount_changes_nothing_and_is_kept(bank, api, sim, stack, finance):
    order = new_order(api, amount=300000)
    started = start_payment(sim, order, bank)
    assert approve(sim, started, order, wrong_amount=True).status_code == 303
    n = notify_attempts(sim, bank, started["ref"], 1)[0]
    if bank == "vnpay":
        assert '"RspCode":"04"' in n["answer"], n
    else:
        assert n["status"] == 400, n
    time.sleep(0.2)
    assert_nothing_applied(stack, api, order, started)
    exc = exception_rows(stack, order_id=order["id"])
    assert [(e["kind"], e["amount"]) for e in exc] == [("wrong_amount", 301000)], exc
    assert any(e["order_id"] == order["id"] and e["kind"] == "wrong_amount"
               for e in json_body(finance.get("/v1/exceptions"))["data"])
    assert_ledger_ok(stack)
    cancel_leftover(api, order)


def test_vietqr_credit_with_another_amount_is_suspense(api, sim, stack):
    """A transfer whose amount is not the attempt's does not match it: money received all the
    same, posted to suspense and listed."""
    order = new_order(api, amount=310000)
    started = start_payment(sim, order, "vietqr")
    answer = approve(sim, started, order, wrong_amount=True)
    assert answer["amount"] == 311000 and answer["notification"]["status"] == 200, answer
    assert get_order(api, order["id"])["status"] == "pending"
    t = transfers(stack)
    mine = [x for x in t if x["id"] == f"credit:vietqr:{answer['transaction_id']}"]
    assert [(x["code"], x["amount"], x["debit"], x["credit"]) for x in mine] == [
        ("suspense", 311000, "bank:vietqr:clearing", "suspense")], mine
    assert [e["kind"] for e in exception_rows(stack, bank_txn_id=answer["transaction_id"])] == ["unmatched_credit"]
    assert_ledger_ok(stack)


def bad_signatures_counted(gateway):
    for line in requests.get(gateway.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("feegate_bad_signatures_total "):
            return int(line.split()[1])
    raise AssertionError("no feegate_bad_signatures_total in /metrics")


@pytest.mark.parametrize("bank,knob", [("vnpay", "bad_signature"), ("momo", "bad_signature"),
                                       ("vietqr", "bad_signature"), ("vietqr", "stale_timestamp")])
def test_bad_signature_changes_nothing(bank, knob, api, sim, stack, gateway):
    log_offset = gateway.log_path.stat().st_size
    counted = bad_signatures_counted(gateway)
    order = new_order(api, amount=320000)
    started = start_payment(sim, order, bank)
    answer = approve(sim, started, order, **{knob: True})
    if bank == "vietqr":
        assert answer["notification"]["status"] == 401, answer
        assert (stack.scalar("SELECT count(*) FROM bank_notifications WHERE dedupe_key = %s",
                             (answer["transaction_id"],)) == 0)
    else:
        n = notify_attempts(sim, bank, started["ref"], 1)[0]
        if bank == "vnpay":
            assert '"RspCode":"97"' in n["answer"], n
            # the browser return carries the same broken signature: refused, no redirect
            loc = answer.headers["Location"]
            assert requests.get(loc, allow_redirects=False, timeout=10).status_code == 400
        else:
            assert n["status"] == 401, n
            # the browser return carries the same broken signature: refused, no redirect
            assert requests.get(answer.headers["Location"], allow_redirects=False, timeout=10).status_code == 400
    time.sleep(0.2)
    assert_nothing_applied(stack, api, order, started)
    assert exception_rows(stack, order_id=order["id"]) == []
    log = wait_until(lambda: (lambda t: "notification rejected" in t and t)(
        gateway_log_since(gateway.log_path, log_offset)), 5, what="the rejection in the gateway log")
    assert f"{bank} notification rejected" in log
    assert stack.env["FEEGATE_VNPAY_HASH_SECRET"] not in log
    if knob == "bad_signature":
        assert bad_signatures_counted(gateway) > counted
    cancel_leftover(api, order)


# ------------------------------------------------------------------ replays

@pytest.mark.parametrize("bank", BANKS)
def test_replayed_notification_changes_nothing(bank, api, sim, stack):
    order = new_order(api, amount=330000)
    started = start_payment(sim, order, bank)
    answer = approve(sim, started, order)
    o = wait_status(api, order["id"], "succeeded")
    att = assert_single_payment(stack, o, started["ref"], bank)
    ref = notice_ref(started, answer if bank == "vietqr" else None)
    first = notify_attempts(sim, bank, ref, 1)[-1]
    wait_webhook(sim, order["id"], "order.succeeded")
    hooks = len(sim.webhooks())

    sim.resend(bank, ref)
    again = wait_until(lambda: [n for n in sim.notifications(bank=bank, ref=ref)
                                if n["id"] > first["id"] and "status" in n], 10, what="the replay")[0]
    if bank == "vnpay":
        assert again["status"] == 200 and '"RspCode":"02"' in again["answer"], again
    elif bank == "momo":
        assert again["status"] == 204, again
    else:
        assert again["status"] == 200 and again["answer"] == '{"status":"ok"}', again
    assert get_order(api, order["id"]) == o
    assert_single_payment(stack, o, started["ref"], bank)
    assert len(transfers(stack, order_id=order["id"])) == 1
    assert len(notification_rows(stack, bank, attempt_id=att["id"])) == 1
    time.sleep(0.5)
    assert len(sim.webhooks()) == hooks
    assert_ledger_ok(stack)


def test_unmatched_vietqr_credit_is_suspense_and_an_exception(sim, stack, finance, agency_staff):
    answer = vietqr_transfer(sim, "0011001234567", 123456, "CHUYEN TIEN KHONG GHI MA")
    assert answer["notification"]["status"] == 200, answer
    assert answer["notification"]["answer"] == '{"status":"ok"}'
    txn = answer["transaction_id"]
    t = [x for x in transfers(stack) if x["id"] == f"credit:vietqr:{txn}"]
    assert [(x["code"], x["amount"], x["debit"], x["credit"], x["order_id"]) for x in t] == [
        ("suspense", 123456, "bank:vietqr:clearing", "suspense", None)], t
    listed = [e for e in json_body(finance.get("/v1/exceptions"))["data"] if e["bank_txn_id"] == txn]
    assert [(e["kind"], e["amount"], e["bank"]) for e in listed] == [("unmatched_credit", 123456, "vietqr")]
    # the credited collection account is XNC's: its staff see the exception; DKKD's money they do not
    assert txn in [e["bank_txn_id"] for e in json_body(agency_staff.get("/v1/exceptions"))["data"]]
    other = vietqr_transfer(sim, "1122334455", 7000, "KHONG MA")["transaction_id"]
    assert other in [e["bank_txn_id"] for e in json_body(finance.get("/v1/exceptions"))["data"]]
    assert other not in [e["bank_txn_id"] for e in json_body(agency_staff.get("/v1/exceptions"))["data"]]
    # the same credit again changes nothing
    first = notify_attempts(sim, "vietqr", txn, 1)[-1]
    sim.resend("vietqr", txn)
    again = wait_until(lambda: [n for n in sim.notifications(bank="vietqr", ref=txn)
                                if n["id"] > first["id"] and "status" in n], 10, what="the replay")[0]
    assert again["status"] == 200, again
    assert len([x for x in transfers(stack) if x["id"] == f"credit:vietqr:{txn}"]) == 1
    assert len(exception_rows(stack, bank_txn_id=txn)) == 1
    assert_ledger_ok(stack)


def test_vietqr_content_is_matched_loosely(api, sim, stack):
    """The transfer text is upper-cased and stripped to letters and digits before matching."""
    order = new_order(api, amount=340000)
    started = start_payment(sim, order, "vietqr")
    ref = started["ref"]
    content = f"nop le phi {ref[:5].lower()}-{ref[5:].lower()}. cam on"
    answer = vietqr_transfer(sim, started["vietqr"]["account"], 340000, content)
    assert answer["notification"]["status"] == 200
    o = wait_status(api, order["id"], "succeeded")
    assert_single_payment(stack, o, ref, "vietqr")
    assert_ledger_ok(stack)


# ------------------------------------------------------------------ bank API faults, circuit breaker

def test_momo_create_failures_hide_momo_until_it_answers_again(api, sim, stack):
    """MoMo's create failing (5xx, then a hang past the bank timeout): the citizen gets an error
    page, the attempt fails, the order is back to created. After FEEGATE_BREAKER_FAILURES failures
    MoMo is hidden from checkout; once the cooldown is over it is shown again, and a successful
    call keeps it."""
    with dedicated_gateway(stack, FEEGATE_BREAKER_FAILURES=3, FEEGATE_BREAKER_COOLDOWN_MS=1500,
                           FEEGATE_BANK_TIMEOUT_MS=700, FEEGATE_QUERY_AFTER_S=86400) as gw:
        order = new_order(api, amount=350000)
        assert "momo" in bank_buttons(checkout_html(order, gw.url))
        park_pending_queries(stack, "momo")
        for knobs in ({"api_status": 500}, {"api_status": 503}, {"api_status": 0, "api_hang": True}):
            sim.faults(bank="momo", **knobs)
            t0 = time.monotonic()
            r = choose_bank(order, "momo", gw.url)
            assert r.status_code == 502, (knobs, r.status_code, r.text[:300])
            assert r.headers["Content-Type"].startswith("text/html")
            assert "ngân hàng" in r.text.lower() or "bank" in r.text.lower()
            if knobs.get("api_hang"):
                assert 0.6 <= time.monotonic() - t0 < 5
            o = get_order(api, order["id"])
            assert o["status"] == "created", o
            assert o["attempts"][-1]["status"] == "failed" and o["attempts"][-1]["bank"] == "momo", o
        assert [a["status"] for a in o["attempts"]] == ["failed"] * 3
        assert transfers(stack, order_id=order["id"]) == []

        page = checkout_html(order, gw.url)
        assert sorted(bank_buttons(page)) == ["vietqr", "vnpay"], bank_buttons(page)
        r = choose_bank(order, "momo", gw.url)
        assert r.status_code == 503, r.status_code
        assert len(get_order(api, order["id"])["attempts"]) == 3  # no attempt opened
        assert "circuit open" in gateway_log_since(gw.log_path, 0)
        assert breaker_state(gw, "momo") == 1 and breaker_state(gw, "vnpay") == 0

        sim.reset_faults()
        time.sleep(1.6)
        assert "momo" in bank_buttons(checkout_html(order, gw.url))
        started = start_payment(sim, order, "momo", gw.url)
        assert "momo" in bank_buttons(checkout_html(order, gw.url))
        assert approve(sim, started, order).status_code == 303
        o = wait_status(api, order["id"], "succeeded")
        assert_single_payment(stack, o, started["ref"], "momo")
        assert breaker_state(gw, "momo") == 0
    assert_ledger_ok(stack)


def breaker_state(gw, bank):
    """feegate_bank_breaker_state{bank} from /metrics: 0 closed, 1 open, 2 half-open."""
    for line in requests.get(gw.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(f'feegate_bank_breaker_state{{bank="{bank}"}} '):
            return int(line.split()[-1])
    raise AssertionError(f"no feegate_bank_breaker_state for {bank} in /metrics")


def test_slow_momo_create_within_the_timeout_still_works(api, sim, stack):
    order = new_order(api, amount=360000)
    sim.faults(bank="momo", api_delay_ms=400)
    t0 = time.monotonic()
    started = start_payment(sim, order, "momo")
    assert time.monotonic() - t0 >= 0.35
    assert approve(sim, started, order).status_code == 303
    o = wait_status(api, order["id"], "succeeded")
    assert_single_payment(stack, o, started["ref"], "momo")
    assert_ledger_ok(stack)


# ------------------------------------------------------------------ money that arrives twice or late

def test_double_success_across_attempts_is_suspense(api, sim, stack, finance):
    """Two attempts of one order both paid at their banks (and a second VietQR transfer with the
    same content): the first success pays the order, every later one goes to suspense."""
    order = new_order(api, amount=370000)
    a_v = start_payment(sim, order, "vnpay")
    a_m = start_payment(sim, order, "momo")
    a_q = start_payment(sim, order, "vietqr")
    assert approve(sim, a_v, order).status_code == 303
    o = wait_status(api, order["id"], "succeeded")
    assert approve(sim, a_m, order).status_code == 303
    n = notify_attempts(sim, "momo", a_m["ref"], 1)[0]
    assert n["status"] == 204, n
    q1 = approve(sim, a_q, order)
    q2 = approve(sim, a_q, order)
    assert q1["notification"]["status"] == q2["notification"]["status"] == 200
    o = get_order(api, order["id"])
    assert o["status"] == "succeeded"
    assert_single_payment(stack, o, a_v["ref"], "vnpay")
    assert attempt_of(o, a_m["ref"])["status"] == "succeeded"
    assert attempt_of(o, a_q["ref"])["status"] == "succeeded"
    t = transfers(stack, order_id=order["id"])
    assert sorted((x["code"], x["debit"]) for x in t) == [
        ("payment", "bank:vnpay:clearing"), ("suspense", "bank:momo:clearing"),
        ("suspense", "bank:vietqr:clearing"), ("suspense", "bank:vietqr:clearing")], t
    assert all(x["amount"] == 370000 for x in t)
    kinds = sorted((e["kind"], e["bank"]) for e in exception_rows(stack, order_id=order["id"]))
    assert kinds == [("double_payment", "momo"), ("double_payment", "vietqr"), ("double_payment", "vietqr")], kinds
    listed = [e for e in json_body(finance.get("/v1/exceptions"))["data"] if e["order_id"] == order["id"]]
    assert len(listed) == 3
    time.sleep(0.3)
    assert len(webhooks_for(sim, order["id"], "order.succeeded")) == 1
    assert_ledger_ok(stack)


@pytest.mark.parametrize("bank", ["vnpay", "momo"])
def test_a_bank_that_says_paid_wins_over_the_clock(bank, api, sim, stack):
    """The notification is lost and the order's time runs out: before expiring it the sweeper
    asks the bank, which says paid, so the order succeeds."""
    order = new_order(api, amount=380000)
    started = start_payment(sim, order, bank)
    assert approve(sim, started, order, drop=True).status_code == 303
    expire_order(stack, order, [started["ref"]])
    o = wait_status(api, order["id"], "succeeded", timeout=15)
    att = assert_single_payment(stack, o, started["ref"], bank)
    assert [r["source"] for r in notification_rows(stack, bank, attempt_id=att["id"])] == ["query"]
    assert not webhooks_for(sim, order["id"], "order.expired")
    assert_ledger_ok(stack)


def test_vietqr_timestamp_window(api, sim, stack, gateway):
    """A credit signed correctly but timestamped more than 300 s away (either way) is refused; a
    bad signature too; inside the window it is applied."""
    env = stack.env
    order = new_order(api, amount=390000)
    started = start_payment(sim, order, "vietqr")
    acct, ref = started["vietqr"]["account"], started["ref"]
    now = int(time.time())
    for ts in (now - 400, now + 400):
        r = send_vietqr_credit(env, gateway.url, "FTTS" + str(ts), acct, 390000, ref, ts=ts)
        assert r.status_code == 401, (ts, r.text)
    r = send_vietqr_credit(env, gateway.url, "FTBADSIG1", acct, 390000, ref, secret="not-the-secret")
    assert r.status_code == 401, r.text
    assert_nothing_applied(stack, api, order, started)
    r = send_vietqr_credit(env, gateway.url, "FTOK" + str(now), acct, 390000, ref, ts=now - 200)
    assert r.status_code == 200 and r.json() == {"status": "ok"}, r.text
    o = wait_status(api, order["id"], "succeeded")
    assert attempt_of(o, ref)["bank_txn_id"] == "FTOK" + str(now)
    assert_single_payment(stack, o, ref, "vietqr")
    assert_ledger_ok(stack)


def test_notification_for_an_unknown_order(stack, gateway):
    env = stack.env
    code, _ = vnpay_send_ipn(gateway.url, vnpay_ipn_query(env, "FGNOSUCHREF9", 1000, "77001"))
    assert code == "01"
    r = requests.post(gateway.url + "/ipn/momo", data=momo_ipn_body(env, "FGNOSUCHREF9", 1000, 77002),
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 404, r.text
    r = requests.post(gateway.url + "/ipn/momo", data=momo_ipn_body(env, "FGNOSUCHREF9", 1000, 77003, bad_signature=True),
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 401, r.text
    assert stack.scalar("SELECT count(*) FROM bank_notifications WHERE bank_order_ref = 'FGNOSUCHREF9'") == 0
    assert requests.get(gateway.url + "/ipn/nosuchbank", timeout=10).status_code == 404


def test_vietqr_transfer_after_the_order_expired(api, sim, stack, finance):
    """VietQR has no status API: at expiry the attempt is closed by the clock. A transfer that
    arrives afterwards is money received: suspense, listed for finance."""
    order = new_order(api, amount=395000)
    started = start_payment(sim, order, "vietqr")
    expire_order(stack, order, [started["ref"]])
    o = wait_status(api, order["id"], "expired", timeout=10)
    assert attempt_of(o, started["ref"])["status"] == "expired"
    answer = approve(sim, started, order)
    assert answer["notification"]["status"] == 200, answer
    o = get_order(api, order["id"])
    assert o["status"] == "expired"
    assert attempt_of(o, started["ref"])["status"] == "succeeded"
    t = transfers(stack, order_id=order["id"])
    assert [(x["code"], x["debit"], x["credit"]) for x in t] == [("suspense", "bank:vietqr:clearing", "suspense")], t
    assert [e["kind"] for e in exception_rows(stack, order_id=order["id"])] == ["late_success"]
    assert any(e["order_id"] == order["id"] for e in json_body(finance.get("/v1/exceptions"))["data"])
    assert_ledger_ok(stack)


def test_many_abandoned_attempts_do_not_starve_the_status_query(api, sim, stack):
    """A sweeper asks the bank about at most 20 pending attempts a sweep, oldest first, and asks
    again about the same ones once FEEGATE_QUERY_AFTER_S (at most 10 s) has passed. With more old
    pending attempts than it gets through in that time (citizens who opened a bank page and left),
    a newer payment whose notification was lost must still be found: here 100 abandoned VNPAY
    attempts, then a MoMo payment whose IPN is dropped, on a gateway that sweeps once a second and
    queries after 1 s."""
    def abandon(i):
        o = new_order(api, amount=20000 + i)
        assert choose_bank(o, "vnpay").status_code == 303
        return o["id"]

    with ThreadPoolExecutor(8) as ex:
        abandoned = list(ex.map(abandon, range(100)))
    order = new_order(api, amount=396000)
    started = start_payment(sim, order, "momo")
    assert approve(sim, started, order, drop=True).status_code == 303
    try:
        with dedicated_gateway(stack, FEEGATE_QUERY_AFTER_S=1, FEEGATE_SWEEP_INTERVAL_MS=1000):
            o = wait_status(api, order["id"], "succeeded", timeout=12)
        assert_single_payment(stack, o, started["ref"], "momo")
        assert_ledger_ok(stack)
    finally:
        # the abandoned checkouts are cancelled and the lost notification delivered, so nothing of
        # this test is left for a sweeper to find later
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda oid: api.post(f"/v1/orders/{oid}/cancel"), abandoned))
        sim.resend("momo", started["ref"])
        wait_status(api, order["id"], "succeeded")


# ------------------------------------------------------------------ the bank retrying its notification

def test_the_bank_retries_a_notification_the_gateway_could_not_apply(api, sim, stack):
    """retries / retry_delay_ms: the gateway's database refuses the first try (a trigger installed
    for this test), so the gateway answers 99; VNPAY tries again and the payment is applied once."""
    order = new_order(api, amount=397000)
    started = start_payment(sim, order, "vnpay")
    tag = uuid.uuid4().hex[:10]
    fn, seq = f"test_once_{tag}", f"test_once_{tag}_seq"
    stack.query(f"CREATE SEQUENCE {seq}")
    stack.query(f"""CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.bank_order_ref = '{started["ref"]}' AND nextval('{seq}') = 1 THEN
            RAISE EXCEPTION 'the first try fails for the test'; END IF; RETURN NEW; END $$""")
    try:
        stack.query(f"CREATE TRIGGER {fn} BEFORE INSERT ON bank_notifications FOR EACH ROW EXECUTE FUNCTION {fn}()")
        t0 = time.monotonic()
        assert approve(sim, started, order, retries=3, retry_delay_ms=400).status_code == 303
        o = wait_status(api, order["id"], "succeeded", timeout=10)
        assert time.monotonic() - t0 >= 0.35
    finally:
        stack.query(f"DROP TRIGGER IF EXISTS {fn} ON bank_notifications")
        stack.query(f"DROP FUNCTION IF EXISTS {fn}()")
        stack.query(f"DROP SEQUENCE IF EXISTS {seq}")
    sent = notify_attempts(sim, "vnpay", started["ref"], 2)
    assert [(n["attempt"], n["status"]) for n in sent] == [(1, 200), (2, 200)], sent
    assert '"RspCode":"99"' in sent[0]["answer"] and '"RspCode":"00"' in sent[1]["answer"], sent
    att = assert_single_payment(stack, o, started["ref"], "vnpay")
    assert len(notification_rows(stack, "vnpay", attempt_id=att["id"])) == 1
    assert_ledger_ok(stack)


def test_a_notification_that_times_out_is_sent_again_and_applied_once(api, sim, stack, gateway):
    """timeout_ms: the gateway does not answer in time (its processes are paused for a second), so
    MoMo gives up on the attempt and tries again; both copies reach the gateway in the end, and
    the payment is applied once."""
    order = new_order(api, amount=398000)
    started = start_payment(sim, order, "momo")
    os.killpg(gateway.pid, signal.SIGSTOP)
    try:
        r = approve(sim, started, order, timeout_ms=300, retries=3, retry_delay_ms=400)
        time.sleep(1.0)
    finally:
        os.killpg(gateway.pid, signal.SIGCONT)
    assert r.status_code == 303
    o = wait_status(api, order["id"], "succeeded", timeout=10)
    sent = wait_until(lambda: (lambda got: got and got[-1]["status"] == 204 and got)(
        [x for x in sim.notifications(bank="momo", ref=started["ref"]) if "status" in x]), 10,
        what="a MoMo attempt answered 204")
    assert sent[0]["status"] == 0 and sent[0]["answer"] == "no answer", sent  # no answer in time
    assert [n["attempt"] for n in sent] == list(range(1, len(sent) + 1)), sent
    time.sleep(0.5)
    att = assert_single_payment(stack, o, started["ref"], "momo")
    assert len(notification_rows(stack, "momo", attempt_id=att["id"])) == 1
    assert len(webhooks_for(sim, order["id"], "order.succeeded")) == 1
    assert_ledger_ok(stack)
