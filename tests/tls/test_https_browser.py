"""A real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium) over HTTPS.

The server's certificate is from the test CA, which this Chromium cannot be
told to trust without an NSS database of its own; it runs with
``--ignore-certificate-errors`` instead, so what is checked is that the
browser completes a TLS handshake with evloop, loads the pages, and that the
app saw ``https``.  Skipped only when Chromium or its driver is not installed
(``.ci/run`` installs them).
"""

from __future__ import annotations

import json

import pytest

selenium = pytest.importorskip("selenium", reason="selenium is in the test extra")
from selenium.webdriver.common.by import By  # noqa: E402
from support.browser import headless_chromium, needs_chromium  # noqa: E402

pytestmark = needs_chromium


@pytest.fixture
def browser():
    driver = headless_chromium("--ignore-certificate-errors")
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
