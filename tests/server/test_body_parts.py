"""A request body in one read or in many: the same answers.

In one read with its head, a Content-Length body takes the server's short path (``HTTPProtocol._head_with_body``
takes it whole with ``ServerConnection.take_whole_body``); after its head, in one read, the Data holding its last
byte runs the request and the body goes to the app as it came (``_body_part``); split over reads, its parts are
held and joined.  A real server on real sockets (``support.live``) with the metrics on, so that each piece is known to be
read (``bytes_in``) before the next is sent: the reads split where the test says.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from support.live import LiveServer

from evloop.app import App, Request, Response

SPOOL = 4096  # body_spool_bytes: a longer body goes to a temporary file
BODIES = [b"", b"x", b"hello", os.urandom(SPOOL - 1), os.urandom(SPOOL), os.urandom(SPOOL + 1)]


def _requests() -> list[tuple[bytes, bytes]]:
    """(head, body) of each request: Content-Length and chunked bodies, and a GET between them."""
    requests = []
    for body in BODIES:
        requests.append((b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body), body))
        requests.append((b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
                         (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"))
        requests.append((b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", b""))
    return requests


def _app() -> App:
    app = App()

    def echo(request: Request) -> Response:
        body = request.body
        return Response(body=b"%s %d %s %s" % (request.method.encode(), len(body), hashlib.sha256(body).hexdigest()
                                                .encode(), type(request).__name__.encode()))

    app.add_route("/echo", echo, methods=["GET", "POST"])
    return app


def _answers(pieces: list[bytes], responses: int = len(BODIES) * 3) -> list[bytes]:
    live = LiveServer(_app(), body_spool_bytes=SPOOL, metrics_path="/metrics")
    try:
        counts = live.server.metrics.counts
        sock = live.connect()
        sent = 0
        for piece in pieces:
            sock.sendall(piece)
            sent += len(piece)
            live.run_until(lambda sent=sent: counts.bytes_in >= sent)  # read: the next piece is a new read
        data = live.read_until(sock, lambda data: data.count(b"HTTP/1.1 200") == responses)
        sock.close()
        return [line for line in data.split(b"\r\n") if not line.startswith(b"Date:")]
    finally:
        live.close()


@pytest.mark.parametrize("split", ["head-and-body", "997-byte-pieces", "each-request"])
def test_a_body_split_over_reads_is_answered_as_one_in_one_read(split):
    requests = _requests()
    stream = b"".join(head + body for head, body in requests)
    whole = _answers([stream])
    if split == "head-and-body":
        pieces = [part for head, body in requests for part in (head, body) if part]
    elif split == "997-byte-pieces":
        pieces = [stream[i:i + 997] for i in range(0, len(stream), 997)]
    else:
        pieces = [head + body for head, body in requests]
    assert _answers(pieces) == whole
    text = b"\r\n".join(whole)
    for body in BODIES:  # each body reached the app whole, in memory or spooled as its length says
        kind = b"SpooledRequest" if len(body) > SPOOL else b"Request"
        assert text.count(b"POST %d %s %s" % (len(body), hashlib.sha256(body).hexdigest().encode(), kind)) == 2


@pytest.mark.parametrize("split", [False, True])
def test_a_body_that_expects_100_continue_gets_its_100_also_when_it_came_with_its_head(split):
    """The server may refuse a body it is asked to expect (RFC 9110 10.1.1), so such a head takes the plain path
    (``_head_with_body``), not the short one of a body that came whole with its head: a 100, then the answer."""
    head = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    after = b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n"  # a pipelined request after the body
    answers = _answers([head, b"hello" + after] if split else [head + b"hello" + after], responses=2)
    text = b"\r\n".join(answers)
    assert answers[0] == b"HTTP/1.1 100 Continue" and text.count(b"100 Continue") == 1
    assert b"POST 5 %s Request" % hashlib.sha256(b"hello").hexdigest().encode() in text
    assert text.endswith(b"GET 0 %s Request" % hashlib.sha256(b"").hexdigest().encode())
