"""HTTP/1.1 in the server: transport bytes <-> ``evloop.http.ServerConnection`` <-> the app.

Theory of operation.  Each accepted socket gets an ``HTTPProtocol``.  Bytes
go into the connection's sans-I/O state machine; its events drive the app:
a complete request (head, body, end) becomes a ``Request`` and the app's
``Response`` is framed by the state machine and written.  Where the
connection stands is one ``Phase`` (see ``phases.py``), changed only by
``_to(event)`` (spelt out, without the call, for the two transitions every
request takes); the new phase's one deadline is armed at the end of the
callback (``_finish``).

Every request takes one path: ``_process`` (events, then the app) ->
``_send`` (framing) -> ``_response_done`` (access log, next cycle; its
steps for a complete keep-alive response are spelt out in ``_send``).  One
request is served at a time per connection (HTTP/1.1 answers in order):
outside the reading phases the parser is not asked for more events, later
bytes stay buffered, and past ``max_pipelined_bytes`` the transport stops
reading.

Writes: every byte the protocol produces is appended to ``_out``, and each
entry point (bytes received, a deferred response, writes resumed, a file
sent, a deadline) ends with ``_finish``: ``_out`` goes out with one
``write``, and the deadline of the phase the callback ends in is armed.  So the
answers to a pipelined burst leave in one system call, and a streamed
response's head leaves with its first body bytes.  One case does
``_finish``'s steps itself: a read's only response, complete and keep-alive,
is written and its keep-alive deadline armed by ``_send`` (nothing is left
for ``_finish``, whose call ``_process`` then skips).

Deadlines are cheap: no timer per connection.  Each phase's timeout is the
same for every connection, so its deadlines come in the order they are set:
the connection goes to the back of that timeout's ``DeadlineQueue``
(``evloop.deadlines``: a dict entry, one reactor timer per queue), and the
queue calls ``_on_deadline`` once the entry's deadline has passed.  Moving
the deadline later (the next request, body progress) only stores a number;
when the entry expires early the connection adds itself again for the
stored deadline.  An idle connection's deadline cost ~300 bytes as a timer
of its own (tracemalloc).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

from ..app import FileBody, Request, Response
from ..deadlines import DeadlineQueue
from ..http import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    ProtocolError,
    RecvState,
    RequestHead,
    ServerConnection,
)
from ..http.events import Event
from ..net.base import Protocol, Transport
from ..net.tls import TLSTransport
from ..net.tls_context import TLSInfo
from ..proxy import resolve_client
from ..streamed_body import ReceiveBody
from ..websocket import WebSocketUpgrade
from .access_log import BODILESS_STATUSES as _BODILESS_STATUSES
from .bodies import SpooledBody, StreamedBody, body_overflowed, stream_body
from .config import LINGER_S
from .context import ServerContext
from .h1_faults import FaultHandling
from .h1_flow import FlowControl
from .h1_reuse import IDLE_PROTOCOLS_MAX, ProtocolReuse
from .h1_streaming import SMALL_FILE_BYTES, ResponseStreaming, small_file_bytes
from .h1_upgrade import WebSocketUpgrading
from .outcomes import close_quietly, internal_error, peer_text
from .phases import BODY, CLOSED, CLOSING, DEFERRED, IDLE, IN_APP, LINGER, NEW, PhaseError, PhaseEvent

__all__ = ["HTTPProtocol"]

# Request recycling (_process): a request that only _process refers to once
# it is answered (its frame's name and getrefcount's argument: a count of 2)
# becomes the server's spare (ServerContext.h1.spare_request), and the next
# request, on any connection, reuses it
# (tests/server/test_request_recycling.py checks it against the plain path):
# no allocation, type call and deallocation of a 16-slot object
# (load/bench_instructions.py pipelined 21,620 -> 20,500).  A connection's
# last request (Connection: close) becomes the spare too, for the next
# connection's first (wsgi-close 95,775 -> 94,063, close 67,372 -> 65,719;
# it keeps the closed protocol, through its responder, until reused).  One spare for the
# server, not one per connection: the app runs one request at a time, and an
# idle connection holds no request (~190 bytes each, with the last request's
# head).
_refcount = sys.getrefcount

# A connection's phases after its last response (CLOSED once the transport called connection_lost).
_AFTER_LAST_RESPONSE = frozenset((CLOSING, CLOSED))

logger = logging.getLogger("evloop.server")

_RECV_DONE = RecvState.DONE  # a module global: an Enum class attribute is slow to read on 3.11


class HTTPProtocol(ProtocolReuse, FaultHandling, ResponseStreaming, WebSocketUpgrading, FlowControl, Protocol):
    """One HTTP/1.1 connection: feeds bytes to the state machine and runs the app."""

    # Those a keep-alive request touches first: fewer (cold, with 1,000 connections open) cache lines a request.
    __slots__ = (
        "ctx", "reactor", "transport", "conn", "phase", "head", "request", "deadline", "_deadlines", "_out",
        "_response", "_started", "_body_bytes", "_status", "_write_paused", "_reading_paused", "requests_served",
        "_arm_pending", "_responder", "_log_heads", "_timed", "_received_at", "tls", "_scheme", "_sink", "_counts",
        "body", "_stream", "_memory_room", "_last_buffer_size", "_linger_ends", "_whole_room",
    )

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.reactor = ctx.reactor
        # implicit_next_cycle: a keep-alive response done leaves the connection ready for the next request.
        # By position (implicit_end, implicit_next_cycle, caches): keywords cost a dict a connection.
        self.conn = ServerConnection(ctx.config.limits, True, True, ctx.http1_caches)
        self._log_heads = ctx.config.debug_log_heads
        # --metrics-path: the server's counts (evloop.metrics); None when off,
        # so that a request without metrics pays one test in _response_done.
        self._counts = ctx.metrics.counts if ctx.metrics is not None else None
        # Set here once, not for each connection (_renew): what connection_lost leaves as a new protocol has it
        # (tests/server/test_protocol_reuse.py), what is set before it is read, and what the server fixes.
        self.transport: Transport | None = None   # None once the connection is lost
        # The request body so far: the first part as it came, then a bytearray that later parts are appended
        # to (one object however small the reads: a list of one-byte parts cost ~52 bytes a body byte).
        self.body: bytes | bytearray = b""
        # Where a body goes that does not stay in memory (bodies.py): a file
        # once it passes _memory_room bytes, or a streamed-body route (then
        # the room is 0: every part goes on at once).  One test per part.
        self._sink: SpooledBody | StreamedBody | None = None
        self._memory_room = ctx.config.body_spool_bytes
        # The longest body _process takes whole at its head, without _head_with_body: none (-1) when the app
        # streams some bodies (their route is asked at the head, by _head_with_body).
        self._whole_room = self._memory_room if ctx.streams_body is None else -1
        self.request: Request | None = None
        self._deadlines: DeadlineQueue | None = None  # the queue holding this connection's deadline
        self._response: Response | None = None   # a response whose body must be closed when done
        self._stream: Iterator[bytes] | None = None
        self.deadline = self._linger_ends = 0.0
        self._last_buffer_size = 0   # the write buffer when the send deadline was armed
        # The access log's durations count from the read that completed a
        # request's head: the clock is read once per read, not per request,
        # and a pipelined request's duration includes the wait for the
        # answers before it (it arrived with them).  Only while the access
        # log is on (load/bench_instructions.py against a clock read per
        # head: pipelined-log 30,880 -> 29,932, keepalive-log 41,150 -> 40,440).
        self._timed = ctx.access_log is not None or self._counts is not None
        self._renew()

    def _renew(self) -> None:
        """The fields a connection changes, as a new protocol has them (``__init__``; ``for_connection``)."""
        self.phase = NEW
        self.head: RequestHead | None = None
        self._out: list[bytes] = []   # bytes produced by this entry point, written at its end
        self._started = 0.0   # when the read that completed the request's head came (the access log's duration)
        self._body_bytes = self._status = 0   # the response's body bytes (for the access log) and status
        # The transport's flow control, not phases: writes above the high water mark, and reading stopped by us.
        self._write_paused = self._reading_paused = False
        self.requests_served = 0  # responses completed on this connection
        self._arm_pending = False  # a transition's deadline waits for _finish
        # Bound once a connection, not per request; a cycle (the method holds
        # this protocol) that connection_lost breaks, so a closed connection
        # is freed by its reference counts, not by the cyclic GC.
        self._responder: Callable[[Response], None] | None = self._respond_later
        self._received_at = 0.0  # when the last read came
        self.tls: TLSInfo | None = None  # over TLS: the session's facts, read once per connection
        self._scheme = "http"

    # ------------------------------------------------------------ the phase
    def _to(self, event: PhaseEvent) -> None:
        """The one transition: enter the phase ``TRANSITIONS`` names; its deadline is armed by ``_finish``.

        An event the phase does not allow raises ``PhaseError`` (the phase's
        ``exits`` dict has no key for it: see phases.py).  The two transitions of every request
        (``request``, ``response_done``) write this line out where they
        happen: the call cost ~200 instructions each.

        Arming waits for the end of the callback (microseconds later) so
        that a pipelined burst, which passes IDLE once per request, reads
        the clock once (measured with load/bench_instructions.py: ~600
        instructions a pipelined request), and a send deadline starts from
        the buffer as it is after the callback's write.
        """
        # A transition that does not arm (NEW -> HEAD) is always a
        # callback's first, so it never clears another's pending arm.
        try:
            self.phase, self._arm_pending = self.phase.exits[event]  # TRANSITIONS, indexed by phase
        except KeyError:
            raise PhaseError(self.phase, event) from None

    def _finish(self) -> None:
        """End of every entry point: write what it produced, then arm the deadline of the phase it left."""
        out = self._out
        if out:
            self._out = []
            if self.transport is not None:
                self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        if self._arm_pending:
            self._arm_pending = False
            phase = self.phase
            queue = self.ctx.h1.deadlines[phase]
            if queue is not None and self.transport is not None:
                if phase.sends:
                    size = self._last_buffer_size = self.transport.get_write_buffer_size()
                    if size == 0 and phase is CLOSING:
                        return  # all sent: the transport closes at once, nothing for a send timeout to guard
                if self._deadlines is queue:  # _set_deadline's usual case (keep-alive) without its call: ~300
                    now = self.reactor.time  # an attribute, then a call: a method-style call of it is not specialized
                    self.deadline = now() + queue.timeout_s
                else:
                    self._set_deadline(queue, queue.timeout_s)

    def _set_deadline(self, queue: DeadlineQueue, delay_s: float) -> None:
        """Move the connection's one deadline to ``delay_s`` from now, in ``queue`` (its phase's timeout's).

        Lazily: in the queue it is already in, the deadline only moves
        later (the same timeout from a later time), so only the number is
        stored; when the queue's entry expires, ``_on_deadline`` adds the
        connection again with it.  A keep-alive request costs a store, as
        it did with a reactor timer of its own.  A phase without a timeout
        (``IN_APP``) arms nothing: the deadline left in a queue is ignored
        if it passes, and the next phase's replaces it.
        """
        deadline = self.deadline = self.reactor.time() + delay_s
        if self._deadlines is not queue:
            self._move_deadline(queue)
            queue.add(self, deadline)

    def _move_deadline(self, queue: DeadlineQueue | None) -> None:
        """Leave the deadline queue the connection is in for ``queue`` (None: no deadline any more)."""
        if self._deadlines is not None:
            self._deadlines.discard(self)
        self._deadlines = queue

    # ----------------------------------------------------------- lifecycle
    def connection_made(self, transport: Transport) -> None:
        self.transport = transport
        # Asked of a TLS transport only (the constructor set None and "http"): the call of TLSInfo.of cost
        # every connection ~1,200 instructions.  The scheme is read per request: kept per connection.
        if type(transport) is TLSTransport:
            self.tls = TLSInfo.of(transport)
            self._scheme = "http" if self.tls is None else "https"
        self.ctx.connection_opened(self)
        queue = self.ctx.h1.deadlines[NEW]
        if queue is not None:
            timeout = queue.timeout_s
            if self.tls is not None:  # the head's deadline counts from the accept, as over TCP
                timeout -= transport.get_extra_info("handshake_s", 0.0)
            # _set_deadline for a connection in no queue yet, without its two calls (~1,000 instructions).
            now = self.reactor.time  # then called: a method-style call of the attribute is never specialized
            deadline = self.deadline = now() + timeout
            self._deadlines = queue
            queue.add(self, deadline)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.phase is DEFERRED:
            self._abandon("the connection was lost")
        elif self._response is not None or self._stream is not None:
            self._response_cut_short(f"the connection was lost ({exc or 'closed'})")  # releases the response
        self.transport = None
        if self._sink is not None:
            self._release_body(f"the connection was lost ({exc or 'closed'})")
        if self._deadlines is not None:  # self._move_deadline(None) and self._to("lost"), without the calls
            self._deadlines.discard(self)
            self._deadlines = None
        self.phase, self._arm_pending = self.phase.exits["lost"]
        ctx = self.ctx
        ctx.connection_closed(self)
        self.request = None
        # Break the cycles through this protocol (its bound responder, the
        # spare request holding it): without this every closed connection
        # was left to the cyclic GC, ~12,000 instructions a connection
        # (callgrind of evloop-demo under 50 concurrent Connection: close clients).
        self._responder = None
        idle = ctx.h1.idle_protocols
        if len(idle) < IDLE_PROTOCOLS_MAX:
            # For the next connection (for_connection): its buffered bytes and body go now, not when reused.
            self.conn.renew()
            self.body = b""
            idle.append(self)

    def eof_received(self) -> bool | None:
        if self.phase is LINGER:
            return False
        if self.phase is DEFERRED:
            # The client left while its request was in the app (a half-closed
            # client that still waits is treated the same, as nginx and
            # uvicorn do): free the connection now, not when the app answers.
            self._abandon("the client closed the connection")
            self._close()
            return True
        # A half-closed client may still read our responses (RFC 9112
        # section 9.6): answer the complete requests already received; the
        # state machine then reports the closed connection and we close.
        self.conn.receive_data(b"")
        if self.phase.reads:
            self._process()
        # An error answered after the EOF (a head cut short by it) has nothing left to drain: the transport
        # closes once the answer is sent, not at the drain's deadline (LINGER_S with the descriptor held).
        return self.phase is not LINGER

    def data_received(self, data: bytes) -> None:
        phase = self.phase
        if phase is LINGER:
            # Draining after an error response: the bytes are dropped; their coming moves the drain's end
            # (see config.LINGER_S).  A later deadline is only stored (see _set_deadline).
            self.deadline = min(self.reactor.time() + LINGER_S, self._linger_ends)
            return
        conn = self.conn
        if self._timed:
            now = self.reactor.time  # then called: see _response_done
            self._received_at = now()
            counts = self._counts
            if counts is not None:
                counts.bytes_in += len(data)
        if phase.reads:
            conn.receive_data(data)
            self._process()
        elif phase is DEFERRED and not conn.keep_alive:
            # Bytes after the connection's last request are never parsed:
            # dropped, and reading goes on, so the client's leaving is seen.
            return
        else:
            conn.receive_data(data)
            if conn.should_pause_reading:
                self._pause_reading()  # a pipelining client got too far ahead

    def _process(self) -> None:
        """The read loop: take events from the state machine while the connection reads; run each complete request.

        Running a request is the loop's body (a method of its own cost ~500 instructions a request); after a
        keep-alive response with nothing buffered the loop ends without asking for NEED_DATA (see start_next_cycle)."""
        conn = self.conn
        try:
            # A lost connection is CLOSED, a closing one CLOSING or LINGER: the phase says it all.
            while self.phase.reads:
                if self._write_paused:
                    # Our answers are backed up: read no further until the peer takes them.
                    self._pause_reading()
                    if self.phase is IDLE:
                        self._to("writes_backed_up")
                    break
                try:
                    event = conn.next_event()
                except ProtocolError as exc:
                    self._protocol_error(exc)
                    return
                if event is NEED_DATA:  # first, its type not asked: the last event of every read (~300 a keep-alive)
                    if (self.phase is IDLE or self.phase is NEW) and conn.has_buffered_bytes():
                        self._to("head_started")  # the rest must follow within the header timeout
                    break
                event_type = type(event)
                if event_type is RequestHead:
                    head: Any = event
                    self.head = head
                    self._started = self._received_at
                    if self._log_heads:
                        self._log_head(head)
                    body: Any = conn.take_whole_body(self._whole_room) if head.content_length or head.chunked else b""
                    if body is None and (body := self._head_with_body(head)) is None:  # not whole: the plain path
                        continue  # the body follows
                elif event_type is Data or event_type is EndOfMessage:
                    data: Any = event
                    taken = self._body_part(data.data) if event_type is Data else self._body_ended()
                    if taken is None:
                        continue  # more body to come, or a sink answered it or failed
                    head, body = self.head, taken
                else:
                    self._reading_stopped(event)
                    break
                # A complete request: run the app, send what it returns (unless it defers).
                self.phase, self._arm_pending = self.phase.exits["request"]  # self._to("request"), without the call
                ctx = self.ctx
                transport: Any = self.transport
                shared = ctx.h1
                request = shared.spare_request
                if request is None:
                    request = self._new_request(head, body)
                else:
                    shared.spare_request = None
                    request._renew(head.method, head.target, head.version, head.headers, body, transport.peername,
                                   self._scheme, head.target_parts)
                    if request._responder is not self._responder:  # it served another connection: made this one's
                        request.server, request._responder, request.tls = transport.sockname, self._responder, self.tls
                if ctx.trusted_proxies is not None:
                    self._take_proxy_word(request, head)
                self.request = request
                call_app = ctx.call_app  # called from a local: a method-style call of the attribute is unspecialized
                try:
                    response = call_app(request)
                except BaseException as exc:  # sys.exit() in a handler is a failed request, not a stop
                    response = self._app_failed(request, exc)
                if response is None or request._responded:
                    self._not_answered_now(request, response)  # deferred, or respond() and a return
                    continue
                request._responded = True  # a later respond() is an error
                self._send(response)
                if (self.phase is IDLE or self.phase in _AFTER_LAST_RESPONSE) and _refcount(request) == 2:  # a spare
                    if request.body:
                        request.body, request._stream = b"", None  # the spare holds no body, nor a BytesIO over it
                    shared.spare_request = request
                if conn.awaits_next_request and self.phase is IDLE and not self._write_paused:
                    break  # next_event would say NEED_DATA: its call skipped (see start_next_cycle)
        finally:
            if self._out or self._arm_pending:  # else nothing to write or arm (see _send): the call skipped
                self._finish()

    def _take_proxy_word(self, request: Request, head: RequestHead) -> None:
        """Behind a trusted proxy (``--forwarded-allow-ips``): the client, scheme and request id it vouches for."""
        trusted: Any = self.ctx.trusted_proxies
        peer = request.client
        request.client, request.scheme = resolve_client(peer, request.scheme, head.headers, trusted)
        if trusted.is_trusted_peer(peer):
            request.trust_request_id()

    def _new_request(self, head: RequestHead, body: bytes) -> Request:
        """A new request for ``head``, when there is no spare (arguments by position, here and in ``_process``'s
        ``_renew``: with keywords a call takes twice as long, 0.7 against 0.3 us)."""
        transport: Any = self.transport
        return Request(head.method, head.target, head.version, head.headers, body, transport.peername,
                       transport.sockname, self._scheme, self.reactor, self._responder, head.target_parts, self.tls)

    def _reading_stopped(self, event: Event) -> None:
        """The peer's close or a pause: the read loop stops."""
        if isinstance(event, ConnectionClosed):
            self._close()
        elif event is not PAUSED:
            raise RuntimeError(f"unexpected event {event!r}")

    def _head_with_body(self, head: RequestHead) -> bytes | None:
        """A head whose body follows: None (read the body), or the body to run the request with now: b"" when
        refused before its body or a streamed-body route's, the whole body when it is already buffered.

        A whole body already buffered (a small POST in one read) is taken by one call (``take_whole_body``),
        not a turn of ``_process``'s loop, ``next_event``, the reader and ``_body_part``: load/bench_instructions.py
        echo4k 63,218 -> 57,466, wsgi-echo4k 72,692 -> 66,863 (tests/server/test_body_parts.py: against parts).
        ``_process`` makes that call itself first, without this one (and the BODY phase it would leave at once):
        wsgi-echo4k 48,983 -> 48,043; this method is then the plain path, for a body that is not whole, too long,
        expected (``Expect: 100-continue``) or maybe streamed (tests/server/test_body_parts.py)."""
        self.phase, self._arm_pending = self.phase.exits["head_with_body"]  # self._to(), without the call
        conn = self.conn
        if head.expect_continue:
            would_accept = self.ctx.would_accept
            if would_accept is not None and not would_accept(head.method, head.target):
                # Refused before the body: answer without 100 and do not read
                # the body (RFC 9110 10.1.1); the connection closes after it.
                conn.keep_alive = False
                return b""
            self._out.append(conn.send_informational(100))
        streams_body = self.ctx.streams_body
        # A streamed-body route is run at its head: it answers ReceiveBody (see _send_body).
        if streams_body is not None and streams_body(head.method, head.target):
            return b""
        if self._whole_room >= 0:
            return None  # _process asked take_whole_body already: not whole, too long or expected
        return conn.take_whole_body(self._memory_room)  # the room: a longer body is spooled (bodies.py)

    def _body_part(self, data: bytes) -> bytes | None:
        """A part of the request body, held or passed to the sink: the whole body when this part completes it,
        else None (more to come, or a sink answered or failed).

        With ``implicit_end`` the part holding a Content-Length body's last
        byte completes the request (no EndOfMessage follows).  A body in one
        part, the usual small body, is handed to the app as it came: one
        call here, no copy (load/bench_instructions.py echo4k: 68,854 -> 61,709
        against the EndOfMessage event, its loop turn and two calls more).
        """
        self.phase, self._arm_pending = self.phase.exits["body_progress"]  # first: a sink may answer, and leave BODY
        body = self.body
        if not body:
            if len(data) <= self._memory_room and self.conn.their_state is _RECV_DONE:
                return data  # the whole body in one part (a sink makes the room 0)
            self.body = body = data  # a body in one read is never copied
        elif type(body) is bytes:
            joined = bytearray(body)
            joined += data
            self.body = body = joined
        else:
            body += data  # a bytearray, extended in place
        if len(body) > self._memory_room:
            body_overflowed(self, body)  # to the sink: a temporary file, made now, or a streamed-body route
        if self.conn.their_state is not _RECV_DONE or self.phase is not BODY:
            return None
        return self._body_ended()

    def _body_ended(self) -> bytes | None:
        """The whole body is read: the body to run the request with, or None when a sink answers it."""
        if self._sink is not None and self._sink.end():
            return None  # a streamed body's receiver answers it (bodies.py)
        return self._take_body()

    def _release_body(self, why: str) -> None:
        """The request ended (``why``): its spooled body's file is closed, a streamed body's receiver told."""
        sink, self._sink = self._sink, None
        self._memory_room = self.ctx.config.body_spool_bytes
        if sink is not None:
            sink.close(why)

    def _take_body(self) -> bytes:
        body = self.body
        self.body = b""
        return body if type(body) is bytes else bytes(body)

    def _log_head(self, head: RequestHead) -> None:
        """``debug_log_heads``: log each head as it is parsed."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("request head from %s: %s %s %s %r", peer_text(self.transport), head.method, head.target,
                         head.version, head.headers)

    # ------------------------------------------------------------ the app
    def _respond_later(self, response: Response) -> None:
        """``request.respond()``: inside the handler, or later from a timer or another callback."""
        if self.transport is None:
            response.close()
            return
        if self.phase is IN_APP:
            self._send(response)  # still inside _process: its write carries this response
            return
        try:
            self._send(response)
        finally:
            if self.phase.reads and self.transport is not None:
                self._process()  # requests that waited in the buffer; writes _out
            else:
                self._finish()

    # ------------------------------------------------------------- responses
    def _send(self, response: Response) -> None:
        """Frame ``response`` for the request in hand: complete bytes here, a stream or a file in ``_send_body``."""
        if type(response) is not Response and not isinstance(response, Response):
            head: Any = self.head
            logger.error("handler for %s %s returned %r, not a Response", head.method, head.target, response)
            close_quietly(response)
            response = internal_error()
        ctx = self.ctx
        conn = self.conn
        status = self._status = response.status
        body = response.body
        if type(body) is FileBody and body.count <= SMALL_FILE_BYTES and not (
                self.head.is_head or status in _BODILESS_STATUSES):  # type: ignore[union-attr]
            body = small_file_bytes(body)  # as bytes unless it must go by sendfile
        try:
            if type(body) is not bytes:
                self._send_body(response, status)
                return
            # The common case: complete at once, nothing to close later.
            self._body_bytes = len(body)  # the access log counts 0 for a bodiless response
            framed = conn.send_complete_response(status, response.headers, body, ctx.wall.http_date,
                                                 ctx.server_header, response.reason)
        except Exception as exc:
            # The app gave a response that cannot be framed (a header changed
            # to a bad or non-str value after the Response was built, a wrong
            # length, an iterable that cannot be iterated): a 500 or an abort.
            self._response_refused(exc)
            return
        if self._response is None and self._sink is None and conn.keep_alive and self.transport is not None:
            # _response_done's steps for a complete keep-alive response (nothing to close, no body sink), without
            # its call: ~540 instructions a request (load/bench_instructions.py keepalive 24,114 -> 23,575);
            # tests/server/test_response_done_fast.py checks it against _response_done.
            self.requests_served += 1
            if self._timed:
                self._log_response()
            self.request = self.head = None
            self.phase, self._arm_pending = self.phase.exits["response_done"]  # self._to(), without the call
            if self._reading_paused and not self._write_paused:
                self._resume_reading()
            if not conn.awaits_next_request or self._out or (queue := self._deadlines) is None or (
                    queue is not ctx.h1.deadlines[IDLE]):
                self._out.append(framed)  # _finish writes it, with the read's other responses, and arms the deadline
                return
            # The read's one response, in IDLE's queue already (keep-alive): _finish's steps, arm then write,
            # without its call: _process then has nothing to finish (whole server keepalive 34,331 -> 33,201
            # instructions, pipelined +180 for the checks; tests/server/test_response_done_fast.py).
            now = self.reactor.time  # an attribute, then a call: a method-style call of it is not specialized
            self.deadline = now() + queue.timeout_s
            self._arm_pending = False
            self.transport.write(framed)  # a write that backs up goes on to DRAINING and arms again (pause_writing)
            return
        self._out.append(framed)
        self._response_done()

    def _send_body(self, response: Response, status: int) -> None:
        """A body that is a file or an iterable: the head now, the body as the peer takes it."""
        if isinstance(response, WebSocketUpgrade):
            self._upgrade(response)
            return
        if isinstance(response, ReceiveBody):
            stream_body(self, response.receiver)  # a streamed-body route: reading the body goes on
            return
        self._response = response
        head: Any = self.head
        body = response.body
        bodiless = head.is_head or status in _BODILESS_STATUSES
        self._body_bytes = 0  # counted as the body goes out
        if isinstance(body, FileBody):
            length: int | None = body.count
        else:
            length = response.content_length
        conn = self.conn
        self._out.append(conn.send_response(status, response.headers, content_length=length, reason=response.reason,
                                            date=self.ctx.wall.http_date, server=self.ctx.server_header))
        if length == 0:
            self._response_done()  # complete with its head; an iterable is closed, not pulled
        elif bodiless:
            self._out.append(conn.send_end())
            self._response_done()
        elif isinstance(body, FileBody):
            self._send_file(body)
        else:
            self._stream = iter(body)
            self._to("streaming")
            self._pump_stream()

    def _log_response(self) -> None:
        """The access log's line and the metrics' counts of the response just queued (``_timed``: one is on)."""
        access_log = self.ctx.access_log
        head: Any = self.head
        now = self.reactor.time  # an attribute, then a call: a method-style call of it is never specialized
        duration_s = now() - self._started  # (LOAD_METHOD, ~110 instructions more under valgrind)
        if access_log is not None:
            # The request's client: the real one when proxy headers were honoured; the body's length as it was.
            request = self.request
            access_log.log(request.client if request is not None else self.transport and self.transport.peername,
                           head, self._status, self._body_bytes, duration_s, request)
        counts = self._counts
        if counts is not None:
            size = 0 if head.is_head or self._status in _BODILESS_STATUSES else self._body_bytes
            counts.response_done(head.method, self._status, size, duration_s)

    def _response_done(self) -> None:
        """The whole response is queued: log it, then start the next cycle or close."""
        if self._response is not None:
            self._end_response()
        # Counted here, summed by the server: a small per-connection number
        # is one of Python's cached ints, a server-wide total past 256 is a
        # new int object per request (~300 instructions).
        self.requests_served += 1
        if self._timed:  # the access log or the metrics are on
            self._log_response()
        if self._sink is not None:
            self._release_body("the response is done")
        self.request = None
        self.head = None
        transport = self.transport
        if transport is None:
            return
        conn = self.conn
        if conn.keep_alive:  # close_when_idle turns it off for the last response of a graceful shutdown
            # The connection is ready for the next request (implicit_next_cycle).
            self.phase, self._arm_pending = self.phase.exits["response_done"]  # self._to(), without the call
            if self._reading_paused and not self._write_paused:
                self._resume_reading()
        else:
            # The last response: nothing more is read or parsed on this connection.
            self.phase, self._arm_pending = self.phase.exits["last_response_done"]  # self._to(), without the call
            self._finish()
            transport.close()
