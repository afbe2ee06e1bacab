"""A real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium) over HTTPS.

The server's certificate is from the test CA, and the browser runs with a
HOME whose NSS database trusts that CA (``support.browser.home_trusting``,
with Debian's ``certutil``): it verifies evloop's certificate as it would a
public one, with no switch that ignores certificate errors.  A browser
without that database refuses the same server (so the trust is what made the
difference).  Skipped only when Chromium, its driver or certutil is not
installed (``.ci/run`` installs them).
"""

from __future__ import annotations

import json

import pytest

selenium = pytest.importorskip("selenium", reason="selenium is in the test extra")
from selenium.webdriver.common.by import By  # noqa: E402
from support.browser import headless_chromium, home_trusting, needs_certutil, needs_chromium  # noqa: E402

pytestmark = [needs_chromium, needs_certutil]


@pytest.fixture
def browser(certs, tmp_path):
    driver = headless_chromium(home=home_trusting(certs.ca_file, tmp_path / "home"))
    yield driver
    driver.quit()


def test_chromium_loads_pages_over_https(start_demo, certs, browser):
    server = start_demo("--certfile", str(certs.cert_file), "--keyfile", str(certs.key_file))
    base = f"https://localhost:{server.port}"

    browser.get(f"{base}/")
    assert browser.find_element(By.TAG_NAME, "body").text == "Hello, World!"
    assert browser.execute_script("return location.protocol") == "https:"

    browser.get(f"{base}/inspect")
    seen = json.loads(browser.find_element(By.TAG_NAME, "body").text)
    assert seen["scheme"] == "https" and seen["path"] == "/inspect"
    user_agent = dict((name.lower(), value) for name, value in seen["headers"])["user-agent"]
    assert "Chrome" in user_agent


def test_chromium_without_the_ca_refuses_the_certificate(start_demo, certs, tmp_path):
    server = start_demo("--certfile", str(certs.cert_file), "--keyfile", str(certs.key_file))
    driver = headless_chromium(home=tmp_path / "plain-home")
    try:
        driver.get(f"https://localhost:{server.port}/")
        page = driver.page_source
        # Chromium shows its interstitial instead of the page: the certificate is not trusted.
        assert "Hello, World!" not in page
        assert "ERR_CERT_AUTHORITY_INVALID" in page or "Your connection is not private" in page
    finally:
        driver.quit()
