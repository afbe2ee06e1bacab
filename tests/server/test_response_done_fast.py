"""A complete keep-alive response's end (``HTTPProtocol._send``'s steps of ``_response_done``, without its call)
checked against the plain path.

The same requests go to a route that answers with complete bytes (the fast
path: nothing to close, no body sink) and to one whose body is an iterable of
the same bytes with its Content-Length declared (the general path: the body is
pulled, and ``_response_done`` ends the response).  On the wire the answers
are the same bytes, so everything after them must be the same too: the
connection's phase, its count of responses, its deadline (a manual clock: no
time passes), its parser's state, the access log's lines and the metrics.  A
burst held up past the pipelining limit behind a deferred answer stops
reading, and the end of that answer resumes it: a path that forgot to would
leave the burst unanswered.
"""

from __future__ import annotations

import logging
import re
import socket
import time

import pytest

from evloop import ManualClock
from evloop.app import App, Response
from evloop.reactor import Reactor
from evloop.server import Server, ServerConfig
from evloop.server.access_log import access_logger

BODY = b"hello, fast and plain"


def _whole() -> Response:
    return Response(body=BODY, content_type="text/plain")


def _drawn() -> Response:
    return Response(headers={"Content-Type": "text/plain", "Content-Length": str(len(BODY))}, body=iter([BODY]))


def _app(pending: list) -> App:
    app = App()
    app.add_route("/whole", lambda request: _whole())
    app.add_route("/drawn", lambda request: _drawn())

    def later(request):  # answered by the test, once the server stopped reading the burst behind it
        pending.append(request)

    app.add_route("/later", later)
    return app


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def access_lines():
    """The access log's lines, through logging (the direct route needs evloop's own handler alone)."""
    saved = (list(access_logger.handlers), access_logger.propagate, access_logger.level)
    lines = _Lines()
    access_logger.handlers[:] = [lines]
    access_logger.propagate = False
    access_logger.setLevel(logging.INFO)
    yield lines
    access_logger.handlers[:], access_logger.propagate = saved[0], saved[1]
    access_logger.setLevel(saved[2])


def _state(server: Server) -> list[tuple]:
    return [(p.phase.name, p.requests_served, p.deadline, p._arm_pending, p.request, p.head, p._reading_paused,
             p._write_paused, p._status, p._body_bytes, p._deadlines is not None and p._deadlines.timeout_s,
             p.conn.their_state, p.conn.our_state, p.conn.awaits_next_request, p.conn.keep_alive)
            for p in server.connections]


def _serve(path: str, count: int, settings: dict, access_lines, first: str = "") -> tuple[bytes, list, list, object]:
    """``count`` pipelined GETs of ``path`` on one connection (after ``first``, a GET of /later answered once the
    server has stopped reading, with what ``path`` answers): the answers, the state after, the log, the metrics."""
    access_lines.lines.clear()
    pending: list = []
    with Reactor(clock=ManualClock()) as reactor:
        server = Server(_app(pending), reactor, ServerConfig(port=0, **settings))
        server.start()
        sock = socket.create_connection(("127.0.0.1", server.listeners[0].port), timeout=5)
        sock.setblocking(False)
        burst = first.encode() + f"GET {path}?q=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode() * count
        answers = count + (1 if first else 0)
        sent, got = 0, bytearray()
        deadline = time.monotonic() + 10
        while got.count(b"HTTP/1.1 200 OK") < answers:  # the burst sent as the server takes it, answers read
            assert time.monotonic() < deadline, f"{got.count(b'HTTP/1.1 200 OK')} of {answers} answered"
            if sent < len(burst):
                try:
                    sent += sock.send(burst[sent:sent + 65536])
                except BlockingIOError:
                    pass
            try:
                got.extend(sock.recv(1 << 20))
            except BlockingIOError:
                pass
            if pending and all(p._reading_paused for p in server.connections):
                pending.pop().respond(_whole() if path == "/whole" else _drawn())
            reactor.run_once(0.01)
        return _ended(reactor, server, sock, path, got, access_lines)


def _ended(reactor: Reactor, server: Server, sock: socket.socket, path: str, got: bytearray,
           access_lines) -> tuple[bytes, list, list, object]:
    """A run's outcome (the answers, the state after, the log, the metrics), the server and the socket closed."""
    state = _state(server)
    metrics = server.metrics.counts.counters() if server.metrics is not None else None
    sock.close()
    server.close()
    reactor.run_once(0)
    # The timestamp (the wall clock's) differs from run to run; the paths are the same length.
    lines = [line.split("[")[0] + line.split("]")[1].replace(path, "PATH") for line in access_lines.lines]
    return re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: -", bytes(got)), state, lines, metrics  # the wall clock's too


@pytest.mark.parametrize("settings", [
    {"access_log": False},
    {},  # the access log on, as evloop-demo
    {"access_log": False, "metrics_path": "/metrics"},
], ids=["plain", "access-log", "metrics"])
@pytest.mark.parametrize("count", [1, 3, 2_000], ids=["one", "pipelined", "a-burst"])
def test_a_complete_response_ends_as_a_pulled_one_does(settings, count, access_lines):
    fast = _serve("/whole", count, settings, access_lines)
    plain = _serve("/drawn", count, settings, access_lines)
    answers, state, lines, metrics = fast
    assert answers.count(b"HTTP/1.1 200 OK") == count
    assert state and state[0][0] == "IDLE" and state[0][1] == count
    assert len(lines) == (count if settings.get("access_log", True) else 0)
    assert fast == plain


@pytest.mark.parametrize("settings", [{"access_log": False}, {}], ids=["plain", "access-log"])
def test_the_end_of_a_response_resumes_reading_a_burst_it_held_up(settings, access_lines):
    """A deferred answer holds up a burst past the pipelining limit: reading stops, and its end starts it again."""
    first = "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
    fast = _serve("/whole", 20_000, settings, access_lines, first)
    plain = _serve("/drawn", 20_000, settings, access_lines, first)
    assert fast[0].count(b"HTTP/1.1 200 OK") == 20_001 and fast[1][0][1] == 20_001
    assert fast == plain


def _one_at_a_time(path: str, count: int, settings: dict, access_lines) -> tuple[bytes, list, list, object, list]:
    """``count`` GETs of ``path``, each sent once the last is answered (a read holds one request): the answers,
    the state after, the log, the metrics, and the deadline after each answer."""
    access_lines.lines.clear()
    clock = ManualClock()
    with Reactor(clock=clock) as reactor:
        server = Server(_app([]), reactor, ServerConfig(port=0, **settings))
        server.start()
        sock = socket.create_connection(("127.0.0.1", server.listeners[0].port), timeout=5)
        sock.setblocking(False)
        got, deadlines = bytearray(), []
        give_up = time.monotonic() + 10
        for i in range(count):
            clock.advance(1.0)  # each answer's keep-alive deadline starts from its own time
            sock.send(f"GET {path}?q={i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            while got.count(b"HTTP/1.1 200 OK") <= i:
                assert time.monotonic() < give_up, f"{got.count(b'HTTP/1.1 200 OK')} of {count} answered"
                reactor.run_once(0.01)
                try:
                    got.extend(sock.recv(1 << 20))
                except BlockingIOError:
                    pass
            deadlines.append([p.deadline for p in server.connections])
        return (*_ended(reactor, server, sock, path, got, access_lines), deadlines)


@pytest.mark.parametrize("settings", [{"access_log": False}, {}], ids=["plain", "access-log"])
def test_a_response_alone_in_its_read_is_written_and_armed_as_finish_does(settings, access_lines):
    """The read's one response, in IDLE's queue already, is written and its keep-alive deadline armed by ``_send``
    itself (``_process`` then skips ``_finish``): the same bytes, state and deadlines as the pulled body's path."""
    fast = _one_at_a_time("/whole", 5, settings, access_lines)
    plain = _one_at_a_time("/drawn", 5, settings, access_lines)
    assert fast[0].count(b"HTTP/1.1 200 OK") == 5
    keepalive_s = ServerConfig().keepalive_timeout_s
    assert [d[0] for d in fast[4]] == [i + 1.0 + keepalive_s for i in range(5)]  # armed from each answer's time
    assert fast == plain
