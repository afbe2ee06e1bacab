"""A real headless Chromium for the browser tests (Debian's chromium and chromium-driver, driven by Selenium).

``needs_chromium`` skips a test module when Chromium or its driver is not
installed (``.ci/run`` installs them); ``headless_chromium(*arguments)``
starts one browser with extra command-line switches.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Chromium and chromedriver (apt-get install chromium chromium-driver; .ci/run does)",
)


def headless_chromium(*arguments: str) -> Any:
    """A started headless Chromium (``--no-sandbox``, pages load within 20 s); ``quit()`` it when done."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", *arguments):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    return driver
