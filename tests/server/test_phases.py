"""The connection's phase machine: every (phase, event) pair, and every deadline on a manual clock.

No sockets and no sleeps: an ``HTTPProtocol`` of a real ``Server`` talks to
a fake transport that records what it is asked to do, and time moves only
when the test advances the reactor's ``ManualClock``.
"""

from __future__ import annotations

import typing

import pytest

from evloop import ManualClock
from evloop.app import App, Response
from evloop.reactor import Reactor
from evloop.server import HTTPProtocol, Phase, PhaseError, Server, ServerConfig
from evloop.server.config import LINGER_S, LINGER_TOTAL_S
from evloop.server.phases import TRANSITIONS, PhaseEvent

EVENTS: tuple[str, ...] = typing.get_args(PhaseEvent)
HEADER_S, KEEPALIVE_S, BODY_S, SEND_S, GRACEFUL_S, HANDLER_S = 10.0, 5.0, 30.0, 20.0, 40.0, 50.0


class FakeTransport:
    """What HTTPProtocol needs of a transport; a close ends the connection on the next pass."""

    peername = ("127.0.0.1", 40000)
    sockname = ("127.0.0.1", 8080)

    def __init__(self, reactor: Reactor, protocol: HTTPProtocol) -> None:
        self.reactor = reactor
        self.protocol = protocol
        self.written = bytearray()
        self.buffered = 0  # what get_write_buffer_size reports: the test plays the kernel
        self.closing = self.aborted = self.eof_written = self.reading_paused = False
        self.sendfile_calls: list[tuple[typing.Any, ...]] = []

    def write(self, data: bytes) -> None:
        self.written += data
        if self.buffered > 65536:
            self.protocol.pause_writing()  # as the real one does above its high water mark

    def writelines(self, parts: list[bytes]) -> None:
        for part in parts:
            self.written += part
        if self.buffered > 65536:
            self.protocol.pause_writing()  # as the real one does above its high water mark

    def sendfile(self, *args: typing.Any) -> None:
        self.sendfile_calls.append(args)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.reactor.call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        self.close()


def _app(deferred: list[typing.Any]) -> App:
    app = App()
    app.add_route("/", lambda request: Response(body=b"hi"))
    app.add_route("/big", lambda request: Response(body=b"x" * 200_000))
    app.add_route("/echo", lambda request: Response(body=request.body), methods=["POST"])
    app.add_route("/stream", lambda request: Response(body=iter([b"a" * 1000] * 3 + [b"b" * 300_000])))

    def later(request):
        deferred.append(request)

    app.add_route("/later", later)
    return app


class Harness:
    def __init__(self, **settings: typing.Any) -> None:
        self.clock = ManualClock()
        self.reactor = Reactor(clock=self.clock)
        self.deferred: list[typing.Any] = []
        config = ServerConfig(port=0, access_log=False, header_timeout_s=HEADER_S, keepalive_timeout_s=KEEPALIVE_S,
                              body_timeout_s=BODY_S, send_timeout_s=SEND_S, graceful_timeout_s=GRACEFUL_S,
                              **{"handler_timeout_s": HANDLER_S, **settings})
        self.server = Server(_app(self.deferred), self.reactor, config)
        self.protocol = HTTPProtocol(self.server)
        self.transport = FakeTransport(self.reactor, self.protocol)
        self.protocol.connection_made(self.transport)  # type: ignore[arg-type]

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        for _ in range(3):  # due timers, then what they scheduled
            self.reactor.run_once(0)

    def send(self, data: bytes) -> None:
        self.protocol.data_received(data)

    @property
    def phase(self) -> Phase:
        return self.protocol.phase

    def close(self) -> None:
        self.reactor.close()


@pytest.fixture
def h():
    harness = Harness()
    yield harness
    harness.close()


# ------------------------------------------------------------ every pair


@pytest.mark.parametrize("phase", list(Phase), ids=lambda p: p.name)
@pytest.mark.parametrize("event", EVENTS)
def test_every_phase_event_pair(h, phase, event):
    protocol = h.protocol
    protocol.phase = phase
    h.transport.buffered = 1  # a response waits in the write buffer (see the CLOSING test below)
    before = protocol.deadline
    h.clock.advance(1.0)
    if (phase, event) not in TRANSITIONS:
        with pytest.raises(PhaseError, match=f"{phase.name} has no transition on '{event}'"):
            protocol._to(event)
        assert protocol.phase is phase  # an illegal event changes nothing
        return
    protocol._to(event)
    protocol._finish()  # the end of the callback arms the deadline the transition asked for
    new, arm = TRANSITIONS[phase, event]
    assert protocol.phase is new
    timeout = h.server.phase_timeouts[new]
    if arm and timeout is not None:
        assert protocol.deadline == h.clock.time() + timeout  # the new phase's deadline
    else:
        assert protocol.deadline == before


def test_a_last_response_all_sent_arms_no_send_deadline(h):
    """CLOSING's send timeout guards queued bytes; with none, the transport closes at once."""
    h.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert h.phase is Phase.CLOSING and h.transport.closing
    assert h.protocol.deadline == h.clock.time() + HEADER_S  # the accept's header deadline, untouched


def test_the_table_covers_what_the_diagram_promises():
    assert TRANSITIONS[Phase.NEW, "head_started"] == (Phase.HEAD, False)  # counted from the accept
    assert all(TRANSITIONS[phase, "lost"][0] is Phase.CLOSED for phase in Phase)
    assert {event for _, event in TRANSITIONS} == set(EVENTS)  # no event is unused


# -------------------------------------------------------- reading deadlines


def test_a_silent_new_connection_is_closed_at_the_header_timeout_without_a_reply(h):
    h.advance(HEADER_S - 0.5)
    assert h.phase is Phase.NEW and not h.transport.closing
    h.advance(1.0)
    assert h.transport.closing and not h.transport.written
    assert h.phase is Phase.CLOSED


def test_a_head_begun_on_a_new_connection_must_end_within_the_header_timeout_of_the_accept(h):
    h.advance(HEADER_S - 2)
    h.send(b"GET / HTTP/1.1\r\nHo")
    assert h.phase is Phase.HEAD
    h.advance(1.5)
    assert h.phase is Phase.HEAD  # not a fresh header timeout from the first byte
    h.advance(1.0)
    assert h.transport.written.startswith(b"HTTP/1.1 408 ")
    assert h.phase is Phase.LINGER and h.transport.eof_written
    h.send(b"st: x\r\n\r\n")  # drained and ignored while lingering
    assert h.transport.written.count(b"HTTP/1.1") == 1
    h.advance(LINGER_S - 0.5)
    assert not h.transport.aborted
    h.advance(1.0)
    assert h.transport.aborted and h.phase is Phase.CLOSED


def test_an_error_answered_after_the_clients_eof_closes_at_once_without_a_drain(h):
    # A head cut short by the client's EOF gets its 400, and the transport is told to close (False from
    # eof_received: the real one sends the queued answer, then closes): nothing more can come, so there is
    # nothing to drain and no reason to hold the descriptor until the linger deadline.
    h.send(b"GET / HTTP/1.1\r\nHo")
    assert h.protocol.eof_received() is False
    assert h.transport.written.startswith(b"HTTP/1.1 400 ")
    # An error answered before the EOF still lingers, and the EOF then ends the drain.
    other = Harness()
    other.send(b"\x00garbage\r\n\r\n")
    assert other.transport.written.startswith(b"HTTP/1.1 400 ") and other.phase is Phase.LINGER
    assert other.protocol.eof_received() is False
    other.close()


def test_the_lingering_drain_lasts_while_bytes_come_up_to_its_total(h):
    # A client still sending a large upload after its error response keeps the drain going, so that
    # it can read the response (nginx's lingering_timeout and lingering_time); one that never stops
    # is cut off at the total.
    h.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
    h.advance(BODY_S + 0.5)
    assert h.transport.written.startswith(b"HTTP/1.1 408 ") and h.phase is Phase.LINGER
    gaps = 0
    while gaps * (LINGER_S - 0.5) < LINGER_TOTAL_S - LINGER_S:
        h.advance(LINGER_S - 0.5)
        assert not h.transport.aborted and h.phase is Phase.LINGER
        h.send(b"x" * 1000)  # more of the upload: drained, and the drain goes on
        gaps += 1
    h.advance(LINGER_S - 0.5)
    h.send(b"x" * 1000)
    h.advance(LINGER_S)  # past the total however recent the bytes
    assert h.transport.aborted and h.phase is Phase.CLOSED
    assert h.transport.written.count(b"HTTP/1.1") == 1


def test_the_lingering_drain_ends_after_a_silence(h):
    h.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
    h.advance(BODY_S + 0.5)
    assert h.phase is Phase.LINGER
    h.advance(1.0)
    h.send(b"more")
    h.advance(LINGER_S - 0.5)
    assert not h.transport.aborted  # 1.0 + LINGER_S - 0.5 after the response: the bytes moved the end
    h.advance(1.0)
    assert h.transport.aborted and h.phase is Phase.CLOSED


def test_keepalive_timeout_then_a_fresh_header_timeout_from_the_next_first_byte(h):
    h.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert h.transport.written.endswith(b"hi") and h.phase is Phase.IDLE
    h.advance(KEEPALIVE_S - 1)
    h.send(b"GET / HTTP/1.1\r\n")
    assert h.phase is Phase.HEAD
    h.advance(HEADER_S - 1)
    assert h.phase is Phase.HEAD  # the keep-alive deadline no longer applies
    h.send(b"Host: x\r\n\r\n")
    assert h.transport.written.count(b"HTTP/1.1 200") == 2 and h.phase is Phase.IDLE
    h.advance(KEEPALIVE_S + 0.5)
    assert h.transport.closing and h.phase is Phase.CLOSED
    assert b"408" not in h.transport.written


def test_the_body_timeout_is_rearmed_by_each_part_and_fires_without_progress(h):
    h.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nab")
    assert h.phase is Phase.BODY
    h.advance(BODY_S - 1)
    h.send(b"cd")
    h.advance(BODY_S - 1)
    assert h.phase is Phase.BODY and not h.transport.written
    h.advance(2)
    assert h.transport.written.startswith(b"HTTP/1.1 408 ") and h.phase is Phase.LINGER


def test_the_handler_timeout_answers_a_deferred_request_503_and_drops_the_late_response(h):
    h.send(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n")
    assert h.phase is Phase.DEFERRED
    h.advance(HANDLER_S - 0.5)
    assert h.phase is Phase.DEFERRED and h.transport.written == b""
    h.advance(1.0)
    assert h.transport.written.startswith(b"HTTP/1.1 503 ") and h.phase is Phase.IDLE
    request = h.deferred[0]
    assert request.abandoned
    sent = h.transport.written
    request.respond(Response(body=b"late"))  # accepted, and dropped quietly
    assert h.transport.written == sent and not h.transport.closing
    h.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # the connection goes on
    assert h.transport.written.endswith(b"hi")


def test_a_handler_timeout_of_zero_turns_it_off():
    h = Harness(handler_timeout_s=0)
    try:
        h.send(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n")
        h.advance(10 * max(HEADER_S, KEEPALIVE_S, BODY_S, SEND_S, HANDLER_S))
        assert h.phase is Phase.DEFERRED and not h.transport.closing
        h.deferred[0].respond(Response(body=b"late"))
        assert h.transport.written.endswith(b"late") and h.phase is Phase.IDLE
    finally:
        h.close()


def test_the_clients_eof_while_deferred_abandons_the_request_and_closes(h):
    h.send(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n")
    h.protocol.eof_received()
    assert h.phase is Phase.CLOSING and h.transport.closing
    assert h.deferred[0].abandoned
    h.deferred[0].respond(Response(body=b"late"))  # dropped quietly
    assert h.transport.written == b""


def test_a_lost_connection_while_deferred_abandons_the_request(h):
    h.send(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n")
    h.protocol.connection_lost(ConnectionResetError())
    assert h.phase is Phase.CLOSED and h.deferred[0].abandoned
    h.deferred[0].respond(Response(body=b"late"))
    assert h.transport.written == b""


def test_bytes_after_a_last_request_are_dropped_while_deferred_so_reading_goes_on(h):
    h.send(b"GET /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    for _ in range(100):
        h.send(b"x" * 10_000)
    assert not h.transport.reading_paused and h.protocol.conn.buffered_bytes == 0
    h.protocol.eof_received()  # seen, because reading went on
    assert h.deferred[0].abandoned and h.transport.closing


# --------------------------------------------------------- sending deadlines


def test_a_backed_up_response_waits_in_draining_bounded_by_the_send_timeout(h):
    h.transport.buffered = 150_000  # the write of the response goes above the high water mark
    h.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    assert h.phase is Phase.DRAINING
    assert h.transport.reading_paused  # nothing more is read while our answers wait
    h.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # waits: the peer is not taking our answers
    assert h.transport.written.count(b"HTTP/1.1 200") == 1
    h.transport.buffered = 100_000  # progress: the peer reads, slowly
    h.advance(SEND_S + 0.5)
    assert not h.transport.aborted and h.phase is Phase.DRAINING
    h.advance(SEND_S + 0.5)  # no progress since the last check
    assert h.transport.aborted


def test_drained_writes_return_to_idle_and_serve_what_waited(h):
    h.transport.buffered = 150_000
    h.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    assert h.phase is Phase.DRAINING
    h.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    h.transport.buffered = 0
    h.protocol.resume_writing()
    assert h.transport.written.count(b"HTTP/1.1 200") == 2 and h.phase is Phase.IDLE
    assert not h.transport.reading_paused
    h.advance(KEEPALIVE_S + 0.5)  # back on the keep-alive deadline
    assert h.transport.closing


def test_a_paused_stream_is_bounded_by_the_send_timeout(h):
    h.transport.buffered = 100_000  # the peer is not reading: the first batch pauses the stream
    h.send(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert h.phase is Phase.STREAMING
    assert h.transport.written.count(b"a" * 1000) == 3  # one batch: every chunk, not yet the end
    h.advance(SEND_S + 0.5)
    assert h.transport.aborted
    h.advance(0)
    assert h.phase is Phase.CLOSED


def test_the_last_response_closes_after_it_is_sent_bounded_by_the_send_timeout(h):
    h.transport.buffered = 500
    h.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert h.phase is Phase.CLOSING and h.transport.closing
    assert b"Connection: close" in h.transport.written


def test_a_file_response_is_in_sending_file_until_its_region_is_sent(tmp_path):
    from evloop.server.h1_streaming import SMALL_FILE_BYTES

    path = tmp_path / "f.bin"
    path.write_bytes(b"z" * (SMALL_FILE_BYTES + 1))  # a small file is sent as bytes (the test below)
    harness = Harness()
    try:
        from evloop.app import FileBody

        harness.server.app = lambda request: Response(body=FileBody(open(path, "rb")))  # noqa: SIM115
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert harness.phase is Phase.SENDING_FILE
        (file, offset, count, on_done), = harness.transport.sendfile_calls
        assert (offset, count) == (0, SMALL_FILE_BYTES + 1)
        on_done(None)
        assert harness.phase is Phase.IDLE and file.closed
    finally:
        harness.close()


def test_a_small_file_response_goes_with_its_head_and_closes_the_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"z" * 5000)
    harness = Harness()
    try:
        from evloop.app import FileBody

        opened = []
        harness.server.app = lambda request: Response(body=FileBody(opened.append(open(path, "rb")) or opened[-1]))
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert harness.phase is Phase.IDLE and not harness.transport.sendfile_calls
        assert harness.transport.written.endswith(b"Content-Length: 5000\r\n\r\n" + b"z" * 5000)
        assert opened[0].closed
    finally:
        harness.close()


# ------------------------------------------------------------ graceful drain


def test_graceful_shutdown_lets_the_request_in_flight_finish_then_closes():
    harness = Harness()
    try:
        done: list[bool] = []
        harness.send(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n")
        harness.server.connections.add(harness.protocol)
        harness.server.shutdown(lambda: done.append(True))
        assert harness.phase is Phase.DEFERRED and not harness.transport.closing
        harness.deferred[0].respond(Response(body=b"bye"))
        assert b"Connection: close" in harness.transport.written and harness.phase is Phase.CLOSING
        harness.advance(0)
        assert done == [True]
    finally:
        harness.close()


def test_graceful_timeout_aborts_what_is_still_in_flight():
    harness = Harness()
    try:
        done: list[bool] = []
        harness.send(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n")
        harness.server.shutdown(lambda: done.append(True))
        harness.advance(GRACEFUL_S - 1)
        assert not harness.transport.aborted and not done
        harness.advance(2)
        assert harness.transport.aborted and done == [True]
    finally:
        harness.close()


def test_graceful_shutdown_closes_an_idle_connection_at_once(h):
    h.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    h.server.shutdown()
    assert h.transport.closing and h.phase is Phase.CLOSING


# ------------------------------------------- deadlines shared by connections


def _connect(h: Harness) -> tuple[HTTPProtocol, FakeTransport]:
    """Another connection of the harness's server."""
    protocol = HTTPProtocol(h.server)
    transport = FakeTransport(h.reactor, protocol)
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


HELLO = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def test_idle_connections_close_each_at_its_own_keepalive_deadline_in_order(h):
    (a, a_sent), (b, b_sent), (c, c_sent) = _connect(h), _connect(h), _connect(h)
    for protocol in (a, b, c):
        protocol.data_received(HELLO)
        h.advance(1.0)  # a idle from 0, b from 1, c from 2
    a.data_received(HELLO)  # activity at 3: a's keep-alive deadline moves to 8
    assert a_sent.written.count(b"HTTP/1.1 200") == 2
    h.advance(2.5)  # 5.5
    assert not any(t.closing for t in (a_sent, b_sent, c_sent))  # a's first deadline (5) is gone
    h.advance(0.5)  # 6
    assert b_sent.closing and not a_sent.closing and not c_sent.closing
    h.advance(1.0)  # 7
    assert c_sent.closing and not a_sent.closing
    h.advance(0.5)  # 7.5
    assert not a_sent.closing
    h.advance(0.5)  # 8
    assert a_sent.closing and a.phase is Phase.CLOSED
    assert b"408" not in a_sent.written + b_sent.written + c_sent.written


def test_a_closed_connection_leaves_its_deadline_queue(h):
    queue = h.server.h1.deadlines[Phase.IDLE]
    protocol, transport = _connect(h)
    protocol.data_received(HELLO)
    assert protocol in queue
    transport.close()
    h.advance(0)
    assert protocol.phase is Phase.CLOSED and protocol not in queue
    assert protocol not in h.server.h1.deadlines[Phase.NEW]


def test_many_idle_connections_share_one_reactor_timer(h):
    timers_before = h.reactor.stats().timers_pending
    connections = [_connect(h) for _ in range(200)]
    for protocol, _transport in connections:
        protocol.data_received(HELLO)
    assert all(protocol.phase is Phase.IDLE for protocol, _ in connections)
    # The header and keep-alive queues' timers at most, not one timer per connection.
    assert h.reactor.stats().timers_pending <= timers_before + 2
    h.advance(KEEPALIVE_S)
    assert all(transport.closing for _, transport in connections)


def test_a_deadline_moved_behind_a_later_one_still_fires_on_time(h):
    """a's entry (5) expires after b's later one (9) was added: a's moved deadline (8) must not wait for b's."""
    (a, a_sent), (b, b_sent) = _connect(h), _connect(h)
    a.data_received(HELLO)  # a idle from 0
    h.advance(3.0)
    a.data_received(HELLO)  # a's deadline moves to 8
    h.advance(1.0)
    b.data_received(HELLO)  # b idle from 4: deadline 9
    h.advance(3.5)  # 7.5: a's first entry (5) expired and was added again for 8
    assert not a_sent.closing
    h.advance(0.5)  # 8
    assert a_sent.closing and not b_sent.closing
    h.advance(1.0)  # 9
    assert b_sent.closing
