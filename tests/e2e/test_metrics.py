"""``--metrics-path`` and ``--metrics-bind``: the Prometheus text of a real evloop-demo, read by
``prometheus_client``'s own parser, moving as traffic is driven over real sockets; with
``--workers``, one scrape sees every worker, and a replaced worker's counts are kept."""

from __future__ import annotations

import re
import signal
import socket
import time

import pytest
import requests
from support.demo import wait_for_log

parser = pytest.importorskip("prometheus_client.parser", reason="prometheus_client is in the test extra")


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition at ``url``: (name, sorted labels) -> value."""
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in parser.text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (over workers, say)."""
    return sum(value for (sample, have), value in samples.items()
               if sample == name and all((k, v) in have for k, v in labels.items()))


def scrape_until(url: str, condition, timeout_s: float = 10.0):
    """Scrape until ``condition(samples)`` (a group's other workers publish once a second)."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = scrape(url)
        if condition(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout_s} s: {sorted(samples.items())}")
        time.sleep(0.2)  # the workers' figures are published once a second: nothing to wait on


def test_counts_move_with_traffic(start_demo):
    demo = start_demo("--no-access-log", "--metrics-path", "/metrics", "--header-timeout", "0.5")
    base = f"http://127.0.0.1:{demo.port}"
    before = scrape(base + "/metrics")
    assert total(before, "evloop_http_requests_total", method="GET", status="2xx") == 0
    with requests.Session() as session:
        for _ in range(5):
            assert session.get(base + "/").status_code == 200
        assert session.post(base + "/echo", data=b"x" * 1000).status_code == 200
        assert session.get(base + "/missing").status_code == 404
        assert session.head(base + "/").status_code == 200
        assert session.request("BREW", base + "/").status_code == 405
    # A head that never ends: the header timeout answers 408 and counts it.
    with socket.create_connection(("127.0.0.1", demo.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 408")

    after = scrape(base + "/metrics")
    # The scrape before this one is counted too: 6 GETs of 2xx.
    assert total(after, "evloop_http_requests_total", method="GET", status="2xx") == 6
    assert total(after, "evloop_http_requests_total", method="POST", status="2xx") == 1
    assert total(after, "evloop_http_requests_total", method="GET", status="4xx") == 1
    assert total(after, "evloop_http_requests_total", method="HEAD", status="2xx") == 1
    # BREW's 405, and the 408 (a head never parsed has no method): "other".
    assert total(after, "evloop_http_requests_total", method="other", status="4xx") == 2
    assert total(after, "evloop_http_requests_total", status="4xx") == 3
    assert total(after, "evloop_timeouts_total", kind="header") == 1
    count = total(after, "evloop_http_request_duration_seconds_count")
    assert count == total(after, "evloop_http_request_duration_seconds_bucket", le="+Inf") == 11
    assert total(after, "evloop_http_received_bytes_total") > 1000
    assert total(after, "evloop_http_sent_body_bytes_total") >= 1000 + 5 * len(b"Hello, World!")
    assert total(after, "evloop_connections_accepted_total") >= 3
    assert total(after, "evloop_connections", state="in_app") == 1  # the scrape itself
    assert ("evloop_loop_lag_seconds", ()) in after
    assert ("evloop_loop_passes_total", ()) in after  # sampled once a second
    assert all(("worker", "0") not in labels for _, labels in after)  # a lone process: no worker label


def test_websocket_connections_are_counted_by_phase(start_demo):
    websockets = pytest.importorskip("websockets.sync.client")
    demo = start_demo("--no-access-log", "--metrics-path", "/metrics")
    url = f"http://127.0.0.1:{demo.port}/metrics"
    with websockets.connect(f"ws://127.0.0.1:{demo.port}/ws/echo") as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "hi"
        samples = scrape(url)
        assert total(samples, "evloop_connections", state="websocket") == 1
        assert total(samples, "evloop_websocket_connections_total") == 1
        assert total(samples, "evloop_http_requests_total", method="GET", status="1xx") == 1
    samples = scrape_until(url, lambda s: total(s, "evloop_connections", state="websocket") == 0)


def test_off_by_default_and_a_separate_bind(start_demo):
    demo = start_demo("--no-access-log")
    assert requests.get(f"http://127.0.0.1:{demo.port}/metrics", timeout=10).status_code == 404

    demo = start_demo("--no-access-log", "--metrics-bind", "127.0.0.1:0")
    (match,) = wait_for_log(demo, r"metrics and status on (http://\S+)")
    metrics_url = match.group(1) + "/metrics"
    assert requests.get(f"http://127.0.0.1:{demo.port}/").status_code == 200
    assert requests.get(f"http://127.0.0.1:{demo.port}/metrics").status_code == 404  # not on the main bind
    samples = scrape(metrics_url)
    assert total(samples, "evloop_http_requests_total", status="4xx") == 1  # the main bind's 404
    assert total(samples, "evloop_http_requests_total", method="GET", status="2xx") == 1  # not the scrapes
    assert requests.get(match.group(1) + "/other").status_code == 404


def test_workers_one_scrape_sees_every_worker_and_keeps_a_replaced_ones_counts(start_demo):
    demo = start_demo("--no-access-log", "--workers", "2", "--metrics-bind", "127.0.0.1:0")
    (match,) = wait_for_log(demo, r"metrics and status on (http://\S+)")
    url = match.group(1) + "/metrics"
    served_by: set[int] = set()
    sent = 0
    while len(served_by) < 2 and sent < 400:  # SO_REUSEPORT spreads new connections over both workers
        response = requests.get(f"http://127.0.0.1:{demo.port}/inspect", timeout=10)
        served_by.add(response.json()["worker"]["id"])
        sent += 1
    assert served_by == {0, 1}

    def counted(samples, at_least: int) -> bool:
        return total(samples, "evloop_http_requests_total", method="GET", status="2xx") >= at_least

    samples = scrape_until(url, lambda s: counted(s, sent))
    assert total(samples, "evloop_http_requests_total", method="GET", status="2xx") == sent
    for worker in ("0", "1"):
        assert total(samples, "evloop_http_requests_total", worker=worker) > 0
        assert ("evloop_loop_lag_seconds", (("worker", worker),)) in samples

    # SIGHUP replaces both workers: their slots' counters go on from where they were.
    demo.signal(signal.SIGHUP)
    wait_for_log(demo, r"worker \d \(pid \d+\) exited", count=2)
    samples = scrape_until(url, lambda s: len({labels for name, labels in s
                                                if name == "evloop_loop_lag_seconds"}) == 2)
    assert total(samples, "evloop_http_requests_total", method="GET", status="2xx") == sent
    pids = re.findall(r"started worker \d \(pid (\d+)\)", demo.log())
    assert len(set(pids)) == 4


def test_workers_on_the_main_bind(start_demo):
    demo = start_demo("--no-access-log", "--workers", "2", "--metrics-path", "/metrics")
    url = f"http://127.0.0.1:{demo.port}/metrics"
    # Whichever worker answers shows both: each scrape is a GET 2xx of one of them.
    samples = scrape_until(url, lambda s: len({labels for name, labels in s
                                                if name == "evloop_loop_lag_seconds"}) == 2)
    assert {dict(labels)["worker"] for name, labels in samples if name == "evloop_connections"} <= {"0", "1"}


def test_websocket_timeouts_are_counted(start_demo):
    websockets = pytest.importorskip("websockets.sync.client")
    from websockets.exceptions import ConnectionClosed

    demo = start_demo("--no-access-log", "--metrics-path", "/metrics", "--ws-idle-timeout", "0.3",
                      "--ws-ping-interval", "0")  # no pings: a Pong would count as activity
    with websockets.connect(f"ws://127.0.0.1:{demo.port}/ws/echo") as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)  # nothing sent: the server closes it (1000, idle timeout)
    samples = scrape(f"http://127.0.0.1:{demo.port}/metrics")
    assert total(samples, "evloop_timeouts_total", kind="ws_idle") == 1


def test_bad_paths_are_usage_errors():
    import subprocess
    import sys

    for args, message in ((["--metrics-path", "metrics"], "expected a URL path starting with '/'"),
                          (["--status-path", "/s", "--metrics-path", "/s"], "must differ"),
                          (["--metrics-bind", "127.0.0.1:70000"], "70000")):
        done = subprocess.run([sys.executable, "-m", "evloop.demo", "--port", "0", *args], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr
    shown = subprocess.run([sys.executable, "-m", "evloop.demo", "--metrics-bind", "127.0.0.1:9100",
                            "--status-path", "/status", "--print-config"], capture_output=True, text=True, timeout=30)
    assert 'metrics-bind = "127.0.0.1:9100"  # command line' in shown.stdout
    assert 'status-path = "/status"  # command line' in shown.stdout


def test_the_supervisor_serves_the_status_feed_at_the_metrics_bind(start_demo):
    import json

    websockets = pytest.importorskip("websockets.sync.client")
    demo = start_demo("--no-access-log", "--workers", "2", "--metrics-bind", "127.0.0.1:0", "--status-path", "/s")
    (match,) = wait_for_log(demo, r"metrics and status on http://(\S+)")
    assert "evloop status" in requests.get(f"http://{match.group(1)}/s", timeout=10).text
    for _ in range(5):
        assert requests.get(f"http://127.0.0.1:{demo.port}/", timeout=10).status_code == 200
    with websockets.connect(f"ws://{match.group(1)}/s") as ws:
        deadline = time.monotonic() + 15
        while True:  # a frame a second; the workers publish once a second
            frame = json.loads(ws.recv(timeout=10))
            if len(frame["workers"]) == 2 and sum(row["requests"] for row in frame["workers"]) == 5:
                break
            assert time.monotonic() < deadline, frame
    assert sorted(row["worker"] for row in frame["workers"]) == [0, 1]
