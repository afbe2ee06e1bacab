"""Issue 15, item 8 (protocol): Content-Length lists, chunk extensions, absolute-form targets, ``file/``."""

from __future__ import annotations

import json

import pytest
from support.demo import DemoServer
from support.raw_http import exchange, split_response


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One demo server for the module: these checks read only what comes back on the wire."""
    server = DemoServer(["--no-access-log"], tmp_path_factory.mktemp("edges") / "demo.log")
    yield server
    server.stop()


def send(demo, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    return split_response(exchange(demo.host, demo.port, raw))


def test_a_long_content_length_list_is_refused(demo):
    lengths = ",".join(["5"] * 20_000)  # 40 KiB, within the head limit
    status, _, _ = send(demo, f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {lengths}\r\n\r\nhello".encode())
    assert status == 400
    # A proxy that joined two identical lines is still understood.
    status, _, body = send(demo, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n"
                                 b"Connection: close\r\n\r\nhello")
    assert (status, body) == (200, b"hello")


def chunked_request(chunks: int, ext_bytes: int) -> bytes:
    extension = b";a=" + b"b" * (ext_bytes - 3)
    body = b"".join(b"1" + extension + b"\r\nx\r\n" for _ in range(chunks)) + b"0\r\n\r\n"
    return b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + body


def test_chunk_extensions_are_capped_per_body(demo):
    # Each line is within the 4 KiB line limit; together they pass 16 KiB.
    status, _, _ = send(demo, chunked_request(chunks=40, ext_bytes=1000))
    assert status == 413
    status, _, body = send(demo, chunked_request(chunks=10, ext_bytes=1000))
    assert (status, body) == (200, b"x" * 10)


def test_absolute_form_authority_wins_over_host(demo):
    status, _, body = send(demo, b"GET http://a.example:8080/inspect HTTP/1.1\r\nHost: b.example\r\n"
                                 b"Connection: close\r\n\r\n")
    assert status == 200
    headers = dict((name.lower(), value) for name, value in json.loads(body)["headers"])
    assert headers["host"] == "a.example:8080"


def test_a_file_asked_for_as_a_directory_is_404(demo):
    status, _, _ = send(demo, b"GET /static/index.html/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 404
    status, _, _ = send(demo, b"GET /static/index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200
