"""A short locust run of the whole demo contract, through ``load/run_load.py``.

Locust and its gevent monkey-patching stay in subprocesses: this module only checks
that locust is installed (``find_spec`` does not import it) and runs the runner.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "load" / "run_load.py"
RUN_S = 10
MIN_REQUESTS = 300

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None,
    reason="locust is not installed (pip install -e '.[load]'); the load smoke run needs it",
)


def test_load_smoke_run_has_no_failures(tmp_path):
    summary_path = tmp_path / "summary.json"
    cmd = [
        sys.executable, str(RUNNER),
        "--users", "20", "--spawn-rate", "20", "--run-time", f"{RUN_S}s",
        # Generous bounds: this checks correctness under concurrency, not speed.
        "--max-p95-ms", "2000", "--min-rps", "20",
        "--results-dir", str(tmp_path / "results"),
        "--summary-json", str(summary_path),
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=RUN_S + 90)
    output = f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    assert summary_path.exists(), f"the runner wrote no summary (status {proc.returncode})\n{output}"
    summary = json.loads(summary_path.read_text())
    assert summary["failures"] == 0, output
    assert summary["requests"] >= MIN_REQUESTS, output
    assert summary["server_exit_status"] == 0, output
    assert proc.returncode == 0, output
    # Every user class got to run: the contract was exercised, not only GET /.
    names = {e["name"] for e in summary["endpoints"]}
    for expected in ("/", "/echo [POST]", "/stream/[n]", "/delay/[ms]", "/static/[file]",
                     "/static/[file] If-None-Match", "/ [close]"):
        assert expected in names, f"{expected} never ran; ran: {sorted(names)}"
