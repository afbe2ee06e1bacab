"""Oversized and endless inputs get 414/431/413 (or a close) with bounded memory."""

from __future__ import annotations

import threading
import time

import pytest
from support.clients import MIB, connect, error_lines, read_status_or_close, request, rss_bytes

RSS_BOUND = 16 * MIB


def _send_then_status(port: int, data: bytes) -> int | None:
    """Send ``data`` from a thread (the server may answer before it is all sent); return the status."""
    sock = connect(port)
    sender_error: list[BaseException] = []

    def send() -> None:
        try:
            sock.sendall(data)
        except OSError as exc:   # the server closed after answering: expected
            sender_error.append(exc)

    thread = threading.Thread(target=send)
    thread.start()
    try:
        return read_status_or_close(sock)
    finally:
        thread.join(10)
        sock.close()


CASES = {
    "1 MiB request line": (b"GET /" + b"a" * MIB + b" HTTP/1.1\r\nHost: t\r\n\r\n", {414}),
    "1 MiB of headers": (b"GET / HTTP/1.1\r\nHost: t\r\n" + (b"X-Pad: " + b"b" * 1000 + b"\r\n") * 1048 + b"\r\n",
                         {431}),
    "one 1 MiB header": (b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"c" * MIB + b"\r\n\r\n", {431}),
    "10,000 headers": (b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X: y\r\n" * 10_000 + b"\r\n", {431}),
    "10 GB Content-Length": (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000000\r\n\r\n", {413}),
    "2 MiB body": (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2097152\r\n\r\n" + b"d" * 2 * MIB, {413}),
}


@pytest.fixture(scope="module")
def server(start_module_demo):
    # The limits these cases pass, nginx's 1 MiB body among them (the default is 1 GiB).
    return start_module_demo("--no-access-log", "--body-timeout", "1", "--max-body-bytes", str(MIB))


@pytest.mark.parametrize("name", list(CASES))
def test_oversized_input_is_refused(server, name):
    data, expected = CASES[name]
    base = rss_bytes(server.proc.pid)
    status = _send_then_status(server.port, data)
    growth = rss_bytes(server.proc.pid) - base
    print(f"{name}: status {status}, RSS growth {growth / MIB:.2f} MiB")
    assert status in expected
    assert growth < RSS_BOUND
    assert request(server.port, "/")[0] == 200


def test_endless_chunked_body_is_cut_off(server):
    base = rss_bytes(server.proc.pid)
    sock = connect(server.port)
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    block = b"10000\r\n" + b"e" * 0x10000 + b"\r\n"
    sent = 0
    status = None
    sock.settimeout(0)
    buf = b""
    # At most 64 MiB: the limit is 1 MiB, so the answer must come long before.
    while sent < 64 * MIB:
        try:
            sent += sock.send(block)
        except BlockingIOError:
            time.sleep(0.001)
        except OSError:
            break
        try:
            data = sock.recv(65536)
            if not data:
                break
            buf += data
            if b"\r\n" in buf:
                break
        except BlockingIOError:
            pass
        except OSError:
            break
    sock.settimeout(5)
    if b"\r\n" not in buf:
        try:
            buf += sock.recv(65536)
        except OSError:
            pass
    sock.close()
    status = int(buf.split(b" ")[1]) if buf.startswith(b"HTTP/1.1 ") else None
    growth = rss_bytes(server.proc.pid) - base
    print(f"endless chunked body: {status or 'closed'} after {sent / MIB:.1f} MiB sent, "
          f"RSS growth {growth / MIB:.2f} MiB")
    assert status in (413, None)
    assert sent < 8 * MIB
    assert growth < RSS_BOUND


def test_body_that_never_arrives_times_out(server):
    with connect(server.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly part")
        started = time.monotonic()
        assert read_status_or_close(sock) == 408
        waited = time.monotonic() - started
    print(f"body timeout: 408 after {waited:.2f} s (--body-timeout 1)")
    assert 0.9 < waited < 2.0
    assert not error_lines(server.log())
