"""Edge cases of the server glue, with a real server in this process and real sockets.

The reactor is driven from the test (``run_until``), so there are no threads
and no sleeps: each test runs passes of the loop until what it waits for holds.
"""

from __future__ import annotations

import logging
import re
import socket
import struct
import subprocess
import sys
import time

import pytest
from support.live import LiveServer

from evloop.app import App, Response


@pytest.fixture
def live():
    servers = []

    def start(app, **settings):
        server = LiveServer(app, **settings)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_reset_during_a_streamed_body_stops_pulling_it(live):
    pulled = [0]
    closed = []

    def endless():
        try:
            while True:
                pulled[0] += 1
                yield b"x" * 1024
        finally:
            closed.append(True)

    app = App()
    app.add_route("/endless", lambda request: Response(200, body=endless()))
    srv = live(app)
    # A client in another process reads fast, then resets the connection while
    # the server is busy pumping the body into the socket.
    client = subprocess.Popen([sys.executable, "-c", RESETTING_CLIENT, str(srv.port)])
    try:
        srv.run_until(lambda: closed, timeout_s=10)
        assert client.wait(timeout=10) == 0
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    # The body is pulled only while the socket takes it; after the reset, not at all.
    assert pulled[0] < 200_000
    srv.run_until(lambda: not srv.server.connections)


RESETTING_CLIENT = """
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /endless HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
got = 0
while got < 20_000_000:
    got += len(s.recv(1 << 20))
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
"""


def test_body_iterable_close_is_called_when_the_client_goes_away(live):
    events = []

    class Body:
        def __iter__(self):
            return (b"y" * 65536 for _ in range(1_000_000))

        def close(self):
            events.append("closed")

    app = App()
    app.add_route("/big", lambda request: Response(200, body=Body()))
    srv = live(app)
    sock = srv.connect()
    sock.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    srv.read_until(sock, lambda data: len(data) > 10_000)
    sock.close()
    srv.run_until(lambda: events == ["closed"])
    srv.run_until(lambda: not srv.server.connections)
    assert events == ["closed"]


def test_refused_expect_continue_with_body_in_same_packet(live, caplog):
    app = App()
    app.add_route("/echo", lambda request: Response(200, body=request.body), ["POST"])
    srv = live(app)
    sock = srv.connect()
    with caplog.at_level(logging.DEBUG, logger="evloop"):
        sock.send(b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello")
        data = srv.read_until(sock, lambda data: False)  # until the server closes
    assert data.startswith(b"HTTP/1.1 404 ")
    assert b"100 Continue" not in data
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_streamed_body_longer_than_its_content_length_aborts_at_once(live, caplog):
    app = App()
    app.add_route("/liar", lambda request: Response(200, [("Content-Length", "3")], iter([b"abc", b"def"])))
    srv = live(app)
    sock = srv.connect()
    sock.send(b"GET /liar HTTP/1.1\r\nHost: x\r\n\r\n")
    start = time.monotonic()
    data = srv.read_until(sock, lambda data: False, timeout_s=3)
    assert time.monotonic() - start < 2
    assert data.endswith(b"\r\n\r\nabc")  # never more than it declared
    srv.run_until(lambda: not srv.server.connections)


def test_handler_returning_a_non_response_gets_500_and_the_connection_stays(live):
    app = App()
    app.add_route("/wrong", lambda request: "not a response")
    app.add_route("/ok", lambda request: Response(200, body=b"ok"))
    srv = live(app)
    sock = srv.connect()
    sock.send(b"GET /wrong HTTP/1.1\r\nHost: x\r\n\r\n")
    data = srv.read_until(sock, lambda data: data.endswith(b"Internal Server Error\n"))
    assert data.startswith(b"HTTP/1.1 500 ")
    sock.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    data = srv.read_until(sock, lambda data: data.endswith(b"ok"))
    assert data.startswith(b"HTTP/1.1 200 ")


def test_respond_then_return_sends_one_response(live):
    def both(request):
        request.respond(Response(200, body=b"first"))
        return Response(200, body=b"second")

    app = App()
    app.add_route("/both", both)
    srv = live(app)
    sock = srv.connect()
    sock.send(b"GET /both HTTP/1.1\r\nHost: x\r\n\r\nGET /both HTTP/1.1\r\nHost: x\r\n\r\n")
    data = srv.read_until(sock, lambda data: data.count(b"first") == 2)
    assert b"second" not in data
    assert data.count(b"HTTP/1.1 200 ") == 2


def test_pipelined_responses_after_a_file_are_still_batched(live, tmp_path):
    from evloop.app import FileBody

    path = tmp_path / "f.txt"
    path.write_bytes(b"file-body")
    app = App()
    app.add_route("/file", lambda request: Response(200, body=FileBody(open(path, "rb"))))
    app.add_route("/hi", lambda request: Response(200, body=b"hi"))
    srv = live(app)
    sock = srv.connect()
    sock.send(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n" + b"GET /hi HTTP/1.1\r\nHost: x\r\n\r\n" * 5)
    data = srv.read_until(sock, lambda data: data.count(b"\r\n\r\nhi") == 5)
    assert b"file-body" in data


def test_graceful_shutdown_lets_a_partial_head_finish(live):
    app = App()
    app.add_route("/", lambda request: Response(200, body=b"hello"))
    srv = live(app)
    idle = srv.connect()
    busy = socket.create_connection(("127.0.0.1", srv.port))
    busy.setblocking(False)
    busy.send(b"GET / HTTP/1.1\r\nHo")
    srv.run_until(lambda: len(srv.server.connections) == 2 and any(
        p.conn.buffered_bytes for p in srv.server.connections))
    done = []
    srv.server.shutdown(lambda: done.append(True))
    srv.reactor.run_once(0)
    assert srv.read_until(idle, lambda data: False) == b""  # the idle one is closed at once
    busy.send(b"st: x\r\n\r\n")
    data = srv.read_until(busy, lambda data: False)
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"hello")
    assert b"connection: close" in data.lower()
    srv.run_until(lambda: done)


def test_pipelining_client_that_never_reads_is_aborted_after_the_send_timeout(live):
    # All responses of a pipelined burst are written together after the
    # batch; when they back up, the send deadline (not the long keep-alive
    # one) must bound how long a client that reads nothing pins them.
    big = Response(200, body=b"x" * 65536)
    app = App()
    app.add_route("/big", lambda request: big)
    srv = live(app, send_timeout_s=0.5, keepalive_timeout_s=60.0)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", srv.port))
    sock.setblocking(False)
    srv.run_until(lambda: len(srv.server.connections) == 1)
    sock.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n" * 200)  # 12.5 MiB of responses, never read
    started = time.monotonic()
    srv.run_until(lambda: not srv.server.connections, timeout_s=10)
    assert time.monotonic() - started < 5
    sock.close()


def _burst_app():
    """Routes that each end a burst of bodiless requests in a different way."""
    app = App()
    app.add_route("/a", lambda request: Response(200, body=b"a:" + request.target.encode()))

    def deferred(request):
        request.reactor.call_soon(request.respond, Response(200, body=b"deferred"))

    def boom(request):
        raise RuntimeError("handler failure (expected by the test)")

    app.add_route("/defer", deferred)
    app.add_route("/boom", boom)
    app.add_route("/stream", lambda request: Response(200, body=iter([b"str", b"eam"])))
    def bad_header(request):
        response = Response(200, body=b"x")
        response.headers.append(("X-Bad", "a\r\nb"))  # after the constructor's checks
        return response

    app.add_route("/bad-header", bad_header)
    app.add_route("/echo", lambda request: Response(200, body=request.body), methods=["POST"])
    return app


def _split_responses(data: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each response in ``data`` (Content-Length or chunked)."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        fields = {line.split(b":", 1)[0].lower(): line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")[1:]}
        if b"content-length" in fields:
            n = int(fields[b"content-length"])
            out.append((status, rest[:n]))
            data = rest[n:]
        else:  # chunked
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line, 16)
                if size == 0:
                    rest = rest[2:]
                    break
                body += rest[:size]
                rest = rest[size + 2 :]
            out.append((status, body))
            data = rest
    return out


def test_a_pipelined_burst_survives_every_kind_of_interruption(live):
    srv = live(_burst_app())
    sock = srv.connect()
    get = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n"
    paths = [b"/a?1", b"/a?2", b"/defer", b"/a?3", b"/boom", b"/a?4", b"/stream", b"/a?5", b"/missing", b"/a?6"]
    stream = b"".join(get % path for path in paths[:8])
    stream += b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"
    stream += b"".join(get % path for path in paths[8:])
    stream += get % b"/a?7" * 20  # a long run of repeats: taken by comparison with the last head
    sock.send(stream)
    expected = [
        (200, b"a:/a?1"), (200, b"a:/a?2"), (200, b"deferred"), (200, b"a:/a?3"),
        (500, b"Internal Server Error\n"), (200, b"a:/a?4"), (200, b"stream"), (200, b"a:/a?5"),
        (200, b"body"), (404, b"Not Found\n"), (200, b"a:/a?6"),
    ] + [(200, b"a:/a?7")] * 20
    data = srv.read_until(sock, lambda data: data.count(b"HTTP/1.1 ") == len(expected)
                          and data.endswith(b"a:/a?7"))
    assert _split_responses(data) == expected
    # Still a healthy keep-alive connection.
    sock.send(get % b"/a?8")
    assert srv.read_until(sock, lambda data: data.endswith(b"a:/a?8")).endswith(b"a:/a?8")
    assert srv.server.requests_served == len(expected) + 1


def test_a_bad_head_in_a_burst_is_answered_after_the_good_ones(live):
    srv = live(_burst_app())
    sock = srv.connect()
    good = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    sock.send(good * 5 + b"GET /a HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n" + good * 3)
    sock.shutdown(socket.SHUT_WR)  # ends the server's lingering close at once
    data = srv.read_until(sock, lambda data: False)  # until the server closes
    responses = _split_responses(data)
    assert responses[:5] == [(200, b"a:/a")] * 5
    assert [status for status, _ in responses[5:]] == [400]  # then nothing more: the framing is lost


def test_connection_close_in_a_burst_ends_it(live):
    srv = live(_burst_app())
    sock = srv.connect()
    good = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    sock.send(good * 3 + b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + good * 3)
    data = srv.read_until(sock, lambda data: False)
    assert _split_responses(data) == [(200, b"a:/a")] * 4
    assert data.lower().count(b"connection: close") == 1


def test_a_response_that_cannot_be_framed_in_a_burst_gets_a_500_and_the_burst_goes_on(live, caplog):
    srv = live(_burst_app())
    sock = srv.connect()
    good = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    with caplog.at_level(logging.ERROR, logger="evloop.server"):
        sock.send(good * 2 + b"GET /bad-header HTTP/1.1\r\nHost: x\r\n\r\n" + good * 2)
        data = srv.read_until(sock, lambda data: data.count(b"HTTP/1.1 ") == 5)
    assert b"X-Bad" not in data  # the split header never reaches the wire
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
    assert statuses == [b"200", b"200", b"500", b"200", b"200"]
    assert "invalid response" in caplog.text
    assert srv.server.connections  # the connection lives on


def test_empty_bodies_complete_with_their_head_and_the_connection_stays(live, tmp_path):
    # Regression: a file or an iterable of Content-Length 0 is complete with its
    # head; the server called send_end after it, a StateError that aborted the
    # connection after the first response (seen as /bytes/0 and empty static files).
    from evloop.app import FileBody

    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    closed = []

    class Body:
        def __iter__(self):
            yield b"never pulled"

        def close(self):
            closed.append(True)

    app = App()
    app.add_route("/file", lambda request: Response(200, body=FileBody(open(empty, "rb"))), methods=["GET", "HEAD"])
    app.add_route("/iter", lambda request: Response(200, [("Content-Length", "0")], Body()), methods=["GET", "HEAD"])
    app.add_route("/nothing", lambda request: Response(204, None, iter(())))
    app.add_route("/hi", lambda request: Response(200, body=b"hi"))
    srv = live(app)
    sock = srv.connect()
    requests = [b"GET /file", b"HEAD /file", b"GET /iter", b"HEAD /iter", b"GET /nothing", b"GET /hi"]
    sock.send(b"".join(line + b" HTTP/1.1\r\nHost: x\r\n\r\n" for line in requests))
    data = srv.read_until(sock, lambda data: data.endswith(b"\r\n\r\nhi"))
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 5 and data.count(b"HTTP/1.1 204 No Content\r\n") == 1
    assert b"never pulled" not in data and len(closed) == 2
    sock.send(b"GET /hi HTTP/1.1\r\nHost: x\r\n\r\n")  # still open and serving
    assert srv.read_until(sock, lambda data: data.endswith(b"\r\n\r\nhi")).endswith(b"hi")
    assert len(srv.server.connections) == 1


def test_a_deferred_stream_answered_while_writes_are_paused_keeps_its_head(live):
    # The head of a streamed response normally goes out with the first body
    # batch; when writing is paused already, it must wait in the queue, before
    # the body, not be lost.
    big = b"x" * (8 << 20)  # more than loopback's socket buffers take from a client that does not read
    paused_when_answered = []

    def deferred(request):
        def answer():
            paused_when_answered.append(protocol._write_paused)
            request.respond(Response(200, [("Content-Length", "6")], iter([b"str", b"eam"])))

        protocol = next(iter(srv.server.connections))
        srv.reactor.call_later(0, answer)
        return None

    app = App()
    app.add_route("/big", lambda request: Response(200, body=big))
    app.add_route("/deferred", deferred)
    srv = live(app)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", srv.port))
    sock.setblocking(False)
    srv.run_until(lambda: len(srv.server.connections) == 1)
    sock.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\nGET /deferred HTTP/1.1\r\nHost: t\r\n\r\n")
    srv.run_until(lambda: paused_when_answered)
    assert paused_when_answered == [True]  # the case under test
    received = bytearray()

    def drained_to_the_end() -> bool:
        try:
            while True:
                data = sock.recv(1 << 20)
                if not data:
                    return True
                received.extend(data)
        except BlockingIOError:
            return received.endswith(b"\r\n\r\nstream")

    srv.run_until(drained_to_the_end, timeout_s=20)
    data = bytes(received)
    assert len(data) > len(big) and data.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert data.index(b"Content-Length: 6\r\n") > len(big)


def test_half_close_during_a_deferred_response_abandons_it_and_closes_at_once(live):
    # The client's EOF arrives while a deferred response is pending: the
    # client left (issue 15; nginx logs 499 and uvicorn disconnects the same
    # way).  The request is abandoned, its late response dropped, the
    # requests behind it never run, and the connection closes at once (not
    # at the keep-alive timeout, nor when the app answers).
    def slow(request):
        srv.reactor.call_later(0.05, request.respond, Response(200, body=b"slow"))
        return None

    app = App()
    app.add_route("/slow", slow)
    app.add_route("/a", lambda request: Response(200, body=b"a"))
    srv = live(app, keepalive_timeout_s=30.0)
    sock = srv.connect()
    sock.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n" + b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
    sock.shutdown(socket.SHUT_WR)
    started = time.monotonic()
    data = srv.read_until(sock, lambda data: False, timeout_s=10)  # until the server closes
    assert time.monotonic() - started < 5
    assert data == b""


def test_replacing_the_app_takes_effect(live):
    first, second = App(), App()
    first.add_route("/", lambda request: Response(200, body=b"first"))
    second.add_route("/", lambda request: Response(200, body=b"second"))
    srv = live(first)
    srv.server.app = second
    sock = srv.connect()
    sock.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert srv.read_until(sock, lambda data: data.endswith(b"second")).endswith(b"second")
    srv.server.app = lambda request: Response(200, body=b"plain function")
    sock.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert srv.read_until(sock, lambda data: data.endswith(b"function")).endswith(b"plain function")


def test_a_header_the_wire_would_refuse_gets_a_500_not_an_empty_reply(live, caplog):
    """A control character in a field value: refused where the response is built, answered with a 500."""
    from evloop.wsgi import WSGIApp

    app = App()

    @app.route("/native")
    def native(request):
        return Response(200, [("X-A", "a\x01b")], b"hi")

    def wsgi_app(environ, start_response):
        start_response("200 OK", [("X-A", "a\x01b")])
        return [b"hi"]

    for server_app, path in ((app, "/native"), (WSGIApp(wsgi_app), "/")):
        srv = live(server_app)
        sock = srv.connect()
        with caplog.at_level(logging.ERROR):
            sock.send(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            reply = srv.read_until(sock, lambda data: b"\r\n\r\n" in data)
        assert reply.startswith(b"HTTP/1.1 500 "), reply
        assert "invalid header value for X-A" in caplog.text
        sock.send(b"GET /native HTTP/1.1\r\nHost: t\r\n\r\n" if path == "/native" else b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        again = srv.read_until(sock, lambda data: data.count(b"HTTP/1.1 500") >= 1 and data.endswith(b"\n"))
        assert again.startswith(b"HTTP/1.1 500 ")  # the connection lives on
        sock.close()
        caplog.clear()


@pytest.mark.parametrize("access_log", [False, True])
def test_a_response_changed_after_it_was_built_gets_a_500(live, caplog, access_log):
    """The writer refuses it while nothing has gone out: a 500, and the connection goes on."""
    app = App()

    @app.route("/changed")
    def changed(request):
        response = Response(200, [("X-A", "fine")], b"hi")
        response.headers.append(("X-B", "a\x01b"))  # past Response's own check
        return response

    @app.route("/ok")
    def ok(request):
        return Response(body=b"ok")

    srv = live(app, access_log=access_log)  # off: the burst path; on: the general one
    sock = srv.connect()
    with caplog.at_level(logging.ERROR):
        sock.send(b"GET /changed HTTP/1.1\r\nHost: t\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\n\r\n")
        reply = srv.read_until(sock, lambda data: data.endswith(b"ok"))
    assert reply.startswith(b"HTTP/1.1 500 "), reply
    assert b"HTTP/1.1 200 OK" in reply
    assert "invalid header value for X-B" in caplog.text
    sock.close()
