"""Short runs of the in-process benchmark scripts in ``load/``: they must keep working.

They measure and never assert figures; these runs only check that each one
drives the real server code to the end and prints its report.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LOAD = Path(__file__).resolve().parents[2] / "load"


def run_script(*args: str, timeout_s: float = 120) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=LOAD.parent, capture_output=True, text=True,
                          timeout=timeout_s)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_bench_glue_reports_each_case():
    out = run_script(str(LOAD / "bench_glue.py"), "3200")
    assert len(re.findall(r"\d+\.\d+ us/request", out)) == 3, out


def test_bench_parser_reports_each_case():
    out = run_script(str(LOAD / "bench_parser.py"), "200")
    assert len(re.findall(r" us +[\d,]+ req/s", out)) == 9, out
    assert "faster" in out


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed (.ci/run installs it)")
def test_bench_instructions_counts_a_case():
    out = run_script(str(LOAD / "bench_instructions.py"), "--reads", "50", "150", "pipelined")
    count = int(re.search(r"pipelined\s+([\d,]+)", out).group(1).replace(",", ""))
    assert 1_000 < count < 1_000_000, out  # instructions per request: a real count, not a parse accident


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed (.ci/run installs it)")
def test_bench_instructions_counts_a_wsgi_case():
    # The raw WSGI peer app (load/bench/peers/wsgi_app.py) through WSGIApp.
    out = run_script(str(LOAD / "bench_instructions.py"), "--reads", "20", "60", "wsgi-pipelined")
    count = int(re.search(r"wsgi-pipelined\s+([\d,]+)", out).group(1).replace(",", ""))
    assert 1_000 < count < 1_000_000, out


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed (.ci/run installs it)")
def test_bench_instructions_counts_a_close_case():
    # A connection a request: a protocol made, served and closed each time.
    out = run_script(str(LOAD / "bench_instructions.py"), "--reads", "10", "30", "wsgi-close")
    count = int(re.search(r"wsgi-close\s+([\d,]+)", out).group(1).replace(",", ""))
    assert 1_000 < count < 1_000_000, out


def test_bench_run_compares_evloop_variants_and_a_revision(tmp_path):
    """load/bench/run.py with the servers that need no bench venv: evloop as deployed (access
    log to a file), evloop --no-access-log, the raw WSGI app under evloop-demo --wsgi, and
    evloop from a git revision, side by side.

    No peer package is needed (the venv given does not exist), and wrk only if installed:
    without it, the one scenario is the delay scenario, whose client is in Python.
    """
    scenarios = "hello,delay1000" if shutil.which("wrk") else "delay1000"
    out = run_script(str(LOAD / "bench" / "run.py"), "--no-setup", "--venv", str(tmp_path / "absent"),
                     "--results-dir", str(tmp_path), "--rounds", "1", "--duration", "1", "--warmup", "0",
                     "--delay-conns", "20", "--servers", "evloop,evloop-nolog,evloop-wsgi", "--evloop-rev", "HEAD",
                     "--scenarios", scenarios)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=LOAD.parent, capture_output=True,
                          text=True, check=True).stdout.strip()
    servers = ["evloop", "evloop-nolog", "evloop-wsgi", f"evloop@{head}", f"evloop-nolog@{head}"]
    for server in servers:
        assert re.search(rf"^\| {re.escape(server)} \|", out, re.M), out
    assert "failed:" not in out, out
    assert f"| evloop / evloop@{head} |" in out, out  # the before/after pair
    [raw] = tmp_path.glob("bench-*[0-9].json")
    results = json.loads(raw.read_text())
    for scenario in scenarios.split(","):
        for server in servers:
            [run] = results[scenario][server]
            assert "error" not in run, run
            # The access log is on, and written to its file, for the default variants only.
            logged = run.get("log_lines", 0)
            assert (logged >= 20) if "nolog" not in server else (logged == 0), (server, run)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (.ci/run installs it)")
def test_bench_run_real_traffic_scenarios(tmp_path):
    """The scenarios of real traffic: browser-sized heads new on every request, static files of
    1 MiB and 2 KiB, a revalidation answered 304 and latency at a fixed rate, for evloop as deployed
    (access log on) and, when installed, nginx with its access log on (the anchor)."""
    scenarios = ["browser-unique", "static-1m", "static-small", "static-304", "latency-rate"]
    servers = ["evloop"] + (["nginx-log"] if shutil.which("nginx") else [])
    out = run_script(str(LOAD / "bench" / "run.py"), "--no-setup", "--venv", str(tmp_path / "absent"),
                     "--results-dir", str(tmp_path), "--rounds", "1", "--duration", "1", "--warmup", "0",
                     "--latency-rate", "500", "--servers", ",".join(servers), "--scenarios", ",".join(scenarios))
    assert "failed:" not in out, out
    assert "| p99.9 ms |" in out, out
    [raw] = tmp_path.glob("bench-*[0-9].json")
    results = json.loads(raw.read_text())
    for scenario in scenarios:
        for server in servers:
            [run] = results[scenario][server]
            assert "error" not in run and run["errors"] == 0, (scenario, server, run)
            assert run["log_lines"] > 20, (scenario, server, run)  # one line a request, in its file
    for server in servers:
        rate = results["latency-rate"][server][0]
        assert rate["rate"] < 600 and rate["p999_ms"] >= rate["p99_ms"] >= rate["p50_ms"] > 0, rate


def test_server_memory_growth_and_idle():
    """load/server_memory.py: RSS across distinct browser-like requests, and per idle connection."""
    out = run_script(str(LOAD / "server_memory.py"), "growth", "--requests", "3000", "--first", "1000",
                     "--every", "2000", "--venv", "/nonexistent")
    assert len(re.findall(r"^RSS after +[\d,]+ requests: +[\d,]+ KiB$", out, re.M)) == 3, out
    assert "3,000 requests in" in out and ", 0 not 200" in out, out
    assert re.search(r"^RSS after 3,000 requests against after 1,000: [+-][\d,]+ KiB", out, re.M), out
    assert re.search(r"^evloop wrote [\d,]+ lines", out, re.M), out  # its access log, on as deployed
    out = run_script(str(LOAD / "server_memory.py"), "idle", "--conns", "50", "--venv", "/nonexistent")
    assert "open keep-alive connections: 50 of 50" in out, out
    assert re.search(r"^per connection: [\d.]+ KiB", out, re.M), out


def test_bench_ws_glue_reports_each_size():
    out = run_script(str(LOAD / "bench_ws_glue.py"), "--quick")
    # The glue is a difference of two timings: on a loaded machine it can come out below zero.
    assert len(re.findall(r"glue -?\d+\.\d+ us a message", out)) == 2, out


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is missing")
def test_bench_ws_measures_evloop():
    """load/bench_ws.py with evloop alone on this interpreter (the peers need the bench venv)."""
    out = run_script(str(LOAD / "bench_ws.py"), "--python", sys.executable, "--servers", "evloop", "--rounds", "1",
                     "--duration", "0.5", "--warmup", "0.2", "--scenarios", "16B-x16")
    assert re.search(r"^\| 16B-x16 \| [\d,]+ \([\d,]+/s\) \|$", out, re.M), out


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is missing (.ci/run installs it)")
def test_bench_floor_reports_both_floors():
    """load/bench/floor.py: evloop-demo beside its two floors (evloop's reactor, and the bare selectors loop)."""
    out = run_script(str(LOAD / "bench" / "floor.py"), "--duration", "1", "--rounds", "1", "--scenarios", "hello")
    for server in ("floor", "floor-selectors", "evloop"):
        assert re.search(rf"^hello +{server} +[\d,]+ +[\d.]+ +[\d.]+x", out, re.M), out
    assert re.search(r"^hello +floor-selectors +[\d.]+x  [\d.]+$", out, re.M), out  # the rounds' own ratios


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the run makes its certificates with openssl")
def test_bench_run_tls_scenarios(tmp_path):
    """The TLS scenarios with evloop over HTTPS (certificates made by the run): idle memory, and
    keep-alive and full handshakes when wrk and openssl s_time are there."""
    scenarios = "tls-idle-memory,tls-handshake" + (",tls-hello" if shutil.which("wrk") else "")
    out = run_script(str(LOAD / "bench" / "run.py"), "--no-setup", "--venv", str(tmp_path / "absent"),
                     "--results-dir", str(tmp_path), "--rounds", "1", "--duration", "1", "--warmup", "0",
                     "--idle-conns", "20", "--servers", "evloop-nolog", "--scenarios", scenarios)
    assert "failed:" not in out, out
    [raw] = tmp_path.glob("bench-*[0-9].json")
    results = json.loads(raw.read_text())
    for scenario in scenarios.split(","):
        [run] = results[scenario]["evloop-nolog"]
        assert "error" not in run and run["errors"] == 0, (scenario, run)
    assert results["tls-idle-memory"]["evloop-nolog"][0]["open"] == 20


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed (.ci/run installs it)")
def test_server_instructions_counts_a_case():
    out = run_script(str(LOAD / "server_instructions.py"), "--counts", "16", "48", "pipelined", timeout_s=240)
    count = int(re.search(r"([\d,]+) instructions a request", out).group(1).replace(",", ""))
    assert 1_000 < count < 1_000_000, out  # a real count, not a parse accident


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed (.ci/run installs it)")
def test_server_instructions_counts_a_wsgi_case():
    # evloop-demo --wsgi on the raw WSGI peer app, 4 KiB echoes on one connection.
    out = run_script(str(LOAD / "server_instructions.py"), "--counts", "4", "12", "wsgi-echo4k", "--",
                     "--no-access-log", timeout_s=240)
    count = int(re.search(r"([\d,]+) instructions a request", out).group(1).replace(",", ""))
    assert 1_000 < count < 10_000_000, out
