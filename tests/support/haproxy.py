"""A real HAProxy in front of evloop, for the suites: started on sockets bound to port 0, stopped by pid.

The front sockets are bound here (port 0) and inherited by HAProxy
(``bind fd@N``), so no port number is guessed; the stats socket tells when
its health checks pass.  The helpers of ``load/run_haproxy.py`` do the
reading of the stats.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "load"))
try:
    import run_haproxy
finally:
    sys.path.pop(0)

__all__ = ["HAProxy", "haproxy_path", "front_config"]

_CONFIG = """
global
    stats socket @@STATS@@ mode 600 level admin
defaults
    mode {mode}
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend front
    bind @@FRONT@@ {bind_options}
{front_extra}
    default_backend evloop
backend evloop
    option httpchk GET /healthz
    default-server check inter 300ms fastinter 100ms rise 1
    server evloop0 {server}
"""


def front_config(server: str, *, mode: str = "tcp", bind_options: str = "", front_extra: str = "") -> str:
    """A configuration for ``HAProxy``: one front, one backend server (``"HOST:PORT OPTIONS"``) checked on /healthz."""
    return _CONFIG.format(mode=mode, bind_options=bind_options, front_extra=front_extra, server=server)


def haproxy_path() -> str:
    """The haproxy binary, or the test is skipped (``bash .ci/run`` installs it)."""
    path = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if path is None:
        pytest.skip("haproxy is not installed (bash .ci/run installs it: apt-get install -y haproxy)")
    return path


class HAProxy:
    """``haproxy -db`` with ``config``, where ``@@FRONT@@`` becomes a front socket on ``front_host`` and
    ``@@STATS@@`` the stats socket; ``port`` is the front's.  Waits for ``backends_up`` servers of
    backend ``evloop`` to pass their checks.  A context manager; the log is ``log_path``.
    """

    def __init__(self, config: str, tmp_path: Path, *, front_host: str = "127.0.0.1", backends_up: int = 1) -> None:
        family = socket.AF_INET6 if ":" in front_host else socket.AF_INET
        front = socket.socket(family)
        front.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        front.bind((front_host, 0))
        front.listen(128)
        front.set_inheritable(True)
        self.host, self.port = front_host, front.getsockname()[1]
        self.stats = str(tmp_path / "haproxy.sock")
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(config.replace("@@FRONT@@", f"fd@{front.fileno()}").replace("@@STATS@@", self.stats))
        self.log_path = tmp_path / "haproxy.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([haproxy_path(), "-db", "-f", str(cfg)], stdout=self._log,
                                     stderr=subprocess.STDOUT, pass_fds=[front.fileno()])
        front.close()
        try:
            if backends_up:
                run_haproxy.wait_backends_up(self.stats, backends_up, timeout_s=20, proc=self.proc)
        except BaseException:
            self.stop()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> HAProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
