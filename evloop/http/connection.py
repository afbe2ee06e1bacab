"""The per-connection HTTP/1.1 state machine (sans-I/O).

Theory of operation
-------------------
Two small machines, joined by ``keep_alive`` (their tables: ``states``):

receiving side (RecvState)::

    IDLE --head--> BODY --end--> DONE --next_cycle--> IDLE
    IDLE --complete_head--> DONE
    IDLE, BODY --eof--> CLOSED        IDLE, BODY --error--> ERROR

(``complete_head``: with ``implicit_end``, a head without a body is the whole
request, and no EndOfMessage event is returned for it)

sending side (SendState)::

    IDLE --request--> SEND_RESPONSE --response--> SEND_BODY --end--> DONE
                      SEND_RESPONSE --complete_response--> DONE
    DONE --next_cycle--> IDLE         any --error_response--> MUST_CLOSE

A response that completes while ``keep_alive`` is false lands in MUST_CLOSE
instead of DONE.  With ``implicit_next_cycle``, one that completes while it is
true takes ``next_cycle`` at once: both sides are IDLE when the call that
completed it returns, as if ``start_next_cycle`` had been called.
``keep_alive`` starts true and, once cleared, stays cleared: by a request
that does not ask for keep-alive, by the server (its last response before a
graceful shutdown), by ``Connection: close`` from the application, a close-delimited response, a
response that starts before the request body was fully read, a short
Content-Length body, or any error.

Pipelining: once the receiving side is DONE, ``next_event`` returns PAUSED
and later bytes stay unparsed until ``start_next_cycle`` (both sides DONE).
The server calls ``next_event`` until EndOfMessage before responding;
responding earlier (for example refusing an ``Expect: 100-continue`` request)
closes the connection after the response.
"""

import enum
from collections.abc import Iterable, Sequence
from typing import AnyStr

from ..buffers import EMPTY, ReceiveBuffer
from .body_readers import ContentLengthReader, Reader, body_reader, read_no_body, take_buffered
from .caches import HTTP1Caches
from .errors import ProtocolError, StateError
from .events import NEED_DATA, PAUSED, ConnectionClosed, Data, Event, RequestHead
from .framed import REMEMBERED_BODY_BYTES, frame_closing, frame_remembered
from .head_templates import fill as fill_template
from .parser import HeadReader, Limits
from .states import RECV_TRANSITIONS, SEND_TRANSITIONS, RecvState, SendState, recv_transition, send_transition
from .writer import LAST_CHUNK, chunk, encode_fields, error_body, prepare_fields, response_head

# The hot path's transitions from a state it has already checked: looked up
# in the tables once here, so a request costs no table lookups or calls.
# Each is the state after an event: ``_RECV_AFTER_HEAD`` holds the receiving
# side's state after a head in IDLE.
_RECV_AFTER_HEAD = RECV_TRANSITIONS[RecvState.IDLE, "head"]
_RECV_AFTER_COMPLETE_HEAD = RECV_TRANSITIONS[RecvState.IDLE, "complete_head"]
_RECV_AFTER_DATA = RECV_TRANSITIONS[RecvState.BODY, "data"]
_RECV_AFTER_END = RECV_TRANSITIONS[RecvState.BODY, "end"]
_RECV_AFTER_NEXT_CYCLE = RECV_TRANSITIONS[RecvState.DONE, "next_cycle"]
_SEND_AFTER_REQUEST = SEND_TRANSITIONS[SendState.IDLE, "request"]
_SEND_AFTER_COMPLETE_RESPONSE = SEND_TRANSITIONS[SendState.SEND_RESPONSE, "complete_response"]
_SEND_AFTER_NEXT_CYCLE = SEND_TRANSITIONS[SendState.DONE, "next_cycle"]


class _Body(enum.Enum):
    """How the response body in progress is framed on the wire."""

    LENGTH = "Content-Length"
    CHUNKED = "chunked"
    CLOSE = "close-delimited"
    NONE = "no body"  # HEAD, 204, 304: body bytes are dropped


# The members the hot paths test, as module globals: on Python 3.11 every
# ``RecvState.X`` goes through the slow attribute hook that EnumType's
# ``__getattr__`` installs (~0.1 us, measured), ten times a global's cost.
_RECV_IDLE = RecvState.IDLE
_RECV_BODY = RecvState.BODY
_RECV_DONE = RecvState.DONE
_RECV_CLOSED = RecvState.CLOSED
_SEND_IDLE = SendState.IDLE
_SEND_RESPONSE = SendState.SEND_RESPONSE
_SEND_DONE = SendState.DONE
_SEND_MUST_CLOSE = SendState.MUST_CLOSE
_BY_LENGTH = _Body.LENGTH
_BY_CHUNKS = _Body.CHUNKED
_BY_CLOSE = _Body.CLOSE
_NO_BODY = _Body.NONE

_CONNECTION_CLOSE = b"Connection: close\r\n"
_CONNECTION_CLOSE_END = _CONNECTION_CLOSE + b"\r\n"  # the field and the head's empty line
_CONNECTION_KEEP_ALIVE = b"Connection: keep-alive\r\n"
_CHUNKED = b"Transfer-Encoding: chunked\r\n"
_TEXT_PLAIN = b"Content-Type: text/plain; charset=utf-8\r\n"


class ServerConnection:
    """One HTTP/1.1 server connection: bytes in, events out; calls in, bytes out.

    Receiving: ``receive_data(bytes)`` (``b""`` for EOF), then ``next_event()``
    until it returns NEED_DATA or PAUSED.  Sending: ``send_response`` [,
    ``send_data``* , ``send_end``], each returning the bytes to write; then
    ``start_next_cycle()`` when ``keep_alive`` and both sides are DONE.
    """

    # Those a keep-alive request touches first (fewer cache lines a request when many connections are open).
    __slots__ = (
        "_implicit_end",
        "_implicit_next_cycle",
        "caches",
        "_heads",
        "_buf",
        "_reader",
        "_eof",
        "_http10",
        "_head_request",
        "_body",
        "their_state",
        "our_state",
        "keep_alive",
        "awaits_next_request",
        "_limits",
        "_body_head",
        "_error",
        "_remaining",
    )

    def __init__(
        self,
        limits: Limits = Limits(),
        implicit_end: bool = False,
        implicit_next_cycle: bool = False,
        caches: HTTP1Caches | None = None,
    ) -> None:
        """``implicit_end``: a request without a body is complete with its
        ``RequestHead`` (the receiving side goes straight to DONE and no
        ``EndOfMessage`` follows); for a server that answers such requests
        at once, this saves an event and a call per request.  Likewise a
        Content-Length body is complete with the ``Data`` holding its last
        byte (the receiving side is DONE when it is returned; the server's
        ``_body_part`` says what that saves); a chunked body still ends with
        ``EndOfMessage`` (its trailers).

        ``implicit_next_cycle``: a response completed with ``keep_alive``
        (by ``send_complete_response``, ``send_response`` or ``send_end``)
        starts the next cycle itself, so the owner does not call
        ``start_next_cycle``: a call less per request (the server, measured
        with load/bench_instructions.py against calling it: pipelined 23,930
        -> 22,495, keepalive 34,030 -> 32,513 instructions a request).

        ``caches``: the speed-ups shared by a server's connections (see
        ``evloop.http.caches.HTTP1Caches``); a server creates one and passes
        it to every connection.  None gives this connection caches of its
        own.

        The arguments may be passed by position, as the server does: a
        call with keywords builds a dict for them on every connection."""
        self._limits = limits
        self._implicit_end = implicit_end
        self._implicit_next_cycle = implicit_next_cycle
        if caches is None:
            caches = HTTP1Caches()
        self.caches = caches  # read-only: for the owner's statistics
        self._heads = HeadReader(limits, caches)
        self._buf = ReceiveBuffer()
        self.renew()

    def renew(self) -> None:
        """Start over for a new connection, as if just made (the same limits and caches).

        A server reuses the state machine of a connection that closed for
        the next one it accepts (``evloop.server.h1``: making one cost
        ~6,700 instructions, its receive buffer and head reader included).
        Bytes still buffered are dropped and the buffer's memory freed, the memo of the last head's template too.
        The last head's memo, an entry of the server's cache of heads, stays: a Connection: close client's same
        head is one comparison, not the reader's lookup (server_instructions.py close 84,159 -> 78,298; another
        head pays next_event's two comparisons first, ~1,500 instructions: a memo right one time in five pays).
        """
        buf = self._buf
        buf.data = EMPTY  # the last connection's bytes freed
        buf.pos = buf.searched = 0
        self._heads.last_template = None
        # In BODY: the head whose body it is; its reader is made when next_event first reads the body (None until
        # then), never when take_whole_body takes all of it at once (a call and an object less, ~2,400 instructions).
        self._reader: Reader | None = None
        self._body_head: RequestHead | None = None
        self._eof = False
        self._error: ProtocolError | None = None  # set in ERROR
        self._http10 = False
        self._head_request = False
        self._body = _NO_BODY
        self._remaining = 0
        self.their_state = _RECV_IDLE
        self.our_state = _SEND_IDLE
        self.keep_alive = True
        self.awaits_next_request = False  # see start_next_cycle

    def __repr__(self) -> str:
        return (
            f"<ServerConnection their_state={self.their_state.name} "
            f"our_state={self.our_state.name} keep_alive={self.keep_alive} "
            f"buffered={len(self._buf)}>"
        )

    # -- receiving side ---------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Add received bytes; ``b""`` means the peer closed its side (EOF)."""
        self.awaits_next_request = False  # next_event has something to look at (see start_next_cycle)
        if data:
            if self._eof:
                raise StateError("receiving side: data received after EOF")
            buf = self._buf
            if buf.pos != len(buf.data) or type(data) is not bytes:
                buf.feed(data)  # compacts what was parsed, or copies a kept read (below) that more bytes follow
            else:
                # Nothing unparsed (a keep-alive request): the read kept as it came and parsed where it is
                # (ReceiveBuffer), no copy in nor out: load/bench_instructions.py echo4k 41,691 -> 39,062.
                buf.data = data
                buf.pos = 0
        else:
            self._eof = True

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not parsed yet."""
        buf = self._buf
        return len(buf.data) - buf.pos  # len(buf), without the call to __len__

    def unparsed_request_line(self, max_chars: int = 1024) -> str:
        """The first line of the bytes not parsed yet (at most ``max_chars``,
        latin-1): after a refused head, its request line as far as it came."""
        buf = self._buf
        data, pos = buf.data, buf.pos
        end = data.find(b"\n", pos, pos + max_chars)
        line = data[pos:end if end >= 0 else pos + max_chars]
        return line.rstrip(b"\r").decode("latin-1")

    def has_buffered_bytes(self) -> bool:
        """``buffered_bytes > 0``, as a method: Python 3.11 does not specialise
        property reads, and a server asks this on every keep-alive request
        (a call is ~400 instructions cheaper, load/bench_instructions.py)."""
        buf = self._buf
        return len(buf.data) > buf.pos

    @property
    def should_pause_reading(self) -> bool:
        """True while a complete request waits for its response and either
        the connection will close or too many bytes are buffered behind it."""
        return self.their_state is _RECV_DONE and (
            not self.keep_alive or len(self._buf) > self._limits.max_pipelined_bytes
        )

    def next_event(self) -> Event:
        """Return the next event: RequestHead, Data, EndOfMessage, ConnectionClosed, NEED_DATA or PAUSED.

        Raises ProtocolError on invalid input; the receiving side is then in
        ERROR, every later call raises the same error, and the server should
        answer with ``send_error_response(err.status, err.reason, date)``.
        """
        state = self.their_state
        if state is _RECV_IDLE:
            heads = self._heads
            buf = self._buf
            data = buf.data
            pos = buf.pos
            last = heads.last
            head: RequestHead | None
            if len(data) == pos:
                # All parsed: the reader's own first step, without its call; cleared now: an idle connection holds none.
                if pos:
                    buf.data = EMPTY
                    buf.pos = 0
                head = None
            elif last is not None and (data == last.raw or data.startswith(last.raw) if not pos else
                                       data.startswith(last.raw, pos)):
                # The last head's bytes again (a read of them alone compared whole: ~150 instructions; startswith ~630,
                # ~430 with no offset): it ends where that one did, parses the same (under the limits it passed).
                buf.pos = pos + len(last.raw)
                buf.searched = 0
                head = last.head
            else:
                template = heads.last_template
                try:
                    if template is None or pos or data[-1] != 10 or len(data) > heads.limits.max_head_bytes:
                        head = heads.read(buf)
                    elif (head := fill_template(template, whole := data.decode("latin-1"))) is not None:
                        # One head of the shape of the connection's last, filled before its end is searched for (see
                        # HeadReader) here, not by the reader: a frame less (browser 55,513 -> 54,976 instructions).
                        buf.pos, buf.searched = len(data), 0
                    else:
                        head = heads.read(buf, whole)
                except ProtocolError as exc:
                    self._fail(exc)
                    raise
            if head is None:
                return self._closed_before_head() if self._eof else NEED_DATA
            # The request begins.  The sending side is normally IDLE too.
            our_state = self.our_state
            self.our_state = _SEND_AFTER_REQUEST if our_state is _SEND_IDLE else send_transition(our_state, "request")
            if not head.keep_alive:
                self.keep_alive = False  # once off, off for good (as h11's): the server may turn it off first
            if head.chunked or head.content_length:
                self.their_state = _RECV_AFTER_HEAD
                self._body_head = head  # its reader is made when it is read (in IDLE none is: renew, next cycle)
            elif self._implicit_end:
                self.their_state = _RECV_AFTER_COMPLETE_HEAD
            else:
                self.their_state = _RECV_AFTER_HEAD
                self._reader = read_no_body
            self._http10 = head.http10
            self._head_request = head.is_head
            return head
        if state is _RECV_BODY:
            return self._body_event()
        if state is _RECV_DONE:
            return PAUSED
        if state is _RECV_CLOSED:
            return ConnectionClosed()
        raise self._error  # type: ignore[misc]  # ERROR: _fail has set it

    def _body_event(self) -> Event:
        """``next_event`` in BODY: the body's next part, its end, or what the reader still needs."""
        reader = self._reader
        if reader is None:  # the body's first read: its reader (RFC 9112 6.3)
            reader = self._reader = body_reader(self._body_head, self._limits)  # type: ignore[arg-type]
            self._body_head = None  # held no longer than needed (an idle connection holds no head)
        try:
            event = reader(self._buf)
        except ProtocolError as exc:
            self._fail(exc)
            raise
        if event is None:
            if self._eof:  # the request can never complete; nobody waits for an answer
                self.their_state, self.keep_alive = recv_transition(_RECV_BODY, "eof"), False
                return ConnectionClosed()
            return NEED_DATA
        if event.__class__ is not Data:
            self.their_state = _RECV_AFTER_END
        else:  # the last byte of a Content-Length body completes the request: no EndOfMessage follows
            last_byte = self._implicit_end and reader.__class__ is ContentLengthReader and not reader.remaining
            self.their_state = _RECV_AFTER_END if last_byte else _RECV_AFTER_DATA
        return event

    def take_whole_body(self, max_bytes: int) -> bytes | None:
        """Right after a ``RequestHead`` with a Content-Length body and no ``Expect: 100-continue`` (the server may
        refuse that body): the whole body, when all of it is buffered and it is at most ``max_bytes`` long, else
        None (nothing changes: read it with ``next_event``).

        With ``implicit_end``, what ``next_event`` returns then is one ``Data`` holding this body, the receiving
        side DONE with it; this is that step without the event: the usual small POST, its body in the read that
        brought its head, costs the server one call here instead of a turn of its read loop, ``next_event``, the
        reader's call and a ``Data`` (load/bench_instructions.py echo4k, see ``evloop.server.h1``).  Without
        ``implicit_end`` (an ``EndOfMessage`` would follow), always None.
        """
        head = self._body_head  # set in BODY until next_event reads from the body (its reader made): else None
        if head is None or not self._implicit_end or head.expect_continue:
            return None
        length = head.content_length
        if length is None or length > max_bytes:  # None: chunked (the parser refuses a length with it)
            return None
        buf = self._buf
        data = buf.data
        pos = buf.pos
        end = pos + length
        size = len(data)
        if size < end:
            return None
        self.their_state = _RECV_AFTER_END
        self._body_head = None
        if end != size or type(data) is not bytes:
            return take_buffered(buf, length)  # a request follows it (pipelined), or the reads' bytearray
        # The body ends the read that brought its head (the usual small POST), kept as it came: take_buffered's
        # case, without its call (load/bench_instructions.py echo4k 47,479 -> 46,655).
        buf.data = EMPTY
        buf.pos = 0
        return data[pos:]

    def _closed_before_head(self) -> Event:
        """The peer closed with no complete head buffered: ConnectionClosed, or a 400 for part of one."""
        if len(self._buf):
            error = ProtocolError(400, "connection closed inside request head")
            self._fail(error)
            raise error
        self.their_state = recv_transition(self.their_state, "eof")
        return ConnectionClosed()

    def _fail(self, exc: ProtocolError) -> None:
        self.their_state = recv_transition(self.their_state, "error")
        self._error = exc
        self.keep_alive = False

    # -- sending side -----------------------------------------------------

    def send_informational(self, status: int = 100, headers: Sequence[tuple[AnyStr, AnyStr]] = ()) -> bytes:
        """An interim 1xx response (not 101); ``b""`` for an HTTP/1.0 client
        (RFC 9110 15.2).  Only before ``send_response``."""
        if not 100 <= status <= 199 or status == 101:
            raise ValueError(f"not an informational status: {status!r}")
        block = encode_fields(headers)
        self.our_state = send_transition(self.our_state, "informational")
        if self._http10:
            return b""
        return response_head(status, block, b"", b"", None, None)

    def send_switching_protocols(
        self, headers: Sequence[tuple[str, str]], date: bytes | None, server: bytes | None = b"evloop"
    ) -> bytes:
        """The ``101 Switching Protocols`` head with ``headers`` (RFC 9110 15.2.2).

        Only for a complete HTTP/1.1 request (``StateError`` otherwise); the
        sending side goes to SWITCHED, ``keep_alive`` off, and nothing more
        is parsed or framed as HTTP: take the bytes that followed the
        request with ``trailing_data()`` and hand them to the new protocol.
        """
        if self.their_state is not _RECV_DONE or self._http10:
            raise StateError(f"switching protocols needs a complete HTTP/1.1 request (receiving side "
                             f"{self.their_state.name})")
        self.our_state = send_transition(self.our_state, "switch_protocols")
        self.keep_alive = False
        return response_head(101, encode_fields(headers), b"", b"", date, server)

    def trailing_data(self) -> bytes:
        """The bytes received after the request and not parsed (after a 101: the new protocol's first bytes)."""
        buf = self._buf
        return bytes(buf.data[buf.pos:])

    def send_complete_response(
        self, status: int, headers: Iterable[tuple[AnyStr, AnyStr]], body: bytes, date: bytes | None,
        server: bytes | None = b"evloop", reason: str | None = None,
    ) -> bytes:
        """``send_response(status, headers, content_length=len(body), date=date, server=server, body=body,
        reason=reason)``: a response complete with its bytes body.

        The common case (HTTP/1.1, a body allowed, no field evloop manages among ``headers``) is framed by
        ``writer.plain_response_head`` without the general path's decisions, and the head is remembered: a response
        is then one lookup and one concatenation.  The last one with a short body is remembered whole
        (``HTTP1Caches.last_framed``): the same body object with equal fields, status, Date and Server (a health
        check) is its bytes again (load/bench_instructions.py pipelined 19,538 -> 17,847, keepalive 28,412 ->
        26,875).  A new body object with the last head's status, fields, length, Date and Server (an echo) is that
        head (``last_head``) and the body, compared here, not in frame_remembered: wsgi-echo4k 48,000 -> 47,302.
        A connection's last response adds ``Connection: close`` (close 65,719 -> 58,953).
        """
        if (
            reason is None
            and self.our_state is _SEND_RESPONSE
            and self.their_state is _RECV_DONE
            and not self._http10
            and not self._head_request
        ):
            if not self.keep_alive:
                return self._send_closing(status, headers, body, date, server)
            caches = self.caches
            last = caches.last_framed  # (body, status, fields, date, server, bytes)
            if (last is not None and last[0] is body and last[1] == status and last[3] is date and last[4] is server
                    and last[2] == headers):
                framed_response: bytes | None = last[5]
            elif ((head := caches.last_head) is not None and head[2] == len(body) and head[3] is date
                  and head[0] == status and head[4] is server and head[1] == headers
                  and (last is None or last[0] is not body)):  # (status, fields, length, date, server, head)
                framed_response = head[5] + body
                if head[2] <= REMEMBERED_BODY_BYTES and type(body) is bytes:  # its second coming: remembered whole
                    caches.last_framed = (body, None, None, None, None, None)  # seen once (see frame_remembered)
            else:
                if type(headers) is not list and type(headers) is not tuple:
                    headers = tuple(headers) if headers else ()  # read once: an iterator of pairs works
                framed_response = frame_remembered(self.caches, status, headers, body, date, server)
            if framed_response is not None:
                if self._implicit_next_cycle:
                    # DONE, then start_next_cycle's resets (inline: the call is
                    # what implicit_next_cycle saves; keep the two in step).
                    self.their_state = _RECV_AFTER_NEXT_CYCLE
                    self.our_state = _SEND_AFTER_NEXT_CYCLE
                    self._reader = None
                    self._body = _NO_BODY
                    buf = self._buf
                    if len(buf.data) == buf.pos and not self._eof:
                        buf.data = EMPTY
                        buf.pos = 0
                        self.awaits_next_request = True
                else:
                    self.our_state = _SEND_AFTER_COMPLETE_RESPONSE
                    self._body = _BY_LENGTH
                    self._remaining = 0
                return framed_response
        return self.send_response(status, headers, content_length=len(body), date=date, server=server, body=body,
                                  reason=reason)

    def _send_closing(
        self, status: int, headers: Iterable[tuple[AnyStr, AnyStr]], body: bytes, date: bytes | None,
        server: bytes | None,
    ) -> bytes:
        """``send_complete_response`` for the connection's last response (a Connection: close request): the
        framed head, its connection field last (response_head's order), as send_response frames it.  The last
        one with a short body is remembered whole (``HTTP1Caches.last_closing``, as ``last_framed``): the same
        body object with equal fields, status, Date and Server is its bytes again, without the fields' tuple,
        the key's hash and lookup and the two joins (load/server_instructions.py close 88,064 -> 84,542,
        wsgi-close 106,642 -> 102,729)."""
        last = self.caches.last_closing  # (body, status, fields, date, server, bytes)
        if (last is not None and last[0] is body and last[1] == status and last[3] is date and last[4] is server
                and last[2] == headers):
            response: bytes = last[5]
        else:
            if type(headers) is not list and type(headers) is not tuple:
                headers = tuple(headers) if headers else ()  # read once: an iterator of pairs works
            framed = frame_closing(self.caches, status, headers, body, _CONNECTION_CLOSE_END, date, server)
            if framed is None:
                return self.send_response(status, headers, content_length=len(body), date=date, server=server,
                                          body=body)
            response = framed
        self.our_state = _SEND_MUST_CLOSE
        self._body = _BY_LENGTH
        self._remaining = 0
        return response

    def send_response(
        self,
        status: int,
        headers: Iterable[tuple[AnyStr, AnyStr]],
        *,
        content_length: int | None,
        date: bytes | None,
        server: bytes | None = b"evloop",
        body: bytes = b"",
        reason: str | None = None,  # the status line's reason phrase; None: the standard one
    ) -> bytes:
        """Serialise a final response head, plus ``body`` if given.

        ``headers``: (name, value) pairs, all ``str`` or all ``bytes``; a CR,
        LF or other control in them raises ValueError.  Content-Length and
        Transfer-Encoding among them are dropped (a Content-Length stands in
        for ``content_length`` when that is None); Date and Server among them
        replace evloop's; ``date`` or ``server`` None leaves that field out
        (``--no-date-header``, ``--no-server-header``).  ``content_length``: the body length, or None for a
        streamed body of unknown length (chunked for HTTP/1.1, close-delimited
        for HTTP/1.0).  ``body``: the first bytes of the body; when it is the
        whole body the response is complete and ``send_data``/``send_end``
        must not be called.  HEAD, 204 and 304 responses carry no body bytes.
        Joining copies ``body``: pass big bodies to ``send_data`` instead.
        """
        if not 200 <= status <= 599:  # RFC 9110 15: 1xx are interim, and nothing is past 5xx
            raise ValueError(f"not a final status: {status!r}")
        block, app = prepare_fields(headers, self.caches.fields) if headers else (b"", None)
        close = not self.keep_alive or self.their_state is not _RECV_DONE
        if app is not None:  # fields evloop manages are among the application's
            block = app.block
            if content_length is None:
                content_length = app.content_length
            close = close or app.close

        no_content = status == 204 or status == 304
        if content_length is not None:
            if len(body) > content_length:
                raise ValueError("body longer than content_length")
            # RFC 9110 8.6: no Content-Length on 204; on 304 it would have
            # to describe the selected representation, which we do not know.
            framing = b"" if no_content else b"Content-Length: %d\r\n" % content_length
            mode = _NO_BODY if no_content or self._head_request else _BY_LENGTH
        elif no_content:
            framing, mode = b"", _NO_BODY
        elif not self._http10:
            framing, mode = _CHUNKED, _NO_BODY if self._head_request else _BY_CHUNKS
        elif self._head_request:
            framing, mode = b"", _NO_BODY
        else:  # an HTTP/1.0 body of unknown length: delimited by the close
            framing, mode, close = b"", _BY_CLOSE, True

        complete = content_length is not None and len(body) == content_length
        our_state = send_transition(
            self.our_state, "complete_response" if complete else "response", not close
        )

        if close:
            self.keep_alive = False
            connection = b"" if app is not None and app.close else _CONNECTION_CLOSE
        elif self._http10 and (app is None or not app.connection):
            connection = _CONNECTION_KEEP_ALIVE
        else:
            connection = b""
        if mode is _BY_LENGTH:
            self._remaining = content_length - len(body)  # type: ignore[operator]  # _BY_LENGTH: content_length is set
        elif mode is _BY_CHUNKS:
            body = chunk(body) if body else b""
        elif mode is _NO_BODY:
            body = b""
        self._body = mode
        self.our_state = our_state
        if our_state is _SEND_DONE and self._implicit_next_cycle:
            self.start_next_cycle()

        own_date = date if app is None or not app.date else None  # the application's Date and Server replace ours
        own_server = server if app is None or not app.server else None
        head = response_head(status, block, framing, connection, own_date, own_server, reason)
        return head + body if body else head

    def send_data(self, data: bytes) -> bytes:
        """Frame a piece of the response body (chunked when chunked); ``TypeError`` unless it is bytes-like."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            # Refused here: passed through, a str would fail only when joined
            # with the other bytes, far from the body that produced it.
            raise TypeError(f"response body chunks must be bytes, not {type(data).__name__}")
        self.our_state = send_transition(self.our_state, "data")
        mode = self._body
        if mode is _BY_LENGTH:
            n = len(data)
            if n > self._remaining:
                raise ValueError("response body longer than its Content-Length")
            self._remaining -= n
            return data
        if mode is _BY_CHUNKS:
            return chunk(data) if data else b""
        if mode is _BY_CLOSE:
            return data
        return b""

    def file_data_sent(self, count: int) -> None:
        """``count`` body bytes went out without ``send_data`` (sendfile of a
        Content-Length or close-delimited body); account for them, so that
        ``send_end`` does not take the body for short.  Chunked bodies must
        go through ``send_data``: raises ValueError."""
        self.our_state = send_transition(self.our_state, "data")
        mode = self._body
        if mode is _BY_CHUNKS:
            raise ValueError("a chunked body cannot bypass send_data")
        if mode is _BY_LENGTH:
            if count > self._remaining:
                raise ValueError("response body longer than its Content-Length")
            self._remaining -= count

    def send_end(self) -> bytes:
        """Finish the response body: the last chunk when chunked, else b"".

        A Content-Length body that fell short, or a close-delimited body,
        leaves the connection in MUST_CLOSE.
        """
        mode = self._body
        keep_alive = self.keep_alive
        if mode is _BY_CLOSE or (mode is _BY_LENGTH and self._remaining):
            keep_alive = False
        self.our_state = our_state = send_transition(self.our_state, "end", keep_alive)
        self.keep_alive = keep_alive
        if our_state is _SEND_DONE and self._implicit_next_cycle:
            self.start_next_cycle()
        return LAST_CHUNK if mode is _BY_CHUNKS else b""

    def send_error_response(
        self, status: int, reason: str, date: bytes | None, server: bytes | None = b"evloop"
    ) -> bytes:
        """A complete ``text/plain`` error response with ``Connection: close``.

        Always moves the sending side to MUST_CLOSE.  Returns b"" when a
        response has already started (the server can only close then).
        """
        state = self.our_state
        self.our_state = send_transition(state, "error_response")
        self.keep_alive = False
        if state is not _SEND_IDLE and state is not _SEND_RESPONSE:
            return b""
        body = error_body(status, reason)
        head = response_head(
            status, _TEXT_PLAIN, b"Content-Length: %d\r\n" % len(body), _CONNECTION_CLOSE, date, server
        )
        return head if self._head_request and state is _SEND_RESPONSE else head + body

    def start_next_cycle(self) -> int:
        """Reset both sides for the next request (both DONE, keep-alive).

        Returns ``buffered_bytes``: whether the next request may already be
        here (one call instead of two per request on a busy connection).

        With nothing buffered and no EOF, ``awaits_next_request`` becomes
        True (until ``receive_data``): ``next_event`` would only say
        NEED_DATA, so an owner can skip that call after a keep-alive
        response.  The server does (load/server_instructions.py: keepalive
        38,281 -> 36,611, browser 73,421 -> 71,946 instructions a request;
        a pipelined burst's requests pay the check, 18,332 -> 18,733).  The
        parsed bytes are dropped here, as that call would have: an idle
        connection holds none.
        """
        their_state = self.their_state
        our_state = self.our_state
        if their_state is not _RECV_DONE or our_state is not _SEND_DONE:
            raise StateError(
                f"cannot start next cycle: receiving side {their_state.name}, "
                f"sending side {our_state.name}"
            )
        self.their_state = _RECV_AFTER_NEXT_CYCLE
        self.our_state = _SEND_AFTER_NEXT_CYCLE
        self._reader = None
        self._body = _NO_BODY
        buf = self._buf
        buffered = len(buf.data) - buf.pos
        if not buffered and not self._eof:
            buf.data = EMPTY
            buf.pos = 0
            self.awaits_next_request = True
        return buffered
