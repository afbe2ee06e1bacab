"""A small file body read and sent with its head (``h1_streaming.small_file_bytes``), against the sendfile path.

Each exchange runs twice over a real socket, once with the small-file path
and once with it off (``SMALL_FILE_BYTES`` -1: every file by sendfile), and
the bytes on the wire must be the same but for the Date field.
"""

from __future__ import annotations

import logging
import os
import re

import pytest
from support.live import LiveServer

import evloop.server.h1 as h1
from evloop.app import App, FileBody, Response
from evloop.server.h1_streaming import SMALL_FILE_BYTES

SIZES = [0, 1, 2048, SMALL_FILE_BYTES - 1, SMALL_FILE_BYTES, SMALL_FILE_BYTES + 1, 3 * SMALL_FILE_BYTES]
END = b"GET /end HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def app(tmp_path):
    files = {}
    for size in SIZES:
        path = tmp_path / f"f{size}"
        path.write_bytes(os.urandom(size))
        files[str(size)] = path
    app = App()
    app.add_route("/file/{size}", lambda request, size: Response(body=FileBody(open(files[size], "rb"))),
                  ["GET", "HEAD"])
    app.add_route("/part/{offset}/{count}", lambda request, offset, count: Response(
        206, body=FileBody(open(files[str(3 * SMALL_FILE_BYTES)], "rb"), int(offset), int(count))))
    app.add_route("/short", lambda request: Response(body=FileBody(open(files["2048"], "rb"), 0, 4096)))
    app.add_route("/end", lambda request: Response(body=b"end"))
    return app


def exchange(app, monkeypatch, small: bool, requests: bytes, ends=lambda data: data.endswith(b"\r\n\r\nend")):
    monkeypatch.setattr(h1, "SMALL_FILE_BYTES", SMALL_FILE_BYTES if small else -1)
    srv = LiveServer(app)
    try:
        sock = srv.connect()
        sock.sendall(requests)
        data = srv.read_until(sock, ends)
        sock.close()
    finally:
        srv.close()
    return re.sub(rb"Date: [^\r]*\r\n", b"", data)


def test_files_of_every_size_are_the_same_bytes_either_way(app, monkeypatch):
    requests = b"".join(f"{method} /file/{size} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                        for size in SIZES for method in ("GET", "HEAD")) + END
    small = exchange(app, monkeypatch, True, requests)
    assert small == exchange(app, monkeypatch, False, requests)
    assert small.count(b"HTTP/1.1 200 OK") == 2 * len(SIZES) + 1


def test_a_region_of_a_file_is_the_same_bytes_either_way(app, monkeypatch):
    parts = [(0, 10), (1000, 3000), (SMALL_FILE_BYTES, SMALL_FILE_BYTES), (5, SMALL_FILE_BYTES + 1)]
    requests = b"".join(f"GET /part/{o}/{c} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for o, c in parts) + END
    small = exchange(app, monkeypatch, True, requests)
    assert small == exchange(app, monkeypatch, False, requests)
    assert small.count(b"HTTP/1.1 206 Partial Content") == len(parts)


def test_a_file_shorter_than_its_body_is_aborted_either_way(app, monkeypatch, caplog):
    requests = b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n" + END
    with caplog.at_level(logging.INFO, logger="evloop.server"):
        small = exchange(app, monkeypatch, True, requests, ends=lambda data: False)  # until the server closes
    assert small == exchange(app, monkeypatch, False, requests, ends=lambda data: False)
    assert small.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 4096" in small and b"end" not in small


def test_a_pipe_is_sent_as_it_always_was(monkeypatch):
    """pread cannot read a pipe: the body goes by the transport's read-and-send, with the same bytes."""
    def pipe_body(request):
        read_end, write_end = os.pipe()
        os.write(write_end, b"p" * 100)
        os.close(write_end)
        return Response(body=FileBody(os.fdopen(read_end, "rb"), 0, 100))

    app = App()
    app.add_route("/pipe", pipe_body)
    app.add_route("/end", lambda request: Response(body=b"end"))
    requests = b"GET /pipe HTTP/1.1\r\nHost: x\r\n\r\n" + END
    small = exchange(app, monkeypatch, True, requests)
    assert small == exchange(app, monkeypatch, False, requests)
    assert b"\r\n\r\n" + b"p" * 100 + b"HTTP/1.1 200 OK" in small
