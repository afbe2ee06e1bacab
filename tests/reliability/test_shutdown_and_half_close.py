"""Half-close and graceful shutdown (SIGTERM, SIGQUIT, second SIGINT) of the real demo."""

from __future__ import annotations

import signal
import socket
import time

import pytest
from support.clients import connect, error_lines, read_response, wait_heads_received, wait_until

GET = b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n"


# ----------------------------------------------------------------- half-close
@pytest.fixture(scope="module")
def server(start_module_demo):
    return start_module_demo("--no-access-log")


def _half_close_and_read_all(port: int, data: bytes) -> bytes:
    with connect(port) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)   # RFC 9112 9.6: a half-close does not delimit a request
        chunks = []
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_half_close_after_request_still_gets_the_response(server):
    reply = _half_close_and_read_all(server.port, GET % b"/")
    assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"Hello, World!")


def test_half_close_after_pipelined_requests_answers_them_all(server):
    reply = _half_close_and_read_all(server.port, GET % b"/" + GET % b"/inspect" + GET % b"/healthz")
    assert reply.count(b"HTTP/1.1 200 ") == 3
    assert reply.index(b"Hello, World!") < reply.index(b"\r\n\r\nok")


def test_half_close_while_a_request_is_in_the_app_abandons_it(server):
    """EOF while the handler holds a request means the client left (issue 15; nginx logs 499, uvicorn
    disconnects): the answers already made go out, the one in the app is dropped, the connection closes."""
    reply = _half_close_and_read_all(server.port, GET % b"/" + GET % b"/delay/100" + GET % b"/healthz")
    assert reply.count(b"HTTP/1.1 200 ") == 1 and reply.endswith(b"Hello, World!")


def test_half_close_during_a_big_streamed_response(server):
    reply = _half_close_and_read_all(server.port, GET % b"/bytes/5000000")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and len(body) == 5_000_000


# ------------------------------------------------------------------- shutdown
IN_FLIGHT = 40
IDLE = 20
DELAY_MS = 2000


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def _start_in_flight(port: int, n: int, delay_ms: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        sock = connect(port)
        sock.sendall(GET % b"/delay/%d" % delay_ms)
        socks.append(sock)
    return socks


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGQUIT, signal.SIGINT],
                         ids=["SIGTERM", "SIGQUIT", "SIGINT"])
def test_graceful_shutdown_completes_requests_in_flight(start_demo, signum):
    demo = start_demo("--no-access-log", "--log-level", "debug")
    idle = []
    for _ in range(IDLE):
        sock = connect(demo.port)
        sock.sendall(GET % b"/")
        assert read_response(sock)[0] == 200   # now an idle keep-alive connection
        idle.append(sock)
    busy = _start_in_flight(demo.port, IN_FLIGHT, DELAY_MS)
    requested_at = time.monotonic()
    wait_heads_received(demo, IN_FLIGHT + IDLE)
    assert time.monotonic() - requested_at < DELAY_MS / 1000 / 2, "the signal must come mid-request"

    sent_at = time.monotonic()
    demo.signal(signum)
    # New connections are refused at once: the listening socket is closed.
    wait_until(lambda: _refused(demo.port), 1.0, what="connections refused")
    refused_after = time.monotonic() - sent_at
    # Idle keep-alive connections are closed at once.
    for sock in idle:
        sock.settimeout(1.0)
        assert sock.recv(1) == b""
    idle_closed_after = time.monotonic() - sent_at
    completed = 0
    for sock in busy:
        sock.settimeout(DELAY_MS / 1000 + 5)
        status, headers, body = read_response(sock)
        assert (status, body) == (200, b"delayed")
        assert headers.get("connection") == "close"
        assert sock.recv(1) == b""   # and the connection is closed after it
        completed += 1
        sock.close()
    code = demo.wait(DELAY_MS / 1000 + 3)
    exited_after = time.monotonic() - sent_at
    print(f"{signal.Signals(signum).name}: refused new connections after {refused_after:.3f} s, "
          f"closed {IDLE} idle after {idle_closed_after:.3f} s, {completed}/{IN_FLIGHT} in flight completed, "
          f"exit {code} after {exited_after:.2f} s")
    assert completed == IN_FLIGHT
    assert code == 0
    assert exited_after < DELAY_MS / 1000 + 1.0
    assert not error_lines(demo.log())
    for sock in idle:
        sock.close()


def test_graceful_timeout_bounds_the_shutdown(start_demo):
    demo = start_demo("--no-access-log", "--log-level", "debug", "--graceful-timeout", "1")
    busy = _start_in_flight(demo.port, 10, 30_000)
    wait_heads_received(demo, 10)
    sent_at = time.monotonic()
    demo.signal(signal.SIGTERM)
    code = demo.wait(5)
    exited_after = time.monotonic() - sent_at
    print(f"graceful timeout 1 s: exit {code} after {exited_after:.2f} s with 10 requests of 30 s in flight")
    assert code == 0 and 0.9 < exited_after < 2.0
    for sock in busy:
        sock.settimeout(2)
        try:
            assert sock.recv(100) == b""   # closed without a response
        except ConnectionResetError:
            pass
        sock.close()
    assert "graceful timeout" in demo.log()


def test_second_sigint_exits_at_once(start_demo):
    demo = start_demo("--no-access-log", "--log-level", "debug")
    busy = _start_in_flight(demo.port, 5, 30_000)
    wait_heads_received(demo, 5)
    demo.signal(signal.SIGINT)
    wait_until(lambda: _refused(demo.port), 1.0, what="shutdown started")
    assert demo.proc.poll() is None   # still draining the requests in flight
    sent_at = time.monotonic()
    demo.signal(signal.SIGINT)
    code = demo.wait(5)
    exited_after = time.monotonic() - sent_at
    print(f"second SIGINT: exit {code} after {exited_after:.3f} s")
    assert exited_after < 1.0
    assert code == 0
    for sock in busy:
        sock.close()
