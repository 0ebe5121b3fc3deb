"""The staff console in headless Chromium (and, where no browser is needed, over plain HTTP):
sign-in, sessions, CSRF, the order search and page, the audit log, staff and tokens. The money
pages (cases, statements, the settlement report, refunds) are test_console_finance.py.

Screenshots go to $FEEGATE_SCREENSHOTS, by default build/screenshots/ of the checkout."""
import re
import time

import requests
from selenium.webdriver.common.by import By

from conftest import order_body
from consolekit import browser, session_cookie, shot, sign_in, submit
from staffkit import audit_rows, console_login, csrf_of, new_staff, totp, wait_ready


def test_sign_in_wrong_password_then_right_with_totp(browser, gateway, stack):
    e = stack.env
    sign_in(browser, gateway.url, e["FEEGATE_FINANCE_EMAIL"], "not-the-password", totp(e["FEEGATE_FINANCE_TOTP_SECRET"]))
    assert "không đúng" in browser.find_element(By.ID, "login-error").text
    assert session_cookie(browser) is None
    shot(browser, "login-error")
    sign_in(browser, gateway.url, e["FEEGATE_FINANCE_EMAIL"], e["FEEGATE_FINANCE_PASSWORD"],
            totp(e["FEEGATE_FINANCE_TOTP_SECRET"]))
    assert browser.current_url.rstrip("/").endswith("/console")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Tổng quan hôm nay"
    assert "Asia/Ho_Chi_Minh" in browser.find_element(By.TAG_NAME, "footer").text
    c = session_cookie(browser)
    assert c and c["httpOnly"] and c.get("sameSite") == "Strict", c
    assert browser.find_element(By.ID, "open-cases").text.isdigit()
    nav = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "nav a")]
    assert "Hoàn tiền" in nav and "Cán bộ và token" not in nav and "Nhật ký kiểm toán" not in nav
    shot(browser, "dashboard-finance")
    shot(browser, "dashboard-finance-phone", width=390)
    rows = audit_rows(gateway.url, e["FEEGATE_AUDITOR_TOKEN"], actor=e["FEEGATE_FINANCE_EMAIL"], action="login")
    assert [r["action"] for r in rows[:2]] == ["login.ok", "login.failed"], rows


def test_password_without_totp_is_refused_for_finance(gateway, stack):
    f = new_staff(stack, "finance", enrol_totp=True)
    s, r = console_login(gateway.url, f["email"], f["password"])
    assert r.status_code == 200 and "không đúng" in r.text and "fg_session" not in s.cookies
    s, r = console_login(gateway.url, f["email"], f["password"], f["recovery"][0])
    assert r.status_code == 303, r.text  # a recovery code works once
    s, r = console_login(gateway.url, f["email"], f["password"], f["recovery"][0])
    assert r.status_code == 200 and "không đúng" in r.text


def test_five_failures_lock_the_account(browser, gateway, stack):
    s = new_staff(stack, "agency", agencies=("XNC",))
    for i in range(5):
        sign_in(browser, gateway.url, s["email"], f"wrong-password-{i}")
    assert "tạm khóa 15 phút" in browser.find_element(By.ID, "login-error").text
    sign_in(browser, gateway.url, s["email"], s["password"])
    assert "tạm khóa 15 phút" in browser.find_element(By.ID, "login-error").text
    assert session_cookie(browser) is None
    shot(browser, "login-locked")
    acts = [r["action"] for r in audit_rows(gateway.url, stack.env["FEEGATE_AUDITOR_TOKEN"], actor=s["email"])]
    assert acts[:3] == ["login.locked", "login.locked", "login.failed"], acts
    assert acts.count("login.failed") == 5


def test_agency_staff_sees_own_orders_and_404_for_another_agency(browser, gateway, stack, api):
    mine = api.create(order_body(agency="XNC", payer={"name": "Phạm Quốc Bảo"})).json()
    theirs = api.create(order_body(agency="DKKD")).json()
    e = stack.env
    sign_in(browser, gateway.url, e["FEEGATE_AGENCY_EMAIL"], e["FEEGATE_AGENCY_PASSWORD"])
    browser.get(f"{gateway.url}/console/orders/{mine['id']}")
    assert mine["reference"] in browser.find_element(By.TAG_NAME, "h1").text
    assert browser.find_element(By.ID, "amount").text == "200.000 ₫"
    shot(browser, "order-page")
    browser.get(f"{gateway.url}/console/orders/{theirs['id']}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Không tìm thấy"
    s, _ = console_login(gateway.url, e["FEEGATE_AGENCY_EMAIL"], e["FEEGATE_AGENCY_PASSWORD"])
    assert s.get(f"{gateway.url}/console/orders/{theirs['id']}", timeout=15).status_code == 404
    assert s.get(f"{gateway.url}/console/orders/{mine['id']}", timeout=15).status_code == 200
    # the search: reference prefix and payer name, within the agency
    browser.get(f"{gateway.url}/console/orders?reference={mine['reference']}&payer=quốc")
    cells = browser.find_elements(By.CSS_SELECTOR, "#orders tbody a")
    assert [c.text for c in cells] == [mine["reference"]]
    shot(browser, "orders-search")
    shot(browser, "orders-search-phone", width=390)
    browser.get(f"{gateway.url}/console/orders?reference={theirs['reference']}")
    assert browser.find_elements(By.CSS_SELECTOR, "#orders tbody a") == []
    assert s.get(f"{gateway.url}/console/audit", timeout=15).status_code == 403


def test_a_form_without_its_csrf_token_is_refused(gateway, stack):
    e = stack.env
    r = requests.post(gateway.url + "/console/login", data={"email": e["FEEGATE_AGENCY_EMAIL"],
                      "password": e["FEEGATE_AGENCY_PASSWORD"]}, allow_redirects=False, timeout=15)
    assert r.status_code == 403 and "fg_session" not in r.cookies
    s, r = console_login(gateway.url, e["FEEGATE_AGENCY_EMAIL"], e["FEEGATE_AGENCY_PASSWORD"])
    assert r.status_code == 303 and r.headers["Location"] == "/console/"
    page = s.get(gateway.url + "/console/", timeout=15)
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "unsafe-inline" not in csp
    assert "<script" not in page.text and "style=" not in page.text
    assert s.post(gateway.url + "/console/logout", data={}, allow_redirects=False, timeout=15).status_code == 403
    assert s.post(gateway.url + "/console/logout", data={"csrf": "forged"}, allow_redirects=False,
                  timeout=15).status_code == 403
    assert s.get(gateway.url + "/console/", allow_redirects=False, timeout=15).status_code == 200
    old = dict(s.cookies)
    r = s.post(gateway.url + "/console/logout", data={"csrf": csrf_of(page.text)}, allow_redirects=False, timeout=15)
    assert r.status_code == 303
    # signed out on the server: the old cookie no longer opens anything
    r = requests.get(gateway.url + "/console/", cookies=old, allow_redirects=False, timeout=15)
    assert r.status_code == 303 and r.headers["Location"] == "/console/login"


def test_session_ends_after_idle_timeout(gateway_factory, stack):
    gw = gateway_factory(FEEGATE_SESSION_IDLE_S=3)
    e = stack.env
    wait_ready(gw.url)
    s, r = console_login(gw.url, e["FEEGATE_AGENCY_EMAIL"], e["FEEGATE_AGENCY_PASSWORD"])
    assert r.status_code == 303
    for _ in range(3):  # activity keeps it alive past the idle timeout
        time.sleep(1.5)
        assert s.get(gw.url + "/console/", allow_redirects=False, timeout=15).status_code == 200
    time.sleep(4.5)
    r = s.get(gw.url + "/console/", allow_redirects=False, timeout=15)
    assert r.status_code == 303 and r.headers["Location"] == "/console/login"


def test_audit_log_page_shows_the_actions(browser, gateway, stack):
    a = new_staff(stack, "auditor")
    sign_in(browser, gateway.url, a["email"], "a wrong one")
    sign_in(browser, gateway.url, a["email"], a["password"])
    assert session_cookie(browser), browser.page_source[:2000]
    browser.get(gateway.url + "/console/audit?actor=" + a["email"])
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in browser.find_elements(By.CSS_SELECTOR, "#audit tbody tr")]
    assert [r[3] for r in rows] == ["login.ok", "login.failed"], rows
    assert re.match(r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d", rows[0][0]), rows
    browser.get(gateway.url + "/console/audit")
    shot(browser, "audit-log")
    shot(browser, "audit-log-phone", width=390)
    acts = {td.text for td in browser.find_elements(By.CSS_SELECTOR, "#audit tbody td:nth-child(4)")}
    assert {"login.ok", "login.failed"} <= acts, acts


def test_admin_staff_page_and_first_totp_enrolment(browser, gateway, stack):
    adm = new_staff(stack, "admin")  # no TOTP yet: enrolment comes first
    sign_in(browser, gateway.url, adm["email"], adm["password"])
    assert browser.current_url.endswith("/console/totp"), browser.find_element(By.TAG_NAME, "main").text
    assert browser.find_elements(By.CSS_SELECTOR, ".qr svg")
    shot(browser, "totp-enrol")
    browser.get(gateway.url + "/console/staff")
    assert browser.current_url.endswith("/console/totp")  # nothing else opens meanwhile
    secret = browser.find_element(By.ID, "totp-secret").text
    browser.find_element(By.ID, "code").send_keys(totp(secret))
    submit(browser, "main form")
    codes = browser.find_elements(By.CSS_SELECTOR, "#recovery code")
    assert len(codes) == 10
    browser.get(gateway.url + "/console/staff")
    assert adm["email"] in browser.find_element(By.ID, "staff").text
    shot(browser, "staff-page")
    assert [r["action"] for r in audit_rows(gateway.url, stack.env["FEEGATE_AUDITOR_TOKEN"],
                                            actor=adm["email"])][:2] == ["totp.enrol", "login.ok"]
