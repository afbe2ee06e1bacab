"""Request bodies: a reader chosen from the head (``body_reader``), called as bytes arrive.

A reader is a callable ``reader(buf) -> Data | EndOfMessage | None`` where
None means "need more bytes": ``read_no_body``, ``ContentLengthReader`` or
``ChunkedReader``.  Inside chunked framing (sizes, data CRLF, trailers) only
CRLF ends a line (RFC 9112 7.1), unlike the head (see ``parser``).  All
errors are ``ProtocolError(status, reason)``.
"""

import enum
import re
from collections.abc import Callable

from ..buffers import EMPTY, ReceiveBuffer
from . import grammar
from .errors import ProtocolError
from .events import Data, EndOfMessage, RequestHead
from .parser import Limits, field_error

_BARE_CR_OR_LF = re.compile(rb"\r(?!\n)|(?<!\r)\n")


# Up to this many bytes a part is copied twice (a bytearray slice, then bytes) rather than once through a
# memoryview, whose objects cost more than such a copy: callgrind, 100 bytes 5,302 -> 2,423 instructions,
# 4 KiB 6,061 -> 3,896; 64 KiB 71,439 against 134,553 (valgrind counts a long copy by the byte).
_SLICED_PART_BYTES = 4096


def _take(data: bytes | bytearray, pos: int, n: int) -> bytes:
    if n <= _SLICED_PART_BYTES:
        return bytes(data[pos : pos + n])
    with memoryview(data) as view:  # one copy
        return bytes(view[pos : pos + n])


def take_buffered(buf: ReceiveBuffer, n: int) -> bytes:
    """The next ``n`` bytes of ``buf`` (at most what it holds), taken out of it.

    When they are all that is buffered (a body in the reads after its head, or a small POST's body in the read
    that brought its head), the parsed bytes are dropped (a bytearray moves its start: no copy), the part is
    copied once and the buffer emptied: callgrind, a 4 KiB body at the state machine, 29,994 -> 25,571
    instructions against ``_take``. When more bytes follow (pipelined), ``_take`` copies the part.  A read kept
    as it came (see ``ReceiveBuffer``) gives its slice, or itself when it is all body: no copy.
    ``ServerConnection.take_whole_body`` takes a whole body that ends the buffer the same way, inline.
    """
    data = buf.data
    pos = buf.pos
    if pos + n == len(data):
        if isinstance(data, bytearray):
            del data[:pos]
            part = bytes(data)
        else:  # a read kept as it came (see ReceiveBuffer): its slice, or itself whole
            part = data[pos:] if pos else data
        buf.data = EMPTY
        buf.pos = 0
        return part
    buf.pos = pos + n
    return _take(data, pos, n)


Reader = Callable[[ReceiveBuffer], Data | EndOfMessage | None]


def read_no_body(buf: ReceiveBuffer) -> EndOfMessage:
    """The reader of a request without a body."""
    return EndOfMessage([])


class ContentLengthReader:
    __slots__ = ("remaining",)

    def __init__(self, length: int) -> None:
        self.remaining = length

    def __call__(self, buf: ReceiveBuffer) -> Data | EndOfMessage | None:
        remaining = self.remaining
        if not remaining:
            return EndOfMessage([])
        n = len(buf.data) - buf.pos
        if not n:
            return None
        if n > remaining:
            n = remaining
        self.remaining = remaining - n
        return Data(take_buffered(buf, n))


class _Chunk(enum.Enum):
    SIZE = "size line"
    DATA = "chunk data"
    DATA_END = "CRLF after chunk data"
    TRAILER = "trailer section"


# As module globals: an attribute of an Enum class costs ~0.1 us on Python
# 3.11 (see evloop.http.connection), and the reader tests one per chunk.
_CHUNK_SIZE = _Chunk.SIZE
_CHUNK_DATA = _Chunk.DATA
_CHUNK_DATA_END = _Chunk.DATA_END
_CHUNK_TRAILER = _Chunk.TRAILER


class ChunkedReader:
    """RFC 9112 7.1: chunk sizes, extensions, data, CRLFs and trailers.

    Consecutive chunks already buffered are returned as one Data event.
    """

    __slots__ = ("_limits", "_state", "_remaining", "_total", "_ext_total", "_max_line")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._state = _CHUNK_SIZE
        self._remaining = 0
        self._total = 0  # data bytes
        self._ext_total = 0  # chunk extension bytes
        # 16 hex digits, the extensions, CRLF.
        self._max_line = 16 + limits.max_chunk_ext_bytes + 2

    def __call__(self, buf: ReceiveBuffer) -> Data | EndOfMessage | None:
        data = buf.data
        pieces = None
        while True:
            state = self._state
            if state is _CHUNK_DATA:
                pos = buf.pos
                n = len(data) - pos
                if not n:
                    break
                remaining = self._remaining
                if n >= remaining:
                    n = remaining
                    self._state = _CHUNK_DATA_END
                self._remaining = remaining - n
                buf.pos = pos + n
                piece = _take(data, pos, n)
                if pieces is None:
                    pieces = [piece]
                else:
                    pieces.append(piece)
            elif state is _CHUNK_DATA_END:
                pos = buf.pos
                avail = len(data) - pos
                if avail < 2:
                    if avail and data[pos] != 13:
                        raise ProtocolError(400, "missing CRLF after chunk data (RFC 9112 7.1)")
                    break
                if data[pos] != 13 or data[pos + 1] != 10:
                    raise ProtocolError(400, "missing CRLF after chunk data (RFC 9112 7.1)")
                buf.pos = pos + 2
                self._state = _CHUNK_SIZE
            elif state is _CHUNK_SIZE:
                if not self._read_size_line(buf):
                    break
            elif pieces is None:
                return self._read_trailers(buf)
            else:
                break
        if pieces is None:
            return None
        return Data(pieces[0] if len(pieces) == 1 else b"".join(pieces))

    def _read_size_line(self, buf: ReceiveBuffer) -> bool:
        data = buf.data
        pos = buf.pos
        i = data.find(b"\n", pos + buf.searched)
        if i < 0:
            n = len(data) - pos
            if n > self._max_line:
                raise ProtocolError(400, "chunk size line too long (RFC 9112 7.1.1)")
            buf.searched = n
            return False
        if i == pos or data[i - 1] != 13:
            raise ProtocolError(400, "bare LF in chunked framing (RFC 9112 7.1)")
        m = grammar.CHUNK_LINE_RE.fullmatch(data, pos, i - 1)
        if m is None:
            raise ProtocolError(400, "invalid chunk size line (RFC 9112 7.1)")
        digits_end = m.end(1)
        if digits_end - pos > 16:
            raise ProtocolError(400, "chunk size has too many digits (RFC 9112 7.1)")
        ext_bytes = i - 1 - digits_end
        if ext_bytes:
            if ext_bytes > self._limits.max_chunk_ext_bytes:
                raise ProtocolError(400, "chunk extensions too long (RFC 9112 7.1.1)")
            self._ext_total += ext_bytes
            if self._ext_total > self._limits.max_chunk_ext_total_bytes:
                raise ProtocolError(413, "too many chunk extension bytes in the body (RFC 9112 7.1.1)")
        size = int(m[1], 16)
        total = self._total + size
        if total > self._limits.max_body_bytes:
            raise ProtocolError(413, "request body too large")
        self._total = total
        buf.pos = i + 1
        buf.searched = 0
        if size:
            self._remaining = size
            self._state = _CHUNK_DATA
        else:
            self._state = _CHUNK_TRAILER
        return True

    def _read_trailers(self, buf: ReceiveBuffer) -> EndOfMessage | None:
        data = buf.data
        pos = buf.pos
        size = len(data)
        limits = self._limits
        if size - pos < 2:
            if size > pos and data[pos] == 10:
                raise ProtocolError(400, "bare LF in chunked framing (RFC 9112 7.1)")
            return None
        if data[pos] == 13 and data[pos + 1] == 10:
            buf.pos = pos + 2
            return EndOfMessage([])
        lo = pos + buf.searched
        k = data.find(b"\r\n\r\n", lo)
        end = k + 4 if k >= 0 else size
        check_end = end if k >= 0 or data[size - 1] != 13 else size - 1
        if _BARE_CR_OR_LF.search(data, lo, check_end) is not None:
            raise ProtocolError(400, "bare CR or LF in trailer section (RFC 9112 7.1)")
        if end - pos > limits.max_head_bytes:
            raise ProtocolError(431, "trailer section too large")
        if k < 0:
            n = size - pos
            buf.searched = n - 3 if n > 3 else 0
            return None
        text = data[pos : k + 2].decode("latin-1")
        n = text.count("\n")
        if n > limits.max_header_count:
            raise ProtocolError(431, "too many trailer fields")
        trailers = grammar.FIELD_LINE_RE.findall(text)
        if len(trailers) != n:
            raise field_error(text)
        buf.pos = end
        buf.searched = 0
        return EndOfMessage(trailers)


def body_reader(head: RequestHead, limits: Limits) -> Reader:
    """Choose the body reader for a parsed head (RFC 9112 6.3)."""
    if head.chunked:
        return ChunkedReader(limits)
    if head.content_length:
        return ContentLengthReader(head.content_length)
    return read_no_body
