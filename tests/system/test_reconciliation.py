"""Reconciliation (issue 12): bank settlement files and treasury camt.053 statements imported
through POST /v1/statements, matched against the ledger, the differences opened as cases and
worked to an end through /v1/exceptions; refused files store nothing."""
import datetime
import time
import uuid

import pytest
import requests

from bankflow import *

def settlement(sim, bank, day):
    r = sim.get(f"/settlement/{bank}/{compact(day)}")
    assert r.status_code == 200, r.text
    return r.content


def import_file(finance, source, data, status=201):
    ctype = "application/xml" if source == "camt053" else "text/csv"
    r = finance.post(f"/v1/statements?source={source}", data=data, headers={"Content-Type": ctype})
    assert r.status_code == status, r.text
    return r.json()


def settle_knob(sim, bank, ref, action, amount=None):
    body = {"bank": bank, "ref": ref, "action": action}
    if amount is not None:
        body["amount"] = amount
    r = sim.post("/admin/settlement", json=body)
    assert r.status_code == 200, r.text


def cases_of(finance, order_id):
    r = finance.get("/v1/exceptions", params={"order_id": order_id, "limit": 500})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def open_kinds(finance, order_id):
    return sorted(c["kind"] for c in cases_of(finance, order_id) if c["state"] != "resolved")


def pay_out(sim, account, bank, day, agency, amount, paid_on):
    r = sim.post("/admin/payouts", json={"account": account, "bank": bank, "day": compact(day), "agency": agency,
                                         "amount": amount, "paid_on": compact(paid_on)})
    assert r.status_code == 200, r.text


def treasury(sim, account, day):
    r = sim.get(f"/treasury/{account}/{compact(day)}")
    assert r.status_code == 200, r.text
    return r.content


def expected_payout(stack, agency, bank, day):
    return stack.scalar("SELECT e.payout FROM reconciliation_expected_payouts e JOIN agencies a ON a.id = e.agency_id "
                        "WHERE a.code = %s AND e.bank = %s AND e.business_date = %s", (agency, bank, day))


def count_statements(stack):
    return stack.scalar("SELECT count(*) FROM statements")


def test_a_day_at_three_banks_reconciled_and_worked(api, sim, finance, agency_staff, stack, gateway):
    today, tomorrow = vn_day(), vn_day(1)
    finance2 = Api(gateway.url, stack.env["FEEGATE_FINANCE2_TOKEN"])
    sim.faults(fee_bps=110)  # the banks keep 1.1% (VietQR too: fees are what each file states)
    # the day's traffic
    a, sa = pay_order(api, sim, "vnpay", amount=100000)            # settled as it should be
    b, sb = pay_order(api, sim, "vnpay", amount=120000)            # the bank misstates its amount
    c, sc = pay_order(api, sim, "vnpay", amount=130000)            # the bank lists it twice
    d, sd = pay_order(api, sim, "vnpay", amount=140000)            # in the next day's file
    e = new_order(api, amount=150000)                              # its notification never came
    se = start_payment(sim, e, "vnpay")
    park_pending_queries(stack, "vnpay", seconds=3600)
    assert approve(sim, se, e, drop=True).status_code == 303
    f, sf = pay_order(api, sim, "momo", amount=160000)             # the bank's file leaves it out
    g, sg = pay_order(api, sim, "momo", amount=170000)             # refunded
    h, sh = pay_order(api, sim, "vietqr", amount=180000)           # its treasury credit settles it
    k, sk = pay_order(api, sim, "vnpay", amount=190000, agency="DKKD")  # its payout never comes
    r = finance.post(f"/v1/orders/{g['id']}/refunds", json={"amount": 70000, "reason": "thu thừa"})
    assert r.status_code == 201, r.text
    wait_until(lambda: get_order(api, g["id"])["status"] == "partially_refunded", 15, what="refund")
    settle_knob(sim, "vnpay", sb["ref"], "amount", 121000)
    settle_knob(sim, "vnpay", sc["ref"], "repeat")
    settle_knob(sim, "vnpay", sd["ref"], "next_day")
    settle_knob(sim, "momo", sf["ref"], "drop")

    # the banks' files of the day
    vnpay_day = import_file(finance, "vnpay", settlement(sim, "vnpay", today))
    assert vnpay_day["status"] == "imported" and vnpay_day["business_date"] == str(today)
    again = import_file(finance, "vnpay", settlement(sim, "vnpay", today), status=200)
    assert again["id"] == vnpay_day["id"]
    momo_day = import_file(finance, "momo", settlement(sim, "momo", today))
    import_file(finance, "vietqr", settlement(sim, "vietqr", today))
    assert open_kinds(finance, a["id"]) == []
    assert open_kinds(finance, b["id"]) == ["amount_mismatch"]
    assert open_kinds(finance, c["id"]) == ["duplicate"]
    assert open_kinds(finance, e["id"]) == ["missing_in_ledger"]
    # cut-off skew: not missing until the next day's file is in
    assert open_kinds(finance, d["id"]) == [] and open_kinds(finance, f["id"]) == []
    import_file(finance, "vnpay", settlement(sim, "vnpay", tomorrow))
    import_file(finance, "momo", settlement(sim, "momo", tomorrow))
    assert open_kinds(finance, d["id"]) == []
    assert open_kinds(finance, f["id"]) == ["missing_at_bank"]
    assert open_kinds(finance, g["id"]) == [] and open_kinds(finance, h["id"]) == []
    recon = dict(stack.query("SELECT attempt_id::text, reconciliation FROM reconciliation_payments "
                             "WHERE attempt_id = ANY(%s::uuid[])",
                             ([attempt_of(o, s["ref"])["id"] for o, s in ((a, sa), (d, sd), (b, sb))],)))
    assert recon[attempt_of(a, sa["ref"])["id"]] == "matched"
    assert recon[attempt_of(d, sd["ref"])["id"]] == "matched"
    assert recon[attempt_of(b, sb["ref"])["id"]] == "case"
    # the bank's fees of the matched payments, one transfer per statement and agency
    [fee] = [t for t in transfers(stack, code="fee") if t["id"] == f"fee:{vnpay_day['id']}:XNC"]
    assert fee["debit"] == "agency:XNC:payable" and fee["credit"] == "bank:vnpay:clearing"
    [[line_fees, a_fee]] = stack.query(
        "SELECT sum(l.fee), sum(l.fee) FILTER (WHERE l.bank_order_ref = %s) FROM statement_lines l "
        "JOIN agencies g ON g.id = l.agency_id WHERE l.statement_id = %s AND g.code = 'XNC' "
        "AND l.outcome = 'matched' AND l.kind = 'payment'", (sa["ref"], vnpay_day["id"]))
    assert fee["amount"] == line_fees and a_fee == 100000 * 110 // 10000
    # account entries carry their order reference, bank transaction id and running balance
    acct = account_id(stack, "agency:XNC:payable")
    page = finance.get(f"/v1/ledger/accounts/{acct}", params={"from": str(today), "to": str(today), "limit": 500})
    assert page.status_code == 200, page.text
    entries = page.json()["entries"]
    mine = [x for x in entries if x["order_id"] == a["id"] and x["code"] == "payment"]
    assert len(mine) == 1 and mine[0]["reference"] == a["reference"]
    assert mine[0]["bank_txn_id"] == attempt_of(get_order(api, a["id"]), sa["ref"])["bank_txn_id"]
    for newer, older in zip(entries, entries[1:]):
        assert newer["balance"] == older["balance"] - newer["amount"]  # payable: credits raise it
    assert entries[0]["balance"] == page.json()["balance"]
    later = finance.get(f"/v1/ledger/accounts/{acct}", params={"from": str(tomorrow)}).json()
    assert later["entries"] == []
    refunds = finance.get(f"/v1/orders/{g['id']}/refunds").json()["data"]
    assert refunds[0]["created_by"] and "confirmed_by" in refunds[0]
    # the line outcomes are listed with the statement
    got = finance.get(f"/v1/statements/{vnpay_day['id']}", params={"limit": 500}).json()
    outcomes = {(l["bank_order_ref"], l["outcome"]) for l in got["data"]}
    assert {(sa["ref"], "matched"), (sb["ref"], "amount_mismatch"), (sc["ref"], "matched"),
            (sc["ref"], "duplicate"), (se["ref"], "missing_in_ledger")} <= outcomes

    # a corrected vnpay file for the day (B's amount right): B's case is settled by it, `auto`
    settle_knob(sim, "vnpay", sb["ref"], "clear")
    corrected = import_file(finance, "vnpay", settlement(sim, "vnpay", today))
    assert corrected["supersedes"] == vnpay_day["id"]
    assert finance.get(f"/v1/statements/{vnpay_day['id']}").json()["status"] == "superseded"
    [cb] = [x for x in cases_of(finance, b["id"]) if x["kind"] == "amount_mismatch"]
    assert cb["state"] == "resolved" and cb["resolution"] == "auto" and corrected["id"] in cb["note"]
    # the superseded file's fees are reversed, the correction's posted
    by_id = {t["id"]: t for t in transfers(stack, code="fee")}
    reversal = by_id[f"fee-reversal:{vnpay_day['id']}:XNC"]
    assert reversal["amount"] == fee["amount"] and reversal["debit"] == fee["credit"]
    assert by_id[f"fee:{corrected['id']}:XNC"]["amount"] > 0
    assert open_kinds(finance, c["id"]) == ["duplicate"] and open_kinds(finance, e["id"]) == ["missing_in_ledger"]

    # the treasury statements: XNC gets its vnpay payout right and its momo payout wrong;
    # DKKD's payout never arrives
    due = today + datetime.timedelta(days=7)
    vnpay_xnc = expected_payout(stack, "XNC", "vnpay", today)
    momo_xnc = expected_payout(stack, "XNC", "momo", today)
    assert vnpay_xnc and momo_xnc
    account = stack.env["FEEGATE_AGENCY_ACCOUNT"]
    dkkd_account = stack.scalar("SELECT account_number FROM agencies WHERE code = 'DKKD'")
    # banksim's treasury: the banks' payouts as they arrive, one altered, one dropped
    pay_out(sim, account, "vnpay", today, "XNC", vnpay_xnc, due)
    pay_out(sim, account, "momo", today, "XNC", momo_xnc, due)
    pay_out(sim, account, "momo", today, "XNC", momo_xnc - 5000, due)  # altered
    pay_out(sim, dkkd_account, "vnpay", today, "DKKD", 1000, due)
    r = sim.post("/admin/payouts", json={"account": dkkd_account, "bank": "vnpay", "day": compact(today),
                                         "action": "drop"})
    assert r.status_code == 200 and not [p for p in r.json()["data"] if p["account"] == dkkd_account]
    # the day's statement carries the citizen's VietQR transfer, the due day's the payouts
    st_today = import_file(finance, "camt053", treasury(sim, account, today))
    q_line = [l for l in finance.get(f"/v1/statements/{st_today['id']}", params={"limit": 500}).json()["data"]
              if l["attempt_id"] == attempt_of(get_order(api, h["id"]), sh["ref"])["id"]]
    assert len(q_line) == 1 and q_line[0]["outcome"] == "matched" and q_line[0]["amount"] == 180000
    st_xnc = import_file(finance, "camt053", treasury(sim, account, due))
    payout = [t for t in transfers(stack) if t["id"] == f"payout:XNC:vnpay:{compact(today)}"]
    assert len(payout) == 1 and payout[0]["amount"] == vnpay_xnc
    assert payout[0]["debit"] == "agency:XNC:payable" and payout[0]["credit"] == "bank:vnpay:clearing"
    mismatch = [x for x in finance.get("/v1/exceptions", params={"kind": "payout_amount_mismatch", "state": "open"}).json()["data"]
                if x["statement_id"] == st_xnc["id"]]
    assert len(mismatch) == 1 and mismatch[0]["amount"] == momo_xnc - 5000
    st_dkkd = import_file(finance, "camt053", treasury(sim, dkkd_account, due))
    missing = [x for x in finance.get("/v1/exceptions", params={"kind": "payout_missing"}).json()["data"]
               if x["statement_id"] == st_dkkd["id"] and x["bank"] == "vnpay"]
    assert len(missing) == 1 and missing[0]["agency"] == "DKKD"
    assert missing[0]["amount"] == expected_payout(stack, "DKKD", "vnpay", today)

    # agency staff see their agency's cases and statements only
    assert agency_staff.get(f"/v1/statements/{st_dkkd['id']}").status_code == 404
    assert agency_staff.get(f"/v1/statements/{st_xnc['id']}").status_code == 200
    assert all(x["agency"] == "XNC" for x in agency_staff.get("/v1/exceptions", params={"limit": 500}).json()["data"])
    assert agency_staff.post(f"/v1/exceptions/{missing[0]['id']}/acknowledge", json={"note": "x"}).status_code in (403, 404)

    # working the cases
    [ce] = [x for x in cases_of(finance, e["id"]) if x["state"] != "resolved"]
    r = finance.post(f"/v1/exceptions/{ce['id']}/acknowledge", json={"note": "đang xem"})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged", r.text
    r = finance.post(f"/v1/exceptions/{ce['id']}/resolve", json={"resolution": "posted", "note": "IPN lost"})
    assert r.status_code == 200, r.text
    e_att = attempt_of(get_order(api, e["id"]), se["ref"])
    assert r.json()["resolution"] == "posted" and r.json()["transfer_id"] == f"pay:{e_att['id']}"
    assert get_order(api, e["id"])["status"] == "succeeded" and e_att["status"] == "succeeded"
    assert len(payment_transfers(stack, e_att["id"])) == 1
    assert [x["action"] for x in r.json()["actions"]] == ["open", "acknowledge", "resolve"]
    assert r.json()["actions"][-1]["actor"] != "system"
    # a resolved case cannot be resolved again
    assert finance.post(f"/v1/exceptions/{ce['id']}/resolve",
                        json={"resolution": "void", "note": "x"}).status_code == 409

    # accepted needs a second finance member: the proposer cannot approve
    [cc] = [x for x in cases_of(finance, c["id"]) if x["state"] != "resolved"]
    before = len(transfers(stack))
    r = finance.post(f"/v1/exceptions/{cc['id']}/resolve", json={"resolution": "accepted", "note": "bank's own error"})
    assert r.status_code == 200 and r.json()["state"] != "resolved" and r.json()["pending_approval"], r.text
    assert finance.post(f"/v1/exceptions/{cc['id']}/approve").status_code == 403
    r = finance2.post(f"/v1/exceptions/{cc['id']}/approve")
    assert r.status_code == 200 and r.json()["resolution"] == "accepted" and r.json()["state"] == "resolved", r.text
    assert len(transfers(stack)) == before  # no money moved

    # refund: the payment the bank never listed is given back
    [cf] = [x for x in cases_of(finance, f["id"]) if x["state"] != "resolved"]
    r = finance.post(f"/v1/exceptions/{cf['id']}/resolve", json={"resolution": "refund", "note": "hoàn tiền"})
    assert r.status_code == 200 and r.json()["refund_id"], r.text
    assert stack.scalar("SELECT amount FROM refunds WHERE id = %s", (r.json()["refund_id"],)) == 160000

    # void; and an accepted payout difference
    r = finance.post(f"/v1/exceptions/{missing[0]['id']}/resolve", json={"resolution": "void", "note": "paid late"})
    assert r.status_code == 200 and r.json()["resolution"] == "void"
    r = finance.post(f"/v1/exceptions/{mismatch[0]['id']}/resolve", json={"resolution": "posted", "note": "to suspense"})
    assert r.status_code == 200 and r.json()["transfer_id"] == f"case:{mismatch[0]['id']}", r.text
    assert finance.post(f"/v1/exceptions/{mismatch[0]['id']}/resolve", json={"resolution": "void"}).status_code == 400
    assert finance.post(f"/v1/exceptions/{uuid.uuid4()}/acknowledge").status_code == 404
    assert_ledger_ok(stack)
    finance2.close()


def test_refused_files_store_nothing(finance, stack):
    before = count_statements(stack)
    bad_csv = ("TmnCode,TransactionType,TxnRef,TransactionNo,RefundRequestId,RefundTransactionNo,Amount,Fee,PayDate\r\n"
               f"{stack.env.get('FEEGATE_VNPAY_TMN_CODE', 'X')},01,ABC12345678,1,,,10000x0,0,20240501093512\r\n"
               "TOTAL,20240501,1,100000\r\n").encode()
    r = finance.post("/v1/statements?source=vnpay", data=bad_csv)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "validation_failed" and r.json()["error"]["field"] == "line 2"
    totals_wrong = ("TmnCode,TransactionType,TxnRef,TransactionNo,RefundRequestId,RefundTransactionNo,Amount,Fee,PayDate\r\n"
                    "TOTAL,20240501,3,100000\r\n").encode()
    r = finance.post("/v1/statements?source=vnpay", data=totals_wrong)
    assert r.status_code == 400 and r.json()["error"]["field"] == "line 2", r.text
    account = stack.env["FEEGATE_AGENCY_ACCOUNT"]
    unbalanced = camt053(account, vn_day(), [(1000, "CRDT", "X1", "hello")], opening=10, closing=20)
    r = finance.post("/v1/statements?source=camt053", data=unbalanced)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == "Document/BkToCstmrStmt/Stmt[1]/Bal[2]"
    assert "closing balance" in r.json()["error"]["message"]
    malformed = camt053(account, vn_day(), [(1000, "CRDT", "X1", "hello")], opening=7).replace(b"<Amt Ccy=\"VND\">1000<", b"<Amt Ccy=\"VND\">1o00<")
    r = finance.post("/v1/statements?source=camt053", data=malformed)
    assert r.status_code == 400 and r.json()["error"]["field"].startswith("Document/BkToCstmrStmt/Stmt[1]/Ntry[1]/Amt"), r.text
    not_ours = camt053("999000111", vn_day(), [])
    r = finance.post("/v1/statements?source=camt053", data=not_ours)
    assert r.status_code == 400 and r.json()["error"]["field"] == "Document/BkToCstmrStmt/Stmt[1]/Acct", r.text
    old_version = camt053(account, vn_day(), [], ns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.01")
    assert finance.post("/v1/statements?source=camt053", data=old_version).status_code == 400
    xxe = (b'<?xml version="1.0"?><!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<Document><BkToCstmrStmt><Stmt><Id>&x;</Id></Stmt></BkToCstmrStmt></Document>')
    laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                         for i in range(1, 10))
              + b']><Document><BkToCstmrStmt><Stmt><Id>&lol9;</Id></Stmt></BkToCstmrStmt></Document>')
    for body in (xxe, laughs):
        r = finance.post("/v1/statements?source=camt053", data=body)
        assert r.status_code == 400, r.text
        # refused at the DTD: nothing is fetched or expanded
        assert r.json()["error"]["field"] == "Document"
        msg = r.json()["error"]["message"]
        assert "document type" in msg or "entity" in msg, msg
        assert "root:" not in r.text
    assert finance.post("/v1/statements?source=sepa", data=b"x").status_code == 400
    assert finance.post("/v1/statements", data=b"x").status_code == 400
    assert count_statements(stack) == before


def test_an_import_is_audited_with_it_and_a_refused_one_as_failed(finance, stack):
    """The statement.import row commits with the import (same transaction); a refused file,
    which stores nothing, is recorded as failed."""
    def rows():
        return stack.query("SELECT object, outcome, role, detail, actor IS NOT NULL FROM audit_log "
                           "WHERE action = 'statement.import' ORDER BY id")
    before = len(rows())
    account = stack.env["FEEGATE_AGENCY_ACCOUNT"]
    body = camt053(account, vn_day(-20), [(5000, "CRDT", "AUD1", "chuyen khoan")], opening=0)
    first = import_file(finance, "camt053", body)
    again = import_file(finance, "camt053", body, status=200)
    assert again["id"] == first["id"]
    r = finance.post("/v1/statements?source=vnpay", data=b"not a settlement file\r\n")
    assert r.status_code == 400, r.text
    # the refused file's row is written as the answer goes out, not before it: wait for it
    deadline = time.monotonic() + 5
    while len(rows()) < before + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    new = rows()[before:]
    assert new[0] == (first["id"], "ok", "finance", "camt053", True)
    assert new[1] == (first["id"], "ok", "finance", "camt053", True)
    assert new[2][1:4] == ("failed", "finance", "vnpay") and new[2][0] == ""
    assert len(new) == 3


def test_statement_routes_refuse_portal_keys_and_agency_imports(api, agency_staff, finance, stack):
    account = stack.env["FEEGATE_AGENCY_ACCOUNT"]
    body = camt053(account, vn_day(-30), [(1000, "CRDT", f"U{uuid.uuid4().hex[:8]}", "not a payout")])
    assert agency_staff.post("/v1/statements?source=camt053", data=body).status_code == 403
    for path in ("/v1/statements", "/v1/exceptions", f"/v1/statements/{uuid.uuid4()}"):
        assert api.get(path).status_code == 403, path
    for action in ("acknowledge", "resolve", "approve"):
        assert api.post(f"/v1/exceptions/{uuid.uuid4()}/{action}", json={}).status_code == 403
        assert agency_staff.post(f"/v1/exceptions/{uuid.uuid4()}/{action}", json={}).status_code == 403
    st = import_file(finance, "camt053", body)
    assert st["cases"] == 1
    # pages: limit and cursor, unknown parameters refused
    first = finance.get("/v1/statements", params={"limit": 1}).json()
    assert len(first["data"]) == 1 and first["next_cursor"]
    second = finance.get("/v1/statements", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert second["data"][0]["id"] != first["data"][0]["id"]
    r = finance.get("/v1/exceptions", params={"colour": "red"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "colour"
    r = finance.get("/v1/exceptions", params={"state": "closed"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "state"
    page = finance.get("/v1/exceptions", params={"limit": 1}).json()
    assert len(page["data"]) == 1 and page["next_cursor"]
    nxt = finance.get("/v1/exceptions", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert nxt["data"] and nxt["data"][0]["id"] != page["data"][0]["id"]
