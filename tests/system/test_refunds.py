"""Refunds through banksim and the ledger read API (issue 4): partial then full refunds with their
reversing transfers and webhooks, never more than what is left (also under concurrent
requests), a bank refusal, a bank that does not answer, Idempotency-Key, who may do what,
VietQR payout confirmation, account listing and entry pagination."""
import hashlib
import hmac
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from bankflow import *


def refund(finance, order_id, amount, reason="Nộp thừa lệ phí", key=None, raw=None):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    data = raw if raw is not None else to_json_bytes({"amount": amount, "reason": reason})
    return finance.post(f"/v1/orders/{order_id}/refunds", data=data, headers=headers, timeout=30)


def refunds_of(finance, order_id):
    r = finance.get(f"/v1/orders/{order_id}/refunds")
    assert r.status_code == 200, r.text
    return r.json()["data"]


def refund_transfers(stack, order_id):
    return transfers(stack, order_id=order_id, code="refund")


def bankside_refund(sim, stack, bank, started, amount):
    """A refund made at the bank behind the gateway's back (signed here, in Python), so the
    bank has less left to refund than the gateway thinks."""
    env = stack.env
    pay = sim.payments(bank=bank, ref=started["ref"])[0]
    rid = "BANKSIDE" + uuid.uuid4().hex[:12].upper()
    if bank == "vnpay":
        fields = ("RequestId|Version|Command|TmnCode|TransactionType|TxnRef|Amount|TransactionNo|"
                  "TransactionDate|CreateBy|CreateDate|IpAddr|OrderInfo").split("|")
        now = vn_compact(time.time())
        obj = {"vnp_RequestId": rid, "vnp_Version": "2.1.0", "vnp_Command": "refund",
               "vnp_TmnCode": env["FEEGATE_VNPAY_TMN_CODE"], "vnp_TransactionType": "03",
               "vnp_TxnRef": started["ref"], "vnp_Amount": str(amount * 100), "vnp_TransactionNo": pay["txn_id"],
               "vnp_TransactionDate": now, "vnp_CreateBy": "bank", "vnp_CreateDate": now,
               "vnp_IpAddr": "127.0.0.1", "vnp_OrderInfo": "Hoan tien tai ngan hang"}
        text = "|".join(obj["vnp_" + f] for f in fields)
        obj["vnp_SecureHash"] = hmac.new(env["FEEGATE_VNPAY_HASH_SECRET"].encode(), text.encode(),
                                         hashlib.sha512).hexdigest()
        r = sim.post("/merchant_webapi/api/transaction", json=obj)
        assert r.status_code == 200 and r.json()["vnp_ResponseCode"] == "00", r.text
    else:
        obj = {"partnerCode": env["FEEGATE_MOMO_PARTNER_CODE"], "orderId": rid, "requestId": rid,
               "amount": amount, "transId": int(pay["txn_id"]), "lang": "vi", "description": "refund at the bank"}
        obj["signature"] = momo_signature(env["FEEGATE_MOMO_SECRET_KEY"], env["FEEGATE_MOMO_ACCESS_KEY"],
                                          "accessKey amount description orderId partnerCode requestId transId".split(),
                                          obj)
        r = sim.post("/v2/gateway/api/refund", json=obj)
        assert r.status_code == 200 and r.json()["resultCode"] == 0, r.text


def owed_from(stack, attempt_id):
    """The account a refund of this attempt is debited to: XNC's payable, or its receivable once
    the payout of the payment's bank and business day is in the ledger (an earlier test's
    reconciliation may have matched today's)."""
    paid_out = stack.scalar(
        "SELECT EXISTS (SELECT 1 FROM ledger_transfers p JOIN attempts t ON t.id = %s WHERE p.id = 'payout:XNC:' "
        "|| t.bank || ':' || to_char(feegate_business_date(coalesce(t.paid_at, t.updated_at)), 'YYYYMMDD'))",
        (attempt_id,))
    return "agency:XNC:receivable" if paid_out else "agency:XNC:payable"


@pytest.mark.parametrize("bank", ["vnpay", "momo"])
def test_partial_then_full_refund(bank, api, sim, stack, finance):
    o, started = pay_order(api, sim, bank, amount=200000)
    att = attempt_of(o, started["ref"])

    r = refund(finance, o["id"], 50000)
    assert r.status_code == 201, r.text
    rf1 = r.json()
    assert {k: rf1[k] for k in ("order_id", "amount", "reason", "status")} == {
        "order_id": o["id"], "amount": 50000, "reason": "Nộp thừa lệ phí", "status": "succeeded"}, rf1
    assert rf1["id"] and rf1["created_at"]
    assert get_order(api, o["id"])["status"] == "partially_refunded"
    t = refund_transfers(stack, o["id"])
    assert [(x["amount"], x["debit"], x["credit"], x["refund_id"], x["attempt_id"]) for x in t] == [
        (50000, owed_from(stack, att["id"]), f"bank:{bank}:clearing", rf1["id"], att["id"])], t
    w = wait_webhook(sim, o["id"], "order.partially_refunded")
    assert verify_webhook_signature(w, stack.env["FEEGATE_WEBHOOK_SECRET"])["data"]["status"] == "partially_refunded"

    r = refund(finance, o["id"], 150000, reason="Hoàn phần còn lại")
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    rf2 = r.json()
    assert get_order(api, o["id"])["status"] == "refunded"
    assert [x["amount"] for x in refund_transfers(stack, o["id"])] == [50000, 150000]
    entries = stack.query("SELECT a.name, sum(e.amount) FROM ledger_entries e JOIN ledger_transfers t ON t.id = e.transfer_id "
                          "JOIN ledger_accounts a ON a.id = e.account_id WHERE t.order_id = %s GROUP BY a.name ORDER BY 1",
                          (o["id"],))
    if owed_from(stack, att["id"]) == "agency:XNC:payable":
        want = [("agency:XNC:payable", 0), (f"bank:{bank}:clearing", 0)]  # all given back
    else:  # given back, and owed by the agency until its next payout nets it
        want = [("agency:XNC:payable", -200000), ("agency:XNC:receivable", 200000), (f"bank:{bank}:clearing", 0)]
    assert entries == want, entries
    wait_webhook(sim, o["id"], "order.refunded")
    assert [x["id"] for x in refunds_of(finance, o["id"])] == [rf1["id"], rf2["id"]]
    assert [x["status"] for x in refunds_of(finance, o["id"])] == ["succeeded", "succeeded"]
    assert sim.payments(bank=bank, ref=started["ref"])[0]["refunded"] == 200000

    # nothing left to refund
    r = refund(finance, o["id"], 1)
    assert r.status_code == 409 and error_of(r)["code"] == "invalid_state", r.text
    assert len(refunds_of(finance, o["id"])) == 2
    assert_ledger_ok(stack)


def test_refund_over_the_remaining_amount_is_refused(api, sim, stack, finance):
    o, _ = pay_order(api, sim, "vnpay", amount=100000)
    r = refund(finance, o["id"], 100001)
    err = error_of(r)
    assert r.status_code == 409 and err["code"] == "invalid_state" and err.get("field") == "amount", r.text
    assert refund(finance, o["id"], 30000).status_code == 201
    r = refund(finance, o["id"], 70001)
    assert r.status_code == 409 and error_of(r)["code"] == "invalid_state", r.text
    assert get_order(api, o["id"])["status"] == "partially_refunded"
    assert [x["amount"] for x in refund_transfers(stack, o["id"])] == [30000]
    # an order that is not paid cannot be refunded at all
    unpaid = new_order(api)
    r = refund(finance, unpaid["id"], 1)
    assert r.status_code == 409 and error_of(r)["code"] == "invalid_state", r.text
    assert refund(finance, str(uuid.uuid4()), 1).status_code == 404
    # bad input
    for body in (b'{"amount": 0, "reason": "x"}', b'{"amount": 10, "reason": ""}', b'{"amount": "10", "reason": "x"}',
                 b'{"amount": 10}', b'{"amount": 10, "reason": "x", "extra": 1}'):
        r = refund(finance, o["id"], None, raw=body)
        assert r.status_code == 400 and error_of(r)["code"] == "validation_failed", (body, r.text)
    assert refund(finance, o["id"], None, raw=b"{").status_code == 400
    assert_ledger_ok(stack)


@pytest.mark.parametrize("bank", ["vnpay", "momo"])
def test_concurrent_refunds_racing_for_the_last_amount(bank, api, sim, stack, finance):
    o, _ = pay_order(api, sim, bank, amount=100000)
    assert refund(finance, o["id"], 60000).status_code == 201
    n = 6
    barrier = threading.Barrier(n)

    def go(i):
        s = Api(finance.base, finance.key)
        s.get("/v1/ledger/accounts")  # a warm connection
        barrier.wait()
        try:
            return refund(s, o["id"], 40000 if i % 2 == 0 else 30000, reason=f"race {i}")
        finally:
            s.close()

    with ThreadPoolExecutor(n) as ex:
        results = list(ex.map(go, range(n)))
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [409] * (n - 1), [(r.status_code, r.text) for r in results]
    won = [r.json() for r in results if r.status_code == 201][0]
    assert won["status"] == "succeeded", won
    for r in results:
        if r.status_code == 409:
            assert error_of(r)["code"] == "invalid_state", r.text
    done = sum(x["amount"] for x in refund_transfers(stack, o["id"]))
    assert done == 60000 + won["amount"] and done <= 100000
    assert len(refunds_of(finance, o["id"])) == 2
    assert get_order(api, o["id"])["status"] == ("refunded" if done == 100000 else "partially_refunded")
    assert_ledger_ok(stack)


@pytest.mark.parametrize("bank", ["vnpay", "momo"])
def test_refund_refused_by_the_bank_changes_nothing(bank, api, sim, stack, finance):
    """The bank has only 50000 left to refund (someone refunded 150000 at the bank directly), so it
    refuses a refund of 100000: the refund fails and says why, the order and the ledger are as
    they were, and the amount can be asked for again."""
    o, started = pay_order(api, sim, bank, amount=200000)
    bankside_refund(sim, stack, bank, started, 150000)
    r = refund(finance, o["id"], 100000)
    assert r.status_code == 201, r.text
    rf = r.json()
    assert rf["status"] == "failed", rf
    assert rf.get("failure_reason") and ("93" in rf["failure_reason"] or "1081" in rf["failure_reason"]), rf
    assert get_order(api, o["id"])["status"] == "succeeded"
    assert refund_transfers(stack, o["id"]) == []
    assert not webhooks_for(sim, o["id"], "order.partially_refunded")
    assert [x["status"] for x in refunds_of(finance, o["id"])] == ["failed"]
    # a failed refund does not use up the refundable amount
    r = refund(finance, o["id"], 50000)
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    assert get_order(api, o["id"])["status"] == "partially_refunded"
    assert [x["amount"] for x in refund_transfers(stack, o["id"])] == [50000]
    assert_ledger_ok(stack)


def test_refund_while_the_bank_api_fails_stays_pending_and_is_retried(api, sim, stack, finance):
    o, started = pay_order(api, sim, "momo", amount=90000)
    park_pending_queries(stack, "momo")
    sim.faults(bank="momo", api_status=503)
    r = refund(finance, o["id"], 40000)
    assert r.status_code == 201, r.text
    rf = r.json()
    assert rf["status"] == "pending", rf
    assert get_order(api, o["id"])["status"] == "succeeded"
    assert refund_transfers(stack, o["id"]) == []
    # pending counts as taken
    r = refund(finance, o["id"], 50001)
    assert r.status_code == 409 and error_of(r)["code"] == "invalid_state", r.text
    sim.reset_faults()
    # the sweeper retries refunds pending for 30 s: make this one old enough
    stack.query("UPDATE refunds SET created_at = now() - interval '1 minute' WHERE id = %s", (rf["id"],))
    wait_until(lambda: refunds_of(finance, o["id"])[0]["status"] == "succeeded", 15, what="the retried refund")
    wait_status(api, o["id"], "partially_refunded")
    assert [x["amount"] for x in refund_transfers(stack, o["id"])] == [40000]
    assert sim.payments(bank="momo", ref=started["ref"])[0]["refunded"] == 40000
    assert_ledger_ok(stack)


def test_refund_idempotency_key(api, sim, stack, finance):
    o, _ = pay_order(api, sim, "vnpay", amount=80000)
    key = f"rf-{uuid.uuid4().hex}"
    body = to_json_bytes({"amount": 20000, "reason": "Hoàn một phần"})
    r1 = refund(finance, o["id"], None, key=key, raw=body)
    assert r1.status_code == 201, r1.text
    r2 = refund(finance, o["id"], None, key=key, raw=body)
    assert r2.status_code == 201, r2.text
    assert r2.json()["id"] == r1.json()["id"] and r2.json()["amount"] == 20000
    r3 = refund(finance, o["id"], None, key=key, raw=to_json_bytes({"amount": 20001, "reason": "Hoàn một phần"}))
    assert r3.status_code == 422 and error_of(r3)["code"] == "idempotency_key_reused", r3.text
    assert len(refunds_of(finance, o["id"])) == 1
    assert [x["amount"] for x in refund_transfers(stack, o["id"])] == [20000]
    # the same key and body after a refused amount: still the first answer
    assert refund(finance, o["id"], None, key=key, raw=body).json()["id"] == r1.json()["id"]
    assert_ledger_ok(stack)


def test_idempotency_key_reused_for_another_order_is_not_a_replay(api, sim, stack, finance):
    """The same key and byte-identical body sent for another order is another request: it must
    not be answered with the first order's refund (nor create a refund it does not report)."""
    a, _ = pay_order(api, sim, "vnpay", amount=50000)
    b, _ = pay_order(api, sim, "vnpay", amount=50000)
    key = f"rf-{uuid.uuid4().hex}"
    body = to_json_bytes({"amount": 1000, "reason": "Hoàn một phần"})
    r1 = refund(finance, a["id"], None, key=key, raw=body)
    assert r1.status_code == 201 and r1.json()["order_id"] == a["id"], r1.text
    r2 = refund(finance, b["id"], None, key=key, raw=body)
    assert not (r2.status_code == 201 and r2.json()["order_id"] != b["id"]), (
        f"POST /v1/orders/{b['id']}/refunds answered with order {a['id']}'s refund: {r2.status_code} {r2.text}")
    assert r2.status_code == 422 and error_of(r2)["code"] == "idempotency_key_reused", r2.text
    assert refunds_of(finance, b["id"]) == []
    assert_ledger_ok(stack)


def test_who_may_refund(api, sim, stack, finance, agency_staff):
    o, _ = pay_order(api, sim, "vnpay", amount=70000)
    r = api.post(f"/v1/orders/{o['id']}/refunds", json={"amount": 1000, "reason": "x"})
    assert r.status_code == 403 and error_of(r)["code"] == "forbidden", r.text
    r = agency_staff.post(f"/v1/orders/{o['id']}/refunds", json={"amount": 1000, "reason": "x"})
    assert r.status_code == 403 and error_of(r)["code"] == "forbidden", r.text
    r = agency_staff.post(f"/v1/orders/{o['id']}/refunds", json={"amount": 1000, "reason": "x"},
                          headers={"Idempotency-Key": "agency-try"})
    assert r.status_code == 403
    assert api.get(f"/v1/orders/{o['id']}/refunds").status_code == 403
    assert agency_staff.get(f"/v1/orders/{o['id']}/refunds").status_code == 200  # its own agency
    other, _ = pay_order(api, sim, "momo", agency="DKKD", amount=60000)
    assert agency_staff.get(f"/v1/orders/{other['id']}/refunds").status_code == 404
    assert finance.get(f"/v1/orders/{other['id']}/refunds").status_code == 200
    assert api.post(f"/v1/orders/{o['id']}/refunds", key=None, json={"amount": 1, "reason": "x"}).status_code == 401
    assert refunds_of(finance, o["id"]) == []
    assert get_order(api, o["id"])["status"] == "succeeded"


def test_vietqr_refund_waits_for_finance_to_confirm_the_payout(api, sim, stack, finance, agency_staff):
    o, _ = pay_order(api, sim, "vietqr", amount=150000)
    r = refund(finance, o["id"], 150000)
    assert r.status_code == 201, r.text
    rf = r.json()
    assert rf["status"] == "pending", rf
    time.sleep(0.3)
    assert get_order(api, o["id"])["status"] == "succeeded"
    assert refund_transfers(stack, o["id"]) == []
    assert refund(finance, o["id"], 1).status_code == 409  # the pending payout counts
    assert agency_staff.post(f"/v1/refunds/{rf['id']}/confirm").status_code == 403
    assert api.post(f"/v1/refunds/{rf['id']}/confirm").status_code == 403
    assert finance.post(f"/v1/refunds/{uuid.uuid4()}/confirm").status_code == 404

    # two people: the first finance member's confirmation waits for a second one's
    r = finance.post(f"/v1/refunds/{rf['id']}/confirm")
    assert r.status_code == 202 and r.json()["status"] == "awaiting_approval", r.text
    assert finance.post(f"/v1/refunds/{rf['id']}/confirm").status_code == 403
    assert refund_transfers(stack, o["id"]) == []
    second = Api(finance.base, stack.create_staff("finance"))
    r = second.post(f"/v1/refunds/{rf['id']}/confirm")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded" and r.json()["id"] == rf["id"], r.text
    assert get_order(api, o["id"])["status"] == "refunded"
    t = refund_transfers(stack, o["id"])
    assert [(x["amount"], x["debit"], x["credit"]) for x in t] == [
        (150000, "agency:XNC:payable", "bank:vietqr:clearing")], t
    wait_webhook(sim, o["id"], "order.refunded")
    r = finance.post(f"/v1/refunds/{rf['id']}/confirm")
    assert r.status_code == 409 and error_of(r)["code"] == "invalid_state", r.text
    assert len(refund_transfers(stack, o["id"])) == 1
    # a refund at a bank with a refund API is confirmed by the bank, not by finance
    o2, _ = pay_order(api, sim, "vnpay", amount=10000)
    rf2 = refund(finance, o2["id"], 5000).json()
    r = finance.post(f"/v1/refunds/{rf2['id']}/confirm")
    assert r.status_code == 409 and error_of(r)["code"] == "invalid_state", r.text
    assert_ledger_ok(stack)


# ------------------------------------------------------------------ reading the ledger

def test_ledger_accounts_by_role(api, sim, finance, agency_staff, stack):
    pay_order(api, sim, "vnpay", agency="DKKD", amount=11000)  # so DKKD has entries too
    all_accounts = json_body(finance.get("/v1/ledger/accounts"))["data"]
    names = {a["name"] for a in all_accounts}
    assert {"suspense", "fees", "bank:vnpay:clearing", "bank:momo:clearing", "bank:vietqr:clearing",
            "agency:XNC:payable", "agency:DKKD:payable"} <= names, names
    for a in all_accounts:
        assert set(a) >= {"id", "name", "type", "agency", "bank", "balance"}, a
        assert isinstance(a["balance"], int)
    by_name = {a["name"]: a for a in all_accounts}
    assert by_name["agency:XNC:payable"]["balance"] > 0 and by_name["bank:vnpay:clearing"]["balance"] > 0

    def balances_agree():  # the API's sign convention against raw sums (retried: sweepers may post meanwhile)
        api_view = {a["name"]: a["balance"] for a in json_body(finance.get("/v1/ledger/accounts"))["data"]}
        raw = dict(stack.query("SELECT a.name, coalesce(sum(e.amount), 0) FROM ledger_accounts a "
                               "LEFT JOIN ledger_entries e ON e.account_id = a.id GROUP BY a.name"))
        want = {n: (v if n.startswith("bank:") or n.endswith(":receivable") else -v) for n, v in raw.items()}
        return api_view == want
    wait_until(balances_agree, 5, interval=0.2, what="the API's balances to match the entries")
    assert stack.scalar("SELECT coalesce(sum(amount), 0) FROM ledger_entries") == 0

    mine = json_body(agency_staff.get("/v1/ledger/accounts"))["data"]
    assert mine and all(a["agency"] == "XNC" for a in mine), mine
    assert [a["name"] for a in mine] == ["agency:XNC:payable", "agency:XNC:receivable"], mine

    r = api.get("/v1/ledger/accounts")
    assert r.status_code == 403 and error_of(r)["code"] == "forbidden"
    xnc = by_name["agency:XNC:payable"]["id"]
    assert api.get(f"/v1/ledger/accounts/{xnc}").status_code == 403
    assert agency_staff.get(f"/v1/ledger/accounts/{xnc}").status_code == 200
    for other in ("agency:DKKD:payable", "bank:vnpay:clearing", "suspense"):
        r = agency_staff.get(f"/v1/ledger/accounts/{by_name[other]['id']}")
        assert r.status_code == 404 and error_of(r)["code"] == "not_found", (other, r.text)
    assert finance.get("/v1/ledger/accounts/99999999").status_code == 404
    assert finance.get("/v1/ledger/accounts/abc").status_code == 404


def test_ledger_account_entries_pagination(api, sim, finance, stack):
    mine = []
    for amount in (12000, 13000, 14000):
        o, started = pay_order(api, sim, "momo", amount=amount)
        mine.append(stack.scalar("SELECT e.id FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id "
                                 "WHERE e.transfer_id = %s AND a.name = 'bank:momo:clearing'",
                                 (f"pay:{attempt_of(o, started['ref'])['id']}",)))
    acct = account_id(stack, "bank:momo:clearing")
    first = json_body(finance.get(f"/v1/ledger/accounts/{acct}?limit=1"))
    assert first["name"] == "bank:momo:clearing" and first["id"] == acct and first["type"] == "bank_clearing"
    assert isinstance(first["balance"], int) and first["balance"] > 0
    assert len(first["entries"]) == 1 and first["next_cursor"], first
    e = first["entries"][0]
    assert set(e) >= {"id", "transfer_id", "amount", "code", "order_id", "created_at"}, e
    top = e["id"]
    # one entry a page, newest first, down past our three payments
    seen, cursor = [top], first["next_cursor"]
    while not set(mine) <= set(seen):
        page = json_body(finance.get(f"/v1/ledger/accounts/{acct}?limit=1&cursor={cursor}"))
        assert len(page["entries"]) == 1 and page["next_cursor"], page
        seen.append(page["entries"][0]["id"])
        cursor = page["next_cursor"]
        assert len(seen) < 100
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == len(seen), seen
    assert [i for i in seen if i in mine] == sorted(mine, reverse=True)
    amounts = {x["id"]: x["amount"] for x in json_body(finance.get(f"/v1/ledger/accounts/{acct}?limit=500"))["entries"]}
    assert [amounts[i] for i in sorted(mine, reverse=True)] == [14000, 13000, 12000]
    # the whole account two entries at a time, from the same top: every entry once
    total = stack.scalar("SELECT count(*) FROM ledger_entries WHERE account_id = %s AND id <= %s", (acct, top))
    ids, cursor = [], str(top + 1)
    while cursor:
        page = json_body(finance.get(f"/v1/ledger/accounts/{acct}?limit=2&cursor={cursor}"))
        assert len(page["entries"]) <= 2
        ids += [x["id"] for x in page["entries"]]
        cursor = page["next_cursor"]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids) == total and ids[0] == top
    for bad in ("limit=0", "limit=501", "limit=x", "cursor=-1", "cursor=abc"):
        r = finance.get(f"/v1/ledger/accounts/{acct}?{bad}")
        assert r.status_code == 400 and error_of(r)["code"] == "validation_failed", (bad, r.text)


def test_a_refund_above_the_approval_amount_waits_for_a_second_finance_member(api, sim, stack, finance):
    o, _ = pay_order(api, sim, "vnpay", amount=60_000_000)
    r = refund(finance, o["id"], 55_000_000)
    assert r.status_code == 202, r.text
    ask = r.json()
    assert ask["status"] == "awaiting_approval" and ask["amount"] == 55_000_000, ask
    assert refunds_of(finance, o["id"]) == []
    assert finance.post(f"/v1/refund-approvals/{ask['id']}/approve").status_code == 403  # the asker
    second = Api(finance.base, stack.create_staff("finance"))
    admin = Api(finance.base, stack.env["FEEGATE_ADMIN_TOKEN"])
    assert admin.post(f"/v1/refund-approvals/{ask['id']}/approve").status_code == 403
    r = second.post(f"/v1/refund-approvals/{ask['id']}/approve")
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == 55_000_000 and r.json()["order_id"] == o["id"]
    r = second.post(f"/v1/refund-approvals/{ask['id']}/approve")
    assert r.status_code == 409, r.text
    assert len(refunds_of(finance, o["id"])) == 1
    # a refund at or below the amount needs one person
    assert refund(finance, o["id"], 1_000_000).status_code == 201
    assert_ledger_ok(stack)
