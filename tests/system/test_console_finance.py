"""The console's money pages in headless Chromium against the real stack: a treasury statement
uploaded through the page and its line outcomes; a case acknowledged, resolved `accepted` and
approved by a second finance member (the proposer refused); the settlement report of a day
with its CSV and XLSX downloads opened back and audited; the order search's filters and its
CSV and XLSX downloads; refunds approved and payouts confirmed by a second finance member;
agency staff kept to their agency (another agency's case or statement is a 404).

Screenshots go to $FEEGATE_SCREENSHOTS (default build/screenshots/), at 1280 and 390 px."""
import csv
import io
import random
import re
import uuid

import openpyxl
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from bankflow import *
from consolekit import browser, download, shot, sign_in, submit
from staffkit import audit_rows, console_login, csrf_of, new_staff, totp


def finance_member(stack):
    """A finance member of its own (TOTP enrolled), so each test signs in with a fresh code."""
    return new_staff(stack, "finance", enrol_totp=True)


def sign_in_finance(driver, gateway, member):
    sign_in(driver, gateway.url, member["email"], member["password"], totp(member["totp"]))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Tổng quan hôm nay", driver.page_source[:1500]


def old_day():
    """A business day long past and different in each run's statements (no supersession)."""
    return vn_day(-random.randint(400, 4000))


def account_of(stack, agency):
    return stack.scalar("SELECT account_number FROM agencies WHERE code = %s", (agency,))


def texts(driver, css):
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


def alert(driver):
    return driver.find_element(By.ID, "alert").text


def audited(stack, actor, action):
    """(action, object, outcome) of actor's audit rows of that action, newest first."""
    rows = audit_rows(stack.env["FEEGATE_URL"], stack.env["FEEGATE_AUDITOR_TOKEN"], actor=actor, action=action,
                      limit=500)
    return [(r["action"], r["object"], r["outcome"]) for r in rows]


# ------------------------------------------------------------------ statements and cases

def test_statement_uploaded_and_a_case_approved_by_a_second_finance_member(browser, gateway, stack, api, sim, tmp_path):
    f1, f2 = finance_member(stack), finance_member(stack)
    paid, started = pay_order(api, sim, "vietqr", amount=180000)
    day = old_day()
    stray = 777000 + random.randint(1, 999)
    body = camt053(stack.env["FEEGATE_AGENCY_ACCOUNT"], day, [
        (180000, "CRDT", f"K{uuid.uuid4().hex[:10]}", f"Thanh toan le phi {started['ref']}"),
        (stray, "CRDT", f"K{uuid.uuid4().hex[:10]}", "chuyen khoan khong ro noi dung"),
    ])
    path = tmp_path / "sao-ke.xml"
    path.write_bytes(body)

    # the upload: the form streams the file into the importer; its page lists each line's outcome
    sign_in_finance(browser, gateway, f1)
    browser.get(gateway.url + "/console/statements")
    Select(browser.find_element(By.ID, "source")).select_by_value("camt053")
    browser.find_element(By.ID, "file").send_keys(str(path))
    shot(browser, "statements-upload")
    submit(browser, "#upload")
    assert re.search(r"/console/statements/[0-9a-f-]{36}\?done=imported$", browser.current_url), browser.current_url
    assert "Đã nhập tệp" in browser.find_element(By.ID, "done").text
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in browser.find_elements(By.CSS_SELECTOR, "#lines tbody tr")]
    assert [(r[0], r[6], r[8]) for r in rows] == [
        ("1", "180.000 ₫", "Khớp"), ("2", f"{stray:,}".replace(",", ".") + " ₫", "Ghi có không xác định")], rows
    assert "2 dòng: 1 khớp, 1 sai lệch mở" in browser.find_element(By.ID, "statement").text
    shot(browser, "statement-page")
    shot(browser, "statement-page-phone", width=390)
    statement_id = browser.current_url.split("/")[-1].split("?")[0]
    # the same bytes again: the first record, nothing changed
    browser.get(gateway.url + "/console/statements")
    Select(browser.find_element(By.ID, "source")).select_by_value("camt053")
    browser.find_element(By.ID, "file").send_keys(str(path))
    submit(browser, "#upload")
    assert browser.current_url.endswith(f"/console/statements/{statement_id}?done=existing")
    # a file that is not a statement: refused, the place and the reason said, nothing stored
    bad = tmp_path / "hong.xml"
    bad.write_bytes(body.replace(b"<Cd>CLBD</Cd>", b"<Cd>XXXX</Cd>"))
    before = stack.scalar("SELECT count(*) FROM statements")
    browser.get(gateway.url + "/console/statements")
    Select(browser.find_element(By.ID, "source")).select_by_value("camt053")
    browser.find_element(By.ID, "file").send_keys(str(bad))
    submit(browser, "#upload")
    assert "Tệp bị từ chối" in alert(browser) and "Document" in alert(browser), alert(browser)
    assert stack.scalar("SELECT count(*) FROM statements") == before
    shot(browser, "statements-refused")

    # the case of the stray credit, in the queue and on its page with its evidence
    case_id = stack.scalar("SELECT id::text FROM payment_exceptions WHERE statement_id = %s AND line = 2",
                           (statement_id,))
    browser.get(gateway.url + "/console/cases?state=open&kind=unexpected_credit")
    links = browser.find_elements(By.CSS_SELECTOR, "#cases tbody a")
    assert any(a.get_attribute("href").endswith(f"/console/cases/{case_id}") for a in links)
    shot(browser, "cases-queue")
    shot(browser, "cases-queue-phone", width=390)
    browser.get(f"{gateway.url}/console/cases/{case_id}")
    evidence = browser.find_element(By.ID, "evidence").text
    assert "chuyen khoan khong ro noi dung" in evidence and "Ghi có không xác định" in evidence, evidence
    assert browser.find_element(By.ID, "case-state").text == "Chưa xử lý"

    # acknowledge, then propose `accepted` with a note
    browser.find_element(By.ID, "ack-note").send_keys("Đang hỏi kho bạc")
    submit(browser, "#acknowledge")
    assert "Đã tiếp nhận" in browser.find_element(By.ID, "done").text
    assert browser.find_element(By.ID, "case-state").text == "Đang xử lý"
    browser.find_element(By.ID, "note").send_keys("Khoản nộp nhầm, đơn vị sẽ tự hoàn trả cho người nộp")
    page = browser.current_url
    browser.find_element(By.CSS_SELECTOR, "#resolve button[type=submit]").click()
    assert browser.current_url == page  # no resolution chosen: the browser does not send the form
    browser.find_element(By.CSS_SELECTOR, "label[for=res-accepted]").click()
    submit(browser, "#resolve")
    assert "Cần một cán bộ tài chính khác phê duyệt" in browser.find_element(By.ID, "done").text
    assert browser.find_element(By.ID, "case-state").text == "Chờ phê duyệt"
    shot(browser, "case-awaiting-approval")
    # the proposer cannot approve: the page says so, the case still waits
    submit(browser, "#approval")
    assert "không thể tự phê duyệt" in alert(browser), alert(browser)
    assert browser.find_element(By.ID, "case-state").text == "Chờ phê duyệt"
    shot(browser, "case-self-approval-refused")
    shot(browser, "case-self-approval-refused-phone", width=390)

    # a second finance member approves
    sign_in_finance(browser, gateway, f2)
    browser.get(f"{gateway.url}/console/cases/{case_id}")
    assert f1["email"] in browser.find_element(By.ID, "approval").text
    submit(browser, "#approval")
    assert "Đã phê duyệt" in browser.find_element(By.ID, "done").text
    assert browser.find_element(By.ID, "case-state").text == "Đã xử lý"
    assert "Chấp nhận chênh lệch" in browser.find_element(By.ID, "case").text
    history = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")][1:3]
               for tr in browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")]
    assert history == [["Hệ thống (đối soát tự động)", "Mở hồ sơ"], [f1["email"], "Tiếp nhận"],
                       [f1["email"], "Đề xuất, chờ phê duyệt"], [f2["email"], "Phê duyệt"]], history
    assert not browser.find_elements(By.ID, "resolve")  # a resolved case has no more forms
    shot(browser, "case-resolved")
    e = stack.query("SELECT state, resolution, proposed_by::text FROM payment_exceptions WHERE id = %s", (case_id,))
    assert e == [("resolved", "accepted", f1["id"])], e

    # each step in the audit log, with its actor and outcome
    assert audited(stack, f1["email"], "statement.import")[:3] == [
        ("statement.import", "", "failed"), ("statement.import", statement_id, "ok"),
        ("statement.import", statement_id, "ok")]
    assert audited(stack, f1["email"], "case.approve") == [("case.approve", case_id, "denied")]
    assert audited(stack, f1["email"], "case.resolve") == [("case.resolve", case_id, "ok")]
    assert audited(stack, f1["email"], "case.acknowledge") == [("case.acknowledge", case_id, "ok")]
    assert audited(stack, f2["email"], "case.approve") == [("case.approve", case_id, "ok")]
    # and on the auditor's page
    auditor = new_staff(stack, "auditor")
    sign_in(browser, gateway.url, auditor["email"], auditor["password"])
    browser.get(f"{gateway.url}/console/audit?action=case")
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in browser.find_elements(By.CSS_SELECTOR, "#audit tbody tr")]
    mine = [(r[1], r[3], r[5]) for r in rows if r[4] == case_id]
    assert mine == [(f2["email"], "case.approve", "Thành công"), (f1["email"], "case.approve", "Bị từ chối"),
                    (f1["email"], "case.resolve", "Thành công"), (f1["email"], "case.acknowledge", "Thành công")], mine
    shot(browser, "audit-cases")


def test_case_forms_check_their_fields_and_csrf(gateway, stack):
    f1 = finance_member(stack)
    st = stack_import(stack, gateway, camt053(stack.env["FEEGATE_AGENCY_ACCOUNT"], old_day(),
                                              [(5000, "CRDT", f"K{uuid.uuid4().hex[:10]}", "khong ro")]))
    case_id = stack.scalar("SELECT id::text FROM payment_exceptions WHERE statement_id = %s", (st["id"],))
    s, r = console_login(gateway.url, f1["email"], f1["password"], totp(f1["totp"]))
    assert r.status_code == 303, r.text
    page = s.get(f"{gateway.url}/console/cases/{case_id}", timeout=15)
    assert page.status_code == 200 and "<script" not in page.text and "style=" not in page.text
    token = csrf_of(page.text)
    url = f"{gateway.url}/console/cases/{case_id}/resolve"
    # without the CSRF field: 403, nothing changes
    assert s.post(url, data={"resolution": "void", "note": "x"}, allow_redirects=False, timeout=15).status_code == 403
    # a resolution but no note, a note but no resolution: the page says what is missing
    r = s.post(url, data={"csrf": token, "resolution": "void", "note": ""}, allow_redirects=False, timeout=15)
    assert r.status_code == 400 and "Hãy nhập ghi chú" in r.text
    r = s.post(url, data={"csrf": token, "resolution": "later", "note": "x"}, allow_redirects=False, timeout=15)
    assert r.status_code == 400 and "Hãy chọn một cách xử lý" in r.text
    assert stack.scalar("SELECT state FROM payment_exceptions WHERE id = %s", (case_id,)) == "open"
    r = s.post(url, data={"csrf": token, "resolution": "void", "note": "Không phải sai lệch"}, allow_redirects=False,
               timeout=15)
    assert r.status_code == 303 and r.headers["Location"] == f"/console/cases/{case_id}?done=resolve", r.text
    # resolved: another action is refused with the reason, in Vietnamese
    r = s.post(f"{gateway.url}/console/cases/{case_id}/acknowledge", data={"csrf": token}, allow_redirects=False,
               timeout=15)
    assert r.status_code == 409 and "Hồ sơ đã được xử lý xong" in r.text
    assert s.post(f"{gateway.url}/console/cases/{uuid.uuid4()}/approve", data={"csrf": token},
                  timeout=15).status_code == 404
    # the upload form without its CSRF field stores nothing
    before = stack.scalar("SELECT count(*) FROM statements")
    files = {"source": (None, "camt053"), "file": ("a.xml", camt053(stack.env["FEEGATE_AGENCY_ACCOUNT"], old_day(),
                                                                       [(1, "CRDT", "K1", "x")]))}
    r = s.post(f"{gateway.url}/console/statements", files=files, allow_redirects=False, timeout=15)
    assert r.status_code == 403 and "CSRF" in r.text
    files = {"csrf": (None, token), "source": (None, "camt053")}
    r = s.post(f"{gateway.url}/console/statements", files=files, allow_redirects=False, timeout=15)
    assert r.status_code == 400 and "Hãy chọn một tệp" in r.text
    assert stack.scalar("SELECT count(*) FROM statements") == before


def stack_import(stack, gateway, body):
    r = requests.post(f"{gateway.url}/v1/statements?source=camt053", data=body, timeout=30,
                      headers={"Authorization": f"Bearer {stack.env['FEEGATE_FINANCE_TOKEN']}",
                               "Content-Type": "application/xml"})
    assert r.status_code == 201, r.text
    return r.json()


def test_agency_staff_see_their_agency_only(browser, gateway, stack):
    mine = stack_import(stack, gateway, camt053(stack.env["FEEGATE_AGENCY_ACCOUNT"], old_day(),
                                                [(4100, "CRDT", f"K{uuid.uuid4().hex[:10]}", "khong ro")]))
    theirs = stack_import(stack, gateway, camt053(account_of(stack, "DKKD"), old_day(),
                                                  [(4200, "CRDT", f"K{uuid.uuid4().hex[:10]}", "khong ro")]))
    case_of = {st["id"]: stack.scalar("SELECT id::text FROM payment_exceptions WHERE statement_id = %s", (st["id"],))
               for st in (mine, theirs)}
    e = stack.env
    sign_in(browser, gateway.url, e["FEEGATE_AGENCY_EMAIL"], e["FEEGATE_AGENCY_PASSWORD"])
    browser.get(f"{gateway.url}/console/statements/{mine['id']}")
    assert "Sao kê tài khoản kho bạc" in browser.find_element(By.TAG_NAME, "h1").text
    assert not browser.find_elements(By.ID, "upload")  # agency staff read, finance imports
    browser.get(f"{gateway.url}/console/cases/{case_of[mine['id']]}")
    assert browser.find_element(By.ID, "case-state").text == "Chưa xử lý"
    assert not browser.find_elements(By.ID, "resolve") and not browser.find_elements(By.ID, "acknowledge")
    shot(browser, "case-agency-view")
    for path in (f"/console/statements/{theirs['id']}", f"/console/cases/{case_of[theirs['id']]}",
                 "/console/reports/settlement?agency=DKKD"):
        browser.get(gateway.url + path)
        assert browser.find_element(By.TAG_NAME, "h1").text == "Không tìm thấy", path
    browser.get(f"{gateway.url}/console/statements")
    listed = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#statements tbody a")]
    assert any(h.endswith(mine["id"]) for h in listed) and not any(h.endswith(theirs["id"]) for h in listed)
    s, r = console_login(gateway.url, e["FEEGATE_AGENCY_EMAIL"], e["FEEGATE_AGENCY_PASSWORD"])
    for path in (f"/console/statements/{theirs['id']}", f"/console/cases/{case_of[theirs['id']]}",
                 "/console/reports/settlement/download?agency=DKKD&format=csv"):
        assert s.get(gateway.url + path, timeout=15).status_code == 404, path
    # finance's work is refused to them, even with the form's token
    page = s.get(f"{gateway.url}/console/cases/{case_of[mine['id']]}", timeout=15)
    r = s.post(f"{gateway.url}/console/cases/{case_of[mine['id']]}/resolve",
               data={"csrf": csrf_of(page.text), "resolution": "void", "note": "x"}, timeout=15)
    assert r.status_code == 403
    assert s.get(f"{gateway.url}/console/refunds", timeout=15).status_code == 403


# ------------------------------------------------------------------ the settlement report

def read_csv(path):
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def test_settlement_report_page_and_its_downloads(browser, gateway, stack, api, sim):
    f1 = finance_member(stack)
    paid, _ = pay_order(api, sim, "vnpay", amount=123000, payer={"name": "Lê Thị Hoa"})
    sign_in_finance(browser, gateway, f1)
    browser.get(gateway.url + "/console/reports/settlement")
    assert browser.find_element(By.ID, "date").get_attribute("value") == str(vn_day())
    Select(browser.find_element(By.ID, "agency")).select_by_value("XNC")
    submit(browser, "main form[role=search]")
    assert "agency=XNC" in browser.current_url and f"date={vn_day()}" in browser.current_url
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in browser.find_elements(By.CSS_SELECTOR, "#totals tbody tr")]
    vnpay = [r for r in rows if r[1] == "VNPAY"]
    assert len(vnpay) == 1 and vnpay[0][0].endswith("XNC"), rows
    assert rows[-1][0] == "Cộng" and all("DKKD" not in r[0] for r in rows), rows
    assert re.fullmatch(r"[\d.]+ ₫", vnpay[0][3]), vnpay
    shot(browser, "settlement-report")
    shot(browser, "settlement-report-phone", width=390)

    path = download(browser, "download-csv")
    assert path.name == f"settlement_{vn_day()}_{vn_day()}_XNC.csv", path.name
    lines = read_csv(path)
    assert any(l["record"] == "total" and l["agency"] == "XNC" and l["bank"] == "vnpay" for l in lines)
    ours = [l for l in lines if l["record"] == "payment" and l["order_id"] == paid["id"]]
    assert len(ours) == 1 and ours[0]["amount"] == "123000" and ours[0]["payer_name"] == "Lê Thị Hoa", ours
    assert ours[0]["local_time_asia_ho_chi_minh"].endswith("+07:00")
    path = download(browser, "download-xlsx")
    assert path.suffix == ".xlsx"
    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb.sheetnames == ["Totals", "Lines"]
    sheet = list(wb["Lines"].iter_rows(values_only=True))
    head = list(sheet[0])
    row = [r for r in sheet[1:] if r[head.index("order_id")] == paid["id"]]
    assert len(row) == 1 and row[0][head.index("amount")] == 123000, row
    totals = list(wb["Totals"].iter_rows(values_only=True))
    assert any(t[1] == "XNC" and t[2] == "vnpay" and isinstance(t[4], (int, float)) for t in totals[1:]), totals
    # each download is in the audit log, as the API's are
    objects = [r[1] for r in audited(stack, f1["email"], "export.download")]
    assert objects[:2] == [f"settlement:{vn_day()}..{vn_day()}:XNC"] * 2, objects


# ------------------------------------------------------------------ the order search and its downloads

def test_collections_filter_and_its_csv_and_xlsx(browser, gateway, stack, api, sim):
    prefix = f"HS-{uuid.uuid4().hex[:8]}"
    paid, _ = pay_order(api, sim, "vnpay", amount=45000, reference=f"{prefix}-1", payer={"name": "Trần Văn Bình"})
    unpaid = new_order(api, amount=46000, reference=f"{prefix}-2", payer={"name": "Trần Văn Bình"})
    other = new_order(api, amount=47000, reference=f"{prefix}-3", agency="DKKD")
    e = stack.env
    sign_in(browser, gateway.url, e["FEEGATE_AGENCY_EMAIL"], e["FEEGATE_AGENCY_PASSWORD"])
    browser.get(gateway.url + "/console/orders")
    browser.find_element(By.ID, "reference").send_keys(prefix)
    submit(browser, "main form[role=search]")  # the empty fields are sent too and mean "any"
    refs = texts(browser, "#orders tbody a")
    assert sorted(refs) == [f"{prefix}-1", f"{prefix}-2"], refs  # DKKD's order is not theirs
    Select(browser.find_element(By.ID, "status")).select_by_value("succeeded")
    browser.find_element(By.ID, "payer").send_keys("văn bình")
    submit(browser, "main form[role=search]")
    assert texts(browser, "#orders tbody a") == [f"{prefix}-1"]
    shot(browser, "orders-filtered")
    shot(browser, "orders-filtered-phone", width=390)

    rows = read_csv(download(browser, "download-csv"))
    assert [(r["reference"], r["status"], r["amount"], r["agency"]) for r in rows] == [
        (f"{prefix}-1", "succeeded", "45000", "XNC")], rows
    assert rows[0]["order_id"] == paid["id"] and rows[0]["banks"] == "vnpay" and rows[0]["bank_txn_id"]
    assert rows[0]["paid_at_asia_ho_chi_minh"].endswith("+07:00")
    wb = openpyxl.load_workbook(download(browser, "download-xlsx"), read_only=True)
    sheet = list(wb.active.iter_rows(values_only=True))
    head = list(sheet[0])
    assert [(r[head.index("reference")], r[head.index("amount")]) for r in sheet[1:]] == [(f"{prefix}-1", 45000)]
    objects = [r[1] for r in audited(stack, e["FEEGATE_AGENCY_EMAIL"], "export.download")]
    assert objects[:2] == ["orders:.."] * 2, objects
    assert unpaid["id"] and other["id"]


# ------------------------------------------------------------------ refunds: the two-person rule

def test_refund_approved_and_payout_confirmed_by_a_second_finance_member(browser, gateway, stack, api, sim):
    f1, f2 = finance_member(stack), finance_member(stack)
    one = Api(gateway.url, f1["token"])
    big, _ = pay_order(api, sim, "vnpay", amount=60_000_000)
    r = one.post(f"/v1/orders/{big['id']}/refunds", json={"amount": 55_000_000, "reason": "Hồ sơ bị từ chối"})
    assert r.status_code == 202, r.text
    ask = r.json()
    qr, _ = pay_order(api, sim, "vietqr", amount=150_000)
    r = one.post(f"/v1/orders/{qr['id']}/refunds", json={"amount": 150_000, "reason": "Nộp thừa"})
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    payout = r.json()

    sign_in_finance(browser, gateway, f1)
    browser.get(gateway.url + "/console/refunds")
    row = browser.find_element(By.XPATH, f"//table[@id='approvals']//tr[td/a[text()='{big['reference']}']]")
    assert "55.000.000 ₫" in row.text and f1["email"] in row.text and "cần người khác phê duyệt" in row.text
    shot(browser, "refunds-waiting")
    shot(browser, "refunds-waiting-phone", width=390)
    submit(browser, f"form[action='/console/refund-approvals/{ask['id']}/approve']")
    assert "không thể tự phê duyệt" in alert(browser), alert(browser)
    shot(browser, "refund-self-approval-refused")
    # the payout: the first confirmation is recorded, the same member's second refused
    submit(browser, f"form[action='/console/refunds/{payout['id']}/confirm']")
    assert "Cần một cán bộ tài chính khác xác nhận" in browser.find_element(By.ID, "done").text
    row = browser.find_element(By.XPATH, f"//table[@id='pending']//tr[td/a[text()='{qr['reference']}']]")
    assert f"Lần 1: {f1['email']}" in row.text and "Xác nhận lần 2" in row.text, row.text
    submit(browser, f"form[action='/console/refunds/{payout['id']}/confirm']")
    assert "không thể tự" in alert(browser), alert(browser)
    assert audited(stack, f1["email"], "refund.confirm")[:2] == [
        ("refund.confirm", payout["id"], "denied"), ("refund.confirm", payout["id"], "ok")]

    sign_in_finance(browser, gateway, f2)
    browser.get(gateway.url + "/console/refunds")
    submit(browser, f"form[action='/console/refund-approvals/{ask['id']}/approve']")
    assert "Đã phê duyệt" in browser.find_element(By.ID, "done").text
    assert big["reference"] not in browser.find_element(By.ID, "approvals").text
    submit(browser, f"form[action='/console/refunds/{payout['id']}/confirm']")
    assert "Đã xác nhận lần hai" in browser.find_element(By.ID, "done").text
    assert qr["reference"] not in browser.find_element(By.ID, "pending").text
    shot(browser, "refunds-done")
    refunds = one.get(f"/v1/orders/{big['id']}/refunds").json()["data"]
    assert [x["amount"] for x in refunds] == [55_000_000], refunds
    wait_status(api, big["id"], "partially_refunded", timeout=20)
    wait_status(api, qr["id"], "refunded")
    assert audited(stack, f1["email"], "refund.approve") == [("refund.approve", ask["id"], "denied")]
    assert [a[2] for a in audited(stack, f2["email"], "refund.approve")] == ["ok", "ok"]
    assert ("refund.confirm", payout["id"], "ok") in audited(stack, f2["email"], "refund.confirm")
    assert_ledger_ok(stack)
