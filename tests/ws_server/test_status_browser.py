"""The live status page (``--status-path``) in a real headless Chromium: its figures and charts move
as traffic is driven, over the page's WebSocket; a screenshot is kept under the test's tmp_path."""

from __future__ import annotations

import pytest
import requests

selenium = pytest.importorskip("selenium", reason="selenium is in the test extra")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402
from support.browser import headless_chromium, needs_chromium  # noqa: E402
from support.demo import DemoStarter  # noqa: E402

pytestmark = needs_chromium


@pytest.fixture
def start_demo(tmp_path):
    starter = DemoStarter(tmp_path)
    yield starter
    starter.stop_all()


@pytest.fixture
def browser():
    driver = headless_chromium("--window-size=1300,900")
    yield driver
    driver.quit()


def figure(browser, element_id: str) -> int:
    return int(browser.find_element(By.ID, element_id).text.replace(",", "") or 0)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_status_page_shows_traffic_live(start_demo, browser, tmp_path, workers):
    demo = start_demo("--no-access-log", "--status-path", "/status", "--workers", workers)
    base = f"http://127.0.0.1:{demo.port}"
    browser.get(base + "/status")
    wait = WebDriverWait(browser, 20)
    wait.until(lambda b: b.find_element(By.ID, "state").text.startswith("live"))
    frames = int(browser.find_element(By.TAG_NAME, "body").get_attribute("data-frames"))
    before = figure(browser, "requests")

    with requests.Session() as session:
        for _ in range(40):
            assert session.get(base + "/").status_code == 200
        for _ in range(3):
            assert session.get(base + "/missing").status_code == 404

    # The next frames (one a second) carry the new totals: every worker's, in a group.
    wait.until(lambda b: figure(b, "requests") >= before + 43)
    assert int(browser.find_element(By.TAG_NAME, "body").get_attribute("data-frames")) > frames
    assert browser.find_element(By.ID, "classes").text.split(" / ")[2] == "3"  # the 404s
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#workers tr")) == int(workers))
    wait.until(lambda b: float(b.find_element(By.ID, "rps").text) > 0
               or len(b.find_element(By.CSS_SELECTOR, "#chart-rps polyline").get_attribute("points").split()) > 1)
    points = browser.find_element(By.CSS_SELECTOR, "#chart-rps polyline").get_attribute("points").split()
    assert len(points) >= 1
    assert figure(browser, "connections") >= 1  # the page's own WebSocket
    path = tmp_path / f"status-{workers}-workers.png"
    assert browser.save_screenshot(str(path))
    assert path.stat().st_size > 1000
