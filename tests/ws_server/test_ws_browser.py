"""The demo's chat page in a real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium).

Two pages open ``/ws/chat``; a message typed in one appears in the other.
Skipped only when Chromium or its driver is not installed (``.ci/run``
installs them).
"""

from __future__ import annotations

import pytest

selenium = pytest.importorskip("selenium", reason="selenium is in the test extra")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402
from support.browser import headless_chromium, needs_chromium  # noqa: E402
from support.demo import DemoServer  # noqa: E402

pytestmark = needs_chromium


@pytest.fixture
def demo(tmp_path):
    server = DemoServer(["--no-access-log"], tmp_path / "demo.log")
    yield server
    server.stop()


@pytest.fixture
def browser():
    driver = headless_chromium()
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
