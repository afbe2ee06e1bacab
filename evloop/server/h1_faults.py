"""How an HTTP/1.1 connection ends when something goes wrong, a part of ``HTTPProtocol`` (``h1.py``).

Applications that raise or answer twice, deadlines that expire (header, body, keep-alive, send, handler, linger),
protocol errors (a 4xx with a lingering close), responses the writer refuses
(500, or an abort once bytes are out), responses cut short and requests
abandoned by their clients, each with its log line and access-log line.
``h1.py`` keeps the ordinary path; ``HTTPProtocol`` inherits these methods.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..exits import is_stop_request
from ..http import ProtocolError, RequestHead, SendState, ServerConnection
from .config import LINGER_TOTAL_S
from .context import ServerContext
from .outcomes import close_quietly, handler_timeout, internal_error, peer_text, request_line
from .phases import BODY, DEFERRED, HEAD, IDLE, LINGER, NEW, Phase

if TYPE_CHECKING:
    from ..app import Request, Response
    from ..net.base import Transport
    from ..reactor import Reactor
    from .phases import PhaseEvent

__all__ = ["FaultHandling"]

# An expired deadline's kind, for evloop_timeouts_total (a sending phase: "send").
_TIMEOUT_KINDS = {NEW: "header", HEAD: "header", IDLE: "keepalive", BODY: "body", DEFERRED: "handler",
                  LINGER: "linger"}

logger = logging.getLogger("evloop.server")


class FaultHandling:
    """``HTTPProtocol``'s methods for the ways a connection's exchange fails (see the module docstring)."""

    # The write buffer's size when the send deadline was armed: a smaller one
    # at the deadline is progress (a slow reader), not a stalled peer.
    # When a lingering drain ends however much still comes (config.LINGER_TOTAL_S).
    # Both are slots of HTTPProtocol, after those a request touches (see its __slots__); hidden from mypy,
    # which would otherwise want every name set here among this class's slots.
    if not TYPE_CHECKING:
        __slots__ = ()
    _last_buffer_size: int
    _linger_ends: float

    # HTTPProtocol's state and ordinary methods, which these use.
    ctx: ServerContext
    reactor: Reactor
    transport: Transport | None
    conn: ServerConnection
    phase: Phase
    head: RequestHead | None
    request: Request | None
    deadline: float
    _deadlines: Any
    _out: list[bytes]
    _response: Response | None
    _stream: Any
    _status: int
    _body_bytes: int
    _started: float
    _received_at: float
    _sink: Any

    if TYPE_CHECKING:
        def _to(self, event: PhaseEvent) -> None: ...
        def _finish(self) -> None: ...
        def _close(self) -> None: ...
        def _send(self, response: Response) -> None: ...
        def _end_response(self) -> None: ...
        def _respond_later(self, response: Response) -> None: ...
        def _set_deadline(self, queue: Any, delay_s: float) -> None: ...
        def _release_body(self, why: str) -> None: ...

    def _app_failed(self, request: Request, exc: BaseException) -> Response | None:
        """The app raised: a stop request goes on up; else logged, and a 500 unless it had responded."""
        if is_stop_request(exc):
            raise exc
        logger.exception("handler for %s %s failed", request.method, request.target, exc_info=exc)
        return None if request._responded else internal_error()

    def _not_answered_now(self, request: Request, response: Response | None) -> None:
        """The app returned no response (it defers, or answered with respond()), or answered twice."""
        if response is None:
            if not request._responded:
                self._to("deferred")  # request.respond() comes later; bytes meanwhile stay buffered
            return
        logger.error("handler for %s %s called respond() and also returned a response; "
                     "the returned one is dropped", request.method, request.target)
        close_quietly(response)

    def _on_deadline(self) -> None:
        """The entry of the connection's ``DeadlineQueue`` expired (the queue has let go of it)."""
        self._deadlines = None
        transport = self.transport
        phase = self.phase
        queue = self.ctx.h1.deadlines[phase]
        if transport is None or queue is None:
            return  # no deadline in this phase: the next transition arms one
        if self.reactor.time() < self.deadline:
            # Moved later since the entry was added (see _set_deadline): in again, at the deadline.
            self._deadlines = queue
            queue.add(self, self.deadline)
            return
        counts = self.ctx.metrics.counts if self.ctx.metrics is not None else None
        if counts is not None:
            kind = _TIMEOUT_KINDS.get(phase, "send")
            counts.timeouts[kind] += 1
        if phase is NEW or phase is IDLE:
            logger.debug("keep-alive timeout for %s", peer_text(transport))
            self._close()
        elif phase is HEAD:
            logger.info("header timeout for %s", peer_text(transport))
            self._send_error(408, "request head not received in time")
        elif phase is BODY:
            logger.info("body timeout for %s", peer_text(transport))
            self._send_error(408, "request body made no progress")
        elif phase is LINGER:
            transport.abort()
        elif phase is DEFERRED:
            self._abandon("no response from the handler within the handler timeout; answering 503", timed_out=True)
            self._respond_later(handler_timeout())
        else:  # a sending phase
            size = transport.get_write_buffer_size()
            if 0 < size < self._last_buffer_size:
                # Progress since the last check: the peer is reading, slowly.
                self._last_buffer_size = size
                self._set_deadline(self.ctx.h1.deadlines[phase], self.ctx.config.send_timeout_s)
                return
            logger.info("send timeout: peer %s stopped reading; aborting", peer_text(transport))
            transport.abort()

    def _abandon(self, why: str, *, timed_out: bool = False) -> None:
        """The request in the app will not be answered by it: a late ``respond()`` is dropped quietly."""
        request = self.request
        if request is None or request.abandoned:
            return
        request.abandon()
        logger.log(logging.WARNING if timed_out else logging.INFO, "%s %s from %s: %s", request.method,
                   request.target, peer_text(self.transport), why)
        if not timed_out:  # the client left: nginx's 499 (a timeout is logged with its 503)
            self._log_unusual(499, 0, incomplete=True)

    def _response_refused(self, exc: Exception) -> None:
        """The writer refused the app's response: a 500 while none of it has gone out, else an abort.

        Fields are checked where a ``Response`` is built, so this is a
        response changed after that, or a body that broke its length.
        """
        head: Any = self.head
        logger.error("invalid response to %s %s: %s", head.method, head.target, exc)
        if self.conn.our_state is SendState.SEND_RESPONSE and self.transport is not None:
            self._end_response()
            self._send(internal_error())
        else:
            self._abort_response(f"the body cannot be framed: {exc}")

    def _abort_response(self, why: str) -> None:
        """Cut the response in progress short: logged, then the connection is reset."""
        self._response_cut_short(why)
        if self.transport is not None:
            self.transport.abort()

    def _response_cut_short(self, why: str) -> None:
        if self._response is not None or self._stream is not None:
            head: Any = self.head
            logger.info("response %d to %s %s for %s cut short after %d body bytes: %s", self._status, head.method,
                        head.target, peer_text(self.transport), self._body_bytes, why)
            self._log_unusual(self._status, self._body_bytes, incomplete=True)
        self._end_response()

    def _log_unusual(self, status: int, size: int, incomplete: bool = False) -> None:
        """An access-log line (and a count) for a request refused, abandoned, cut short, or switched to WebSocket."""
        head, request, transport = self.head, self.request, self.transport
        metrics = self.ctx.metrics
        if metrics is not None:
            started = self._started if head is not None else self._received_at
            metrics.counts.response_done(head.method if head is not None else "", status, size,
                                         self.reactor.time() - started)
        access_log = self.ctx.access_log
        if access_log is None:
            return
        peer = request.client if request is not None else transport.peername if transport is not None else None
        started = self._started if head is not None else self._received_at
        access_log.log_unusual(peer[0] if isinstance(peer, tuple) else None, request_line(head, self.conn), status,
                               size, self.reactor.time() - started, incomplete, request)

    def _protocol_error(self, exc: ProtocolError) -> None:
        logger.info("bad request from %s: %d %s", peer_text(self.transport), exc.status, exc.reason)
        self._send_error(exc.status, exc.reason)

    def _send_error(self, status: int, reason: str) -> None:
        """Answer ``status`` with ``Connection: close`` and close after a lingering drain."""
        transport = self.transport
        if transport is None:
            return
        if self._response is not None:
            # A response has started: its framing cannot be repaired, only cut.
            self._abort_response(f"{status} {reason}")
            return
        if self._sink is not None:
            self._release_body(f"{status} {reason}")  # the body will not be read to its end
        try:
            data = self.conn.send_error_response(status, reason, self.ctx.wall.http_date, self.ctx.server_header)
        except Exception:  # the state machine refuses: the framing is unknown, just close
            pass
        else:
            self._out.append(data)
            self._log_unusual(status, len(data) - data.find(b"\r\n\r\n") - 4)
        self._to("error_response")
        self._linger_ends = self.reactor.time() + LINGER_TOTAL_S
        self._finish()
        # Lingering close: half-close, then drain what the client still sends,
        # so that closing with unread data does not reset the connection and
        # destroy the error response before the client reads it.  (TLS 1.2
        # cannot half-close: there the client's own close ends the drain.)
        if transport.can_write_eof():
            transport.write_eof()
