"""What every stream transport shares: the ``Protocol`` contract and the ``Transport`` base class.

``SocketTransport`` (``net/tcp.py``) and ``TLSTransport`` (``net/tls.py``)
derive from ``Transport``; listeners are in ``listener.py``, ``connect`` in
``client.py``.

A transport sits between a non-blocking socket and a protocol object that
uses asyncio's method names, with the same call grammar::

    connection_made -> data_received* -> eof_received? -> connection_lost

plus ``pause_writing`` / ``resume_writing`` around the write buffer's water
marks: the same calls over TCP and TLS.  The water marks themselves
(``WriteFlowControl``) are shared with the datagram (``net/udp.py``) and pipe
(``net/pipes.py``) transports, whose protocols get the same two calls.
"""

from __future__ import annotations

import errno
import functools
import logging
import math
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any
from typing import Protocol as TypingProtocol

from ..buffers import FileRegion
from ..reactor import Reactor

__all__ = ["BaseProtocol", "Protocol", "Transport", "WriteFlowControl", "PausableReading", "DISCONNECT_ERRNOS",
           "read_file_block", "check_close_timeout"]

logger = logging.getLogger("evloop")


# Every transport's write buffer bound when none is given, asyncio's figure (its low mark: a quarter).
DEFAULT_HIGH_WATER = 64 * 1024

# Errors that mean the peer went away: ordinary closes, not failures to log.
DISCONNECT_ERRNOS = frozenset(
    {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ESHUTDOWN, errno.ENOTCONN, errno.ETIMEDOUT}
)


class BaseProtocol:
    """What every transport with a write buffer calls (``WriteFlowControl``): its water marks.

    ``pause_writing()`` once the buffer passes the high water mark,
    ``resume_writing()`` once it has drained to the low one.  The stream
    (``Protocol``), datagram and process protocols derive from it.
    """

    __slots__ = ()  # so subclasses may use __slots__; those without get a __dict__ as usual

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass


class Protocol(BaseProtocol):
    """Base class for protocols; every method is optional to override.

    Call order: ``connection_made(transport)``, then ``data_received(data)``
    any number of times, ``eof_received()`` at most once, and finally
    ``connection_lost(exc)`` exactly once (exc is None for a clean close).
    ``pause_writing()`` / ``resume_writing()`` bracket the periods in which
    the transport's write buffer is above its high water mark.
    For ``connect()``: if the connection cannot be made, only
    ``connection_failed(exc)`` is called.
    """

    __slots__ = ()

    def connection_made(self, transport: Transport) -> None:
        pass

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool | None:
        """The peer shut down its writing side.  Return true to keep our side open."""
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        pass

    def connection_failed(self, exc: BaseException) -> None:
        logger.warning("connection failed: %s", exc)


class _File(TypingProtocol):
    def fileno(self) -> int: ...


class WriteFlowControl:
    """Water marks on a transport's write buffer: the one implementation of ``pause_writing``/``resume_writing``.

    Above ``_high_water`` queued bytes the protocol's ``pause_writing()`` is
    called once; when the buffer drains to ``_low_water`` or below,
    ``resume_writing()``.  A subclass sets the four attributes in its
    constructor, reports its queued bytes with ``get_write_buffer_size``,
    says with ``_protocol_reachable`` whether its protocol may still be
    called, and calls ``_maybe_pause_protocol`` after queueing and
    ``_maybe_resume_protocol`` after draining.
    """

    __slots__ = ("_reactor", "_protocol", "_high_water", "_low_water", "_protocol_paused")

    _reactor: Reactor
    _protocol: BaseProtocol
    _high_water: int
    _low_water: int
    _protocol_paused: bool

    @property
    def reactor(self) -> Reactor:
        """The reactor this transport runs on (for a protocol's own timers and callbacks)."""
        return self._reactor

    def get_write_buffer_size(self) -> int:
        raise NotImplementedError

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """``(low, high)``, asyncio's order."""
        return self._low_water, self._high_water

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = DEFAULT_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not 0 <= low <= high:
            raise ValueError(f"need 0 <= low ({low}) <= high ({high})")
        self._high_water, self._low_water = high, low
        self._maybe_pause_protocol()
        self._maybe_resume_protocol()

    def _maybe_pause_protocol(self) -> None:
        if not self._protocol_paused and self.get_write_buffer_size() > self._high_water:
            self._protocol_paused = True
            try:
                self._protocol.pause_writing()
            except Exception as exc:
                self._report(exc, "protocol.pause_writing() failed")

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self.get_write_buffer_size() <= self._low_water and self._protocol_reachable():
            self._protocol_paused = False
            try:
                self._protocol.resume_writing()
            except Exception as exc:
                self._report(exc, "protocol.resume_writing() failed")

    def _protocol_reachable(self) -> bool:
        """Whether the protocol may still hear of writability (not after the connection is closed)."""
        raise NotImplementedError

    def _report(self, exc: BaseException, message: str) -> None:
        self._reactor.call_exception_handler(
            {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
        )

    def _tell_connection_lost(self, exc: BaseException | None) -> None:
        """``protocol.connection_lost(exc)``; what it raises is reported, never raised."""
        try:
            self._protocol.connection_lost(exc)  # type: ignore[attr-defined]
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:
            self._report(error, "protocol.connection_lost() failed")


class PausableReading:
    """``pause_reading``/``resume_reading``/``is_reading`` for a transport that reads one file.

    A mixin without slots of its own: the transport has ``_reactor``,
    ``_closing``, ``_reading`` (its reader is registered) and
    ``_reading_paused`` (the protocol asked for the pause), and names the
    file it reads (``_read_file``) and its reader callback (``_on_readable``).
    Used by the datagram and pipe transports; TCP has its own (EOF ends its
    reading for good).
    """

    # The attributes are in the transport's slots: slots here as well would
    # clash with WriteFlowControl's (two bases with slots cannot combine), so
    # mypy is told that the assignments below are the transport's.
    __slots__ = ()

    _reactor: Reactor
    _closing: bool
    _reading: bool
    _reading_paused: bool

    def _read_file(self) -> Any:
        raise NotImplementedError

    def _on_readable(self) -> None:
        raise NotImplementedError

    def pause_reading(self) -> None:
        """Read nothing until ``resume_reading()``; what arrives meanwhile waits in the kernel."""
        self._reading_paused = True  # type: ignore[misc]
        if self._reading:
            self._reading = False  # type: ignore[misc]
            self._reactor.remove_reader(self._read_file())

    def resume_reading(self) -> None:
        self._reading_paused = False  # type: ignore[misc]
        if not self._closing and not self._reading:
            self._reading = True  # type: ignore[misc]
            self._reactor.add_reader(self._read_file(), self._on_readable)

    def is_reading(self) -> bool:
        return self._reading


class Transport(WriteFlowControl):
    """What a protocol sees of its connection, over TCP (``SocketTransport``) or TLS (``evloop.net.tls.TLSTransport``).

    The calls and their contracts are the same for both (README, "Transports"):
    ``write``, ``writelines``, ``sendfile``, ``write_eof``, ``can_write_eof``,
    ``close``, ``abort``, ``pause_reading``, ``resume_reading``,
    ``is_reading``, ``is_closing``, ``get_write_buffer_size``,
    ``set_write_buffer_limits``, ``get_extra_info``; ``peername``,
    ``sockname``, ``reactor``, ``protocol`` and ``socket`` are attributes.
    This class holds what their implementations share.
    """

    __slots__ = ("_closing", "_close_timer", "peername", "sockname")

    _protocol: Protocol
    _closing: bool
    _close_timer: Any
    peername: Any
    sockname: Any

    @property
    def protocol(self) -> Protocol:
        return self._protocol

    @property
    def socket(self) -> socket.socket:
        raise NotImplementedError

    def is_closing(self) -> bool:
        return self._closing

    def set_protocol(self, protocol: Protocol) -> None:
        """Give the connection to another protocol (asyncio's name), e.g. HTTP/1.1 to WebSocket after a 101.

        Every later callback goes to ``protocol``; it gets no
        ``connection_made`` (whoever switches hands it the transport).
        """
        self._protocol = protocol

    def write(self, data: bytes | bytearray | memoryview) -> None:
        raise NotImplementedError

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        raise NotImplementedError

    def write_eof(self) -> None:
        raise NotImplementedError

    def can_write_eof(self) -> bool:
        raise NotImplementedError

    def close(self, timeout_s: float | None = None) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def pause_reading(self) -> None:
        raise NotImplementedError

    def resume_reading(self) -> None:
        raise NotImplementedError

    def is_reading(self) -> bool:
        raise NotImplementedError

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        raise NotImplementedError

    def _deliver_eof(self) -> None:
        """The peer is done sending: ``eof_received()``, and close unless the protocol keeps the connection."""
        try:
            keep_open = self._protocol.eof_received()
        except Exception as exc:
            self._protocol_failed(exc, "eof_received")
            return
        if not keep_open:
            self.close()

    def _protocol_failed(self, exc: Exception, method: str) -> None:
        # Like asyncio: a protocol that raised is in an unknown state, so the
        # connection is aborted rather than left open with nobody reading it.
        self._report(exc, f"protocol.{method}() failed; aborting the connection")
        self._abort_with(exc)

    def _abort_with(self, exc: BaseException | None) -> None:
        """Close now, dropping what is queued; ``connection_lost(exc)`` follows."""
        raise NotImplementedError

    def _arm_close_timer(self, timeout_s: float) -> None:
        """``close(timeout_s)``: abort if not closed by then; a sooner timeout replaces a later one."""
        timer = self._close_timer
        if timer is not None:
            if timer.when <= self._reactor.time() + timeout_s:
                return  # the timer in force is sooner
            timer.cancel()
        self._close_timer = self._reactor.call_later(timeout_s, self._close_timed_out, timeout_s)

    def _close_timed_out(self, timeout_s: float) -> None:
        self._close_timer = None
        self._abort_with(TimeoutError(f"close(): the write buffer did not drain within {timeout_s} s"))

    def sendfile(
        self,
        file: _File | int,
        offset: int = 0,
        count: int | None = None,
        on_done: Callable[[BaseException | None], Any] | None = None,
    ) -> None:
        """Queue ``count`` bytes of ``file`` from ``offset`` (to its end when None).

        Sent after the bytes already queued: with ``os.sendfile`` and
        non-blocking partial progress over TCP, in read-and-send blocks where
        sendfile cannot be used (and under TLS, which must encrypt them).
        The caller keeps the file open until ``on_done(exc)`` is called (exc
        None on success).
        """
        fd = file if isinstance(file, int) else file.fileno()
        if count is None:
            count = max(0, os.fstat(fd).st_size - offset)
        if self._closing:  # first, as write() does: after close() TCP and TLS answer alike
            if on_done is not None:
                self._deliver_on_done(on_done, ConnectionError("transport is closing"))
            return
        if self._write_ended():
            raise RuntimeError("cannot sendfile after write_eof()")
        if count <= 0:
            if on_done is not None:
                self._deliver_on_done(on_done, None)
            return
        done = None if on_done is None else functools.partial(self._deliver_on_done, on_done)
        self._queue_file(FileRegion(fd, offset, count, done))
        self._maybe_pause_protocol()

    def _write_ended(self) -> bool:
        """True once ``write_eof()`` was called."""
        raise NotImplementedError

    def _queue_file(self, region: FileRegion) -> None:
        raise NotImplementedError

    def _deliver_on_done(self, on_done: Callable[[BaseException | None], Any], exc: BaseException | None) -> None:
        """Call a sendfile ``on_done`` from the loop: never inside ``sendfile()`` or ``abort()``.

        Inside those an exception from it would interrupt the caller (an
        abort would be left half done).  When the reactor itself is closing
        there is no later pass, so it is called now, and what it raises is
        reported: the caller must hear that it may close its file.
        """
        reactor = self._reactor
        if not (reactor._closing or reactor.is_closed):
            reactor.call_soon(on_done, exc)
            return
        try:
            on_done(exc)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:
            self._report(error, "sendfile on_done() failed")


def check_close_timeout(timeout_s: float | None) -> None:
    """``close(timeout_s)`` takes None or a finite number of seconds >= 0."""
    if timeout_s is not None and not (0 <= timeout_s < math.inf):
        raise ValueError(f"close() needs a finite timeout_s >= 0, got {timeout_s!r}")


def read_file_block(region: FileRegion, size: int) -> bytes:
    """Read up to ``size`` bytes of ``region`` (at its offset; a pipe or stream reads what comes next).

    ``EOFError`` when the file ends before the region does.
    """
    size = min(region.remaining, size)
    try:
        data = os.pread(region.fd, size, region.offset)
    except OSError as exc:
        if exc.errno != errno.ESPIPE:
            raise
        data = os.read(region.fd, size)  # a pipe or another stream: offsets do not apply
    if not data:
        raise EOFError("file ended before the requested byte range")
    return data
