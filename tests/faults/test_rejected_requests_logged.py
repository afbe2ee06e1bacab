"""Issue 15, item 5: every request that got a status, and every response cut short, has an access-log line.

The real ``evloop-demo`` with its default access log (on, to stderr, which the test
reads from the server's log file); the reason goes to ``evloop.server`` at info level.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from support.clients import connect, read_status_or_close, reset, wait_until

HERE = Path(__file__).resolve().parent

HOSTILE = [
    (400, b"GARBAGE\r\n\r\n", "GARBAGE"),
    (400, b'GET /"quoted" HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n', 'GET /\\x22quoted\\x22 HTTP/1.1'),
    (413, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9999999999\r\n\r\n", "POST /echo HTTP/1.1"),
    (417, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: teapot\r\n\r\n", "POST /echo HTTP/1.1"),
    (501, b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "POST /echo HTTP/1.1"),
    (505, b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", "GET / HTTP/2.0"),
    (414, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", "GET /aaaa"),
]


def _access_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if re.match(r'^\S+ - - \[', line)]


def test_refused_requests_get_access_log_lines_with_their_request_line(start_demo):
    server = start_demo()
    for status, data, _ in HOSTILE:
        with connect(server.port, timeout_s=5) as sock:
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert read_status_or_close(sock) == status

    def logged() -> bool:
        lines = _access_lines(server.log())
        return all(any(f'" {status} ' in line and f'"{expected}' in line for line in lines)
                   for status, _, expected in HOSTILE)

    wait_until(logged, 5, what="an access-log line for every refused request")
    log = server.log()
    assert log.count("INFO evloop.server: bad request from 127.0.0.1:") == len(HOSTILE)


def test_a_header_timeout_is_logged_with_the_partial_request_line(start_demo):
    server = start_demo("--header-timeout", "0.3")
    with connect(server.port, timeout_s=5) as sock:
        sock.sendall(b"GET /slowloris HTTP/1.1\r\nHost: t\r\n")
        assert read_status_or_close(sock) == 408
    wait_until(lambda: any('"GET /slowloris HTTP/1.1" 408 ' in line for line in _access_lines(server.log())), 5,
               what="the 408's access-log line")


def test_a_response_cut_short_by_the_client_is_logged_as_incomplete(start_demo):
    server = start_demo()
    sock = connect(server.port, timeout_s=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET /bytes/100000000 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
    reset(sock)  # the client goes away mid-body
    wait_until(lambda: any('"GET /bytes/100000000 HTTP/1.1" 200 ' in line and line.endswith(" incomplete")
                           for line in _access_lines(server.log())), 5, what="the cut-short line")
    assert "cut short after" in server.log()


def test_a_request_abandoned_in_the_app_is_logged_499(start_demo):
    server = start_demo()
    with connect(server.port, timeout_s=5) as sock:
        sock.sendall(b"GET /delay/5000 HTTP/1.1\r\nHost: t\r\n\r\n")  # then the client leaves
    wait_until(lambda: any('"GET /delay/5000 HTTP/1.1" 499 - ' in line and line.endswith(" incomplete")
                           for line in _access_lines(server.log())), 5, what="the 499 line")


@pytest.mark.parametrize("path", ["/body-sysexit"])
def test_a_body_that_failed_midway_is_logged_as_incomplete(start_demo, path):
    server = start_demo("--app", "fault_app:app", env={"PYTHONPATH": str(HERE)})
    with connect(server.port, timeout_s=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        assert read_status_or_close(sock) == 200
    wait_until(lambda: any(f'"GET {path} HTTP/1.1" 200 ' in line and line.endswith(" incomplete")
                           for line in _access_lines(server.log())), 5, what="the cut-short line")
