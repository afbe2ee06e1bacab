"""Issue 15, item 8 (applications): a WSGI app's status, ``Connection: close`` and ``close()``."""

from __future__ import annotations

import pytest
from support.raw_http import exchange, split_response

EDGES_APP = '''
class ClosingFails:
    """An iterable whose close() raises after its chunks went out."""

    def __iter__(self):
        yield b"first "
        yield b"last"

    def close(self):
        raise RuntimeError("close failed on purpose")


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/status999":
        start_response("999 Nope", [("Content-Type", "text/plain")])
        return [b"never sent"]
    if path == "/close":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close")])
        return [b"bye"]
    if path == "/close-fails":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ClosingFails()
    if path == "/short":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return iter([b"abc"])
    if path == "/fails-after-first":
        def body():
            yield b"first "
            raise RuntimeError("the body failed on purpose")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body()
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no"]
'''


@pytest.fixture
def edges(start_demo, tmp_path):
    (tmp_path / "wsgi_edges_app.py").write_text(EDGES_APP)
    return start_demo("--wsgi", "wsgi_edges_app:app", "--keepalive-timeout", "30",
                      env={"PYTHONPATH": str(tmp_path)})


def get(path: str, close: bool = True) -> bytes:
    connection = "Connection: close\r\n" if close else ""
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{connection}\r\n".encode()


def test_a_status_outside_100_599_is_a_logged_500(edges):
    data = exchange(edges.host, edges.port, get("/status999"))
    assert data.startswith(b"HTTP/1.1 500 "), data
    edges.stop()
    assert "invalid status 999" in edges.log()


def test_the_apps_connection_close_is_honoured(edges):
    # Two pipelined keep-alive requests: the first response closes the connection.
    data = exchange(edges.host, edges.port, get("/close", close=False) * 2)
    status, headers, rest = split_response(data)
    assert status == 200 and headers.get("connection") == "close"
    assert rest == b"bye" and data.count(b"HTTP/1.1 ") == 1


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """The data of a chunked body, and whether its last chunk arrived."""
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return out, body == b"\r\n"
        out, body = out + body[:size], body[size + 2:]
    return out, False


def test_an_iterable_whose_close_raises_is_sent_whole_then_logged(edges):
    status, headers, body = split_response(exchange(edges.host, edges.port, get("/close-fails")))
    assert status == 200 and headers.get("transfer-encoding") == "chunked"
    assert dechunk(body) == (b"first last", True)
    edges.stop()
    assert "close failed on purpose" in edges.log()


def test_a_body_short_of_its_content_length_is_logged_and_cut(edges):
    # The client sees the framing broken (the connection ends before 10 bytes), the
    # log says why, and the access log does not count the response whole.
    data = exchange(edges.host, edges.port, get("/short", close=False) * 2)
    status, headers, body = split_response(data)
    assert status == 200 and headers.get("content-length") == "10"
    assert body == b"abc" and data.count(b"HTTP/1.1 ") == 1
    edges.stop()
    log = edges.log()
    assert "the body ended 7 bytes short of its Content-Length 10" in log
    assert any('"GET /short HTTP/1.1" 200 3 ' in line and line.endswith(" incomplete") for line in log.splitlines())


def test_a_body_that_fails_after_a_chunk_is_logged_with_the_bytes_sent(edges):
    status, _, body = split_response(exchange(edges.host, edges.port, get("/fails-after-first")))
    assert status == 200 and dechunk(body) == (b"first ", False)
    edges.stop()
    log = edges.log()
    assert "the body failed on purpose" in log
    assert "cut short after 6 body bytes" in log
    assert any('"GET /fails-after-first HTTP/1.1" 200 6 ' in line and line.endswith(" incomplete")
               for line in log.splitlines())
