"""Framing protocols: lines (``LineProtocol``) and length-prefixed frames
(``LengthPrefixedProtocol``) over a stream transport.

Theory of operation.  Every chunk from ``data_received`` is appended to one
receive buffer (``evloop.buffers.ReceiveBuffer``: a bytearray and a read
position).  ``_deliver`` takes complete units (lines or frames) off the front
and hands each to the subclass until only an incomplete unit is left, delivery
is paused, or the transport is closing.  The line search resumes where the
last one stopped (``ReceiveBuffer.searched``), so a line that arrives one byte
at a time costs time linear in its length.

The buffer is compacted in two cases, both linear overall: when delivery runs
out of complete units, the incomplete rest moves to the front (those bytes all
follow the last consumed delimiter or frame, so each byte is moved this way at
most once); and in ``feed`` when the consumed prefix is at least half the
buffer (amortised).  So, unpaused, the buffer holds at most one incomplete
unit (the limit is enforced before a unit completes: a line's bytes are
dropped once they cannot end within ``max_line_bytes``, a frame's declared
length is checked when its prefix arrives) plus one read of at most
``evloop.reactor.READ_BUFFER_SIZE`` bytes.

Backpressure.  Delivery stops while either of two holds: the transport's write
buffer is above its high water mark (between ``pause_writing()`` and
``resume_writing()``), or the application called ``pause()`` and not yet
``resume()``.  Stopping delivery also pauses reading on the transport, so the
buffer does not grow while paused.  Resuming never delivers inside the
caller's frame: it schedules one callback (``call_soon``) that delivers what is
buffered and only then resumes reading.  So the code after ``resume()`` runs
before any unit arrives, and the bound above holds while paused too.

An EOF that arrives while paused is held back (the transport is kept open)
until the buffered units have been delivered; then ``input_ended(tail)`` is
called, as it is at once for an EOF while not paused.
"""

from __future__ import annotations

import enum
import logging
import struct

from .buffers import ReceiveBuffer, byte_view
from .net.base import Protocol, Transport
from .reactor import Handle, Reactor

__all__ = ["LineProtocol", "LengthPrefixedProtocol"]

logger = logging.getLogger("evloop")

_CR = 13


class _InputState(enum.Enum):
    FRAMING = "framing"        # reading units
    DISCARDING = "discarding"  # dropping the rest of a unit that was over its limit


# No __slots__ on these classes: their size limits are class attributes that
# subclasses override in the class body (a slot cannot have a class-level
# default), and applications keep per-connection state on their subclasses.
# One __dict__ per connection is small next to the connection's buffers.
class _FramingProtocol(Protocol):
    """Shared machinery: the receive buffer, delivery, pause/resume and EOF.

    Per-connection state is set up in ``connection_made``; the constructor only
    holds configuration.  Subclasses implement ``_take_one``.
    """

    transport: Transport  # set by connection_made

    # ------------------------------------------------------- transport calls
    def connection_made(self, transport: Transport) -> None:
        """Start a connection.  Overrides must call ``super().connection_made(transport)`` first."""
        self.transport = transport
        self._reactor: Reactor = transport.reactor  # resumed delivery is scheduled with call_soon
        self._rbuf = ReceiveBuffer()
        self._state = _InputState.FRAMING
        self._write_paused = False    # the transport's write buffer is over its high water mark
        self._app_paused = False      # pause() was called and resume() not yet
        self._eof_pending = False     # EOF arrived while paused; input_ended() is still due
        self._resume_handle: Handle | None = None

    def data_received(self, data: bytes) -> None:
        """Buffer ``data`` and deliver every complete unit in it, in order (unless paused)."""
        rbuf = self._rbuf
        rbuf.feed(data)
        if self._write_paused or self._app_paused:
            # Reading was paused when delivery was; this read was already under
            # way, or someone resumed reading behind our back.  Buffer it and
            # pause again, so the buffer stays bounded.
            self.transport.pause_reading()
            return
        self._deliver()

    def eof_received(self) -> bool | None:
        """Called by the transport.  Do not override: override ``input_ended`` instead."""
        if self._write_paused or self._app_paused or self._resume_handle is not None:
            # Complete units may still be buffered: keep the transport open and
            # call input_ended() once they have been delivered.
            self._eof_pending = True
            return True
        return self._end_input()

    def pause_writing(self) -> None:
        """The transport's write buffer passed its high water mark: stop delivering and reading.

        Overrides must call ``super().pause_writing()``.
        """
        self._write_paused = True
        self._hold()

    def resume_writing(self) -> None:
        """The write buffer drained to its low water mark: resume unless ``pause()`` holds.

        Overrides must call ``super().resume_writing()``.
        """
        if self._write_paused:
            self._write_paused = False
            self._maybe_schedule_resume()

    # ---------------------------------------------------- application calls
    def pause(self) -> None:
        """Stop delivering units and stop reading until ``resume()``.

        For use after ``connection_made``, e.g. while the application waits
        for something slow.  Idempotent (not counted: one ``resume()`` undoes
        any number of ``pause()`` calls).  Takes effect at once: called from
        inside ``line_received``/``frame_received``, no further unit is
        delivered after the current one returns.
        """
        self._app_paused = True
        self._hold()

    def resume(self) -> None:
        """Undo ``pause()``.  Delivery resumes unless the write side is still paused.

        Nothing is delivered inside this call: buffered units are delivered
        from a callback on the next pass of the loop, and reading on the
        transport resumes after them.
        """
        if self._app_paused:
            self._app_paused = False
            self._maybe_schedule_resume()

    def is_paused(self) -> bool:
        """Whether delivery is held, by ``pause()`` or by the write side's backpressure."""
        return self._write_paused or self._app_paused

    # -------------------------------------------------------- subclass hooks
    def input_ended(self, tail: bytes) -> bool | None:
        """The peer ended its side and every complete unit has been delivered.

        ``tail`` holds the bytes after the last complete unit (an unterminated
        line, a truncated frame), or ``b""``.  It is never delivered as a unit
        by default: a connection cut mid-line may have cut a command short.
        Like ``eof_received``, return true to keep our side open (to write a
        reply and close later); by default the transport is closed.  Not
        called if the transport closed first.
        """
        return None

    # -------------------------------------------------------------- internals
    def _take_one(self) -> bool:
        """Consume one unit from the buffer, delivering it; False if it is incomplete."""
        raise NotImplementedError

    def _hold(self) -> None:
        handle = self._resume_handle
        if handle is not None:
            self._resume_handle = None
            handle.cancel()
        self.transport.pause_reading()

    def _maybe_schedule_resume(self) -> None:
        if self._write_paused or self._app_paused or self._resume_handle is not None:
            return
        if self.transport.is_closing():
            return
        self._resume_handle = self._reactor.call_soon(self._resume_delivery)

    def _resume_delivery(self) -> None:
        self._resume_handle = None
        transport = self.transport
        try:
            if not self._deliver():
                return  # paused again, or closing
            if self._eof_pending:
                self._eof_pending = False
                if not self._end_input():
                    transport.close()
                return
        except BaseException:
            # As the transport does when data_received raises: the protocol is
            # in an unknown state, so abort.  The reactor reports the error.
            transport.abort()
            raise
        transport.resume_reading()

    def _deliver(self) -> bool:
        """Deliver complete units; True when only an incomplete one is left."""
        rbuf = self._rbuf
        transport = self.transport
        while not (self._write_paused or self._app_paused or transport.is_closing()):
            if not self._take_one():
                if rbuf.pos:
                    # Move the incomplete rest to the front.  Its bytes follow
                    # the unit just consumed, so no byte is moved here twice.
                    del rbuf.data[:rbuf.pos]  # type: ignore[union-attr]  # only fed: always a bytearray
                    rbuf.pos = 0
                return True
        return False

    def _end_input(self) -> bool | None:
        rbuf = self._rbuf
        tail = bytes(rbuf.data[rbuf.pos:]) if self._state is _InputState.FRAMING else b""
        rbuf.data.clear()  # type: ignore[union-attr]  # only fed: always a bytearray
        rbuf.pos = rbuf.searched = 0
        return self.input_ended(tail)


class LineProtocol(_FramingProtocol):
    """A protocol that receives and sends lines.

    Configuration (class attributes, or keyword arguments of the constructor):

    ``delimiter``
        ``b"\\n"`` (default): a line ends with LF, and one CR before the LF is
        stripped, so both CRLF and bare LF are accepted.  ``b"\\r\\n"``: only
        CRLF ends a line (strict); a bare LF is part of the line.
    ``newline``
        What ``send_line`` appends: ``b"\\r\\n"`` (default) or ``b"\\n"``.  CRLF
        by default because every receiver that accepts LF also accepts CRLF,
        while strict receivers reject a bare LF.
    ``max_line_bytes``
        The longest line accepted, terminator excluded (default 64 KiB).

    Call order: ``connection_made``, then ``line_received(line)`` once per
    line, in order, and ``line_too_long(size)`` in place of each line over
    the limit; ``input_ended(tail)`` once the peer has ended its side and
    every complete line was delivered; ``connection_lost(exc)`` last.  Lines
    still buffered when the transport closes (the application closed it, or
    the peer reset) are dropped.  Delivery stops while paused (see
    ``pause()``, ``pause_writing()``).

    Subclasses override ``line_received`` and may override ``line_too_long``
    and ``input_ended``; overrides of ``connection_made``, ``pause_writing``
    and ``resume_writing`` must call ``super()``; ``data_received`` and
    ``eof_received`` belong to this class.
    """

    max_line_bytes: int = 64 * 1024
    delimiter: bytes = b"\n"
    newline: bytes = b"\r\n"

    def __init__(
        self,
        *,
        max_line_bytes: int | None = None,
        delimiter: bytes | None = None,
        newline: bytes | None = None,
    ) -> None:
        if max_line_bytes is not None:
            self.max_line_bytes = max_line_bytes
        if delimiter is not None:
            self.delimiter = delimiter
        if newline is not None:
            self.newline = newline
        if self.delimiter not in (b"\n", b"\r\n"):
            raise ValueError(f"delimiter must be b'\\n' or b'\\r\\n', not {self.delimiter!r}")
        if self.newline not in (b"\n", b"\r\n"):
            raise ValueError(f"newline must be b'\\n' or b'\\r\\n', not {self.newline!r}")
        if self.max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be at least 1, not {self.max_line_bytes}")

    # -------------------------------------------------------------- hooks
    def line_received(self, line: bytes) -> None:
        """A complete line, without its terminator (and, with ``delimiter=b"\\n"``, without a CR before it)."""

    def line_too_long(self, size: int) -> None:
        """A line longer than ``max_line_bytes``; its bytes are dropped.

        ``size`` is the length of the line when its end was seen, else the
        bytes of it buffered so far (more than ``max_line_bytes``; how many
        depends on how the bytes arrived).  By default: log a warning and
        close the transport.  An override that leaves the connection open
        gets the line after it next: the rest of the long line is skipped up
        to its terminator, never read as a line of its own.
        """
        logger.warning(
            "line of %d bytes or more from %r is over max_line_bytes (%d); closing",
            size, self.transport.peername, self.max_line_bytes,
        )
        self.transport.close()

    # -------------------------------------------------------------- sending
    def send_line(self, line: bytes) -> None:
        """Write ``line`` followed by ``newline``.

        Raises ``ValueError`` if ``line`` contains LF: most receivers would
        end the line there, and the rest would arrive as a line of its own.
        """
        if b"\n" in line:
            raise ValueError("line contains LF")
        self.transport.writelines([line, self.newline])

    # ------------------------------------------------------------- internals
    def _take_one(self) -> bool:
        rbuf = self._rbuf
        data = rbuf.data
        pos = rbuf.pos
        delimiter = self.delimiter
        # A CRLF may straddle the end of the last search: step back one byte.
        start = pos + max(rbuf.searched - len(delimiter) + 1, 0)
        end = data.find(delimiter, start)
        if end < 0:
            available = len(data) - pos
            limit = self.max_line_bytes
            if self._state is _InputState.FRAMING and (
                available <= limit or (available == limit + 1 and data[-1] == _CR)
            ):
                rbuf.searched = available
                return False
            # Over the limit whatever comes next (only a CR may still end a line
            # of exactly max_line_bytes).  Drop the bytes now, so memory stays
            # bounded, but keep a trailing CR: it may be the first half of the
            # CRLF that ends the line.
            keep = 1 if len(delimiter) == 2 and available and data[-1] == _CR else 0
            rbuf.pos = len(data) - keep
            rbuf.searched = keep
            if self._state is _InputState.FRAMING:
                self._state = _InputState.DISCARDING
                self.line_too_long(available)
            return False
        line_end = end
        if len(delimiter) == 1 and end > pos and data[end - 1] == _CR:
            line_end -= 1
        rbuf.pos = end + len(delimiter)
        rbuf.searched = 0
        if self._state is _InputState.DISCARDING:
            self._state = _InputState.FRAMING
        elif line_end - pos > self.max_line_bytes:
            self.line_too_long(line_end - pos)
        else:
            self.line_received(bytes(data[pos:line_end]))
        return True


_PREFIX_FORMATS = {1: ">B", 2: ">H", 4: ">I", 8: ">Q"}


class LengthPrefixedProtocol(_FramingProtocol):
    """A protocol that receives and sends frames: a big-endian unsigned length, then that many bytes.

    Configuration (class attributes, or keyword arguments of the constructor):
    ``prefix_bytes`` (1, 2, 4 or 8; default 4), the size of the length
    prefix; ``max_frame_bytes`` (default 1 MiB), the largest payload accepted.

    Call order: ``connection_made``, then ``frame_received(payload)`` once per
    frame, in order (empty payloads included), and ``frame_too_long(size)``
    in place of each frame whose declared length is over the limit (checked
    as soon as the prefix arrives, before any of the payload is buffered);
    ``input_ended(tail)`` once the peer has ended its side and every complete
    frame was delivered (``tail``: a truncated frame, prefix included, or
    ``b""``); ``connection_lost(exc)`` last.  Delivery stops while paused (see
    ``pause()``, ``pause_writing()``).  The same rules for overrides as
    ``LineProtocol``'s apply.
    """

    prefix_bytes: int = 4
    max_frame_bytes: int = 1024 * 1024

    def __init__(self, *, prefix_bytes: int | None = None, max_frame_bytes: int | None = None) -> None:
        if prefix_bytes is not None:
            self.prefix_bytes = prefix_bytes
        if max_frame_bytes is not None:
            self.max_frame_bytes = max_frame_bytes
        fmt = _PREFIX_FORMATS.get(self.prefix_bytes)
        if fmt is None:
            raise ValueError(f"prefix_bytes must be 1, 2, 4 or 8, not {self.prefix_bytes}")
        if self.max_frame_bytes < 0:
            raise ValueError(f"max_frame_bytes must not be negative, not {self.max_frame_bytes}")
        self._prefix = struct.Struct(fmt)

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        self._discard_bytes = 0  # payload bytes of an oversize frame still to skip

    # -------------------------------------------------------------- hooks
    def frame_received(self, payload: bytes) -> None:
        """A complete frame's payload."""

    def frame_too_long(self, size: int) -> None:
        """A frame declared ``size`` bytes, more than ``max_frame_bytes``.

        By default: log a warning and close the transport.  An override that
        leaves the connection open gets the frame after it next: the payload
        is skipped as it arrives, never buffered.
        """
        logger.warning(
            "frame of %d bytes from %r is over max_frame_bytes (%d); closing",
            size, self.transport.peername, self.max_frame_bytes,
        )
        self.transport.close()

    # -------------------------------------------------------------- sending
    def send_frame(self, payload: bytes | bytearray | memoryview) -> None:
        """Write the length prefix and ``payload``, without joining them.

        The two go out in one ``writelines`` (one ``sendmsg``), so a large
        payload is not copied to prepend its prefix.

        Raises ``ValueError`` if the length does not fit in ``prefix_bytes``.
        The peer's limit is the peer's business: ``max_frame_bytes`` applies
        to frames received only.
        """
        payload = byte_view(payload)  # any buffer; its length in bytes, not items
        size = len(payload)
        try:
            prefix = self._prefix.pack(size)
        except struct.error:
            raise ValueError(f"a frame of {size} bytes does not fit a {self.prefix_bytes}-byte length") from None
        self.transport.writelines([prefix, payload])

    # ------------------------------------------------------------- internals
    def _take_one(self) -> bool:
        rbuf = self._rbuf
        data = rbuf.data
        pos = rbuf.pos
        available = len(data) - pos
        if self._state is _InputState.DISCARDING:
            skip = min(self._discard_bytes, available)
            rbuf.pos = pos + skip
            self._discard_bytes -= skip
            if self._discard_bytes:
                return False
            self._state = _InputState.FRAMING
            return True
        header = self.prefix_bytes
        if available < header:
            return False
        (size,) = self._prefix.unpack_from(data, pos)
        if size > self.max_frame_bytes:
            rbuf.pos = pos + header
            self._state = _InputState.DISCARDING
            self._discard_bytes = size
            self.frame_too_long(size)
            return True
        if available < header + size:
            return False
        start = pos + header
        rbuf.pos = start + size
        # One copy: slicing the bytearray and then converting would make two.
        # The temporary view is freed at once, before the buffer can be resized.
        self.frame_received(bytes(memoryview(data)[start:start + size]))
        return True
