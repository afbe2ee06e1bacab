"""The HTTP server: transports <-> ``evloop.http.ServerConnection`` <-> the app.

Theory of operation.  Each accepted socket gets an ``HTTPProtocol``.  Bytes
go into the connection's sans-I/O state machine; its events drive the app:
a complete request (head, body, end) becomes a ``Request`` and the app's
``Response`` is framed by the state machine and written.  Responses to
requests that are already in the buffer (pipelining) are collected and sent
with one ``write`` at the end of the batch.

One request is served at a time per connection (HTTP/1.1 responses go out in
request order): while a response is pending (a deferred handler, a streamed
body, or a write buffer above its high water mark) the parser is not asked for
more events, later bytes stay buffered, and past ``max_pipelined_bytes`` the
transport stops reading.

Deadlines are cheap: each connection keeps one reactor timer and a
``deadline`` attribute.  Moving the deadline later (a new request, body
progress) only stores a number; when the timer fires early it re-arms itself
for the stored deadline.  So a keep-alive request costs no timer operations.
"""

from __future__ import annotations

import dataclasses
import email.utils
import enum
import logging
import signal
import socket
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

from .app import FileBody, Request, Response, format_access_log
from .http import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Limits,
    ProtocolError,
    RequestHead,
    SendState,
    ServerConnection,
)
from .http.events import Event
from .listener import Listener, listen
from .proxy import TrustedProxies, resolve_client
from .reactor import Reactor
from .transport import Protocol, SocketTransport

__all__ = ["ServerConfig", "Server", "HTTPProtocol", "serve"]

logger = logging.getLogger("evloop.server")
access_logger = logging.getLogger("evloop.access")

_LINGER_S = 2.0   # after an error response: how long to drain the client's bytes before closing
_STREAM_BATCH_BYTES = 256 * 1024  # body bytes pulled from a streamed response per write


@dataclasses.dataclass
class ServerConfig:
    """Settings of an HTTP server; every limit and timeout has a default.

    Times are in seconds.  ``limits`` holds the parser's size limits
    (request line, head, header count, body).
    """

    host: str | None = "127.0.0.1"
    port: int = 8080
    uds: str | None = None
    sock: socket.socket | None = None
    backlog: int = 1024
    reuse_port: bool = False
    limits: Limits = dataclasses.field(default_factory=Limits)
    header_timeout_s: float = 10.0
    keepalive_timeout_s: float = 5.0
    body_timeout_s: float = 30.0
    send_timeout_s: float = 30.0
    graceful_timeout_s: float = 30.0
    max_connections: int | None = None
    access_log: bool = True
    server_header: str = "evloop"
    write_high_water: int = 64 * 1024
    debug_log_heads: bool = False
    # Behind a load balancer: read Forwarded / X-Forwarded-For / -Proto from
    # these peers (addresses, CIDR ranges, "*", "unix:"); see evloop.proxy.
    proxy_headers: bool = False
    forwarded_allow_ips: str = "127.0.0.1"


class _DateHeader:
    """The ``Date`` field value, formatted at most once a second (RFC 9110 section 6.6.1)."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def get(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._value = email.utils.formatdate(now, usegmt=True).encode("ascii")
        return self._value


class Server:
    """Serves ``app`` on ``reactor`` with ``config``: listeners, connections, shutdown."""

    def __init__(self, app: Callable[[Request], Response | None], reactor: Reactor, config: ServerConfig | None = None):
        self.app = app
        self.reactor = reactor
        self.config = config or ServerConfig()
        self.listeners: list[Listener] = []
        self.connections: set[HTTPProtocol] = set()
        self.date = _DateHeader()
        self.server_header = self.config.server_header.encode("latin-1")
        self._shutting_down = False
        self._shutdown_timer: Any = None
        self._on_shutdown_done: Callable[[], None] | None = None
        self._accept_paused = False
        self._limit_episode = False  # at --max-connections since the last drop below the low mark
        self.requests_served = 0
        # Whether a request needs its start time and the head logging check:
        # off (the benchmarks' setting) saves a clock read per request.
        self.log_heads_or_access = self.config.access_log or self.config.debug_log_heads
        self.trusted_proxies = TrustedProxies(self.config.forwarded_allow_ips) if self.config.proxy_headers else None

    @property
    def app(self) -> Callable[[Request], Response | None]:
        return self._app

    @app.setter
    def app(self, app: Callable[[Request], Response | None]) -> None:
        self._app = app
        # An instance of a class with a Python __call__ (an App) is called
        # through that method bound to it: calling the instance goes through
        # a slot wrapper first (measured with load/bench_instructions.py:
        # ~600 instructions a request).  The same method app(request) runs.
        method = getattr(type(app), "__call__", None)  # noqa: B004 (the function itself is wanted, not a test)
        self.call_app = types.MethodType(method, app) if type(method) is types.FunctionType else app
        self._would_accept = getattr(app, "would_accept", None)

    # --------------------------------------------------------------- start
    def start(self) -> list[Listener]:
        """Open the listening socket(s) named by the config; returns the listeners."""
        cfg = self.config
        transport_kwargs: dict[str, Any] = {"high_water": cfg.write_high_water}
        backlog = cfg.backlog
        if cfg.sock is not None:
            listener = listen(self.reactor, self._make_protocol, sock=cfg.sock, backlog=backlog,
                              transport_kwargs=transport_kwargs)
        elif cfg.uds is not None:
            listener = listen(self.reactor, self._make_protocol, path=cfg.uds, backlog=backlog,
                              transport_kwargs=transport_kwargs)
        else:
            listener = listen(
                self.reactor, self._make_protocol, cfg.host, cfg.port, reuse_port=cfg.reuse_port, backlog=backlog,
                transport_kwargs=transport_kwargs,
            )
        self.listeners.append(listener)
        return self.listeners

    @property
    def urls(self) -> list[str]:
        return [address_url(addr) for listener in self.listeners for addr in listener.addresses]

    def _make_protocol(self) -> HTTPProtocol:
        return HTTPProtocol(self)

    # ------------------------------------------------- connection accounting
    def connection_opened(self, protocol: HTTPProtocol) -> None:
        self.connections.add(protocol)
        limit = self.config.max_connections
        if limit is not None and len(self.connections) >= limit and not self._accept_paused:
            self._accept_paused = True
            if not self._limit_episode:
                self._limit_episode = True
                logger.warning("%d connections open (--max-connections): pausing accepts; "
                               "the kernel's backlog holds new clients", len(self.connections))
            for listener in self.listeners:
                listener.pause_accepting()

    def connection_closed(self, protocol: HTTPProtocol) -> None:
        self.connections.discard(protocol)
        limit = self.config.max_connections or 0
        if self._accept_paused and len(self.connections) < limit:
            # Accept again at once (clients wait in the backlog), but a server
            # hovering at the limit pauses and resumes with every connection:
            # the episode, and its one log line, end only below 3/4 of the
            # limit (a low water mark, as for the write buffer).
            self._accept_paused = False
            for listener in self.listeners:
                listener.resume_accepting()
        if self._limit_episode and len(self.connections) <= limit * 3 // 4:
            self._limit_episode = False
            logger.info("%d connections open, below --max-connections again", len(self.connections))
        if self._shutting_down and not self.connections:
            self._finish_shutdown()

    # ------------------------------------------------------------ shutdown
    def shutdown(self, on_done: Callable[[], None] | None = None, *, graceful: bool = True) -> None:
        """Stop accepting, close idle connections, let requests in flight finish.

        ``on_done()`` is called when every connection is gone, or after
        ``graceful_timeout_s`` when the rest are closed by force.  With
        ``graceful=False`` every connection is aborted at once.
        """
        if on_done is not None:
            self._on_shutdown_done = on_done
        if not self._shutting_down:
            self._shutting_down = True
            for listener in self.listeners:
                listener.close()
            self._shutdown_timer = self.reactor.call_later(self.config.graceful_timeout_s, self._shutdown_expired)
            for protocol in list(self.connections):
                protocol.close_when_idle()
        if not graceful:
            for protocol in list(self.connections):
                protocol.abort()
        if not self.connections:
            self._finish_shutdown()

    def _shutdown_expired(self) -> None:
        self._shutdown_timer = None
        if self.connections:
            logger.warning("graceful timeout: closing %d connections still open", len(self.connections))
        for protocol in list(self.connections):
            protocol.abort()
        self._finish_shutdown()

    def _finish_shutdown(self) -> None:
        if self._shutdown_timer is not None:
            self._shutdown_timer.cancel()
            self._shutdown_timer = None
        on_done, self._on_shutdown_done = self._on_shutdown_done, None
        if on_done is not None:
            self.reactor.call_soon(on_done)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def close(self) -> None:
        """Close the listeners and abort every connection now.

        The sockets are closed by ``connection_lost`` callbacks on the next
        pass of the reactor: run one (``reactor.run_once(0)``) before closing it.
        """
        if self._shutdown_timer is not None:
            self._shutdown_timer.cancel()
            self._shutdown_timer = None
        for listener in self.listeners:
            listener.close()
        for protocol in list(self.connections):
            protocol.abort()


class _Deadline(enum.Enum):
    """What the connection's one deadline is waiting for."""

    NONE = "none"      # a handler is running: no deadline of ours
    IDLE = "idle"      # between requests (keep-alive), or a new connection before its first byte
    HEAD = "head"      # the rest of a request head
    BODY = "body"      # progress of a request body
    SEND = "send"      # progress of our writes (the peer must keep reading)
    LINGER = "linger"  # draining the client's bytes after an error response


# As module globals for the hot paths (see the same in evloop.http.connection:
# an attribute of an Enum class costs ~0.1 us on Python 3.11).
_NO_DEADLINE = _Deadline.NONE
_IDLE_DEADLINE = _Deadline.IDLE
_HEAD_DEADLINE = _Deadline.HEAD
_BODY_DEADLINE = _Deadline.BODY
_SEND_DEADLINE = _Deadline.SEND
_LINGER_DEADLINE = _Deadline.LINGER


class HTTPProtocol(Protocol):
    """One HTTP connection: feeds bytes to the state machine and runs the app.

    Call grammar per request: bytes -> ``RequestHead`` -> ``Data``* ->
    ``EndOfMessage`` -> the app -> ``_send`` -> (stream or file) ->
    ``_response_done`` -> the next request or close.  ``busy`` is true from
    the complete request until its whole response is queued.
    """

    __slots__ = (
        "server", "reactor", "transport", "conn", "head", "body_parts", "request", "busy",
        "_out", "_write_paused", "_reading_paused", "_close_when_idle", "_lingering",
        "deadline", "_deadline_kind", "_timer", "_response", "_stream", "_started", "_first_request",
        "_last_buffer_size", "_body_bytes", "_status", "_dispatching", "_processing", "_idle_after_batch",
    )

    def __init__(self, server: Server) -> None:
        self.server = server
        self.reactor = server.reactor
        self.transport: SocketTransport | None = None   # None once the connection is lost
        self.conn = ServerConnection(server.config.limits, implicit_end=True)
        self.head: RequestHead | None = None
        self.body_parts: list[bytes] = []
        self.request: Request | None = None
        self.busy = False
        self._out: list[bytes] | None = None  # responses collected during a batch, sent with one write
        self._write_paused = False
        self._reading_paused = False
        self._close_when_idle = False
        self._lingering = False
        self.deadline = 0.0
        self._deadline_kind = _NO_DEADLINE
        self._timer: Any = None
        self._response: Response | None = None   # the response being sent (its body not yet closed)
        self._stream: Iterator[bytes] | None = None
        self._started = 0.0
        self._first_request = True
        self._last_buffer_size = 0
        self._body_bytes = 0   # response body bytes, for the access log
        self._status = 0
        self._dispatching = False
        self._processing = False
        self._idle_after_batch = False  # a response of the running batch left the connection idle

    # ----------------------------------------------------------- lifecycle
    def connection_made(self, transport: SocketTransport) -> None:
        self.transport = transport
        self.server.connection_opened(self)
        # The first head must be complete within the header timeout of the
        # accept (as nginx's client_header_timeout): waiting silently first
        # does not buy a second header timeout.
        self._set_deadline(self.server.config.header_timeout_s, _IDLE_DEADLINE)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._end_response()
        self.server.connection_closed(self)
        self.request = None

    def eof_received(self) -> bool | None:
        if self._lingering:
            return False
        # A half-closed client may still read our responses (RFC 9112
        # section 9.6): answer the complete requests already received; the
        # state machine then reports the closed connection and we close.
        self.conn.receive_data(b"")
        if not self.busy:
            self._process()
        return True

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # draining after an error response
        conn = self.conn
        conn.receive_data(data)
        if not self.busy:
            self._process()
        elif conn.should_pause_reading:
            self._pause_reading()  # a pipelining client got too far ahead

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._stream is not None:
            self._pump_stream()
        if not self.busy and self.transport is not None:
            self._resume_reading()
            self._process()

    def close_when_idle(self) -> None:
        """Graceful shutdown: close now if idle, else after the request in progress."""
        self._close_when_idle = True
        transport = self.transport
        if transport is not None and not self.busy and self.head is None and not self.conn.buffered_bytes:
            transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # ------------------------------------------------------------ deadlines
    def _set_deadline(self, delay_s: float, kind: _Deadline) -> None:
        """Move the connection's one deadline; the timer re-arms lazily."""
        deadline = self.reactor.time() + delay_s
        self.deadline = deadline
        self._deadline_kind = kind
        timer = self._timer
        if timer is None:
            self._timer = self.reactor.call_at(deadline, self._on_deadline)
        elif timer.when > deadline:
            timer.cancel()
            self._timer = self.reactor.call_at(deadline, self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer = None
        kind = self._deadline_kind
        transport = self.transport
        if kind is _NO_DEADLINE or transport is None:
            return
        if self.reactor.time() < self.deadline:
            self._timer = self.reactor.call_at(self.deadline, self._on_deadline)
            return
        if kind is _SEND_DEADLINE:
            size = transport.get_write_buffer_size()
            if size == 0 and not self.busy:
                self._set_deadline(self.server.config.keepalive_timeout_s, _IDLE_DEADLINE)
                return
            if 0 < size < self._last_buffer_size:
                # Progress since the last check: the peer is reading, slowly.
                self._last_buffer_size = size
                self._set_deadline(self.server.config.send_timeout_s, _SEND_DEADLINE)
                return
            logger.info("send timeout: peer %s stopped reading; aborting", _peer(transport))
            transport.abort()
        elif kind is _IDLE_DEADLINE:
            logger.debug("keep-alive timeout for %s", _peer(transport))
            transport.close()
        elif kind is _HEAD_DEADLINE:
            logger.info("header timeout for %s", _peer(transport))
            self._send_error(408, "request head not received in time")
        elif kind is _BODY_DEADLINE:
            logger.info("body timeout for %s", _peer(transport))
            self._send_error(408, "request body made no progress")
        else:  # LINGER
            transport.abort()

    # ------------------------------------------------------------- reading
    def _pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    def _process(self) -> None:
        """Take events from the state machine until it needs data or a response is pending."""
        if self._processing:
            return  # called back from inside the loop (a write completed at once): the loop goes on
        conn = self.conn
        self._out = []
        self._processing = True
        try:
            pending = None  # an event a burst of bodiless requests ended on, not handled yet
            while not self.busy and self.transport is not None:
                if self._write_paused and pending is None:  # an event already taken is handled first
                    self._pause_reading()
                    break
                if pending is not None:
                    event, pending = pending, None
                else:
                    try:
                        event = conn.next_event()
                    except ProtocolError as exc:
                        self._protocol_error(exc)
                        return
                event_type = type(event)
                if event_type is RequestHead:
                    if not event.content_length and not event.chunked:  # type: ignore[union-attr]
                        # Complete already (the connection's implicit_end).
                        pending = self._requests_without_body(event)  # type: ignore[arg-type]
                        if pending is None and not self.busy and not conn.buffered_bytes:
                            break  # answered and nothing more buffered: skip asking for NEED_DATA
                    else:
                        self._head_received(event)  # type: ignore[arg-type]
                elif event_type is EndOfMessage:
                    self._request_complete()
                    if not conn.buffered_bytes and not self.busy:
                        break  # answered and nothing more buffered: skip asking for NEED_DATA
                elif event_type is Data:
                    self.body_parts.append(event.data)  # type: ignore[union-attr]
                    self._set_deadline(self.server.config.body_timeout_s, _BODY_DEADLINE)
                elif event is NEED_DATA:
                    if self.head is None and self._deadline_kind is _IDLE_DEADLINE and conn.buffered_bytes:
                        # The first bytes of a head: the rest must follow within the header timeout.
                        if self._first_request:
                            self._deadline_kind = _HEAD_DEADLINE  # counted from the accept
                        else:
                            self._set_deadline(self.server.config.header_timeout_s, _HEAD_DEADLINE)
                    break
                elif event is PAUSED:
                    break
                elif event_type is ConnectionClosed:
                    self._flush()  # responses of this batch first: a closing transport drops writes
                    self.transport.close()
                    break
                elif event_type is ProtocolError:  # raised by next_event inside a burst
                    self._protocol_error(event)  # type: ignore[arg-type]
                    return
                else:
                    raise RuntimeError(f"unexpected event {event!r}")
        finally:
            self._processing = False
            self._flush()
            if self._idle_after_batch:
                self._idle_after_batch = False
                self._arm_idle_deadline()

    def _flush(self) -> None:
        out, self._out = self._out, None
        if out and self.transport is not None:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _write(self, data: bytes) -> None:
        if not data:
            return
        if self._out is not None:
            self._out.append(data)
        elif self.transport is not None:
            self.transport.write(data)

    def _requests_without_body(self, head: RequestHead) -> Any:
        """Serve ``head``, a request complete with its head (no body), and
        the bodiless requests buffered after it, back to back.

        The common case, and every request of a pipelined burst, so while
        each request on a plain keep-alive connection is answered at once
        with a bytes ``Response``, this loop does what ``_make_request``,
        ``_call_app``, ``_send`` and ``_response_done`` do, keeps what does
        not change within a burst in locals (the peer, the Date field, the
        dispatching flag), and writes the connection's bookkeeping back once
        at the end (measured with load/bench_instructions.py: about 7,000
        instructions less per pipelined request).  Anything else is handed to
        those steps.  ``100 Continue`` is skipped, as RFC 9110 10.1.1 lets a
        server do when the framing says there is no content.

        Returns the event that ended the burst, or the ``ProtocolError`` that
        ``next_cycle_event`` raised, for ``_process`` to handle as if it came from
        ``next_event`` itself; None when there is none.
        """
        self.head = head
        self._first_request = False
        self.busy = True
        self._deadline_kind = _NO_DEADLINE
        server = self.server
        if server.log_heads_or_access or server.trusted_proxies is not None or self._close_when_idle:
            if server.log_heads_or_access:
                self._log_head(head)
            self._dispatch(self._make_request(head, b""))
            return None
        conn = self.conn
        transport = self.transport
        out = self._out  # called by _process, in a batch: a list
        assert out is not None
        client = transport.peername  # type: ignore[union-attr]
        sockname = transport.sockname  # type: ignore[union-attr]
        reactor = self.reactor
        responder = self._respond_later
        call_app = server.call_app
        date = server.date.get()  # one clock read per burst: a burst takes microseconds
        server_header = server.server_header
        served = 0
        event: Event | ProtocolError | None
        # Handlers run back to back: the state _call_app keeps per call
        # (dispatching, the request in hand) is kept once for the burst.
        self._dispatching = True
        try:
            while True:
                request = Request(head.method, head.target, head.version, head.headers, b"", client, sockname,
                                  "http", reactor, responder)
                self.request = request
                try:
                    response = call_app(request)
                except Exception:
                    response = self._app_failed(request)
                if (
                    type(response) is not Response
                    or type(response.body) is not bytes
                    or request._responded
                    or self.transport is None
                ):
                    self._dispatching = False
                    self._answer(request, response)
                    return None
                request._responded = True  # a later respond() is an error
                try:
                    out.append(conn.send_complete_response(response.status, response.headers, response.body,
                                                           date, server_header))
                except ValueError as exc:
                    self._dispatching = False
                    self._response_refused(head, exc)
                    return None
                if not conn.keep_alive:
                    self._dispatching = False
                    self._status = response.status
                    self._response_done()
                    return None
                served += 1
                try:
                    event = conn.next_cycle_event()
                except ProtocolError as exc:
                    event = exc  # for _process to answer, once the bookkeeping below is done
                    break
                if type(event) is not RequestHead or event.content_length or event.chunked:
                    break
                head = self.head = event
        finally:
            self._dispatching = False
            server.requests_served += served
        # The last response is queued and no request is in progress.
        self.request = None
        self.head = None
        self.busy = False
        self._deadline_kind = _IDLE_DEADLINE
        self._idle_after_batch = True  # the deadline is set once, after the batch's write
        if self._reading_paused and not self._write_paused:
            self._resume_reading()
        return event

    def _log_head(self, head: RequestHead) -> None:
        # The request's start time is only needed for the access log's duration.
        self._started = self.reactor.time()
        if self.server.config.debug_log_heads and logger.isEnabledFor(logging.DEBUG):
            logger.debug("request head from %s: %s %s %s %r", _peer(self.transport), head.method, head.target,
                         head.version, head.headers)

    def _head_received(self, head: RequestHead) -> None:
        self.head = head
        self._first_request = False
        if self.server.log_heads_or_access:
            self._log_head(head)
        if head.content_length or head.chunked:
            self._set_deadline(self.server.config.body_timeout_s, _BODY_DEADLINE)
        else:
            self._deadline_kind = _NO_DEADLINE
        if head.expect_continue:
            would_accept = self.server._would_accept
            if would_accept is not None and not would_accept(head.method, head.target):
                # Refused before the body: answer without 100 and do not read
                # the body (RFC 9110 10.1.1); the connection closes after it.
                self.busy = True
                self.conn.keep_alive = False
                self._dispatch(self._make_request(head, b""))
                return
            self._write(self.conn.send_informational(100))

    def _request_complete(self) -> None:
        parts = self.body_parts
        if parts:
            body = parts[0] if len(parts) == 1 else b"".join(parts)
            self.body_parts = []
        else:
            body = b""
        self.busy = True
        self._deadline_kind = _NO_DEADLINE
        head = self.head
        assert head is not None
        self._dispatch(self._make_request(head, body))

    def _make_request(self, head: RequestHead, body: bytes) -> Request:
        transport = self.transport
        assert transport is not None
        client = transport.peername
        scheme = "http"
        trusted = self.server.trusted_proxies
        if trusted is not None:
            client, scheme = resolve_client(client, scheme, head.headers, trusted)
        # By position: with keywords the constructor takes twice as long (0.7 against 0.3 us).
        return Request(head.method, head.target, head.version, head.headers, body, client, transport.sockname,
                       scheme, self.reactor, self._respond_later)

    # ------------------------------------------------------------- responses
    def _dispatch(self, request: Request) -> None:
        self._answer(request, self._call_app(request))

    def _call_app(self, request: Request) -> Response | None:
        """Run the app; an exception becomes a 500 unless the handler already responded."""
        self.request = request
        self._dispatching = True
        try:
            return self.server.call_app(request)
        except Exception:
            return self._app_failed(request)
        finally:
            self._dispatching = False

    def _app_failed(self, request: Request) -> Response | None:
        """The handler raised: log it; a 500 unless it already responded."""
        logger.exception("handler for %s %s failed", request.method, request.target)
        return None if request._responded else _internal_error()

    def _answer(self, request: Request, response: Response | None) -> None:
        """Send what the app returned, unless it deferred or already responded."""
        if response is None:
            # Deferred (request.respond() comes later) or already answered.
            # Meanwhile bytes that arrive stay buffered; past the pipelining
            # cap reading pauses.
            return
        if request._responded:
            logger.error("handler for %s %s called respond() and also returned a response; "
                         "the returned one is dropped", request.method, request.target)
            _close_quietly(response)
            return
        request._responded = True  # a later respond() is an error
        self._send(response)

    def _respond_later(self, response: Response) -> None:
        """``request.respond()`` from a timer or another callback."""
        if self.transport is None:
            response.close()
            return
        if self._dispatching:
            # respond() called before the handler returned: part of this batch.
            self._send(response)
            return
        self._out = []
        try:
            self._send(response)
        finally:
            self._flush()
        if not self.busy and self.transport is not None:
            self._process()

    def _send(self, response: Response) -> None:
        head = self.head
        assert head is not None
        if not isinstance(response, Response):
            logger.error("handler for %s %s returned %r, not a Response", head.method, head.target, response)
            _close_quietly(response)
            response = _internal_error()
        conn = self.conn
        if self._close_when_idle:
            conn.keep_alive = False  # shutting down: this is the connection's last response
        status = response.status
        self._status = status
        body = response.body
        bodiless = head.method == "HEAD" or status == 204 or status == 304
        server = self.server
        date = server.date.get()
        server_header = server.server_header
        try:
            if type(body) is bytes:
                # The common case: complete at once, nothing to close later
                # (so ``_response`` stays None).
                self._body_bytes = 0 if bodiless else len(body)
                self._write(conn.send_complete_response(status, response.headers, body, date, server_header))
                self._response_done()
                return
            self._response = response
            if isinstance(body, FileBody):
                self._body_bytes = 0 if bodiless else body.count
                self._write(conn.send_response(status, response.headers, content_length=body.count, date=date,
                                               server=server_header))
                if body.count == 0:
                    self._response_done()  # complete with its head (Content-Length: 0): no send_end
                elif bodiless:
                    self._write(conn.send_end())
                    self._response_done()
                else:
                    self._send_file(body)
            else:
                self._body_bytes = 0
                self._write(conn.send_response(status, response.headers, content_length=response.content_length,
                                               date=date, server=server_header))
                if response.content_length == 0:
                    # Complete with its head: the iterable is closed, not pulled.
                    self._response_done()
                elif bodiless:
                    self._write(conn.send_end())
                    self._response_done()
                else:
                    self._stream = iter(body)
                    # The head (and any responses batched before it) goes
                    # out with the first batch of the body: a system call
                    # fewer per streamed response.
                    pending, self._out = self._out, None
                    self._pump_stream(pending)
                    if self._processing:
                        self._out = []  # batch the next pipelined responses again
        except ValueError as exc:
            # The app gave a response that cannot be framed (bad header, wrong length).
            self._response_refused(head, exc)

    def _send_file(self, body: FileBody) -> None:
        transport = self.transport
        assert transport is not None
        self._flush()  # the head goes before the file region
        self._arm_send_deadline()

        def on_done(exc: BaseException | None) -> None:
            if exc is None and self.transport is not None:
                self.conn.file_data_sent(body.count)
                self._write(self.conn.send_end())
                self._response_done()
                # Inside _process (the file went out at once) its loop goes on; calling
                # it again would recurse once per pipelined request.
                if not self.busy and self.transport is not None and not self._processing:
                    self._process()

        transport.sendfile(body.file, body.offset, body.count, on_done)
        if self._processing and self._out is None:
            self._out = []  # batch the next pipelined responses again

    def _pump_stream(self, pending: list[bytes] | None = None) -> None:
        """Pull body chunks while the transport is below its high water mark.

        Chunks go out in batches of up to ``_STREAM_BATCH_BYTES`` with one
        ``writelines`` (one ``sendmsg``): a 1 MiB body in 64 KiB chunks takes
        4 system calls instead of 16, and a stream of small chunks is not a
        system call each.  A connection holds at most its high water mark
        plus one batch.  ``pending``: bytes that go before the body (the
        response head), written with its first batch.
        """
        conn = self.conn
        while self._stream is not None and not self._write_paused:
            transport = self.transport
            if transport is None or transport.is_closing():
                # The peer went away (a reset closes the transport at once):
                # stop pulling, or one client could hold the loop for the
                # whole body.
                self._abort_response()
                return
            batch = pending or []
            pending = None
            size = 0
            try:
                while size < _STREAM_BATCH_BYTES:
                    chunk = next(self._stream)
                    if chunk:
                        batch.append(conn.send_data(chunk))
                        size += len(chunk)
            except StopIteration:
                self._stream = None
                self._body_bytes += size
                batch.append(conn.send_end())  # the last chunk, when chunked, in the same system call
                transport.writelines(batch)
                self._response_done()
                if not self.busy and self.transport is not None and not self._processing:
                    self._process()
                return
            except Exception:
                transport.writelines(batch)  # the chunks before the failure were good: as unbatched
                head = self.head
                logger.exception("response body of %s %s failed", head.method if head else "?",
                                 head.target if head else "?")
                self._abort_response()
                return
            self._body_bytes += size
            transport.writelines(batch)
        if pending and self.transport is not None:
            self.transport.writelines(pending)  # writing was paused already: the head waits in the queue
        if self._write_paused:
            self._arm_send_deadline()

    def _arm_send_deadline(self) -> None:
        if self.transport is not None:
            self._last_buffer_size = self.transport.get_write_buffer_size()
            self._set_deadline(self.server.config.send_timeout_s, _SEND_DEADLINE)

    def _end_response(self) -> None:
        """Release the response in flight: closes its file or calls its iterable's close(), once."""
        response, self._response = self._response, None
        self._stream = None
        if response is not None and type(response.body) is not bytes:  # bytes need no closing
            _close_quietly(response)

    def _response_refused(self, head: RequestHead, exc: ValueError) -> None:
        """The writer refused the app's response: a 500 while none of it has gone out, else an abort.

        Fields are checked where a ``Response`` is built, so this is a
        response changed after that, or a body that broke its length.
        """
        logger.error("invalid response to %s %s: %s", head.method, head.target, exc)
        if self.conn.our_state is SendState.SEND_RESPONSE and self.transport is not None:
            self._end_response()
            self._send(_internal_error())
        else:
            self._abort_response()

    def _abort_response(self) -> None:
        self._end_response()
        if self.transport is not None:
            self.transport.abort()

    def _response_done(self) -> None:
        """The whole response is queued: log it, then start the next cycle or close."""
        response = self._response
        if response is not None and type(response.body) is not bytes:
            self._end_response()
        else:
            self._response = None  # bytes need no closing: skip the call
        server = self.server
        server.requests_served += 1
        if server.config.access_log and access_logger.isEnabledFor(logging.INFO):
            self._log_access()
        self.request = None
        self.head = None
        transport = self.transport
        if transport is None:
            return
        conn = self.conn
        if conn.keep_alive and not self._close_when_idle:
            self.busy = False
            conn.start_next_cycle()
            self._deadline_kind = _IDLE_DEADLINE
            if self._processing:
                # Inside a batch the responses are not written yet: the idle
                # (or send) deadline is set once, after the batch's write.
                self._idle_after_batch = True
            else:
                self._arm_idle_deadline()
            if self._reading_paused and not self._write_paused:
                self._resume_reading()
        else:
            # The last response: nothing more is read or parsed on this connection.
            self.busy = True
            self._flush()
            self._arm_send_deadline()  # close() flushes first; bound how long that may take
            transport.close()

    def _arm_idle_deadline(self) -> None:
        """Between requests: the keep-alive deadline, or the send deadline while our writes are backed up."""
        transport = self.transport
        if transport is None or self._deadline_kind is not _IDLE_DEADLINE:
            return  # the next request has begun (it set its own deadline) or the connection is gone
        if transport.get_write_buffer_size() > self.server.config.write_high_water:
            self._arm_send_deadline()  # a peer that stops reading must not pin the buffer
        else:
            self._set_deadline(self.server.config.keepalive_timeout_s, _IDLE_DEADLINE)

    def _log_access(self) -> None:
        head = self.head
        transport = self.transport
        if head is None or transport is None:
            return
        # The request's client: the real one when proxy headers were honoured.
        peer = self.request.client if self.request is not None else transport.peername
        host = peer[0] if isinstance(peer, tuple) else "-"
        access_logger.info(
            format_access_log(host, head.method, head.target, head.version, self._status, self._body_bytes,
                              self.reactor.time() - self._started, time.strftime("%d/%b/%Y:%H:%M:%S %z"))
        )

    # --------------------------------------------------------------- errors
    def _protocol_error(self, exc: ProtocolError) -> None:
        # Garbage from clients and scanners is noise, not news: debug level.
        logger.debug("bad request from %s: %d %s", _peer(self.transport), exc.status, exc.reason)
        self._send_error(exc.status, exc.reason)

    def _send_error(self, status: int, reason: str) -> None:
        """Answer ``status`` with ``Connection: close`` and close after a lingering drain."""
        transport = self.transport
        if transport is None:
            return
        if self._response is not None:
            # A response has started: its framing cannot be repaired, only cut.
            self._abort_response()
            return
        try:
            data = self.conn.send_error_response(status, reason, self.server.date.get())
        except Exception:  # the state machine refuses: the framing is unknown, just close
            data = b""
        self._write(data)
        self._flush()
        self.busy = True  # read no more requests
        self._lingering = True
        # Lingering close: half-close, then drain what the client still sends,
        # so that closing with unread data does not reset the connection and
        # destroy the error response before the client reads it.
        transport.write_eof()
        self._set_deadline(_LINGER_S, _LINGER_DEADLINE)


def _internal_error() -> Response:
    return Response(500, body=b"Internal Server Error\n", content_type="text/plain; charset=utf-8")


def address_url(addr: Any) -> str:
    """The URL of a listening socket address: ``http://host:port``, ``http://[v6]:port`` or ``unix:path``."""
    if isinstance(addr, str):
        return f"unix:{addr}"
    if ":" in addr[0]:
        return f"http://[{addr[0]}]:{addr[1]}"
    return f"http://{addr[0]}:{addr[1]}"


def _close_quietly(obj: Any) -> None:
    close = getattr(obj, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            logger.exception("closing a response body failed")


def _peer(transport: SocketTransport | None) -> str:
    if transport is None:
        return "-"
    peer = transport.peername
    if isinstance(peer, tuple):
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "-")


def serve(
    app: Callable[[Request], Response | None],
    host: str | None = "127.0.0.1",
    port: int = 8080,
    *,
    config: ServerConfig | None = None,
    reactor: Reactor | None = None,
    on_started: Callable[[Server], Any] | None = None,
    **settings: Any,
) -> None:
    """Run ``app`` on a fresh reactor until SIGINT or SIGTERM, then shut down gracefully.

    ``settings`` are ``ServerConfig`` fields (``header_timeout_s=...``).  The
    first SIGINT/SIGTERM drains requests in flight (bounded by
    ``graceful_timeout_s``); a second SIGINT stops at once.
    """
    if config is None:
        config = ServerConfig(host=host, port=port, **settings)
    elif settings:
        config = dataclasses.replace(config, **settings)
    own_reactor = reactor is None
    reactor = reactor if reactor is not None else Reactor()
    server = Server(app, reactor, config)
    server.start()
    for url in server.urls:
        logger.info("evloop serving on %s", url)
    if on_started is not None:
        on_started(server)

    def on_signal(signum: int) -> None:
        if server.shutting_down:
            if signum == signal.SIGINT:
                logger.warning("second SIGINT: stopping now")
                server.shutdown(reactor.stop, graceful=False)
            return
        logger.info("%s: shutting down gracefully", signal.Signals(signum).name)
        server.shutdown(reactor.stop)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
        reactor.add_signal_handler(signum, on_signal, signum)
    try:
        reactor.run()
    finally:
        server.close()
        reactor.run_once(0)  # run the connection_lost callbacks: they close the sockets
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
            reactor.remove_signal_handler(signum)
        if own_reactor:
            reactor.close()
