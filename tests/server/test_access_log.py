"""The access log: its line, its two routes (direct and through logging), and when it is written.

A real server on real sockets where the bytes matter; a manual clock where
time does.  The direct route (lines appended to the buffered handler) is
checked against the plain one (``logger.info`` through the same handler).
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import time
from types import SimpleNamespace

import pytest

from evloop import ManualClock
from evloop.app import App, Response
from evloop.logline import format_access_log
from evloop.reactor import Reactor
from evloop.server import AccessLog, BufferedAccessHandler, HTTPProtocol, Server, ServerConfig
from evloop.server.access_log import access_logger
from evloop.server.wallclock import WallClock


class CountingStream(io.StringIO):
    """A text stream that counts its writes (one per flush of the handler)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def access_handler():
    """evloop.access as evloop-demo sets it up, into a stream; the logger restored afterwards.

    pytest attaches its capture handlers to non-propagating loggers when a
    test starts; ``_only_ours`` takes them off again, or the server would
    rightly send every line through ``logging`` for them.
    """
    saved = (list(access_logger.handlers), access_logger.propagate, access_logger.level)
    stream = CountingStream()
    handler = BufferedAccessHandler(stream)
    access_logger.handlers[:] = [handler]
    access_logger.propagate = False
    access_logger.setLevel(logging.INFO)
    yield handler, stream
    access_logger.handlers[:], access_logger.propagate = saved[0], saved[1]
    access_logger.setLevel(saved[2])


def _only_ours(handler: BufferedAccessHandler) -> None:
    access_logger.handlers[:] = [handler]


def _app() -> App:
    app = App()
    app.add_route("/", lambda request: Response(body=b"hello"))
    app.add_route("/none", lambda request: Response(204))
    return app


def _serve(reactor: Reactor) -> Server:
    server = Server(_app(), reactor, ServerConfig(port=0))
    server.start()
    return server


def _pump(reactor: Reactor, condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        reactor.run_once(0.01)


def _exchange(reactor: Reactor, port: int, requests: bytes, count: int) -> bytes:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(False)
    sock.sendall(requests)
    got = bytearray()

    def answered() -> bool:
        try:
            got.extend(sock.recv(65536))
        except BlockingIOError:
            pass
        return got.count(b"HTTP/1.1 ") == count

    _pump(reactor, answered)
    sock.close()
    return bytes(got)


def test_a_line_per_response_written_once_the_loop_goes_idle(access_handler):
    handler, stream = access_handler
    _only_ours(handler)
    with Reactor() as reactor:
        server = _serve(reactor)
        port = server.listeners[0].port
        _exchange(reactor, port, b"GET /?a=%22 HTTP/1.1\r\nHost: x\r\n\r\nGET /none HTTP/1.1\r\nHost: x\r\n\r\n", 2)
        _pump(reactor, lambda: stream.getvalue().count("\n") == 2)  # no second of waiting: the loop went idle
        first, second = stream.getvalue().splitlines()
        assert first.startswith("127.0.0.1 - - [") and '"GET /?a=%22 HTTP/1.1" 200 5 ' in first
        assert '"GET /none HTTP/1.1" 204 - ' in second
        assert stream.writes == 1  # both lines in one write
        server.close()
        reactor.run_once(0)


def test_the_direct_route_writes_what_logging_would(access_handler):
    handler, stream = access_handler
    _only_ours(handler)
    requests = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3
    with Reactor() as reactor:
        server = _serve(reactor)
        assert server.access_log is not None and server.access_log._direct is handler
        _exchange(reactor, server.listeners[0].port, requests, 3)
        server.close()  # flushes
        reactor.run_once(0)
    direct = stream.getvalue()
    stream.seek(0)
    stream.truncate()
    handler.setFormatter(logging.Formatter("%(message)s"))  # a formatter of its own: records go through logging
    with Reactor() as reactor:
        server = _serve(reactor)
        assert server.access_log is not None and server.access_log._direct is None
        _exchange(reactor, server.listeners[0].port, requests, 3)
        server.close()
        reactor.run_once(0)
    through_logging = stream.getvalue()

    def shape(text: str) -> list[str]:  # the timestamp and the duration differ from run to run
        return [line.split("[")[0] + line.split("]")[1].rsplit(" ", 1)[0] for line in text.splitlines()]

    assert len(direct.splitlines()) == 3 and shape(direct) == shape(through_logging)


def test_users_can_reconfigure_the_logger(access_handler, caplog):
    handler, stream = access_handler
    _only_ours(handler)
    access_logger.handlers[:] = []
    access_logger.propagate = True  # as a user's dictConfig might leave it: records reach the root's handlers
    with caplog.at_level(logging.INFO, logger="evloop.access"), Reactor() as reactor:
        server = _serve(reactor)
        _exchange(reactor, server.listeners[0].port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1)
        server.close()
        reactor.run_once(0)
    assert [r.name for r in caplog.records if '"GET / HTTP/1.1" 200 5' in r.getMessage()] == ["evloop.access"]
    assert stream.getvalue() == ""


def test_at_least_once_a_second_when_the_loop_never_goes_idle(access_handler):
    handler, stream = access_handler
    _only_ours(handler)
    clock = ManualClock()
    with Reactor(clock=clock) as reactor:
        wall = WallClock()
        log = AccessLog(reactor, wall)

        def busy() -> None:  # always something ready: the loop is never idle
            reactor.call_soon(busy)

        reactor.call_soon(busy)
        log.log(("h", 1), _head("GET", "/"), 200, 5, 0.001)
        for _ in range(5):
            reactor.run_once(0)
        assert stream.getvalue() == ""  # waiting: busy, and less than a second
        clock.advance(1.0)
        reactor.run_once(0)
        assert stream.getvalue().count("\n") == 1
        for second in range(2, 5):  # still never idle: one line a second, each out within the second
            log.log(("h", 1), _head("GET", "/"), 200, 5, 0.001)
            clock.advance(1.0)
            reactor.run_once(0)
            assert stream.getvalue().count("\n") == second
        assert len(reactor._idle) == 1  # one idle flush waits, not one a second
        log.close()


@contextlib.contextmanager
def _first_line_on_a_manual_clock(access_handler):
    """evloop's handler alone, an AccessLog on a manual clock's reactor, and its first line (GET /1) logged."""
    handler, stream = access_handler
    _only_ours(handler)
    clock = ManualClock()
    with Reactor(clock=clock) as reactor:
        log = AccessLog(reactor, WallClock())
        log.log(("h", 1), _head("GET", "/1"), 200, 5, 0.001)
        yield handler, stream, clock, reactor, log


def test_a_reconfiguration_takes_effect_at_the_once_a_second_flush(access_handler):
    """Idle flushes only write; the route (direct, or through logging) is chosen again each second."""
    with _first_line_on_a_manual_clock(access_handler) as (handler, stream, clock, reactor, log):
        handler.setFormatter(logging.Formatter("F %(message)s"))  # records must go through logging now
        reactor.run_once(0)  # idle: the line is written, the route stays
        log.log(("h", 1), _head("GET", "/2"), 200, 5, 0.001)
        clock.advance(1.0)
        reactor.run_once(0)  # the once-a-second flush: written, and the route chosen again
        log.log(("h", 1), _head("GET", "/3"), 200, 5, 0.001)
        log.close()
    lines = stream.getvalue().splitlines()
    assert ['"GET /1 ' in lines[0], '"GET /2 ' in lines[1], '"GET /3 ' in lines[2]] == [True] * 3
    assert [line.startswith("F ") for line in lines] == [False, False, True]


def test_a_full_buffer_is_written_at_once_and_memory_stays_bounded(access_handler):
    handler, stream = access_handler
    _only_ours(handler)
    with Reactor() as reactor:
        log = AccessLog(reactor, WallClock())
        for _ in range(handler.capacity_lines * 3 + 7):
            log.log(("h", 1), _head("GET", "/"), 200, 5, 0.001)
            assert handler.waiting_lines() < handler.capacity_lines
        assert stream.writes == 3 and stream.getvalue().count("\n") == handler.capacity_lines * 3
        log.close()  # shutdown: the rest
        assert stream.getvalue().count("\n") == handler.capacity_lines * 3 + 7


def test_durations_not_remembered_end_lines_as_formatting_them_would(access_handler):
    """A duration's text is remembered by whole microseconds, and a new one is joined from its whole
    milliseconds' text (remembered too, both bounded): every line ends with the text that formatting the
    microseconds makes."""
    handler, stream = access_handler
    _only_ours(handler)
    durations = [i * 0.000997 for i in range(5000)] + [i * 1.000013 for i in range(5000)]
    durations += [0.0, 1e-6, 0.000999, 0.001, 0.999999, 1.0, 59.5] * 2
    # Around the end of the remembered list (10 ms) and the first milliseconds' texts.
    durations += [0.009999, 0.0099999, 0.01, 0.010001, 0.0100009, 0.002, 0.0020001, 0.0119999] * 2
    head = _head("GET", "/")
    with Reactor() as reactor:
        log = AccessLog(reactor, WallClock())
        for duration_s in durations:
            log.log(("h", 1), head, 200, 5, duration_s)
        log.close()
    expected = []
    for duration_s in durations:
        us = int(duration_s * 1_000_000)
        expected.append(f"{us // 1_000_000}.{us % 1_000_000:06d}")
    assert [line.rsplit(" ", 1)[1] for line in stream.getvalue().splitlines()] == expected


def test_without_a_server_the_handler_writes_each_line():
    stream = CountingStream()
    handler = BufferedAccessHandler(stream)
    record = logging.makeLogRecord({"msg": "a line", "levelno": logging.INFO})
    handler.handle(record)
    assert stream.getvalue() == "a line\n"


def test_a_failing_log_file_is_reported_once_until_writing_works_again(capsys, caplog):
    """A full disk (``/dev/full``: every write fails with ENOSPC) is reported with its traceback at the first
    failed write, only counted after it, and said to be over at the next write that works."""
    full = open("/dev/full", "w")  # closed below (its buffer can never be written)
    handler = BufferedAccessHandler(full)
    for n in range(5):
        handler.add_line(f"line {n}")  # no server attached: each line is a write
    reports = capsys.readouterr().err
    assert reports.count("--- Logging error ---") == 1 and "No space left on device" in reports
    assert (handler.failed_writes, handler.failed_lines) == (5, 5)
    handler.stream = io.StringIO()
    with caplog.at_level(logging.WARNING, logger="evloop.server"):
        handler.add_line("line 5")
    assert handler.stream.getvalue() == "line 5\n"
    assert [r.getMessage() for r in caplog.records] == [
        "access log: writing works again after 5 failed writes (5 lines, which may be lost)"]
    assert (handler.failed_writes, handler.failed_lines) == (0, 0)
    with contextlib.suppress(OSError):
        full.close()


def test_remembered_line_prefixes_give_format_access_log_lines(access_handler):
    """AccessLog remembers each line's prefix for the current second (bounded), and joins a new one
    from remembered parts (start, status part): every line is still what the plain ``format_access_log``
    makes."""
    handler, stream = access_handler
    _only_ours(handler)
    cases = [("h", "GET", "/", "HTTP/1.1", 200, 5), (None, "HEAD", "/", "HTTP/1.0", 304, 0),
             ("h", "GET", '/"x\\\x1b\u00e9', "HTTP/1.1", 400, 0), ("h", "GET", "/", "HTTP/1.1", 404, 5),
             ('a b"\\', "GET", "/q", "HTTP/1.1", 200, 1)]  # a client's host escaped in the line's start
    cases += [("h", "GET", f"/{i}", "HTTP/1.1", 200, i) for i in range(600)]  # past the bound
    cases += [(f"10.0.{i // 200}.{i % 200}", "GET", "/", "HTTP/1.1", 200, 5) for i in range(300)]  # starts' bound
    # A body that is not sent (HEAD, 204, 304) is logged as none, also right after a line that sent the same
    # status and length (the status part is worked out again for a new method, not only a new status or length).
    cases += [("h", "GET", "/b", "HTTP/1.1", 200, 7), ("h", "HEAD", "/b", "HTTP/1.1", 200, 7),
              ("h", "GET", "/b", "HTTP/1.1", 200, 7), ("h", "GET", "/b", "HTTP/1.1", 204, 7),
              ("h", "GET", "/b", "HTTP/1.1", 304, 7), ("h", "HEAD", "/c", "HTTP/1.1", 200, 7),
              ("h", "GET", "/c", "HTTP/1.1", 200, 7)]
    expected = []
    # One head object per case, as the parser hands out for a repeated head
    # (the identity path), and a fresh one between (the lookup path).
    heads = [_head(method, target, version) for _, method, target, version, _, _ in cases]
    with Reactor() as reactor:
        wall = WallClock()
        log = AccessLog(reactor, wall)
        for now in (1767225600.0, 1767225601.0):
            wall.refresh(now)  # a new second: new prefixes
            when = wall.log_time
            for fresh in (False, True, False):
                for i, (case, head) in enumerate(zip(cases, heads, strict=True)):
                    host, method, target, version, status, size = case
                    client = (host, 5000) if host is not None else None
                    for _ in range(2):  # the second is the line before's connection and head
                        log.log(client, _head(method, target, version) if fresh else head, status, size, i / 7)
                        expected.append(format_access_log(host, method, target, version, status,
                                                          _logged_size(method, status, size), i / 7, when))
        log.close()
    assert stream.getvalue().splitlines() == expected


def _head(method: str, target: str, version: str = "HTTP/1.1") -> SimpleNamespace:
    """What the access log reads of a ``RequestHead``."""
    return SimpleNamespace(method=method, target=target, version=version, is_head=method == "HEAD")


def _logged_size(method: str, status: int, body_bytes: int) -> int:
    """The size a line shows for a response whose body had ``body_bytes``: 0 when none was sent."""
    return 0 if method == "HEAD" or status in (204, 304) else body_bytes


class _Transport:
    peername = ("127.0.0.1", 40000)
    sockname = ("127.0.0.1", 8080)

    def write(self, data: bytes) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def test_the_duration_counts_from_the_read_that_completed_the_head(access_handler):
    """A head in two reads counts from the second; requests that arrived
    together (pipelined) count from their read, so the second one's duration
    includes the time the first one took."""
    handler, stream = access_handler
    _only_ours(handler)
    clock = ManualClock()
    request = b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
    app = App()

    def slow(request):
        clock.advance(0.125)
        return Response(body=b"slow")

    app.add_route("/slow", slow)
    with Reactor(clock=clock) as reactor:
        server = Server(app, reactor, ServerConfig(port=0))
        protocol = HTTPProtocol(server)
        protocol.connection_made(_Transport())  # type: ignore[arg-type]
        protocol.data_received(request[:10])
        clock.advance(0.25)
        protocol.data_received(request[10:] + request)
        assert server.access_log is not None
        server.access_log.flush()
    durations = [line.rsplit(" ", 1)[1] for line in stream.getvalue().splitlines()]
    assert durations == ["0.125000", "0.250000"]


def test_idle_flushes_are_spaced_so_bursts_share_a_write(access_handler):
    with _first_line_on_a_manual_clock(access_handler) as (_, stream, clock, reactor, log):
        reactor.run_once(0)  # idle: written at once (nothing was written lately)
        assert stream.writes == 1
        clock.advance(0.005)
        log.log(("h", 1), _head("GET", "/2"), 200, 5, 0.001)
        log.log(("h", 1), _head("GET", "/3"), 200, 5, 0.001)
        for _ in range(3):
            reactor.run_once(0)  # idle, but 5 ms after the last write: they wait
        assert stream.writes == 1
        clock.advance(0.015)  # 20 ms after the last write
        for _ in range(3):
            reactor.run_once(0)
        assert stream.writes == 2 and stream.getvalue().count("\n") == 3
        log.close()


def test_lines_soon_after_a_write_go_out_at_the_spacing_even_if_the_loop_is_never_idle(access_handler):
    with _first_line_on_a_manual_clock(access_handler) as (_, stream, clock, reactor, log):
        reactor.run_once(0)  # idle: written at once (nothing was written lately)
        assert stream.writes == 1

        def busy() -> None:  # from now on always something ready: the loop is never idle
            reactor.call_soon(busy)

        reactor.call_soon(busy)
        clock.advance(0.005)
        log.log(("h", 1), _head("GET", "/2"), 200, 5, 0.001)
        reactor.run_once(0)
        assert stream.writes == 1  # 5 ms after the last write: it waits
        clock.advance(0.015)
        reactor.run_once(0)  # the spacing's end: written though the loop is busy, not a second later
        assert stream.writes == 2 and stream.getvalue().count("\n") == 2
        log.close()


def test_the_line_before_is_reused_only_for_the_same_client_host_head_status_and_size(access_handler):
    """Another connection from the line before's host takes its prefix too (the line shows the host only);
    another host, or a client that is not an address, does not."""
    handler, stream = access_handler
    _only_ours(handler)
    head = _head("GET", "/")
    calls = [(("h", 1), 200, 5), (("h", 1), 200, 5), (("h", 2), 200, 5), (("h", 1), 404, 5), (("h", 1), 404, 6),
             (("g", 1), 404, 6), (("h", 1), 404, 6), (None, 404, 6), (("h", 3), 404, 6), (None, 404, 6),
             (("g", 2), 404, 6), (("g", 1), 404, 6)]
    with Reactor() as reactor:
        wall = WallClock()
        wall.refresh(1767225600.0)
        when = wall.log_time
        log = AccessLog(reactor, wall)
        for client, status, size in calls:
            log.log(client, head, status, size, 0.5)
        log.close()
    assert stream.getvalue().splitlines() == [
        format_access_log(client[0] if client else None, "GET", "/", "HTTP/1.1", status, size, 0.5, when)
        for client, status, size in calls]


def test_one_connections_lines_with_new_targets_give_format_access_log_lines(access_handler):
    """A connection's client object again (its host taken as the line before's, _prefix), with a new target
    each line, across a new second and between other clients' lines: every line is format_access_log's."""
    handler, stream = access_handler
    _only_ours(handler)
    ours, other = ("h", 1), ("g", 2)
    expected = []
    with Reactor() as reactor:
        wall = WallClock()
        log = AccessLog(reactor, wall)
        for i in range(12):
            wall.refresh(1767225600.0 + i // 4)
            when = wall.log_time
            client = other if i % 5 == 4 else ours
            log.log(client, _head("GET", f"/items/{i}"), 200, 5, 0.5)
            expected.append(format_access_log(client[0], "GET", f"/items/{i}", "HTTP/1.1", 200, 5, 0.5, when))
        log.close()
    assert stream.getvalue().splitlines() == expected


def test_a_new_second_gives_the_line_before_s_request_its_new_time(access_handler):
    """The line before's prefix is taken without comparing times: the wall clock's refresh (once a second)
    makes the access log join the next one again, with the new time."""
    handler, stream = access_handler
    _only_ours(handler)
    head, client = _head("GET", "/"), ("h", 1)
    expected = []
    with Reactor() as reactor:
        wall = WallClock()
        log = AccessLog(reactor, wall)
        for second in range(3):
            wall.refresh(1767225600.0 + second)
            for _ in range(2):
                log.log(client, head, 200, 5, 0.5)
                expected.append(format_access_log("h", "GET", "/", "HTTP/1.1", 200, 5, 0.5, wall.log_time))
        log.close()
    assert stream.getvalue().splitlines() == expected and len(set(expected)) == 3


def test_a_new_handler_s_capacity_bounds_the_lines_after_the_once_a_second_flush(access_handler):
    """The route chosen again (the once-a-second flush) takes the new handler's capacity: its lines are
    written when that many wait, while the loop stays busy, and a flush is scheduled for the rest."""
    handler, stream = access_handler
    _only_ours(handler)
    clock = ManualClock()
    with Reactor(clock=clock) as reactor:
        log = AccessLog(reactor, WallClock())

        def busy() -> None:
            reactor.call_soon(busy)

        reactor.call_soon(busy)
        log.log(("h", 1), _head("GET", "/"), 200, 5, 0.001)
        small_stream = CountingStream()
        small = BufferedAccessHandler(small_stream, capacity_lines=3)
        access_logger.handlers[:] = [small]
        clock.advance(1.0)
        reactor.run_once(0)  # the once-a-second flush: the first line written, the small handler chosen
        assert stream.getvalue().count("\n") == 1
        for n in range(1, 8):
            log.log(("h", 1), _head("GET", "/"), 200, 5, 0.001)
            assert small.waiting_lines() == n % 3
        assert small_stream.writes == 2
        clock.advance(1.0)
        reactor.run_once(0)
        assert small_stream.getvalue().count("\n") == 7
        log.close()
