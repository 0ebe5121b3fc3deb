"""The citizen's pages in headless Chromium (issue 14): checkout on a desktop and a 390 px
phone, VietQR (bank name, same transfer content when chosen again, moving on to the result
once the credit arrives), paid, expired (a bank choice after expiry refused with the expired
page) and cancelled pages, each showing the reference, the expiry and the way back; and the
receipt page. Screenshots go to build/screenshots/ (FEEGATE_SCREENSHOTS changes it)."""
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import requests

from bankflow import *
from conftest import REPO


from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

SHOTS = Path(os.environ.get("FEEGATE_SCREENSHOTS", REPO / "build" / "screenshots"))
RETURN = "https://dichvucong.example.vn/thanh-toan/ket-qua"


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="feegate-chromium.")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,1000"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    drv.set_page_load_timeout(20)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def shot(drv, name, width=1280):
    drv.set_window_size(width, 1000)
    height = drv.execute_script("return document.documentElement.scrollHeight")
    drv.set_window_size(width, min(max(height + 40, 600), 4000))
    path = SHOTS / f"{name}.png"
    assert drv.save_screenshot(str(path)), path
    assert path.stat().st_size > 5000
    drv.set_window_size(1280, 1000)


def text_of(drv, css):
    return drv.find_element(By.CSS_SELECTOR, css).text


def no_external_resources(drv, base):
    urls = drv.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(u.startswith(base) or u.startswith("data:") for u in urls), urls


def order_for_pages(api, **kw):
    return new_order(api, payer={"name": "Lê Văn Thành", "id_number": "001099012345"}, procedure="1.000123",
                     items=[{"code": "HC", "name": "Lệ phí cấp hộ chiếu", "amount": 200000}], amount=200000,
                     return_url=RETURN, **kw)


def test_checkout_page_desktop_and_phone(browser, api, gateway):
    o = order_for_pages(api)
    browser.get(o["checkout_url"])
    assert "Cổng thanh toán lệ phí dịch vụ công" in text_of(browser, "header")
    assert text_of(browser, "#agency") == "Cục Quản lý Xuất nhập cảnh"
    assert text_of(browser, "#reference") == o["reference"]
    assert text_of(browser, "#procedure") == "1.000123" and text_of(browser, "#payer") == "Lê Văn Thành"
    assert "200.000 ₫" in text_of(browser, "#amount")
    assert "giờ Việt Nam" in text_of(browser, "#expiry")
    # the script counts down ("14:59"); without it the server's figure ("15 phút") stays
    wait_until(lambda: ":" in text_of(browser, "#countdown"), 5, what="the countdown to run")
    assert browser.find_element(By.ID, "back").get_attribute("href") == RETURN
    buttons = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#banks button")]
    assert any("VNPAY" in b and "Card or bank account" in b for b in buttons), buttons
    assert any("MoMo e-wallet" in b for b in buttons) and any("Bank transfer by VietQR" in b for b in buttons)
    assert "001099012345" not in browser.page_source
    no_external_resources(browser, gateway.url)
    shot(browser, "checkout-desktop")
    shot(browser, "checkout-phone", width=390)
    # nothing on the page is wider than a phone
    browser.set_window_size(390, 900)
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    browser.set_window_size(1280, 1000)


def test_vietqr_page_then_paid_page(browser, api, sim, gateway, stack):
    o = order_for_pages(api)
    browser.get(o["checkout_url"])
    browser.find_element(By.CSS_SELECTOR, "button[value=vietqr]").click()
    wait_until(lambda: browser.find_elements(By.ID, "content"), 10, what="the VietQR page")
    content = text_of(browser, "#content")
    assert text_of(browser, "#bank_name") == "Vietcombank"  # BIN 970436 of the demo agency
    assert text_of(browser, "#account") == "0011001234567"
    png = browser.find_element(By.ID, "qr_png").get_attribute("href")
    assert png.startswith("data:image/png;base64,iVBOR")
    assert browser.find_elements(By.CSS_SELECTOR, "button[data-copy=content]")
    assert "giờ Việt Nam" in text_of(browser, "#expiry")
    shot(browser, "vietqr-desktop")
    shot(browser, "vietqr-phone", width=390)
    # choosing VietQR again shows the same transfer content
    browser.get(o["checkout_url"])
    browser.find_element(By.CSS_SELECTOR, "button[value=vietqr]").click()
    wait_until(lambda: browser.find_elements(By.ID, "content"), 10, what="the VietQR page again")
    assert text_of(browser, "#content") == content
    assert len([a for a in get_order(api, o["id"])["attempts"] if a["bank"] == "vietqr"]) == 1
    # the credit arrives: the page moves on to the result by itself
    vietqr_transfer(sim, "0011001234567", 200000, content)
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#status[data-state=paid]"), 15,
               what="the VietQR page to move on to the paid page")
    assert text_of(browser, "#reference") == o["reference"]
    assert browser.find_element(By.ID, "back").get_attribute("href") == RETURN
    receipt = browser.find_element(By.ID, "receipt").get_attribute("href")
    shot(browser, "paid")
    wait_until(lambda: requests.get(receipt, timeout=5).status_code == 200, 5, what="the receipt")
    browser.get(receipt)
    assert browser.find_element(By.ID, "validity").get_attribute("data-valid") == "true"
    assert text_of(browser, "#reference") == o["reference"]
    assert "001099012345" not in browser.page_source
    no_external_resources(browser, gateway.url)
    shot(browser, "receipt")
    shot(browser, "receipt-phone", width=390)


def test_expired_page_and_choice_refused(browser, api, stack):
    o = order_for_pages(api)
    stack.query("UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = %s", (o["id"],))
    browser.get(o["checkout_url"])
    assert browser.find_element(By.ID, "status").get_attribute("data-state") == "expired"
    assert text_of(browser, "#reference") == o["reference"] and "giờ Việt Nam" in text_of(browser, "#expires_at")
    assert browser.find_element(By.ID, "back").get_attribute("href") == RETURN
    assert not browser.find_elements(By.CSS_SELECTOR, "#banks button")
    shot(browser, "expired")
    # a bank chosen from a page left open past expiry: refused, with the expired page
    r = choose_bank(o, "vnpay")
    assert r.status_code == 409 and 'data-state="expired"' in r.text and o["reference"] in r.text
    assert not get_order(api, o["id"])["attempts"]


def test_cancelled_page(browser, api):
    o = order_for_pages(api)
    assert api.post(f"/v1/orders/{o['id']}/cancel").status_code == 200
    browser.get(o["checkout_url"])
    assert browser.find_element(By.ID, "status").get_attribute("data-state") == "cancelled"
    assert text_of(browser, "#reference") == o["reference"] and "giờ Việt Nam" in text_of(browser, "#expires_at")
    assert browser.find_element(By.ID, "back").get_attribute("href") == RETURN
    shot(browser, "cancelled")
