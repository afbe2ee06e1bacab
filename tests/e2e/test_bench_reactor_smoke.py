"""A short run of ``load/bench_reactor.py``: it must keep working against the current reactor.

The script measures and never asserts figures; this run only checks that every
scenario runs to the end for evloop and asyncio, that the table has its rows
and ratios, and that the JSON result is written.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "load" / "bench_reactor.py"

ROWS = [
    "timers: schedule+cancel+pass, ns/timer",
    "timers: peak bytes/timer",
    "timers: bytes retained after cancel+pass",
    "call_soon: callbacks per CPU-second",
    "call_soon_threadsafe wake-up: median us",
    "call_soon_threadsafe wake-up: p99 us",
    "TCP echo: round-trips per server CPU-s",
]


def test_bench_reactor_quick_run_reports_every_row(tmp_path):
    cmd = [sys.executable, str(SCRIPT), "--quick", "--rounds", "1", "--loops", "evloop,asyncio",
           "--results-dir", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert any("evloop/asyncio" in line for line in lines), proc.stdout
    for label in ROWS:
        row = next((line for line in lines if line.startswith(label)), None)
        assert row is not None, f"no row {label!r}:\n{proc.stdout}"
        assert "n/a" not in row, row
        assert len(re.findall(r"\d[\d,.]*", row[len(label):])) >= 2, row  # a figure for each loop
    [result_file] = tmp_path.glob("bench_reactor-*.json")
    result = json.loads(result_file.read_text())
    assert result["loops"] == ["evloop", "asyncio"]
    assert result["medians"]["echo_per_cpu_s"]["evloop"] > 0
    assert result["medians"]["echo_per_cpu_s"]["asyncio"] > 0
