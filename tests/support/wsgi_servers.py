"""Servers run from an application's own folder: ``evloop-demo --wsgi`` and gunicorn side by side.

``serve_wsgi(folder, *args)`` starts ``evloop-demo`` with ``folder`` as its
current directory and ``PYTHONSAFEPATH`` set, so that nothing but evloop's own
loading puts the folder on ``sys.path`` (as when a console script is run;
``python -m`` would add it itself).  ``gunicorn(folder, spec)`` starts
gunicorn on port 0 in the same folder (fixtures in ``tests/wsgi/conftest.py``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import evloop

from .demo import stop_process

__all__ = ["REPO", "Gunicorn", "app_env", "run_demo"]

REPO = str(Path(evloop.__file__).resolve().parent.parent)


def app_env(**extra: str) -> dict[str, str]:
    """The environment of a server run from an app's folder: this checkout's evloop, no cwd added by Python."""
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": REPO + (os.pathsep + path if path else ""), "PYTHONSAFEPATH": "1",
            **extra}


def run_demo(folder: Path, *args: str, timeout_s: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run ``evloop-demo`` in ``folder`` to its end (for start-up failures): its status and output."""
    return subprocess.run(
        [sys.executable, "-m", "evloop.demo", "--port", "0", *args], cwd=folder, env={**os.environ, **app_env()},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s,
    )


class Gunicorn:
    """``python -m gunicorn`` on 127.0.0.1, port 0, in ``folder``; ``url`` once it listens."""

    _URL = re.compile(r"Listening at: (http://\S+)")

    def __init__(self, folder: Path, spec: str, log_path: Path, *args: str) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-b", "127.0.0.1:0", "-w", "1", "--graceful-timeout", "2",
             *args, spec],
            cwd=folder, env={**os.environ, **app_env()}, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            match = self._URL.search(log_path.read_text(errors="replace"))
            if match:
                self.url = match.group(1)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)  # polling a log file: there is no event to wait on
        raise RuntimeError(f"gunicorn did not start:\n{log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()
