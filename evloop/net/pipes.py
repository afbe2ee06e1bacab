"""Pipe transports: the parent's end of a child's stdin, stdout or stderr, driven by a reactor.

``PipeReader`` reads into the reactor's shared buffer and hands each chunk
to its protocol's ``data_received``; at EOF its ``connection_lost(None)``
follows.  ``PipeWriter`` writes at once and queues only what the pipe did not
take (a ``SendQueue``), with the same water marks as TCP
(``WriteFlowControl``).  Both use ``evloop.Protocol``'s method names; the
process transport (``net/process.py``) gives each pipe a small protocol that
passes the calls on, with the pipe's number, to the ``ProcessProtocol``.

A pipe cannot half-close: ``write_eof()`` closes the write end once the queue
has drained, which is how the child sees EOF on its stdin.  A writer also
learns that nobody reads any more (the child exited, or closed its stdin)
without writing: it watches its own descriptor for reading, and the write
end of a pipe whose readers are all gone polls as an error, which
``select``, ``poll`` and ``epoll`` all report as readable.  Then queued bytes
are dropped and ``connection_lost`` gets ``BrokenPipeError``; with nothing
queued it gets None.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from ..buffers import SendQueue, byte_view
from ..reactor import Reactor
from .base import DEFAULT_HIGH_WATER, PausableReading, Protocol, WriteFlowControl

__all__ = ["PipeReader", "PipeWriter"]


class _Pipe(WriteFlowControl):
    """What both ends share: the descriptor, closing once, ``connection_lost`` from the loop."""

    __slots__ = ("_fd", "_closing", "_closed", "_lost_called")

    _protocol: Protocol

    def __init__(self, reactor: Reactor, fd: int, protocol: Protocol) -> None:
        self._reactor = reactor
        self._fd = fd
        self._protocol = protocol
        self._high_water = DEFAULT_HIGH_WATER
        self._low_water = 16 * 1024
        self._protocol_paused = False
        self._closing = False
        self._closed = False
        self._lost_called = False
        os.set_blocking(fd, False)

    def fileno(self) -> int:
        return self._fd

    @property
    def protocol(self) -> Protocol:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``"pipe"``: the descriptor (asyncio gives a file object there); else ``default``."""
        return self._fd if name == "pipe" else default

    def _protocol_reachable(self) -> bool:
        return not self._closed

    def _finish_close(self, exc: BaseException | None) -> None:
        """Unregister, close the descriptor, and call ``connection_lost(exc)`` from the loop."""
        if self._closed:
            return
        self._release()
        self._reactor.call_soon(self._call_connection_lost, exc)

    def _release(self) -> None:
        self._closed = self._closing = True
        # Unregister before closing: a closed fd number may be reused at once.
        self._reactor.remove_reader(self._fd)
        self._reactor.remove_writer(self._fd)
        os.close(self._fd)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        if self._lost_called:
            return
        self._lost_called = True
        self._tell_connection_lost(exc)

    def abort(self) -> None:
        raise NotImplementedError

    def _close_with_reactor(self) -> None:
        """Close now and call ``connection_lost`` before returning (the reactor is closing)."""
        self.abort()
        self._call_connection_lost(None)

    def _close_quietly(self) -> None:
        """Unregister and close the descriptor, calling nothing back (spawn() undoing a failed start)."""
        if not self._closed:
            self._lost_called = True
            self._release()

    def _discard_after_fork(self) -> None:
        """In a forked child: close this process's copy of the descriptor, call nothing back."""
        if not self._closed:
            self._closed = self._closing = self._lost_called = True
            os.close(self._fd)


class PipeReader(PausableReading, _Pipe):
    """The read end of a pipe: ``data_received(data)`` per chunk, then ``connection_lost`` at EOF."""

    __slots__ = ("_reading", "_reading_paused")

    def __init__(self, reactor: Reactor, fd: int, protocol: Protocol) -> None:
        super().__init__(reactor, fd, protocol)
        self._reading = False
        self._reading_paused = False

    def _start(self) -> None:
        self.resume_reading()

    def get_write_buffer_size(self) -> int:
        return 0

    # pause_reading, resume_reading, is_reading: PausableReading (while
    # paused the pipe fills and the child's writes block).
    def _read_file(self) -> int:
        return self._fd

    def _on_readable(self) -> None:
        buffer = self._reactor.read_buffer
        try:
            size = os.readv(self._fd, [buffer])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._reading = False
            self._finish_close(exc)
            return
        if not size:
            self._reading = False
            self._finish_close(None)  # EOF: every writer closed its end
            return
        try:
            self._protocol.data_received(buffer[:size].tobytes())
        except Exception as exc:
            self._report(exc, "protocol.data_received() failed; closing the pipe")
            self.close()

    def close(self) -> None:
        """Stop reading and close; ``connection_lost(None)`` follows (the child may get SIGPIPE)."""
        self._reading = False
        self._finish_close(None)

    abort = close


class PipeWriter(_Pipe):
    """The write end of a pipe: ``write`` with backpressure, ``write_eof``/``close`` after the queue drains."""

    __slots__ = ("_queue", "_writing_registered")

    def __init__(self, reactor: Reactor, fd: int, protocol: Protocol) -> None:
        super().__init__(reactor, fd, protocol)
        self._queue = SendQueue()
        self._writing_registered = False

    def _start(self) -> None:
        self._reactor.add_reader(self._fd, self._on_reader_gone)  # see the module docstring

    def get_write_buffer_size(self) -> int:
        return self._queue.size

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write ``data``: at once if nothing is queued, else after what is queued.

        Ignored once closing (as over TCP); after ``write_eof()`` that means
        ignored too, since the pipe is closing.
        """
        if self._closing:
            return
        if type(data) is not bytes:
            data = byte_view(data)
        if not data:
            return
        if not self._queue:
            try:
                written = os.write(self._fd, data)
            except (BlockingIOError, InterruptedError):
                written = 0
            except OSError as exc:  # BrokenPipeError: the child closed its end
                self._fail(exc)
                return
            if written == len(data):
                return
            data = memoryview(data)[written:]
            self._register_writer()
        self._queue.append(data)
        self._maybe_pause_protocol()

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """Close the pipe once the queue has drained: the child reads EOF."""
        self.close()

    def close(self) -> None:
        """Send what is queued, then close; ``connection_lost(None)`` follows."""
        if self._closing:
            return
        self._closing = True
        if not self._queue:
            self._finish_close(None)

    def abort(self) -> None:
        """Close now, dropping what is queued; ``connection_lost(None)`` follows."""
        self._queue.clear()
        self._finish_close(None)

    def _fail(self, exc: BaseException) -> None:
        self._queue.clear()
        self._finish_close(exc)

    def _register_writer(self) -> None:
        if not self._writing_registered:
            self._writing_registered = True
            self._reactor.add_writer(self._fd, self._on_writable)

    def _on_writable(self) -> None:
        queue = self._queue
        try:
            while queue:
                buffers = queue.buffers()
                written = os.writev(self._fd, buffers)
                queue.consume(written)
                if written < sum(len(b) for b in buffers):
                    break  # the pipe is full: wait for writability
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._fail(exc)
            return
        if not queue:
            if self._writing_registered:
                self._writing_registered = False
                self._reactor.remove_writer(self._fd)
            if self._closing:
                self._finish_close(None)
                return
        self._maybe_resume_protocol()

    def _on_reader_gone(self) -> None:
        if self._closed:
            return
        if self._queue:
            self._fail(BrokenPipeError("the reading end of the pipe was closed"))
        else:
            self._finish_close(None)
