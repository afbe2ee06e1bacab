"""A running ``evloop-demo`` for the end-to-end and reliability suites.

``DemoServer`` runs ``python -m evloop.demo`` on port 0 and reads the address
it reports; ``DemoStarter`` starts any number of them and stops them all.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["DemoServer", "DemoStarter", "stop_process", "wait_for_log"]

_URL = re.compile(r"serving on (https?://[^\s\"]+|unix:[^\s\"]+)")  # a JSON line ends it with a quote


class DemoServer:
    """A running ``python -m evloop.demo`` process; its log goes to a file."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None,
                 start_timeout_s: float = 20.0, command: list[str] | None = None, **popen_kwargs) -> None:
        """``command`` replaces ``python -m evloop.demo --port 0`` (an installed ``evloop-demo``, say)."""
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [*(command or [sys.executable, "-m", "evloop.demo", "--port", "0"]), *args],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, **popen_kwargs,
        )
        self.url = self._wait_for_url(start_timeout_s)
        if self.url.startswith(("http://", "https://")):
            hostport = self.url.partition("://")[2].rstrip("/")
            host, _, port = hostport.rpartition(":")
            self.host, self.port = host.strip("[]"), int(port)
        else:
            self.host, self.port = "", 0

    def _wait_for_url(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = _URL.search(self.log())
            if match:
                return match.group(1)
            if self.proc.poll() is not None:
                raise RuntimeError(f"evloop-demo exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.02)  # polling a log file: there is no event to wait on
        raise RuntimeError(f"evloop-demo did not report its URL in {timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout_s: float = 10.0) -> int:
        return self.proc.wait(timeout=timeout_s)

    def stop(self) -> int | None:
        stop_process(self.proc)
        self._log.close()
        return self.proc.returncode


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``proc`` if it runs, and wait for it; SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class DemoStarter:
    """``start(*args, **popen_kwargs)`` starts a demo server logging under ``log_dir``; ``stop_all()`` ends them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.servers: list[DemoServer] = []

    def __call__(self, *args: str, env: dict[str, str] | None = None, **popen_kwargs: Any) -> DemoServer:
        server = DemoServer(list(args), self.log_dir / f"demo-{len(self.servers)}.log", env=env, **popen_kwargs)
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


def wait_for_log(server: Any, pattern: str, timeout_s: float = 15.0, count: int = 1) -> list[re.Match[str]]:
    """Wait until ``server.log()`` matches ``pattern`` ``count`` times; returns the matches, or fails the test."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        matches = list(regex.finditer(server.log()))
        if len(matches) >= count:
            return matches
        time.sleep(0.02)  # polling a log file: there is no event to wait on
    raise AssertionError(f"no {count} x {pattern!r} in the log within {timeout_s} s:\n{server.log()[-4000:]}")
