"""A real Prometheus server (Debian's ``prometheus``) scrapes evloop-demo's ``--metrics-path`` every
second; its HTTP API then reports the target ``up`` and evloop's request counter.  Skipped when
Prometheus is not installed (``.ci/run`` installs it)."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import requests
from support.clients import listening_port
from support.demo import stop_process

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="needs Debian's prometheus (.ci/run installs it)")


def wait_for_listening_port(pid: int, timeout_s: float = 20.0) -> int:
    deadline = time.monotonic() + timeout_s
    while (port := listening_port(pid)) is None:
        assert time.monotonic() < deadline, f"prometheus (pid {pid}) did not listen within {timeout_s} s"
        time.sleep(0.1)  # Prometheus listens once its storage is open: nothing to wait on
    return port


def wait_until_ready(api: str, timeout_s: float = 30.0) -> None:
    """Prometheus answers its API with 503 between listening and loading its storage: ``/-/ready`` says when."""
    deadline = time.monotonic() + timeout_s
    while requests.get(f"{api}/-/ready", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, f"prometheus at {api} was not ready within {timeout_s} s"
        time.sleep(0.1)  # its readiness is only told by polling: nothing to wait on


def query(api: str, expression: str) -> list[dict]:
    response = requests.get(f"{api}/api/v1/query", params={"query": expression}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"]["result"]


def test_prometheus_scrapes_evloop(start_demo, tmp_path):
    demo = start_demo("--no-access-log", "--metrics-path", "/metrics")
    for _ in range(7):
        assert requests.get(f"http://127.0.0.1:{demo.port}/", timeout=10).status_code == 200
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: evloop\n    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{demo.port}']\n"
    )
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             "--web.listen-address=127.0.0.1:0"], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        api = f"http://127.0.0.1:{wait_for_listening_port(proc.pid)}"
        wait_until_ready(api)
        deadline = time.monotonic() + 40
        while True:
            up = query(api, 'up{job="evloop"}')
            served = query(api, 'sum(evloop_http_requests_total{job="evloop",method="GET",status="2xx"})')
            if up and up[0]["value"][1] == "1" and served and float(served[0]["value"][1]) >= 7:
                break
            assert time.monotonic() < deadline, (up, served, (tmp_path / "prometheus.log").read_text()[-3000:])
            time.sleep(0.5)  # the next scrape is due within a second: nothing to wait on
        lag = query(api, 'evloop_loop_lag_seconds{job="evloop"}')
        assert lag and float(lag[0]["value"][1]) >= 0
    finally:
        stop_process(proc)
        log.close()
