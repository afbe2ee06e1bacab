"""Short runs of the in-process benchmark scripts in ``load/``: they must keep working.

They measure and never assert figures; these runs only check that each one
drives the real server code to the end and prints its report.
"""

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
