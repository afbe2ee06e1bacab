"""A short run of ``load/bench_udp.py``: it must keep working against the current datagram transport.

The script measures and never asserts figures; this run only checks that the
echo runs to the end for evloop and asyncio, every datagram answered, that the
table has its rows and ratios, and that the JSON result is written.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "load" / "bench_udp.py"


def test_bench_udp_quick_run_reports_both_loops(tmp_path):
    cmd = [sys.executable, str(SCRIPT), "--quick", "--rounds", "1", "--loops", "evloop,asyncio",
           "--results-dir", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    row = next((line for line in lines if line.startswith("datagrams echoed per server CPU-s")), None)
    assert row is not None, proc.stdout
    assert len(re.findall(r"\d[\d,.]*", row)) >= 3, row  # a figure for each loop, and the ratio
    assert "evloop/asyncio" in proc.stdout
    [result_file] = tmp_path.glob("bench_udp-*.json")
    result = json.loads(result_file.read_text())
    assert result["loops"] == ["evloop", "asyncio"]
    assert result["medians"]["echo_per_cpu_s"]["evloop"] > 0
    assert result["medians"]["echo_per_cpu_s"]["asyncio"] > 0
