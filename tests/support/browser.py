"""A real headless Chromium for the browser tests (Debian's chromium and chromium-driver, driven by Selenium).

``needs_chromium`` skips a test module when Chromium or its driver is not
installed (``.ci/run`` installs them); ``headless_chromium(*arguments)``
starts one browser with extra command-line switches.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Chromium and chromedriver (apt-get install chromium chromium-driver; .ci/run does)",
)


CERTUTIL = shutil.which("certutil")  # Debian's libnss3-tools

needs_certutil = pytest.mark.skipif(
    CERTUTIL is None, reason="needs certutil to give Chromium a trusted CA (apt-get install libnss3-tools; .ci/run does)"
)


def home_trusting(ca_pem: Path, home: Path) -> Path:
    """``home`` made a home directory whose NSS database trusts ``ca_pem`` for servers; returns ``home``.

    Chromium on Linux takes its trusted CAs from the system store and from
    ``$HOME/.pki/nssdb``: a browser started with this HOME verifies
    certificates the test CA issued as it would a public CA's.
    """
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True, exist_ok=True)
    assert CERTUTIL is not None
    subprocess.run([CERTUTIL, "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True, timeout=30)
    subprocess.run([CERTUTIL, "-A", "-d", f"sql:{nssdb}", "-n", "evloop test CA", "-t", "C,,", "-i", str(ca_pem)],
                   check=True, timeout=30)
    return home


def headless_chromium(*arguments: str, home: Path | None = None) -> Any:
    """A started headless Chromium (``--no-sandbox``, pages load within 20 s); ``quit()`` it when done.

    ``home``: the browser's HOME (see ``home_trusting``); the caller's otherwise.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", *arguments):
        options.add_argument(argument)
    env = None if home is None else {**os.environ, "HOME": str(home)}
    if home is not None:
        options.add_argument(f"--user-data-dir={home / 'profile'}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, env=env), options=options)
    driver.set_page_load_timeout(20)
    return driver
