"""Keep-alive, pipelining, 100-continue, half-close, timeouts and errors over raw sockets."""

from __future__ import annotations

import selectors
import signal
import socket
import time

import pytest
import requests
from support.raw_http import read_until_close


def read_response(sock: socket.socket, buf: bytearray, timeout_s: float = 5.0) -> tuple[bytes, dict, bytes]:
    """Read one Content-Length-framed response from ``sock``; leftover bytes stay in ``buf``."""
    sock.settimeout(timeout_s)
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise EOFError(bytes(buf))
        buf += data
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode()] = value.strip().decode()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            raise EOFError(rest)
        rest += data
    buf[:] = rest[length:]
    return lines[0], headers, rest[:length]


def test_keep_alive_serves_many_requests_on_one_connection(demo):
    with socket.create_connection((demo.host, demo.port), timeout=5) as s:
        buf = bytearray()
        for _ in range(50):
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = read_response(s, buf)
            assert status == b"HTTP/1.1 200 OK" and body == b"Hello, World!"
            assert headers.get("connection", "") != "close"


def test_pipelined_requests_answered_in_order(demo):
    reqs = []
    for i in range(100):
        if i % 3 == 0:
            body = b"body-%d" % i
            reqs.append(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        elif i % 3 == 1:
            reqs.append(b"GET /inspect?i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        else:
            reqs.append(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with socket.create_connection((demo.host, demo.port), timeout=5) as s:
        s.sendall(b"".join(reqs))
        buf = bytearray()
        for i in range(100):
            status, _, body = read_response(s, buf)
            assert status.startswith(b"HTTP/1.1 200")
            if i % 3 == 0:
                assert body == b"body-%d" % i
            elif i % 3 == 1:
                assert b'"query":"i=%d"' % i in body
            else:
                assert body == b"Hello, World!"


def test_pipelined_burst_of_10000(demo):
    n = 10_000
    with socket.create_connection((demo.host, demo.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * n)
        buf = bytearray()
        for _ in range(n):
            status, _, body = read_response(s, buf, timeout_s=10)
            assert body == b"Hello, World!"


def test_http10_closes_unless_keep_alive(demo):
    with socket.create_connection((demo.host, demo.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = read_until_close(s)
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"Hello, World!")
    with socket.create_connection((demo.host, demo.port), timeout=5) as s:
        buf = bytearray()
        for _ in range(3):
            s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, body = read_response(s, buf)
            assert headers["connection"].lower() == "keep-alive"


def test_connection_close_is_honoured(demo):
    with socket.create_connection((demo.host, demo.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until_close(s)
    assert data.count(b"HTTP/1.1 200") == 1
    assert b"connection: close" in data.lower()


def test_expect_100_continue_accepted(demo):
    with socket.create_connection((demo.host, demo.port), timeout=5) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = s.recv(100)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        s.sendall(b"hello")
        buf = bytearray(interim.partition(b"\r\n\r\n")[2])
        status, _, body = read_response(s, buf)
        assert status.startswith(b"HTTP/1.1 200") and body == b"hello"


def test_expect_100_continue_refused_gets_final_status_without_100(demo):
    with socket.create_connection((demo.host, demo.port), timeout=5) as s:
        s.sendall(b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        buf = bytearray()
        status, _, _ = read_response(s, buf)
        assert status.startswith(b"HTTP/1.1 404")
    with socket.create_connection((demo.host, demo.port), timeout=5) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999999\r\nExpect: 100-continue\r\n\r\n")
        data = read_until_close(s)
        assert data.startswith(b"HTTP/1.1 413")
        assert b"100 Continue" not in data


def test_half_close_still_gets_response(demo):
    with socket.create_connection((demo.host, demo.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        data = read_until_close(s)
    assert data.count(b"HTTP/1.1 200") == 2
    assert data.endswith(b"ok")


@pytest.mark.parametrize(
    "raw, status",
    [
        (b"GET / HTTP/1.1\r\n\r\n", 400),                                        # RFC 9112 3.2: Host required
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),                   # 3.2: exactly one Host
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),                              # RFC 9110 2.5
        (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),                             # 3: one SP
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),                             # 5.1: space before colon
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),                # 5.2: obs-fold
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),  # 6.3 smuggling
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),       # 6.3
        # 6.3: final coding not chunked -> 400 (a MUST; it wins over 6.1's SHOULD-501 for unknown codings)
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),  # 6.1 unknown
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400),  # 7.1
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Big: " + b"b" * 70000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(150)) + b"\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400),                  # NUL in a value
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n", 400),  # TLS to a plain port
    ],
)
def test_malformed_requests_get_status_and_close(demo, raw, status):
    with socket.create_connection((demo.host, demo.port), timeout=5) as s:
        s.sendall(raw)
        data = read_until_close(s)
    assert data.startswith(b"HTTP/1.1 %d " % status), data[:200]
    head = data.partition(b"\r\n\r\n")[0].lower()
    assert b"connection: close" in head
    # The server is still fine for everybody else.
    assert requests.get(demo.url + "/", timeout=5).status_code == 200


def test_header_timeout_closes_trickling_client(start_demo):
    server = start_demo("--no-access-log", "--header-timeout", "1")
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        start = time.monotonic()
        s.sendall(b"GET / HTTP/1.1\r\n")
        closed = False
        data = b""
        # Trickle a header byte every 0.2 s: that must not extend the deadline.
        while time.monotonic() - start < 4:
            try:
                s.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sel = selectors.DefaultSelector()
            sel.register(s, selectors.EVENT_READ)
            if sel.select(0.2):
                data = read_until_close(s)
                closed = True
                break
        took = time.monotonic() - start
    assert closed
    assert 0.9 <= took < 3.0
    assert data == b"" or data.startswith(b"HTTP/1.1 408")


def test_keepalive_timeout_closes_idle_connection(start_demo):
    server = start_demo("--no-access-log", "--keepalive-timeout", "0.5")
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = bytearray()
        read_response(s, buf)
        start = time.monotonic()
        assert read_until_close(s) == b""
        assert 0.4 <= time.monotonic() - start < 3.0


def test_handler_exception_gives_500_and_keeps_connection(tmp_path, start_demo):
    (tmp_path / "boom_app.py").write_text(
        "def app(environ, start_response):\n"
        "    if environ['PATH_INFO'] == '/boom':\n"
        "        raise RuntimeError('boom')\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '2')])\n"
        "    return [b'ok']\n"
    )
    server = start_demo("--wsgi", "boom_app:app", env={"PYTHONPATH": str(tmp_path)})
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        buf = bytearray()
        s.sendall(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = read_response(s, buf)
        assert status.startswith(b"HTTP/1.1 500")
        s.sendall(b"GET /fine HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = read_response(s, buf)
        assert status.startswith(b"HTTP/1.1 200") and body == b"ok"
    assert "RuntimeError: boom" in server.log()


def test_many_concurrent_delays_complete_together(demo):
    n = 1000
    sel = selectors.DefaultSelector()
    socks = []
    start = time.monotonic()
    for _ in range(n):
        s = socket.create_connection((demo.host, demo.port), timeout=5)
        s.setblocking(False)
        socks.append(s)
    for s in socks:
        s.send(b"GET /delay/100 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        sel.register(s, selectors.EVENT_READ, bytearray())
    done = 0
    deadline = time.monotonic() + 10
    while done < n and time.monotonic() < deadline:
        for key, _ in sel.select(1):
            data = key.fileobj.recv(4096)
            if data:
                key.data.extend(data)
            else:
                assert key.data.startswith(b"HTTP/1.1 200") and key.data.endswith(b"delayed")
                sel.unregister(key.fileobj)
                key.fileobj.close()
                done += 1
    took = time.monotonic() - start
    for s in socks:
        s.close()
    assert done == n
    assert took < 5.0  # 1,000 sequential 100 ms waits would take 100 s


def test_sigterm_stops_cleanly_with_exit_0(start_demo):
    server = start_demo()
    assert requests.get(server.url + "/", timeout=5).status_code == 200
    server.signal(signal.SIGTERM)
    assert server.wait(10) == 0


def test_sigint_stops_cleanly_with_exit_0(start_demo):
    server = start_demo()
    server.signal(signal.SIGINT)
    assert server.wait(10) == 0
