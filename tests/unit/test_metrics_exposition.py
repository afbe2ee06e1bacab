"""``evloop.metrics`` (counts, fold, exposition) and the workers' shared table, without a server:
the text is read back with ``prometheus_client``'s parser."""

from __future__ import annotations

import os

import pytest

from evloop.metrics import RequestCounts, exposition, fold
from evloop.server.metrics import status_frame, union
from evloop.workers.metrics_table import MetricsTable

parser = pytest.importorskip("prometheus_client.parser", reason="prometheus_client is in the test extra")


def samples_of(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in parser.text_string_to_metric_families(text) for s in family.samples}


def snapshot(worker, pid, gets, connections, lag=0.001, history=()):
    counts = RequestCounts()
    for _ in range(gets):
        counts.response_done("GET", 200, 10, 0.002)
    counts.response_done("WEIRD", 503, 0, 20.0)  # past every bucket; an unknown method is "other"
    return {"worker": worker, "pid": pid, "counters": counts.counters(),
            "gauges": {"connections": connections, "loop_lag_s": lag, "started": 1.0}, "history": list(history)}


def test_exposition_reads_back_with_prometheus_client():
    found = samples_of(exposition(union([snapshot(None, 1, 3, {"idle": 2})])))
    assert found[("evloop_http_requests_total", (("method", "GET"), ("status", "2xx")))] == 3
    assert found[("evloop_http_requests_total", (("method", "other"), ("status", "5xx")))] == 1
    assert found[("evloop_http_request_duration_seconds_bucket", (("le", "0.0025"),))] == 3
    assert found[("evloop_http_request_duration_seconds_bucket", (("le", "10.0"),))] == 3
    assert found[("evloop_http_request_duration_seconds_bucket", (("le", "+Inf"),))] == 4
    assert found[("evloop_http_request_duration_seconds_count", ())] == 4
    assert found[("evloop_http_sent_body_bytes_total", ())] == 30
    assert found[("evloop_connections", (("state", "idle"),))] == 2


def test_a_slot_is_its_retired_workers_and_its_live_ones():
    retired = {"worker": 0, "counters": {}}
    fold(retired["counters"], snapshot(0, 10, 5, {})["counters"])
    live = [snapshot(0, 11, 2, {"idle": 1}, lag=0.004), snapshot(0, 12, 1, {"new": 1}, lag=0.002),
            snapshot(1, 13, 4, {"idle": 3})]
    found = samples_of(exposition(union([retired, *live])))
    assert found[("evloop_http_requests_total", (("method", "GET"), ("status", "2xx"), ("worker", "0")))] == 8
    assert found[("evloop_http_requests_total", (("method", "GET"), ("status", "2xx"), ("worker", "1")))] == 4
    assert found[("evloop_connections", (("state", "idle"), ("worker", "0")))] == 1
    assert found[("evloop_connections", (("state", "new"), ("worker", "0")))] == 1
    assert found[("evloop_loop_lag_seconds", (("worker", "0"),))] == 0.004  # the worst, not a sum


def test_status_frame_sums_the_workers_seconds():
    row = [100, 5, 0, 5, 0, 0, 0, 50, 60, 1, 2.0]
    frame = status_frame([snapshot(0, 1, 5, {"idle": 1}, history=[row]),
                          snapshot(1, 2, 5, {}, lag=0.003, history=[[100, 7, 0, 7, 0, 0, 0, 1, 2, 3, 5.0]])])
    assert [r["requests"] for r in frame["workers"]] == [6, 6]
    assert frame["history"] == [[100, 12, 0, 12, 0, 0, 0, 51, 62, 4, 5.0]]


def test_the_table_is_shared_with_a_forked_process_and_folds_a_retired_one():
    table = MetricsTable(regions=4, region_bytes=4096)
    try:
        region = table.allocate()
        pid = os.fork()
        if pid == 0:
            try:
                table.write(region, snapshot(1, os.getpid(), 3, {"idle": 1}))
            finally:
                os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        (seen,) = table.snapshots()
        assert seen["pid"] == pid
        table.retire(region, 1)
        (retired,) = table.snapshots()
        assert "gauges" not in retired and retired["counters"]["requests"]["GET 2xx"] == 3
        assert not table.write(2, {"too big": "x" * 5000})  # refused, not written past its region
        assert table.read(2) is None
    finally:
        table.close()
