"""The citizen's whole flow through banksim for VNPAY, MoMo and VietQR (issue 3): order, checkout
page, choice of bank, payment at the bank, signed notification, ledger posting, portal webhook,
browser return. Also: a declined payment lets the citizen choose another bank."""
import urllib.parse
import uuid

import pytest
import requests

from bankflow import *


def return_location(resp):
    """banksim's 303 after approving goes to the gateway's /return/{bank}."""
    assert resp.status_code == 303, (resp.status_code, resp.text[:500])
    return resp.headers["Location"]


def follow_return(gateway, location, order, status):
    """GET /return/{bank}?... on the gateway: a 303 to the order's return_url with order_id and
    status, changing nothing."""
    assert location.startswith(gateway.url + "/return/"), location
    r = requests.get(location, allow_redirects=False, timeout=10)
    assert r.status_code == 303, (r.status_code, r.text[:500])
    loc = r.headers["Location"]
    base, _, query = loc.partition("?")
    assert base == order["return_url"], loc
    q = dict(urllib.parse.parse_qsl(query))
    assert q == {"order_id": order["id"], "status": status}, loc
    return loc


@pytest.mark.parametrize("bank", ["vnpay", "momo", "vietqr"])
def test_citizen_pays_at_bank(bank, api, sim, stack, gateway):
    order = new_order(api, amount=200000, description="Lệ phí cấp hộ chiếu phổ thông",
                      items=[{"code": "PP-01", "name": "Hộ chiếu", "amount": 150000},
                             {"code": "PP-02", "name": "Phí chuyển phát", "amount": 50000}])
    assert order["status"] == "created"

    page = checkout_html(order)
    assert "200.000 ₫" in page and "150.000 ₫" in page and "50.000 ₫" in page
    assert sorted(bank_buttons(page)) == ["momo", "vietqr", "vnpay"], bank_buttons(page)

    started = start_payment(sim, order, bank)
    o = get_order(api, order["id"])
    assert o["status"] == "pending", o
    att = attempt_of(o, started["ref"])
    assert att["bank"] == bank and att["status"] == "pending" and att["bank_txn_id"] is None, att
    assert 8 <= len(started["ref"]) <= 20 and started["ref"].isalnum() and started["ref"].upper() == started["ref"]

    if bank == "vietqr":
        d = started["vietqr"]
        assert d["account"] == "0011001234567"
        assert "A000000727" in d["payload"] and "0011001234567" in d["payload"]
        assert "5406200000" in d["payload"] and started["ref"] in d["payload"]
        answer = vietqr_transfer(sim, d["account"], order["amount"], d["content"])
        assert answer["notification"]["status"] == 200, answer
        assert answer["notification"]["answer"] == '{"status":"ok"}', answer
        txn = answer["transaction_id"]
    else:
        r = approve(sim, started, order)
        ret = return_location(r)
        n = last_notification(sim, bank, started["ref"])
        if bank == "vnpay":
            assert n["status"] == 200 and '"RspCode":"00"' in n["answer"], n
        else:
            assert n["status"] == 204, n
        txn = sim.payments(bank=bank, ref=started["ref"])[0]["txn_id"]

    o = wait_status(api, order["id"], "succeeded")
    att = assert_single_payment(stack, o, started["ref"], bank)
    assert att["bank_txn_id"] == txn, (att, txn)
    entries = stack.query("SELECT a.name, e.amount FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id "
                          "WHERE e.transfer_id = %s ORDER BY e.amount DESC", (f"pay:{att['id']}",))
    assert entries == [(f"bank:{bank}:clearing", 200000), ("agency:XNC:payable", -200000)], entries
    rows = notification_rows(stack, bank, attempt_id=att["id"])
    assert [(r["success"], r["source"]) for r in rows] == [(True, "notification")], rows

    w = wait_webhook(sim, order["id"], "order.succeeded")
    doc = verify_webhook_signature(w, stack.env["FEEGATE_WEBHOOK_SECRET"])
    assert doc["type"] == "order.succeeded" and doc["data"]["status"] == "succeeded", doc
    assert doc["data"]["amount"] == 200000 and doc["data"]["reference"] == order["reference"]
    assert attempt_of(doc["data"], started["ref"])["status"] == "succeeded"
    assert w["path"] == "/portal/webhook"
    # the pending webhook came first
    assert webhooks_for(sim, order["id"], "order.pending"), "no order.pending webhook"

    if bank != "vietqr":
        follow_return(gateway, ret, o, "succeeded")
        assert get_order(api, order["id"]) == o  # the return changed nothing

    page = checkout_html(order)
    assert bank_buttons(page) == [] and 'data-status="succeeded"' in page
    assert choose_bank(order, "vnpay").status_code == 409
    assert_ledger_ok(stack)


@pytest.mark.parametrize("first", ["vnpay", "momo"])
def test_declined_payment_lets_the_citizen_choose_another_bank(first, api, sim, stack, gateway):
    order = new_order(api, amount=75000)
    started = start_payment(sim, order, first)
    r = approve(sim, started, order, action="decline")
    ret = return_location(r)
    o = wait_status(api, order["id"], "created")
    att = attempt_of(o, started["ref"])
    assert att["status"] == "failed" and att["failure_code"], att
    assert transfers(stack, order_id=order["id"]) == []
    follow_return(gateway, ret, o, "created")
    # the checkout page offers every bank again, and another bank takes the payment
    assert sorted(bank_buttons(checkout_html(order))) == ["momo", "vietqr", "vnpay"]
    second = "momo" if first == "vnpay" else "vnpay"
    o, started2 = pay_order(api, sim, second, order=order)
    assert_single_payment(stack, o, started2["ref"], second)
    assert attempt_of(o, started["ref"])["status"] == "failed"
    assert_ledger_ok(stack)


def test_second_attempt_while_pending_and_only_one_is_paid(api, sim, stack):
    """Choosing a bank while pending opens a new attempt; when one is paid the other expires."""
    order = new_order(api, amount=120000)
    a1 = start_payment(sim, order, "vnpay")
    a2 = start_payment(sim, order, "momo")
    o = get_order(api, order["id"])
    assert o["status"] == "pending" and len(o["attempts"]) == 2
    assert approve(sim, a2, order).status_code == 303
    o = wait_status(api, order["id"], "succeeded")
    assert_single_payment(stack, o, a2["ref"], "momo")
    assert attempt_of(o, a1["ref"])["status"] == "expired"
    assert_ledger_ok(stack)


def test_return_with_a_bad_signature_is_refused(api, sim, gateway):
    order = new_order(api)
    started = start_payment(sim, order, "vnpay")
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(started["location"]).query))
    query = vnpay_ipn_query(sim.stack.env, started["ref"], order["amount"], "123456")
    bad = query[:-1] + ("1" if query[-1] == "0" else "0")
    r = requests.get(f"{gateway.url}/return/vnpay?{bad}", allow_redirects=False, timeout=10)
    assert r.status_code == 400, r.text
    assert q["vnp_TxnRef"] == started["ref"]
    # a correctly signed return of a payment that did not happen still changes nothing
    r = requests.get(f"{gateway.url}/return/vnpay?{query}", allow_redirects=False, timeout=10)
    assert r.status_code == 303, r.text
    assert "status=pending" in r.headers["Location"]
    assert get_order(api, order["id"])["status"] == "pending"


def test_return_keeps_the_portals_query_and_fragment(api, sim, gateway):
    order = new_order(api, return_url="https://dichvucong.example.vn/ket-qua?ho_so=HS-1&lang=vi#thanh-toan")
    started = start_payment(sim, order, "momo")
    ret = return_location(approve(sim, started, order))
    wait_status(api, order["id"], "succeeded")
    r = requests.get(ret, allow_redirects=False, timeout=10)
    assert r.status_code == 303, r.text
    assert r.headers["Location"] == (f"https://dichvucong.example.vn/ket-qua?ho_so=HS-1&lang=vi"
                                     f"&order_id={order['id']}&status=succeeded#thanh-toan"), r.headers["Location"]


def test_checkout_offers_only_the_agencys_banks(stack, gateway, sim):
    code = "ONE" + uuid.uuid4().hex[:8].upper()
    stack.cli("agency", "create", "--code", code, "--name", "Chỉ VNPAY", "--account", "970436:123123123:ONLY VNPAY",
              "--banks", "vnpay")
    client = stack.create_client(agencies=(code,))
    a = Api(gateway.url, client.key)
    try:
        order = new_order(a, agency=code, amount=45000)
        assert bank_buttons(checkout_html(order)) == ["vnpay"]
        for bank in ("momo", "vietqr"):
            r = choose_bank(order, bank)
            assert r.status_code == 400, (bank, r.status_code)
        assert choose_bank(order, "nosuchbank").status_code == 400
        assert get_order(a, order["id"])["attempts"] == []
        o, started = pay_order(a, sim, "vnpay", order=order)
        assert_single_payment(stack, o, started["ref"], "vnpay")
        assert o["agency"] == code
    finally:
        a.close()
    assert_ledger_ok(stack)


def test_unpaid_order_expires_and_the_portal_is_told(api, sim, stack):
    order = new_order(api)
    stack.query("UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = %s", (order["id"],))
    o = wait_status(api, order["id"], "expired", timeout=10)
    w = wait_webhook(sim, order["id"], "order.expired")
    doc = verify_webhook_signature(w, stack.env["FEEGATE_WEBHOOK_SECRET"])
    assert doc["data"]["status"] == "expired"
    page = checkout_html(order)
    assert bank_buttons(page) == [] and 'data-status="expired"' in page
    assert choose_bank(order, "vnpay").status_code == 409
    assert get_order(api, order["id"]) == o


def test_webhook_carries_the_order_as_the_api_shows_it(api, sim, stack):
    o, started = pay_order(api, sim, "vnpay", metadata={"ho_so": "HS-9", "lan": 2},
                           payer={"name": "Nguyễn Văn An", "email": "an@example.vn"}, procedure="1.001")
    doc = verify_webhook_signature(wait_webhook(sim, o["id"], "order.succeeded"), stack.env["FEEGATE_WEBHOOK_SECRET"])
    assert set(doc) == {"id", "type", "created_at", "data"}, doc
    strip = lambda d: {k: v for k, v in d.items() if k != "checkout_url"}
    assert strip(doc["data"]) == strip(get_order(api, o["id"])), (doc["data"], o)
