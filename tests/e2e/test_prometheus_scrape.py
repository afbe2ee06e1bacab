"""A real Prometheus server (Debian's ``prometheus``) scrapes evloop-demo's ``--metrics-path`` every
second; its HTTP API then reports the target ``up`` and evloop's request counter.  Skipped when
Prometheus is not installed (``.ci/run`` installs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
import requests

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="needs Debian's prometheus (.ci/run installs it)")


def listening_port(pid: int, timeout_s: float = 20.0) -> int:
    """The TCP port ``pid`` listens on (it was started on port 0), from /proc: its sockets' inodes in /proc/net/tcp."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        with open("/proc/net/tcp") as table:
            for line in table.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    return int(fields[1].rpartition(":")[2], 16)
        time.sleep(0.1)  # Prometheus starts its web server after loading its storage: nothing to wait on
    raise AssertionError(f"prometheus (pid {pid}) did not listen within {timeout_s} s")


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
        api = f"http://127.0.0.1:{listening_port(proc.pid)}"
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
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
