"""dnsmasq as a real name server for tests: its own hosts file and records, on a loopback port.

Its names (all under ``test``)::

    fromhosts.test   A 10.1.2.3, AAAA fd00::5   (from its hosts file)
    multi.test       A 10.1.2.4 and 10.1.2.5
    v4only.test      A 10.9.9.9                 (AAAA: NODATA)
    v6only.test      AAAA 2001:db8::6           (A: NODATA)
    loopback.test    A 127.0.0.1                (to connect to)
    alias.test       CNAME fromhosts.test
    alias2.test      CNAME alias.test
    anything else    NXDOMAIN

Every record has a TTL of 30 s.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .dns_wire import wire_name

HOSTS = "10.1.2.3 fromhosts.test\nfd00::5 fromhosts.test\n10.1.2.4 multi.test\n10.1.2.5 multi.test\n"
START_S = 10.0


def dnsmasq_path() -> str:
    path = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None)
    if path is None:
        pytest.skip("dnsmasq is not installed (bash .ci/run installs it: apt-get install -y dnsmasq-base)")
    return path


def _answers(port: int) -> bool:
    """Whether a DNS server answers on 127.0.0.1:port (one query, at most 0.2 s)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.settimeout(0.2)
        query = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + wire_name("v4only.test") + b"\x00\x01\x00\x01"
        try:
            probe.sendto(query, ("127.0.0.1", port))
            return probe.recv(512)[:2] == b"\x00\x07"
        except OSError:
            return False


@contextlib.contextmanager
def running_dnsmasq(directory: Path) -> Iterator[tuple[str, int]]:
    """Run dnsmasq (``--no-daemon``, never as a service) until the block ends; yields ``(host, port)``.

    dnsmasq cannot be given port 0, so a random port below Linux's ephemeral
    range is tried, and another when that one is taken (dnsmasq then exits at
    once).  As root it would switch to "nobody", who cannot read pytest's
    private directories, so it is told to stay root; unprivileged it runs as is.
    """
    path = dnsmasq_path()
    hosts = directory / "hosts"
    hosts.write_text(HOSTS)
    user = ["--user=root"] if os.geteuid() == 0 else []
    for _ in range(10):
        port = random.randrange(20000, 32000)
        proc = subprocess.Popen(
            [path, "--no-daemon", "--conf-file=/dev/null", "--pid-file=", *user, f"--port={port}",
             "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
             f"--addn-hosts={hosts}", "--local=/#/", "--local-ttl=30",
             "--host-record=v4only.test,10.9.9.9", "--host-record=v6only.test,2001:db8::6",
             "--host-record=loopback.test,127.0.0.1",
             "--cname=alias.test,fromhosts.test", "--cname=alias2.test,alias.test"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + START_S
            while proc.poll() is None and not _answers(port):
                assert time.monotonic() < deadline, f"dnsmasq did not answer within {START_S} s"
        except BaseException:
            proc.kill()
            proc.wait()
            proc.stderr.close()
            raise
        if proc.poll() is None:
            break
        stderr = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        assert "in use" in stderr, stderr
    else:
        pytest.fail("no free port for dnsmasq in 10 tries")
    try:
        yield ("127.0.0.1", port)
    finally:
        proc.terminate()
        proc.wait(timeout=START_S)
        proc.stderr.close()
