"""Helpers for the reliability and fault suites: /proc figures, raw HTTP clients, waiting with deadlines."""

from __future__ import annotations

import os
import re
import socket
import struct
import time
from collections.abc import Callable

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


# --------------------------------------------------------------- /proc figures
def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (from /proc/PID/statm)."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE_SIZE


def fd_count(pid: int) -> int:
    """Open descriptors of ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time consumed by ``pid``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_until(predicate: Callable[[], object], timeout_s: float, interval_s: float = 0.02, what: str = "") -> object:
    """Poll ``predicate`` until it is true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")
        time.sleep(interval_s)


def error_lines(log: str) -> list[str]:
    """Log lines at ERROR or CRITICAL level, and tracebacks."""
    return [line for line in log.splitlines() if " ERROR " in line or " CRITICAL " in line or "Traceback" in line]


# ------------------------------------------------------------------ clients
def connect(port: int, timeout_s: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN (SO_LINGER with a zero timeout)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


class Responses:
    """Incremental parser of a stream of responses with Content-Length bodies."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.parsed: list[tuple[int, dict[str, str], bytes]] = []

    def feed(self, data: bytes) -> int:
        """Add bytes; returns how many complete responses were parsed by this call."""
        self.buf += data
        n = 0
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return n
            head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            status = int(head[0].split(" ", 2)[1])
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buf) < end + 4 + length:
                return n
            body = bytes(self.buf[end + 4:end + 4 + length])
            del self.buf[:end + 4 + length]
            self.parsed.append((status, headers, body))
            n += 1


def request(port: int, path: str = "/", *, method: str = "GET", timeout_s: float = 10.0,
            extra: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection (``Connection: close``); returns status, headers, body."""
    with connect(port, timeout_s) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n".encode() + extra + b"\r\n")
        return read_response(sock)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one Content-Length-framed response (or until the peer closes)."""
    parser = Responses()
    while not parser.parsed:
        data = sock.recv(65536)
        if not data:
            if parser.buf:
                match = _STATUS.match(parser.buf)
                if match:
                    return int(match.group(1)), {}, bytes(parser.buf)
            raise ConnectionError("closed before a complete response")
        parser.feed(data)
    return parser.parsed[0]


def read_status_or_close(sock: socket.socket) -> int | None:
    """The status of the response the server sent, or None if it closed (or reset) without one."""
    buf = b""
    try:
        while b"\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                break
            buf += data
    except (ConnectionResetError, BrokenPipeError):
        pass
    match = _STATUS.match(buf)
    return int(match.group(1)) if match else None



def wait_heads_received(server, n: int, timeout_s: float = 5.0) -> None:
    """Wait until a server started with ``--log-level debug`` has logged ``n`` request heads.

    A head is logged when it is parsed: the request is then in flight.
    """
    wait_until(lambda: server.log().count("request head from") >= n, timeout_s,
               what=f"the server to receive {n} request heads")


def sockets_in_state(port: int, state: str = "CLOSE_WAIT") -> int:
    """TCP sockets whose local port is ``port`` in ``state`` (from /proc/net/tcp and tcp6)."""
    codes = {"ESTABLISHED": "01", "CLOSE_WAIT": "08", "LAST_ACK": "09", "FIN_WAIT2": "05"}
    wanted = codes[state]
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if int(fields[1].rpartition(":")[2], 16) == port and fields[3] == wanted:
                        count += 1
        except FileNotFoundError:
            continue
    return count


def listening_port(pid: int) -> int | None:
    """The TCP port a socket of process ``pid`` listens on (a server started on port 0), or None yet.

    From /proc: the inodes of its sockets, found in /proc/net/tcp in state LISTEN.
    """
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                return int(fields[1].rpartition(":")[2], 16)
    return None
