"""WebSocket over a transport: bytes <-> ``evloop.ws.WebSocketConnection`` <-> a ``WebSocketHandler``.

Theory of operation.  A WebSocket connection starts as HTTP/1.1: the app's
route answers an upgrade request with a ``WebSocketUpgrade``, and
``HTTPProtocol`` asks ``accept_websocket`` here for the decision (the
handshake, the origin check, the negotiation).  A refusal is an ordinary
HTTP response; an acceptance is a 101, after which ``start_websocket``
puts a ``WebSocketProtocol`` on the transport in the HTTP protocol's place.
A client (``evloop.websocket_client``) starts the same protocol after its
own handshake.

Where the connection stands is one ``WSPhase``, changed only through
``WS_TRANSITIONS``; each phase has at most one deadline, armed by the
transition into it (``WS_PHASE_TIMEOUTS``)::

    OPEN --ping_sent--> PINGED --pong_received--> OPEN
    OPEN, PINGED --writes_backed_up--> BACKED_UP --writes_drained--> OPEN
    OPEN, PINGED, BACKED_UP --close_sent--> CLOSE_SENT
    OPEN, PINGED, BACKED_UP, CLOSE_SENT --handshake_over--> ENDING
    any --lost--> CLOSED

OPEN waits ``ping_interval_s`` for the next keep-alive Ping (the idle
deadline is checked at that beat); PINGED waits ``ping_timeout_s`` for the
Pong; BACKED_UP (our send buffer over its high water mark: nothing more is
read from the peer) waits ``send_timeout_s`` without progress; CLOSE_SENT
waits ``ping_timeout_s`` for the peer's Close; ENDING (the closing handshake
is over: a server has closed, a client waits for the server's FIN, RFC 6455
7.1.1) waits ``ping_timeout_s`` for the TCP connection to end.  Each expiry
aborts the connection, but OPEN's, which pings (or closes an idle one).

The message path is short on purpose: ``data_received`` feeds the bytes,
takes events, calls the handler, and every frame the handler sends meanwhile
joins one ``write`` at the end (an echo of a burst of messages is one system
call).  Deadlines are one timer, replaced by each transition: no timer operation per
message (the idle deadline only stores the time of each read).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from ..app import Request, Response
from ..exits import is_stop_request
from ..net.base import Protocol, Transport
from ..reactor import Reactor
from ..websocket import WebSocketHandler, WebSocketUpgrade, field_value
from ..ws import (
    Accept,
    BinaryMessage,
    CloseCode,
    CloseReceived,
    ConnectionClosed,
    ConnectionFailed,
    DeflateConfig,
    Pong,
    PreparedMessage,
    Role,
    TextMessage,
    WebSocketConnection,
    accept_handshake,
)
from ..ws.connection import DEFAULT_MAX_MESSAGE_BYTES, ConnectionState
from .config import ServerConfig
from .outcomes import TEXT, address_text, internal_error, peer_text

if TYPE_CHECKING:
    from .context import ServerContext

__all__ = [
    "WSPhase", "WSPhaseEvent", "WSPhaseError", "WS_TRANSITIONS", "WS_PHASE_TIMEOUTS", "WebSocketSettings",
    "WebSocketProtocol", "Accepted", "accept_websocket", "start_websocket",
]

logger = logging.getLogger("evloop.server")

# Frames batched during one callback are written early past this: an app
# sending in a loop sees its writes reach the transport (buffered_amount,
# pause_writing) rather than pile up unseen.
_BATCH_BYTES = 64 * 1024


class WSPhase(enum.Enum):
    OPEN = "open"              # messages flow: the ping interval (and the idle deadline at its beat)
    PINGED = "pinged"          # a keep-alive Ping is out: the ping timeout for its Pong
    BACKED_UP = "backed_up"    # our send buffer is over its high water mark: the send timeout; no reading
    CLOSE_SENT = "close_sent"  # our Close is out: the ping timeout for the peer's
    ENDING = "ending"          # the closing handshake is over: the TCP connection must end within the ping timeout
    CLOSED = "closed"          # the connection is gone

    __hash__ = object.__hash__


WSPhaseEvent = Literal[
    "ping_sent", "pong_received", "writes_backed_up", "writes_drained", "close_sent", "handshake_over", "lost",
]


class WSPhaseError(RuntimeError):
    """An event the WebSocket connection's phase does not allow: a bug in the server."""

    def __init__(self, phase: WSPhase, event: str) -> None:
        super().__init__(f"WebSocket phase {phase.name} has no transition on {event!r}")
        self.phase = phase
        self.event = event


OPEN, PINGED, BACKED_UP = WSPhase.OPEN, WSPhase.PINGED, WSPhase.BACKED_UP
CLOSE_SENT, ENDING, CLOSED = WSPhase.CLOSE_SENT, WSPhase.ENDING, WSPhase.CLOSED
# The sans-I/O states the message path tests, as globals: ``_CONN_OPEN``
# goes through the enum class's slow attribute hook on Python 3.11 (~0.1 us a read).
_CONN_OPEN, _CONN_CLOSED = ConnectionState.OPEN, ConnectionState.CLOSED
_TALKING = (OPEN, PINGED, BACKED_UP)  # the closing handshake has not begun

WS_TRANSITIONS: dict[tuple[WSPhase, str], WSPhase] = {
    (OPEN, "ping_sent"): PINGED,
    (PINGED, "pong_received"): OPEN,
    (OPEN, "writes_backed_up"): BACKED_UP,
    (PINGED, "writes_backed_up"): BACKED_UP,
    (BACKED_UP, "writes_drained"): OPEN,
    **{(phase, "close_sent"): CLOSE_SENT for phase in _TALKING},
    **{(phase, "handshake_over"): ENDING for phase in (*_TALKING, CLOSE_SENT)},
    **{(phase, "lost"): CLOSED for phase in WSPhase},
}

# Which deadline each phase runs: a WebSocketSettings field name, or None.
WS_PHASE_TIMEOUTS: dict[WSPhase, str | None] = {
    OPEN: "ping_interval_s",
    PINGED: "ping_timeout_s",
    BACKED_UP: "send_timeout_s",
    CLOSE_SENT: "ping_timeout_s",
    ENDING: "ping_timeout_s",
    CLOSED: None,
}


@dataclasses.dataclass(frozen=True, slots=True)
class WebSocketSettings:
    """The limits and deadlines of WebSocket connections (``ServerConfig``'s ``ws_*`` fields for a server).

    Seconds; 0 turns ``ping_interval_s`` and ``idle_timeout_s`` off.
    ``deflate``: accept (server) or offer (client) permessage-deflate with
    these settings; None: never compress.
    """

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    idle_timeout_s: float = 0.0
    send_timeout_s: float = 30.0
    max_queue_bytes: int = 32 * 1024 * 1024
    deflate: DeflateConfig | None = DeflateConfig()

    @classmethod
    def from_config(cls, config: ServerConfig) -> WebSocketSettings:
        return cls(
            max_message_bytes=config.ws_max_message_bytes,
            ping_interval_s=config.ws_ping_interval_s,
            ping_timeout_s=config.ws_ping_timeout_s,
            idle_timeout_s=config.ws_idle_timeout_s,
            send_timeout_s=config.send_timeout_s,
            max_queue_bytes=config.ws_max_queue_bytes,
            deflate=DeflateConfig() if config.ws_per_message_deflate else None,
        )

    def timeout(self, phase: WSPhase) -> float | None:
        """``phase``'s deadline in seconds, None when it has none."""
        name = WS_PHASE_TIMEOUTS[phase]
        if name is None:
            return None
        if phase is OPEN:
            # No pings: OPEN's deadline is the idle one, if any.
            value = self.ping_interval_s or self.idle_timeout_s
        else:
            value = getattr(self, name)
        return float(value) if value else None


class WebSocketProtocol(Protocol):
    """One WebSocket connection on a transport, either side: frames in and out, the handler called.

    Made by ``start_websocket`` (server) or the client's handshake; it is
    given a transport that is already connected (``start``), not
    ``connection_made``.  ``on_lost(protocol)`` is called from
    ``connection_lost`` (the server's registry).  It implements the
    ``WebSocketLink`` a handler sends through.
    """

    __slots__ = (
        "settings", "reactor", "transport", "conn", "handler", "phase", "deadline", "close_code", "close_reason",
        "_timer", "_out", "_out_bytes", "_batching", "_on_lost", "_last_received", "_timed", "_write_paused",
        "_last_buffer_size", "timeouts",
    )

    requests_served = 0  # the registry sums this over connections; the 101 was counted by HTTP (h1._upgrade)

    def __init__(self, reactor: Reactor, settings: WebSocketSettings, conn: WebSocketConnection,
                 handler: WebSocketHandler, on_lost: Callable[[WebSocketProtocol], None] | None = None) -> None:
        self.reactor = reactor
        self.settings = settings
        self.transport: Transport | None = None
        self.conn = conn
        self.handler = handler
        self.phase = OPEN
        self.deadline = 0.0
        self.close_code: int = CloseCode.ABNORMAL
        self.close_reason = ""
        self._timer: Any = None
        # Frames produced while the protocol handles received bytes: written
        # together at the end (an echoed burst leaves in one system call).
        self._out: list[bytes] = []
        self._out_bytes = 0  # in _out: counted in buffered_amount, and written early past _BATCH_BYTES
        self._batching = False
        self._on_lost = on_lost
        self._timed = settings.idle_timeout_s > 0  # only then is the clock read per read
        self._last_received = reactor.time()
        self._write_paused = False
        self._last_buffer_size = 0
        self.timeouts: dict[str, int] | None = None  # the server's counts by kind (--metrics-path), if on

    def __repr__(self) -> str:
        return f"<WebSocketProtocol {self.conn.role.name} {self.phase.name} peer={peer_text(self.transport)}>"

    # ------------------------------------------------------------ the phase
    def _to(self, event: WSPhaseEvent) -> None:
        """The one transition: enter the phase ``WS_TRANSITIONS`` names and arm its deadline."""
        try:
            phase = self.phase = WS_TRANSITIONS[self.phase, event]
        except KeyError:
            raise WSPhaseError(self.phase, event) from None
        delay = self.settings.timeout(phase)
        if delay is not None and self.transport is not None:
            if phase is BACKED_UP:
                self._last_buffer_size = self.transport.get_write_buffer_size()
            self._set_deadline(delay)

    def _set_deadline(self, delay_s: float) -> None:
        """Replace the one deadline: transitions come a ping interval apart, never per message."""
        if self._timer is not None:
            self._timer.cancel()
        reactor = self.reactor
        self.deadline = reactor.time() + delay_s
        self._timer = reactor.call_at(self.deadline, self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer = None
        transport = self.transport
        phase = self.phase
        if transport is None or self.settings.timeout(phase) is None:
            return
        now = self.reactor.time()
        settings = self.settings
        if phase is OPEN:
            idle = settings.idle_timeout_s
            if idle and now - self._last_received >= idle:
                self._count_timeout("ws_idle")
                logger.info("WebSocket idle timeout for %s", peer_text(transport))
                self.close(CloseCode.NORMAL, "idle timeout")
            elif settings.ping_interval_s:
                self._write(self.conn.ping(b""))
                self._to("ping_sent")
            else:  # only the idle deadline: it is counted from the last read
                self._set_deadline(self._last_received + idle - now)
            return
        if phase is BACKED_UP:
            size = transport.get_write_buffer_size()
            if 0 < size < self._last_buffer_size:
                self._last_buffer_size = size  # progress: the peer reads, slowly
                self._set_deadline(settings.send_timeout_s)
                return
            self._count_timeout("ws_send")
            logger.info("WebSocket send timeout: peer %s stopped reading; aborting", peer_text(transport))
        elif phase is PINGED:
            self._count_timeout("ws_ping")
            logger.info("WebSocket ping timeout: no Pong from %s; closing", peer_text(transport))
            # 1011, as websockets does; the peer is probably gone, so no answer is awaited.
            self._write(self.conn.close(CloseCode.INTERNAL_ERROR, "keepalive ping timeout"))
        elif phase is CLOSE_SENT:
            self._count_timeout("ws_close")
            logger.info("WebSocket close timeout: %s did not answer our Close; aborting", peer_text(transport))
        transport.abort()

    def _count_timeout(self, kind: str) -> None:
        if self.timeouts is not None:
            self.timeouts[kind] += 1

    # ----------------------------------------------------------- lifecycle
    def start(self, transport: Transport, data: bytes = b"", *, reading_paused: bool = False,
              write_paused: bool = False) -> None:
        """Take over ``transport`` (already switched to this protocol): open the handler, then read ``data``.

        ``data``: bytes that came after the handshake.  ``reading_paused``,
        ``write_paused``: the flow control state the previous protocol left.
        """
        self.transport = transport
        handler = self.handler
        handler.subprotocol = self.conn.subprotocol
        handler._link = self
        delay = self.settings.timeout(OPEN)
        if delay is not None:
            self._set_deadline(delay)
        if write_paused:
            self.pause_writing()
        elif reading_paused:
            transport.resume_reading()
        self._batching = True
        try:
            handler.opened()
        except Exception:
            self._handler_failed("opened")
        finally:
            self._batching = False
        if data and self.transport is not None:
            self.data_received(data)
        else:
            self._flush()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.phase = WS_TRANSITIONS[self.phase, "lost"]
        handler = self.handler
        handler._link = None
        handler.close_code, handler.close_reason = self.close_code, self.close_reason
        try:
            handler.closed(self.close_code, self.close_reason)
        except Exception:
            logger.exception("WebSocket handler %s.closed() failed", type(handler).__name__)
        if self._on_lost is not None:
            self._on_lost(self)

    def eof_received(self) -> bool | None:
        self.conn.receive_data(b"")
        self.data_received(b"")
        return False  # close our side too: after the peer's FIN nothing more is said

    # ------------------------------------------------------------- reading
    def data_received(self, data: bytes) -> None:
        if self._timed:
            self._last_received = self.reactor.time()
        conn = self.conn
        handler = self.handler
        self._batching = True
        try:
            # None (more bytes needed) first: every read ends with it, and skips type() (~9 opcodes a read).
            # The read's bytes go in with the first next_event (eof_received gave EOF to receive_data).
            event = conn.next_event(data) if data else conn.next_event()
            while event is not None:
                kind = type(event)
                if kind is TextMessage or kind is BinaryMessage:
                    try:
                        handler.message_received(event.data)  # type: ignore[union-attr]
                    except Exception:
                        self._handler_failed("message_received")
                        break
                    if conn.needs_data:
                        break  # the next call would return None: a call less a read (~1,100 instructions)
                elif kind is Pong:
                    if self.phase is PINGED:
                        self._to("pong_received")
                    try:
                        handler.pong_received(event.payload)  # type: ignore[union-attr]
                    except Exception:
                        self._handler_failed("pong_received")
                        break
                elif kind is CloseReceived or kind is ConnectionFailed:
                    self.close_code, self.close_reason = event.code, event.reason  # type: ignore[union-attr]
                    if kind is ConnectionFailed:
                        logger.info("WebSocket peer %s broke the protocol: %s", peer_text(self.transport),
                                    event.reason)  # type: ignore[union-attr]
                    break
                elif kind is ConnectionClosed:
                    break
                # A Ping: its Pong is queued already (data_to_send).
                event = conn.next_event()
        finally:
            self._batching = False
        self._flush()

    def _flush(self) -> None:
        """Write what was produced while batching and what the state machine queued (one ``write``); end the
        TCP connection once the closing handshake is over."""
        conn = self.conn
        out = self._out
        if conn.outgoing:
            out.append(conn.data_to_send())
        transport = self.transport
        if out:
            # Written here, not in a method of its own: a call less a read (~360 instructions).
            self._out = []
            self._out_bytes = 0
            if transport is not None:
                transport.write(b"".join(out))  # one frame (the usual) is returned as it is, not copied
                if self._write_paused and transport.get_write_buffer_size() > self.settings.max_queue_bytes:
                    # Past the queue bound the app ignored backpressure: abort.
                    logger.warning("WebSocket to %s: over %d bytes queued (the app ignores backpressure); "
                                   "aborting", peer_text(transport), self.settings.max_queue_bytes)
                    transport.abort()
        if conn.state is _CONN_CLOSED and transport is not None and self.phase is not ENDING:
            self._to("handshake_over")
            if self.conn.role is Role.SERVER:
                # A server ends the TCP connection (RFC 6455 7.1.1), after what is queued; a
                # client waits for that FIN (eof_received closes), bounded by ENDING's deadline.
                transport.close()

    def _handler_failed(self, method: str) -> None:
        """A handler method raised: logged, and the connection closed with 1011 (as tornado does)."""
        logger.exception("WebSocket handler %s.%s() failed", type(self.handler).__name__, method)
        if self.conn.state is _CONN_OPEN:
            self.close(CloseCode.INTERNAL_ERROR, "handler failed")

    # ------------------------------------------------------------- writing
    def _write(self, data: bytes) -> None:
        self._out.append(data)
        if self._batching:
            self._out_bytes += len(data)
            if self._out_bytes <= _BATCH_BYTES:
                return
        self._flush()

    def send_text(self, text: str) -> None:
        conn = self.conn
        if conn.state is _CONN_OPEN:
            frame = conn.send_text(text)
            if self._batching and (size := self._out_bytes + len(frame)) <= _BATCH_BYTES:
                # _write's batching case, the usual one (an echo), without its call: ~600 instructions a message.
                self._out.append(frame)
                self._out_bytes = size
            else:
                self._write(frame)

    def send_bytes(self, data: bytes | bytearray | memoryview) -> None:
        if self.conn.state is _CONN_OPEN:
            self._write(self.conn.send_bytes(data if type(data) is not memoryview else bytes(data)))

    def send_prepared(self, message: PreparedMessage) -> None:
        if self.conn.state is _CONN_OPEN:
            self._write(self.conn.send_prepared(message))

    def ping(self, payload: bytes) -> None:
        if self.conn.state is _CONN_OPEN:
            self._write(self.conn.ping(payload))

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the closing handshake (once; later calls do nothing)."""
        if self.conn.state is not _CONN_OPEN or self.transport is None:
            return
        self._write(self.conn.close(code, reason))
        self._to("close_sent")

    def buffered_amount(self) -> int:
        transport = self.transport
        return transport.get_write_buffer_size() + self._out_bytes if transport is not None else 0

    def is_open(self) -> bool:
        return self.conn.state is _CONN_OPEN

    # --------------------------------------------------------- flow control
    def pause_writing(self) -> None:
        self._write_paused = True
        transport = self.transport
        if transport is not None:
            # Reading a peer that does not read our answers would only queue more of them.
            transport.pause_reading()
        if self.phase is OPEN or self.phase is PINGED:
            self._to("writes_backed_up")

    def resume_writing(self) -> None:
        self._write_paused = False
        transport = self.transport
        if transport is None:
            return
        transport.resume_reading()
        if self.phase is BACKED_UP:
            self._to("writes_drained")
            self._batching = True
            try:
                self.handler.drained()
            except Exception:
                self._handler_failed("drained")
            finally:
                self._batching = False
            self._flush()

    # ----------------------------------------------------------- the server
    def close_when_idle(self) -> None:
        """Graceful shutdown: Close 1001; the connection ends when the peer answers (or a timeout)."""
        self.close(CloseCode.GOING_AWAY, "server shutting down")

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


# ------------------------------------------------------------ the upgrade


@dataclasses.dataclass(slots=True)
class Accepted:
    """An accepted handshake: the 101's fields, and the connection to start once it is sent."""

    headers: list[tuple[str, str]]
    handler: WebSocketHandler
    conn: WebSocketConnection




def accept_websocket(ctx: ServerContext, request: Request, upgrade: WebSocketUpgrade) -> Accepted | Response:
    """Decide on a WebSocket route's upgrade request: ``Accepted``, or the HTTP response refusing it.

    Refusals: 503 while the server shuts down, 403 for an origin the
    handler's ``check_origin`` refuses, the handshake's own (400, 405, 426;
    ``evloop.ws.accept_handshake``), 500 when the handler's constructor or
    ``check_origin`` raised (logged).
    """
    if ctx.shutting_down:
        return Response(503, [("Retry-After", "1")], b"Service Unavailable: shutting down\n", content_type=TEXT)
    settings = ctx.ws_settings
    try:
        handler = upgrade.factory(request)
        origin = field_value(request, "origin")
        if origin is not None and not handler.check_origin(origin):
            logger.info("WebSocket %s from %s: origin %r refused", request.target, address_text(request.client), origin)
            return Response(403, None, b"Forbidden: origin not allowed\n", content_type=TEXT)
        decision = accept_handshake(request.method, request.version, request.headers, subprotocols=handler.subprotocols,
                                    deflate=settings.deflate)
    except BaseException as exc:  # the handler's code, under issue 15's guard: sys.exit() there is a 500
        if is_stop_request(exc):
            raise
        logger.exception("WebSocket handler for %s %s failed before the handshake", request.method, request.target)
        return internal_error()
    if not isinstance(decision, Accept):
        logger.info("WebSocket handshake from %s refused: %d %s", address_text(request.client), decision.status,
                    decision.reason)
        return Response(decision.status, decision.headers, decision.body)
    conn = WebSocketConnection(Role.SERVER, deflate=decision.deflate, subprotocol=decision.subprotocol,
                               max_message_bytes=settings.max_message_bytes)
    return Accepted(decision.headers, handler, conn)


def start_websocket(ctx: ServerContext, previous: Any, transport: Transport, accepted: Accepted,
                    data: bytes, *, reading_paused: bool, write_paused: bool) -> WebSocketProtocol:
    """The 101 is written: switch ``transport`` from ``previous`` (HTTP/1.1) to a new ``WebSocketProtocol``."""
    protocol = WebSocketProtocol(ctx.reactor, ctx.ws_settings, accepted.conn, accepted.handler,
                                 ctx.connection_closed)
    if ctx.metrics is not None:
        protocol.timeouts = ctx.metrics.counts.timeouts
    transport.set_protocol(protocol)
    ctx.connection_switched(previous, protocol)
    protocol.start(transport, data, reading_paused=reading_paused, write_paused=write_paused)
    return protocol
