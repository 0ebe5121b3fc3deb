"""The console in headless Chromium: the browser fixture (downloads allowed into a folder of its
own), screenshots, signing in through the form, and downloads clicked and waited for.

Screenshots go to $FEEGATE_SCREENSHOTS, by default build/screenshots/ of the checkout."""
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import REPO

SHOTS = Path(os.environ.get("FEEGATE_SCREENSHOTS") or REPO / "build" / "screenshots")


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="feegate-chromium-")
    downloads = tempfile.mkdtemp(prefix="feegate-downloads-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900", "--lang=vi"):
        opts.add_argument(a)
    opts.add_experimental_option("prefs", {"download.default_directory": downloads,
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=opts)
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    driver.downloads = Path(downloads)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
    shutil.rmtree(downloads, ignore_errors=True)


def shot(driver, name, width=None):
    """A screenshot of the whole page (its full height), at width when given."""
    w = width or 1280
    driver.set_window_size(w, 900)  # the page's height at this width
    height = driver.execute_script("return Math.max(document.body.scrollHeight, 600)")
    driver.set_window_size(w, min(height + 140, 5000))
    driver.save_screenshot(str(SHOTS / f"{name}.png"))
    driver.set_window_size(1280, 900)


def sign_in(driver, base, email, password, code=""):
    driver.delete_all_cookies()
    driver.get(base + "/console/login")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(password)
    if code:
        driver.find_element(By.ID, "totp").send_keys(code)
    submit(driver, "main form")


def submit(driver, form_css, button_css="button[type=submit]"):
    """Clicks the form's button and waits until its answer has replaced the page."""
    form = driver.find_element(By.CSS_SELECTOR, form_css)
    form.find_element(By.CSS_SELECTOR, button_css).click()

    def replaced(_):
        # the old form is gone once touching it fails; while the page is being replaced,
        # chromedriver may say so as "Node ... does not belong to the document" (an unknown
        # error) rather than as a stale element
        try:
            form.is_enabled()
            return False
        except WebDriverException:
            return True
    WebDriverWait(driver, 30).until(replaced)


def session_cookie(driver):
    return next((c for c in driver.get_cookies() if c["name"] == "fg_session"), None)


def download(driver, link_id, timeout=30):
    """Clicks the link and returns the path of the file it downloaded, once whole."""
    before = set(driver.downloads.iterdir())
    driver.find_element(By.ID, link_id).click()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [p for p in set(driver.downloads.iterdir()) - before if not p.name.endswith(".crdownload")]
        if new and new[0].stat().st_size > 0:
            time.sleep(0.2)  # the rename from .crdownload is the last step; let it settle
            return new[0]
        time.sleep(0.1)
    raise AssertionError(f"no download from #{link_id} within {timeout} s: {sorted(driver.downloads.iterdir())}; "
                         f"the browser shows {driver.current_url}: {driver.find_element(By.TAG_NAME, 'body').text[:500]}")
