"""The upgrade and the WebSocket connection's phase machine, without sockets and without sleeps.

An ``HTTPProtocol`` of a real ``Server`` talks to a fake transport (it plays
the kernel: what is written, what is buffered); the handshake goes through
the HTTP path, the 101 switches the fake transport's protocol, and time
moves only when the test advances the reactor's ``ManualClock``.
"""

from __future__ import annotations

import base64
import itertools
import typing

import pytest

from evloop import ManualClock
from evloop.app import App
from evloop.reactor import Reactor
from evloop.server import HTTPProtocol, Phase, Server, ServerConfig
from evloop.server.ws import WS_TRANSITIONS, WebSocketProtocol, WSPhase, WSPhaseError, WSPhaseEvent
from evloop.websocket import WebSocketHandler
from evloop.ws import Role, WebSocketConnection

PING_S, PONG_S, SEND_S, IDLE_S, GRACEFUL_S = 20.0, 5.0, 30.0, 100.0, 40.0
WS_EVENTS: tuple[str, ...] = typing.get_args(WSPhaseEvent)


class FakeTransport:
    peername = ("127.0.0.1", 40000)
    sockname = ("127.0.0.1", 8080)

    def __init__(self, reactor: Reactor, protocol: typing.Any) -> None:
        self.reactor = reactor
        self.protocol = protocol
        self.written = bytearray()
        self.buffered = 0
        self.closing = self.aborted = False
        self.reading = True

    def set_protocol(self, protocol: typing.Any) -> None:
        self.protocol = protocol

    def write(self, data: bytes) -> None:
        self.written += data
        if self.buffered > 65536:
            self.protocol.pause_writing()

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def write_eof(self) -> None:
        pass

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.reactor.call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        self.close()


class Recorder(WebSocketHandler):
    def __init__(self, request):
        super().__init__(request)
        self.events: list[typing.Any] = []

    def opened(self):
        self.events.append("opened")

    def message_received(self, message):
        self.events.append(message)
        if message == "echo me":
            self.send_text(message)

    def pong_received(self, payload):
        self.events.append(("pong", payload))

    def drained(self):
        self.events.append("drained")

    def closed(self, code, reason):
        self.events.append(("closed", code, reason))


KEY = base64.b64encode(b"0123456789abcdef").decode()


def handshake(path: str = "/ws", extra: str = "") -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode()


def client_frames() -> WebSocketConnection:
    """A client-side connection: it makes the masked frames a browser would send."""
    return WebSocketConnection(Role.CLIENT)


class Harness:
    def __init__(self, **settings: typing.Any) -> None:
        self.clock = ManualClock()
        self.reactor = Reactor(clock=self.clock)
        self.handlers: list[Recorder] = []
        app = App()

        def make(request):
            handler = Recorder(request)
            self.handlers.append(handler)
            return handler

        app.websocket("/ws")(make)
        config = ServerConfig(**{"port": 0, "access_log": False, "ws_ping_interval_s": PING_S,
                                 "ws_ping_timeout_s": PONG_S, "send_timeout_s": SEND_S,
                                 "graceful_timeout_s": GRACEFUL_S, **settings})
        self.server = Server(app, self.reactor, config)
        self.http = HTTPProtocol(self.server)
        self.transport = FakeTransport(self.reactor, self.http)
        self.http.connection_made(self.transport)  # type: ignore[arg-type]
        self.client = client_frames()

    def upgrade(self, trailing: bytes = b"") -> WebSocketProtocol:
        self.http.data_received(handshake() + trailing)
        assert self.transport.written.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert self.http.phase is Phase.UPGRADED
        protocol = self.transport.protocol
        assert isinstance(protocol, WebSocketProtocol)
        head_end = self.transport.written.index(b"\r\n\r\n") + 4
        self.from_server = bytearray(self.transport.written[head_end:])
        self.transport.written = self.from_server
        return protocol

    def server_events(self) -> list[typing.Any]:
        self.client.receive_data(bytes(self.transport.written))
        self.transport.written.clear()
        return list(self.client.events())

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        for _ in range(3):
            self.reactor.run_once(0)

    def close(self) -> None:
        self.reactor.close()


@pytest.fixture
def h():
    harness = Harness()
    yield harness
    harness.close()


# ------------------------------------------------------------ the table


@pytest.mark.parametrize("phase", list(WSPhase), ids=lambda p: p.name)
@pytest.mark.parametrize("event", WS_EVENTS)
def test_every_ws_phase_event_pair(h, phase, event):
    protocol = h.upgrade()
    protocol.phase = phase
    before = protocol.deadline
    h.clock.advance(1.0)
    if (phase, event) not in WS_TRANSITIONS:
        with pytest.raises(WSPhaseError, match=f"{phase.name} has no transition on '{event}'"):
            protocol._to(event)
        assert protocol.phase is phase
        return
    protocol._to(event)
    new = WS_TRANSITIONS[phase, event]
    assert protocol.phase is new
    timeout = protocol.settings.timeout(new)
    if timeout is not None:
        assert protocol.deadline == h.clock.time() + timeout
    else:
        assert protocol.deadline == before


def test_every_event_is_used_and_every_phase_can_be_lost():
    assert {event for _, event in WS_TRANSITIONS} == set(WS_EVENTS)
    assert all(WS_TRANSITIONS[phase, "lost"] is WSPhase.CLOSED for phase in WSPhase)


# ------------------------------------------------------------ the upgrade


def test_the_upgrade_hands_the_connection_over_with_the_bytes_after_the_request(h):
    first = h.client.send_text("echo me")
    protocol = h.upgrade(trailing=first)  # a client that did not wait for the 101
    handler = h.handlers[0]
    assert handler.events == ["opened", "echo me"]
    assert [e.data for e in h.server_events()] == ["echo me"]
    assert h.server.connections == {protocol}  # the registry holds the WebSocket now
    assert handler.request.path == "/ws" and handler.request.headers["sec-websocket-key"] == KEY


def test_a_plain_get_of_a_websocket_route_gets_426(h):
    h.http.data_received(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
    assert h.transport.written.startswith(b"HTTP/1.1 426 ")
    assert b"Upgrade: websocket\r\n" in h.transport.written
    assert h.http.phase is Phase.IDLE  # an ordinary answer: the connection goes on


def test_a_refused_handshake_is_an_ordinary_http_answer(h):
    h.http.data_received(handshake().replace(b"Version: 13", b"Version: 8"))
    assert h.transport.written.startswith(b"HTTP/1.1 426 ")
    assert b"Sec-WebSocket-Version: 13\r\n" in h.transport.written
    assert h.http.phase is Phase.IDLE and not h.handlers[0].events


def test_a_foreign_origin_is_refused_with_403(h):
    h.http.data_received(handshake(extra="Origin: http://evil.example\r\n"))
    assert h.transport.written.startswith(b"HTTP/1.1 403 ")
    h.transport.written.clear()
    h.http.data_received(handshake(extra="Origin: http://x\r\n"))  # the same origin as Host
    assert h.transport.written.startswith(b"HTTP/1.1 101 ")


# ------------------------------------------------------------ deadlines


def test_a_ping_each_interval_and_a_pong_keeps_the_connection(h):
    protocol = h.upgrade()
    h.advance(PING_S + 0.1)
    (ping,) = h.server_events()
    assert type(ping).__name__ == "Ping" and protocol.phase is WSPhase.PINGED
    protocol.data_received(h.client.data_to_send())  # the client's automatic Pong
    assert protocol.phase is WSPhase.OPEN and h.handlers[0].events[-1] == ("pong", b"")
    h.advance(PING_S + 0.1)
    assert protocol.phase is WSPhase.PINGED and not h.transport.closing


def test_no_pong_within_the_ping_timeout_closes_with_1011(h):
    protocol = h.upgrade()
    h.advance(PING_S + 0.1)
    h.server_events()
    h.advance(PONG_S - 0.5)
    assert not h.transport.closing
    h.advance(1.0)
    (close,) = h.server_events()
    assert close.code == 1011 and h.transport.aborted
    assert protocol.phase is WSPhase.CLOSED and h.handlers[0].events[-1][0] == "closed"


def test_the_idle_deadline_closes_with_1000():
    harness = Harness(ws_idle_timeout_s=IDLE_S, ws_ping_interval_s=0)
    try:
        protocol = harness.upgrade()
        harness.advance(IDLE_S - 1)
        protocol.data_received(harness.client.send_text("still here"))
        harness.advance(IDLE_S - 1)
        assert protocol.phase is WSPhase.OPEN  # counted from the last message
        harness.advance(2)
        (close,) = harness.server_events()
        assert (close.code, close.reason) == (1000, "idle timeout") and protocol.phase is WSPhase.CLOSE_SENT
        protocol.data_received(harness.client.data_to_send())  # the client answers the Close
        assert harness.transport.closing
    finally:
        harness.close()


def test_backed_up_writes_pause_reading_and_end_at_the_send_timeout(h):
    protocol = h.upgrade()
    h.transport.buffered = 100_000
    handler = h.handlers[0]
    handler.send_bytes(b"x" * 100)
    assert protocol.phase is WSPhase.BACKED_UP and not h.transport.reading
    h.transport.buffered = 90_000  # the peer reads a little
    h.advance(SEND_S + 0.5)
    assert not h.transport.aborted
    h.advance(SEND_S + 0.5)  # then nothing
    assert h.transport.aborted


def test_drained_writes_resume_reading_and_tell_the_handler(h):
    protocol = h.upgrade()
    h.transport.buffered = 100_000
    h.handlers[0].send_bytes(b"x")
    h.transport.buffered = 0
    protocol.resume_writing()
    assert protocol.phase is WSPhase.OPEN and h.transport.reading
    assert h.handlers[0].events[-1] == "drained"


def test_the_queue_bound_aborts_an_app_that_ignores_backpressure():
    harness = Harness(ws_max_queue_bytes=200_000)
    try:
        harness.upgrade()
        harness.transport.buffered = 100_000
        harness.handlers[0].send_bytes(b"x")
        assert not harness.transport.aborted
        harness.transport.buffered = 250_000
        harness.handlers[0].send_bytes(b"x")
        assert harness.transport.aborted
    finally:
        harness.close()


# ------------------------------------------------------------ shutdown


def test_graceful_shutdown_sends_1001_and_ends_after_the_close_exchange(h):
    protocol = h.upgrade()
    done: list[bool] = []
    h.server.shutdown(lambda: done.append(True))
    (close,) = h.server_events()
    assert close.code == 1001 and protocol.phase is WSPhase.CLOSE_SENT
    protocol.data_received(h.client.data_to_send())  # the client's answering Close
    assert h.transport.closing
    h.advance(0)
    assert done == [True] and h.handlers[0].close_code == 1001


def test_a_peer_that_never_answers_the_close_is_aborted_at_the_graceful_timeout():
    harness = Harness(ws_ping_timeout_s=GRACEFUL_S * 2)  # the close timeout would come later
    try:
        harness.upgrade()
        done: list[bool] = []
        harness.server.shutdown(lambda: done.append(True))
        harness.advance(GRACEFUL_S - 1)
        assert not harness.transport.aborted
        harness.advance(2)
        assert harness.transport.aborted and done == [True]
    finally:
        harness.close()


@pytest.mark.parametrize("split", [1, 3, 7])
def test_messages_split_anywhere_come_whole(h, split):
    protocol = h.upgrade()
    data = b"".join(h.client.send_text(f"m{i}") for i in range(5)) + h.client.send_bytes(b"\x00" * 300)
    for i in range(0, len(data), split):
        protocol.data_received(data[i:i + split])
    assert h.handlers[0].events[1:] == ["m0", "m1", "m2", "m3", "m4", b"\x00" * 300]


def test_a_handler_that_raises_closes_with_1011(h):
    protocol = h.upgrade()

    def boom(message):
        raise RuntimeError("bug")

    h.handlers[0].message_received = boom  # type: ignore[method-assign]
    protocol.data_received(h.client.send_text("x"))
    (close,) = h.server_events()
    assert close.code == 1011 and protocol.phase is WSPhase.CLOSE_SENT


def test_sends_after_close_are_dropped(h):
    protocol = h.upgrade()
    handler = h.handlers[0]
    handler.close(4000, "bye")
    handler.send_text("late")
    handler.ping()
    (close,) = h.server_events()
    assert (close.code, close.reason) == (4000, "bye")
    protocol.data_received(h.client.data_to_send())
    h.advance(0)
    assert handler.close_code == 4000 and not handler.is_open and handler.buffered_amount == 0
    assert list(itertools.islice(handler.events, 0, 1)) == ["opened"]


def test_the_servers_websocket_defaults_are_the_settings_defaults():
    """ServerConfig's ws_* defaults and WebSocketSettings' (the client's) are written in two places: kept equal."""
    from evloop.server import ServerConfig
    from evloop.server.ws import WebSocketSettings

    assert WebSocketSettings.from_config(ServerConfig()) == WebSocketSettings()


def test_the_echoes_of_one_read_leave_in_one_write(h):
    """Sixteen messages in one read are answered with one write (the batch the 16-in-flight benchmark relies on)."""
    ws = h.upgrade()
    writes: list[bytes] = []
    write = h.transport.write

    def counting_write(data: bytes) -> None:
        writes.append(bytes(data))
        write(data)

    h.transport.write = counting_write  # type: ignore[method-assign]
    ws.data_received(b"".join(h.client.send_text("echo me") for _ in range(16)))
    assert len(writes) == 1
    assert [event.data for event in h.server_events()] == ["echo me"] * 16
