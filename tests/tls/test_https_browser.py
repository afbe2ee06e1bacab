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
import shutil

import pytest

selenium = pytest.importorskip("selenium", reason="selenium is in the test extra")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Chromium and chromedriver (apt-get install chromium chromium-driver; .ci/run does)",
)


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--ignore-certificate-errors"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
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
