"""The demo's chat page in a real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium).

Two pages open ``/ws/chat``; a message typed in one appears in the other.
Skipped only when Chromium or its driver is not installed (``.ci/run``
installs them).
"""

from __future__ import annotations

import shutil

import pytest
from support.demo import DemoServer

selenium = pytest.importorskip("selenium", reason="selenium is in the test extra")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Chromium and chromedriver (apt-get install chromium chromium-driver; .ci/run does)",
)


@pytest.fixture
def demo(tmp_path):
    server = DemoServer(["--no-access-log"], tmp_path / "demo.log")
    yield server
    server.stop()


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def test_a_message_sent_from_one_chat_page_appears_in_the_other(demo, browser):
    url = f"http://127.0.0.1:{demo.port}/ws/chat"
    browser.get(url)
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(url)
    second = browser.current_window_handle
    wait = WebDriverWait(browser, 15)
    for handle in (first, second):
        browser.switch_to.window(handle)
        wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "status"), "connected"))

    browser.switch_to.window(first)
    browser.find_element(By.ID, "name").clear()
    browser.find_element(By.ID, "name").send_keys("alice")
    browser.find_element(By.ID, "text").send_keys("hello from the first page")
    browser.find_element(By.ID, "send").click()

    browser.switch_to.window(second)
    wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "log"),
                                                                 "alice: hello from the first page"))
    browser.switch_to.window(first)  # the sender sees its own message come back through the server
    wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "log"),
                                                                 "alice: hello from the first page"))
