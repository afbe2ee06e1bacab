"""The per-connection WebSocket state machine (sans-I/O, RFC 6455 sections 5-7).

Theory of operation
-------------------
Bytes go in with ``receive_data``; ``next_event`` parses one frame (or the
part of one that has arrived) at a time and returns an event (``events``).
Calls that send (``send_text``, ``send_bytes``, ``ping``, ``pong``,
``close``) return the bytes to write.  Frames the protocol itself answers
with (the Pong to a Ping, the Close that answers a Close, the Close that
fails a connection) are queued for ``data_to_send``: after reading events,
write ``data_to_send()``.

The closing handshake is one machine (``ConnectionState``)::

    OPEN --send_close--> CLOSE_SENT --close_received--> CLOSED
    OPEN --close_received--> CLOSED        (our answering Close is queued)
    OPEN, CLOSE_SENT --fail--> CLOSED      (a Close with 1002/1007/1009 is queued)
    any --eof--> CLOSED

In CLOSED nothing more is read or sent.  A server then closes the TCP
connection once ``data_to_send()`` is written (RFC 6455 7.1.1); a client
waits for the server to close it (and closes it itself after a timeout).

Receiving: a data frame that is whole in the buffer, final, uncompressed and
not part of a fragmented message (nearly every small message) takes one
branch: header, unmask, decode, event.  Anything else goes through the
general path: a frame's payload is consumed as it arrives (unmasked with the
mask rotated to the offset, inflated, UTF-8-checked by an incremental
decoder), so a 16 MiB message costs time and memory linear in its size and
a text message fails as soon as its bytes cannot become UTF-8, whichever
frame or read they come in.
"""

from __future__ import annotations

import codecs
import enum
import os
import zlib
from collections.abc import Callable, Iterator

from .deflate import DeflateParams, Deflater, Inflater, MessageTooBig
from .errors import StateError
from .events import (
    BinaryMessage,
    CloseReceived,
    ConnectionClosed,
    ConnectionFailed,
    Event,
    Ping,
    Pong,
    TextMessage,
)
from .frames import (
    FIN,
    MAX_CONTROL_PAYLOAD,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RSV1,
    SMALL_PAYLOAD,
    SPREADS,
    TEXT_HEADS,
    CloseCode,
    close_payload,
    encode_frame,
    from_bytes,
    mask_payload,
    pack_head_16,
    parse_close_payload,
)
from .prepared import PreparedMessage

__all__ = [
    "TRANSITIONS",
    "ConnectionState",
    "PreparedMessage",
    "Role",
    "WebSocketConnection",
    "transition",
]


class Role(enum.Enum):
    SERVER = "SERVER"
    CLIENT = "CLIENT"


class ConnectionState(enum.Enum):
    OPEN = "OPEN"
    CLOSE_SENT = "CLOSE_SENT"  # our Close is out, the peer's has not come
    CLOSED = "CLOSED"  # the closing handshake is over (or failed): close the TCP connection

    __hash__ = object.__hash__


EVENTS = ("send_close", "close_received", "fail", "eof")
TRANSITIONS = {
    (ConnectionState.OPEN, "send_close"): ConnectionState.CLOSE_SENT,
    (ConnectionState.OPEN, "close_received"): ConnectionState.CLOSED,
    (ConnectionState.CLOSE_SENT, "close_received"): ConnectionState.CLOSED,
    (ConnectionState.OPEN, "fail"): ConnectionState.CLOSED,
    (ConnectionState.CLOSE_SENT, "fail"): ConnectionState.CLOSED,
    (ConnectionState.OPEN, "eof"): ConnectionState.CLOSED,
    (ConnectionState.CLOSE_SENT, "eof"): ConnectionState.CLOSED,
    (ConnectionState.CLOSED, "eof"): ConnectionState.CLOSED,
}

_OPEN = ConnectionState.OPEN
_CLOSED = ConnectionState.CLOSED

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # uvicorn's --ws-max-size default


def transition(state: ConnectionState, event: str) -> ConnectionState:
    """The state after ``event`` in ``state``; ``StateError`` naming both when there is none."""
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise StateError(f"no transition from {state.name} on {event!r}") from None


_new_utf8_decoder = codecs.getincrementaldecoder("utf-8")
_NEED_MORE = object()  # a frame reader's answer: the buffer holds too little
_WHOLE_TEXT = FIN | OP_TEXT  # the first byte of an uncompressed text message in one frame
_WHOLE_BINARY = FIN | OP_BINARY
_new = object.__new__  # an event's fields set after it: see next_event


class WebSocketConnection:
    """One WebSocket connection after the handshake, either side.

    ``role``: ``Role.SERVER`` (frames from the peer must be masked, ours are
    not) or ``Role.CLIENT`` (the reverse; ours are masked with keys from
    ``mask_source(4)``).  ``deflate``: the negotiated permessage-deflate
    parameters (``handshake`` returns them), None without compression.
    ``subprotocol``: the negotiated one, kept for the application.
    ``max_message_bytes``: a message (after inflating) may not be longer,
    else the connection fails with 1009.  ``deliver_fragments``: deliver
    each piece of a message as it arrives (``final`` marks the last) instead
    of whole messages; the size limit still applies to the whole message.
    ``auto_pong``: answer each Ping with a Pong (queued for
    ``data_to_send``).

    Call order: ``receive_data`` whenever bytes arrive (``b""`` at EOF),
    then ``next_event`` until it returns None (or iterate ``events()``;
    or stop early once ``needs_data`` is true: the next call would say None),
    then write ``data_to_send()``.  Sending calls may come at any time in
    ``OPEN``; they raise ``StateError`` in another state.
    """

    __slots__ = (
        "_auto_pong",
        "_buf",
        "_close_code",
        "_close_reason",
        "_decoder",
        "_deflater",
        "_deliver_fragments",
        "_eof",
        "_eof_reported",
        "_expect_mask",
        "_frame",
        "_frame_fin",
        "_frame_left",
        "_frame_mask",
        "_inflater",
        "_mask_source",
        "_max_message_bytes",
        "_msg_compressed",
        "_msg_bytes",
        "_msg_op",
        "_msg_size",
        "_msg_text",
        "_pos",
        "_send_compressed",
        "_send_op",
        "deflate",
        "needs_data",
        "outgoing",
        "role",
        "state",
        "subprotocol",
    )

    def __init__(
        self,
        role: Role,
        *,
        deflate: DeflateParams | None = None,
        subprotocol: str | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        deliver_fragments: bool = False,
        auto_pong: bool = True,
        mask_source: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.role = role
        self.state = ConnectionState.OPEN
        self.deflate = deflate
        self.subprotocol = subprotocol
        self._max_message_bytes = max_message_bytes
        self._deliver_fragments = deliver_fragments
        self._auto_pong = auto_pong
        self._mask_source = mask_source
        self._expect_mask = role is Role.SERVER
        # Frames we send, ``(first_byte, payload) -> bytes``: a server's
        # unmasked (the module function itself: a method in between cost a
        # call per message), a client's masked with a fresh key each.
        self._frame: Callable[[int, bytes | bytearray], bytes] = (
            encode_frame if self._expect_mask else self._masked_frame
        )
        self._deflater: Deflater | None = None
        self._inflater: Inflater | None = None
        if deflate is not None:
            server = role is Role.SERVER
            d = deflate
            ours_bits, ours_fresh = (
                (d.server_max_window_bits, d.server_no_context_takeover)
                if server
                else (d.client_max_window_bits, d.client_no_context_takeover)
            )
            theirs_bits, theirs_fresh = (
                (d.client_max_window_bits, d.client_no_context_takeover)
                if server
                else (d.server_max_window_bits, d.server_no_context_takeover)
            )
            self._deflater = Deflater(ours_bits, ours_fresh, d.compress_level, d.mem_level)
            self._inflater = Inflater(theirs_bits, theirs_fresh)
        self._buf: bytes | bytearray = b""
        self._pos = 0
        self._eof = False
        self._eof_reported = False
        # True when next_event would return None until receive_data is
        # called (see there): only ever set where that is cheap to know.
        self.needs_data = False
        # Frames the protocol queued itself (Pongs, Close answers, failures),
        # taken by data_to_send(); the list is read-only to callers, who may
        # test it to skip that call (a server flushes after every read).
        self.outgoing: list[bytes] = []
        # The frame being read: -1 between frames, else payload bytes still to come.
        self._frame_left = -1
        self._frame_fin = False
        self._frame_mask: bytes | bytearray | None = None
        # The message being read: opcode 0 when none.
        self._msg_op = 0
        self._msg_compressed = False
        self._msg_size = 0  # bytes of the message so far (after inflating): 0 between messages
        self._msg_text: list[str] = []
        self._msg_bytes: list[bytes | bytearray] = []
        self._decoder: codecs.IncrementalDecoder | None = None
        # The message being sent in fragments: opcode 0 when none.
        self._send_op = 0
        self._send_compressed = False
        self._close_code = CloseCode.ABNORMAL
        self._close_reason = ""

    def __repr__(self) -> str:
        return f"<WebSocketConnection {self.role.name} {self.state.name} buffered={self.buffered_bytes}>"

    # -- receiving ----------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Add received bytes; ``b""`` means the peer closed its side (EOF)."""
        self.needs_data = False
        if not data:
            self._eof = True
            return
        if self.state is _CLOSED:
            return  # RFC 6455 5.5.1: nothing after a Close is read
        buf = self._buf
        if self._pos >= len(buf):
            self._buf = data
            self._pos = 0
        elif isinstance(buf, bytes):
            # Bytes left over (a partial header, a partial control frame, or
            # events not yet read): one copy into a bytearray that later
            # data extends in amortised linear time.
            new = bytearray(buf[self._pos:])
            new += data
            self._buf = new
            self._pos = 0
        else:
            if self._pos > 65536 and self._pos * 2 > len(buf):
                del buf[: self._pos]
                self._pos = 0
            buf += data

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not parsed yet (the glue pauses reading above a bound)."""
        return len(self._buf) - self._pos

    def data_to_send(self) -> bytes:
        """The frames the protocol queued itself (Pongs, Close answers and failures), then empty."""
        out = self.outgoing
        if not out:
            return b""
        self.outgoing = []
        return b"".join(out)

    def events(self) -> Iterator[Event]:
        """``next_event`` until it returns None."""
        while (event := self.next_event()) is not None:
            yield event

    # next_event: ``received`` is bytes to add first, as ``receive_data(received)`` does (a glue's read and
    # its first event in one call: ~350 instructions a 16 B message fewer, callgrind; the bytes of a read
    # that finds the buffer consumed become it here, the rest goes through ``receive_data``, the plain
    # path: tests/ws/test_ws_connection.py compares the two).  See ``events`` for the grammar; a peer's
    # protocol violation is a ``ConnectionFailed`` (never raised).  A frame header (RFC 6455 5.2) is read
    # here, not in a method of its own (callgrind, 16 B echo), a 16-bit length too.  The usual frame
    # (whole, uncompressed, text or binary, no fragmented message before it) is answered here: header,
    # unmask, decode, event; others go to ``_start_frame``.
    def next_event(self, received: bytes | None = None) -> Event | None:
        """The next event, or None when more bytes are needed; ``received``: bytes to add first (see above)."""
        if received is not None:
            if received and self._pos >= len(self._buf) and self.state is not _CLOSED:
                self._buf, self._pos, self.needs_data = received, 0, False
            else:
                self.receive_data(received)
        while self.state is not _CLOSED:
            if self._frame_left < 0:
                buf = self._buf
                pos = self._pos
                size = len(buf)
                if size - pos < 2:
                    break  # not even a frame header's first two bytes (the usual end of a read)
                b0 = buf[pos]
                b1 = buf[pos + 1]
                n = b1 & 0x7F
                hlen = 2
                if n >= 126:
                    if n == 126 and size - pos >= 4 and (m := buf[pos + 2] << 8 | buf[pos + 3]) >= 126:
                        n, hlen = m, 4  # in the fewest bytes, the usual: _extended_length's call saved (~700)
                    elif type(length := self._extended_length(buf, pos, n)) is not tuple:
                        if length is _NEED_MORE:
                            break
                        return length  # type: ignore[return-value]  # the failure
                    else:
                        n, hlen = length
                masked = b1 & 0x80
                if masked:
                    if not self._expect_mask:
                        return self._fail(CloseCode.PROTOCOL_ERROR, "masked frame from a server")
                    hlen += 4  # the key: sliced below only where it is wanted apart
                    if size < pos + hlen:
                        break
                elif self._expect_mask:
                    return self._fail(CloseCode.PROTOCOL_ERROR, "unmasked frame from a client")
                end = pos + hlen + n
                if (b0 == _WHOLE_TEXT or b0 == _WHOLE_BINARY) and end <= size and not self._msg_op and (
                    n <= self._max_message_bytes
                ):
                    # A whole uncompressed message within the bound: _start_frame's rules pass it.
                    self._pos = end
                    self.needs_data = size - end < 2 and not self._eof  # True: the glue skips the call saying None
                    start = pos + hlen
                    if not masked:
                        payload = buf[start:end]
                    elif n < SMALL_PAYLOAD:  # key and payload as one int (see frames.SPREADS)
                        spread, shift = SPREADS[n]
                        x = from_bytes(buf[start - 4 : end])
                        payload = (x ^ ((x >> (n << 3)) * spread >> shift)).to_bytes(n)
                    else:
                        payload = mask_payload(buf[start - 4 : start], buf[start:end])
                    # Events made without the dataclass __init__ (a Python call from C): ~1,000 instructions fewer.
                    if b0 == _WHOLE_TEXT:
                        try:
                            text = payload.decode()  # UTF-8, the default: no name to look up
                        except UnicodeDecodeError:
                            return self._fail(CloseCode.INVALID_DATA, "text message not UTF-8")
                        message = _new(TextMessage)
                        message.data = text
                        message.final = True
                        return message
                    binary = _new(BinaryMessage)
                    binary.data = payload if type(payload) is bytes else bytes(payload)
                    binary.final = True
                    return binary
                event = self._start_frame(b0, n, buf[pos + hlen - 4 : pos + hlen] if masked else None, pos, hlen)
                if event is _NEED_MORE:
                    break
                if event is not None:
                    return event  # type: ignore[return-value]  # else a data frame's payload follows
            event = self._read_payload()
            if event is _NEED_MORE:
                break
            if event is not None:
                return event  # type: ignore[return-value]
        if self._eof and not self._eof_reported:
            return self._eof_event()
        return None

    def _eof_event(self) -> ConnectionClosed:
        """The peer's EOF, once every buffered event is out: the last event."""
        self._eof_reported = True
        if self.state is not _CLOSED:
            self._close_code, self._close_reason = CloseCode.ABNORMAL, ""
        self.state = transition(self.state, "eof")
        return ConnectionClosed(self._close_code, self._close_reason)

    def _extended_length(self, buf: bytes | bytearray, pos: int, n: int) -> tuple[int, int] | Event | object:
        """The 16- or 64-bit payload length (``n`` is 126 or 127) and the header's
        length so far, ``_NEED_MORE``, or the failure of a length not in the fewest bytes."""
        if n == 126:
            if len(buf) - pos < 4:
                return _NEED_MORE
            n = (buf[pos + 2] << 8) | buf[pos + 3]
            if n < 126:
                return self._fail(CloseCode.PROTOCOL_ERROR, "frame length not in the fewest bytes")
            return n, 4
        if len(buf) - pos < 10:
            return _NEED_MORE
        n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
        if n >> 63:
            return self._fail(CloseCode.PROTOCOL_ERROR, "frame length with the top bit set")
        if n < 65536:
            return self._fail(CloseCode.PROTOCOL_ERROR, "frame length not in the fewest bytes")
        return n, 10

    def _start_frame(
        self, b0: int, n: int, mask: bytes | bytearray | None, pos: int, hlen: int
    ) -> Event | object | None:
        """Every frame but a whole small message: the RSV and opcode rules, a control
        frame read whole, or a data frame whose payload ``_read_payload`` reads as it comes."""
        opcode = b0 & 0x0F
        rsv = b0 & 0x70
        if rsv and (rsv != RSV1 or self._inflater is None or opcode != OP_TEXT and opcode != OP_BINARY):
            # RSV1 marks the first frame of a compressed message, and
            # only once permessage-deflate is negotiated (RFC 7692 6).
            return self._fail(CloseCode.PROTOCOL_ERROR, "reserved bits set")
        if opcode >= 8:
            return self._control_frame(b0, opcode, n, mask, pos, hlen)
        failure = self._data_frame_error(opcode, n, rsv)
        if failure is not None:
            return failure
        self._pos = pos + hlen
        self._frame_left = n
        self._frame_fin = bool(b0 & FIN)
        self._frame_mask = mask
        if opcode:
            self._msg_op = opcode
            self._msg_compressed = bool(rsv)
            if opcode == OP_TEXT:
                if self._decoder is None:
                    self._decoder = _new_utf8_decoder()
                else:
                    self._decoder.reset()
        return None

    def _control_frame(
        self, b0: int, opcode: int, n: int, mask: bytes | bytearray | None, pos: int, hlen: int
    ) -> object:
        """A control frame: read whole (at most 131 bytes), never fragmented, at most 125 bytes of payload."""
        if opcode > OP_PONG:
            return self._fail(CloseCode.PROTOCOL_ERROR, f"reserved opcode {opcode}")
        if not b0 & FIN:
            return self._fail(CloseCode.PROTOCOL_ERROR, "fragmented control frame")
        if n > MAX_CONTROL_PAYLOAD:
            return self._fail(CloseCode.PROTOCOL_ERROR, "control frame over 125 bytes")
        end = pos + hlen + n
        buf = self._buf
        if len(buf) < end:
            return _NEED_MORE
        self._pos = end
        payload = buf[pos + hlen : end]
        if mask is not None:
            payload = mask_payload(mask, payload)
        return self._control(opcode, bytes(payload))

    def _data_frame_error(self, opcode: int, n: int, rsv: int) -> Event | None:
        """The continuation and size rules for a data frame's header: the failure, or None."""
        if opcode == OP_CONTINUATION:
            if not self._msg_op:
                return self._fail(CloseCode.PROTOCOL_ERROR, "continuation frame without a message")
        elif opcode > OP_BINARY:
            return self._fail(CloseCode.PROTOCOL_ERROR, f"reserved opcode {opcode}")
        elif self._msg_op:
            return self._fail(CloseCode.PROTOCOL_ERROR, "new message inside a fragmented message")
        if rsv or (not opcode and self._msg_compressed):
            # Compressed frames are bounded one by one; the inflater
            # bounds what they inflate to.
            too_big = n > self._max_message_bytes
        else:
            too_big = n > self._max_message_bytes - self._msg_size
        if too_big:
            return self._fail(CloseCode.MESSAGE_TOO_BIG, f"message over {self._max_message_bytes} bytes")
        return None

    def _read_payload(self) -> Event | object | None:
        """Payload of the data frame in progress: an event when a message (or a
        fragment) is complete, None to go on, ``_NEED_MORE``."""
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        left = self._frame_left
        if avail <= 0 and left:
            return _NEED_MORE
        take = left if left <= avail else avail
        end = pos + take
        chunk: bytes | bytearray = buf[pos:end]
        self._pos = end
        left -= take
        self._frame_left = left
        mask = self._frame_mask
        if mask is not None and take:
            chunk = mask_payload(mask, chunk)
            if left and take & 3:
                rot = take & 3
                self._frame_mask = mask[rot:] + mask[:rot]
        if not left:
            self._frame_left = -1
        return self._message_data(chunk, not left and self._frame_fin)

    def _message_data(self, chunk: bytes | bytearray, final: bool) -> Event | None:
        """Add a piece of the current message's payload; the event it completes, if any."""
        size = self._msg_size
        if self._msg_compressed:
            assert self._inflater is not None
            try:
                chunk = self._inflater.inflate(chunk, final, self._max_message_bytes - size)
            except MessageTooBig:
                return self._fail(CloseCode.MESSAGE_TOO_BIG, f"message over {self._max_message_bytes} bytes")
            except zlib.error:
                return self._fail(CloseCode.INVALID_DATA, "compressed message does not inflate")
        self._msg_size = size + len(chunk)
        if self._msg_op == OP_TEXT:
            decoder = self._decoder
            assert decoder is not None
            try:
                text = decoder.decode(chunk, final)
            except UnicodeDecodeError:
                return self._fail(CloseCode.INVALID_DATA, "text message not UTF-8")
            if not final:
                # CPython's decoder waits on ED A0-BF (a surrogate, never
                # valid) for a third byte; refuse it now.
                pending = decoder.getstate()[0]
                if len(pending) > 1 and pending[0] == 0xED and pending[1] > 0x9F:
                    return self._fail(CloseCode.INVALID_DATA, "text message not UTF-8")
            if final:
                self._msg_op = 0
                self._msg_size = 0
            if self._deliver_fragments:
                return TextMessage(text, final) if text or final else None
            texts = self._msg_text
            texts.append(text)
            if final:
                self._msg_text = []
                return TextMessage("".join(texts))
            return None
        if final:
            self._msg_op = 0
            self._msg_size = 0
        if self._deliver_fragments:
            return BinaryMessage(bytes(chunk), final) if chunk or final else None
        parts = self._msg_bytes
        parts.append(chunk)
        if final:
            self._msg_bytes = []
            return BinaryMessage(b"".join(parts))
        return None

    def _control(self, opcode: int, payload: bytes) -> Event | None:
        if opcode == OP_PING:
            if self._auto_pong and self.state is _OPEN:
                self.outgoing.append(self._frame(FIN | OP_PONG, payload))
            return Ping(payload)
        if opcode == OP_PONG:
            return Pong(payload)
        parsed = parse_close_payload(payload)
        if isinstance(parsed, str):
            if parsed == "utf-8":
                return self._fail(CloseCode.INVALID_DATA, "close reason not UTF-8")
            return self._fail(CloseCode.PROTOCOL_ERROR, parsed)
        code, reason = parsed
        if self.state is _OPEN:
            # RFC 6455 5.5.1: answer with a Close, echoing the code.
            answer = b"" if code == CloseCode.NO_STATUS else code.to_bytes(2, "big")
            self.outgoing.append(self._frame(FIN | OP_CLOSE, answer))
        self.state = transition(self.state, "close_received")
        self._close_code, self._close_reason = code, reason
        self._discard_input()
        return CloseReceived(code, reason)

    def _fail(self, code: int, reason: str) -> ConnectionFailed:
        """Fail the connection (RFC 6455 7.1.7): queue a Close with ``code`` unless one is out."""
        if self.state is _OPEN:
            self.outgoing.append(self._frame(FIN | OP_CLOSE, close_payload(code, reason[:120])))
        self.state = transition(self.state, "fail")
        # No Close came from the peer: the closure is abnormal (RFC 6455 7.1.5).
        self._close_code, self._close_reason = CloseCode.ABNORMAL, ""
        self._discard_input()
        return ConnectionFailed(code, reason)

    def _discard_input(self) -> None:
        self._buf = b""
        self._pos = 0
        self._msg_text = []
        self._msg_bytes = []

    # -- sending ------------------------------------------------------------

    def _masked_frame(self, first_byte: int, payload: bytes | bytearray) -> bytes:
        return encode_frame(first_byte, payload, self._mask_source(4))

    def _send_data(self, opcode: int, payload: bytes | bytearray, final: bool, call: str) -> bytes:
        if self.state is not _OPEN:
            raise StateError(f"{call} in {self.state.name}")
        send_op = self._send_op
        if send_op:
            if send_op != opcode:
                raise StateError(f"{call} inside a fragmented message of another type")
            first = OP_CONTINUATION
            compressed = self._send_compressed
        else:
            first = opcode
            compressed = self._deflater is not None
            if compressed:
                first |= RSV1
            self._send_compressed = compressed
        if compressed:
            assert self._deflater is not None
            payload = self._deflater.deflate(payload, final)
        self._send_op = 0 if final else opcode
        if final:
            first |= FIN
        return self._frame(first, payload)

    def send_text(self, data: str, final: bool = True) -> bytes:
        """The frame(s) for a text message; ``final`` False starts or continues a fragmented one."""
        if final and not self._send_op and self._deflater is None and self.state is _OPEN:
            # A whole uncompressed message, none in progress: one frame, as
            # _send_data would make it, without its call (~900 instructions
            # of a 16 B echo; tests/ws/test_ws_connection.py compares the two),
            # a server's small one without encode_frame's call (its head from
            # a table: ~900 instructions fewer, callgrind of the 16 B echo),
            # nor a server's one of 126 bytes to 64 KiB (~600 fewer, 4 KiB).
            payload = data.encode()  # UTF-8, the default
            n = len(payload)
            if self._expect_mask:
                if n < 126:
                    return TEXT_HEADS[n] + payload
                if n < 65536:
                    return pack_head_16(_WHOLE_TEXT, 126, n) + payload
            return self._frame(_WHOLE_TEXT, payload)
        return self._send_data(OP_TEXT, data.encode("utf-8"), final, "send_text")

    def send_bytes(self, data: bytes | bytearray, final: bool = True) -> bytes:
        """The frame(s) for a binary message; ``final`` False starts or continues a fragmented one."""
        return self._send_data(OP_BINARY, data, final, "send_bytes")

    def send_prepared(self, message: PreparedMessage) -> bytes:
        """The bytes of a ``PreparedMessage`` for this connection (see there for compression)."""
        if self.state is not _OPEN:
            raise StateError(f"send_prepared in {self.state.name}")
        if self._send_op:
            raise StateError("send_prepared inside a fragmented message")
        if not self._expect_mask:  # a client masks every frame with its own key
            return self._send_data(message.opcode, message.payload, True, "send_prepared")
        d = self.deflate
        if d is not None and d.server_no_context_takeover:
            return message.compressed_frame(d.server_max_window_bits, d.compress_level, d.mem_level)
        return message.frame

    def ping(self, payload: bytes = b"") -> bytes:
        """A Ping frame (at most 125 bytes of payload)."""
        return self._send_control(OP_PING, payload, "ping")

    def pong(self, payload: bytes = b"") -> bytes:
        """An unsolicited Pong frame (a heartbeat, RFC 6455 5.5.3)."""
        return self._send_control(OP_PONG, payload, "pong")

    def _send_control(self, opcode: int, payload: bytes, call: str) -> bytes:
        if self.state is not _OPEN:
            raise StateError(f"{call} in {self.state.name}")
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError("a control frame carries at most 125 bytes (RFC 6455 5.5)")
        return self._frame(FIN | opcode, payload)

    def close(self, code: int | None = CloseCode.NORMAL, reason: str = "") -> bytes:
        """Start the closing handshake: the Close frame to send.

        ``code`` None sends a Close without a code.  Raises ``ValueError``
        for a code that may not be sent or a reason over 123 bytes, and
        ``StateError`` unless the state is OPEN.  Then wait for the peer's
        Close (``CloseReceived``), with a timeout of the glue's choosing.
        """
        payload = close_payload(code, reason)
        self.state = transition(self.state, "send_close")
        self._close_code = CloseCode.NO_STATUS if code is None else code
        self._close_reason = reason
        return self._frame(FIN | OP_CLOSE, payload)
