"""TCP and Unix-socket transports, listeners and client connections.

A transport sits between a non-blocking socket and a protocol object that
uses asyncio's method names, with the same call grammar::

    connection_made -> data_received* -> eof_received? -> connection_lost

plus ``pause_writing`` / ``resume_writing`` around the write buffer's water
marks.  Writes try ``send`` at once and queue only what the socket did not
take; write interest is registered only while bytes are queued (one selector
``modify`` costs more than half a small send+recv).  A peer reset is an
ordinary close reported through ``connection_lost(exc)``, not an error log.
"""

from __future__ import annotations

import errno
import functools
import logging
import math
import os
import socket
import stat
from collections.abc import Callable, Iterable
from typing import Any
from typing import Protocol as TypingProtocol

from .buffers import FileRegion, SendQueue, byte_view
from .futures import Future
from .reactor import Reactor

__all__ = [
    "Protocol", "SocketTransport", "Listener", "listen", "connect", "PendingConnection",
    "bind_sockets", "bind_unix_socket", "unlink_stale_socket",
]

logger = logging.getLogger("evloop")

_SENDFILE_BLOCK = 4 * 1024 * 1024     # per sendfile() call: fair to other connections
_FALLBACK_BLOCK = 256 * 1024          # read-and-send block when sendfile is unavailable
_MAX_IOVECS = 512                     # buffers per sendmsg() from writelines (Linux allows 1024)
_ACCEPT_BATCH = 128                   # accepts per readiness event, so one listener cannot hog a pass
_ACCEPT_BACKOFF_S = 0.1               # pause on EMFILE/ENFILE before polling the listener again

# Errors that mean the peer went away: ordinary closes, not failures to log.
_DISCONNECT_ERRNOS = frozenset(
    {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ESHUTDOWN, errno.ENOTCONN, errno.ETIMEDOUT}
)
_ACCEPT_EXHAUSTED_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# ESPIPE: sendfile() with an offset on a pipe.
_SENDFILE_UNSUPPORTED_ERRNOS = frozenset({errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK, errno.EOPNOTSUPP, errno.ESPIPE})


class Protocol:
    """Base class for protocols; every method is optional to override.

    Call order: ``connection_made(transport)``, then ``data_received(data)``
    any number of times, ``eof_received()`` at most once, and finally
    ``connection_lost(exc)`` exactly once (exc is None for a clean close).
    ``pause_writing()`` / ``resume_writing()`` bracket the periods in which
    the transport's write buffer is above its high water mark.
    For ``connect()``: if the connection cannot be made, only
    ``connection_failed(exc)`` is called.
    """

    __slots__ = ()  # so subclasses may use __slots__; those without get a __dict__ as usual

    def connection_made(self, transport: SocketTransport) -> None:
        pass

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool | None:
        """The peer shut down its writing side.  Return true to keep our side open."""
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        pass

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    def connection_failed(self, exc: BaseException) -> None:
        logger.warning("connection failed: %s", exc)


class _File(TypingProtocol):
    def fileno(self) -> int: ...


class SocketTransport:
    """A connected non-blocking stream socket driven by a reactor.

    ``high_water``/``low_water`` (bytes) bound the write buffer: above the
    high mark the protocol's ``pause_writing()`` is called, and
    ``resume_writing()`` once it drains to the low mark.
    """

    __slots__ = (
        "_reactor", "_sock", "_protocol", "_queue", "_high_water", "_low_water",
        "_closing", "_closed", "_reading", "_reading_paused", "_writing_registered",
        "_protocol_paused", "_eof_pending", "_eof_written", "_eof_received", "peername", "sockname",
        "_close_timer", "_lost_exc", "_lost_called",
    )

    def __init__(
        self,
        reactor: Reactor,
        sock: socket.socket,
        protocol: Protocol,
        *,
        high_water: int = 64 * 1024,
        low_water: int | None = None,
        peername: Any = None,
    ) -> None:
        self._reactor = reactor
        self._sock = sock
        self._protocol = protocol
        self._queue = SendQueue()
        self._high_water = high_water
        self._low_water = high_water // 4 if low_water is None else low_water
        self._closing = False
        self._closed = False
        self._reading = False
        self._reading_paused = False
        self._writing_registered = False
        self._protocol_paused = False
        self._eof_pending = False
        self._eof_written = False
        self._eof_received = False
        self._close_timer: Any = None
        self._lost_exc: BaseException | None = None
        self._lost_called = False
        self.peername = peername
        try:
            self.sockname = sock.getsockname()
            if peername is None:
                self.peername = sock.getpeername()
        except OSError:
            self.sockname = None
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # Responses are written whole; Nagle would only delay them.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def start(self) -> None:
        """Call ``connection_made`` and start reading (done by listeners and ``connect``)."""
        self._reactor._track(self)
        try:
            self._protocol.connection_made(self)
        except BaseException:
            self.abort()
            raise
        if not self._closing and not self._reading_paused:
            try:
                self._reactor.add_reader(self._sock, self._on_readable)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # e.g. a descriptor past SelectSelector's limit
                self._report(exc, "cannot watch the connection for reading; aborting it")
                self._force_close(exc)
                return
            self._reading = True

    # ------------------------------------------------------------ properties
    @property
    def protocol(self) -> Protocol:
        return self._protocol

    @property
    def reactor(self) -> Reactor:
        """The reactor this transport runs on (for a protocol's own timers and callbacks)."""
        return self._reactor

    @property
    def socket(self) -> socket.socket:
        return self._sock

    def is_closing(self) -> bool:
        return self._closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """asyncio's transport details: ``peername``, ``sockname``, ``socket``; else ``default``."""
        if name == "peername":
            return self.peername
        if name == "sockname":
            return self.sockname
        if name == "socket":
            return self._sock
        return default

    def get_write_buffer_size(self) -> int:
        """Bytes queued and not yet sent (file regions included)."""
        return self._queue.size

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not 0 <= low <= high:
            raise ValueError(f"need 0 <= low ({low}) <= high ({high})")
        self._high_water, self._low_water = high, low
        self._maybe_pause_protocol()
        self._maybe_resume_protocol()

    # --------------------------------------------------------------- reading
    def pause_reading(self) -> None:
        """Stop calling ``data_received`` until ``resume_reading()``."""
        if self._reading_paused:
            return
        self._reading_paused = True
        if self._reading:
            self._reading = False
            self._reactor.remove_reader(self._sock)

    def resume_reading(self) -> None:
        if not self._reading_paused:
            return
        self._reading_paused = False
        # After EOF there is nothing left to read: eof_received is called once.
        if not self._closing and not self._reading and not self._eof_received:
            self._reading = True
            self._reactor.add_reader(self._sock, self._on_readable)

    def is_reading(self) -> bool:
        return self._reading

    def _on_readable(self) -> None:
        buffer = self._reactor.read_buffer
        try:
            size = self._sock.recv_into(buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc)
            return
        if size:
            data = buffer[:size].tobytes()  # the protocol may keep it: a copy of just what was read
            try:
                self._protocol.data_received(data)
            except Exception as exc:
                self._protocol_failed(exc, "data_received")
            return
        # EOF from the peer.
        self._eof_received = True
        self._reading = False
        self._reactor.remove_reader(self._sock)
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
        self._force_close(exc)

    def _report(self, exc: BaseException, message: str) -> None:
        self._reactor.call_exception_handler(
            {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
        )

    # --------------------------------------------------------------- writing
    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data``: at once if nothing is queued, else after what is queued."""
        if self._closing:
            return  # writing to a closing transport is ignored, like asyncio
        if self._eof_pending or self._eof_written:
            raise RuntimeError("cannot write after write_eof()")
        if type(data) is not bytes:
            data = byte_view(data)
        if not data:
            return
        queue = self._queue
        if not queue:
            try:
                sent = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._fatal_error(exc)
                return
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
            queue.append(data)
            self._register_writer()
        else:
            queue.append(data)
        self._maybe_pause_protocol()

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        """Write several chunks in order, gathered by ``sendmsg`` when nothing is queued.

        The chunks are not joined (no copy of big ones in Python): the kernel
        gathers up to ``_MAX_IOVECS`` of them per system call.  What the
        socket does not take is queued as with ``write``.
        """
        if self._closing:
            return
        if self._eof_pending or self._eof_written:
            raise RuntimeError("cannot write after write_eof()")
        buffers = [chunk if type(chunk) is bytes else byte_view(chunk) for chunk in chunks if chunk]
        if len(buffers) <= 1:
            if buffers:
                self.write(buffers[0])
            return
        queue = self._queue
        if not queue:
            sock = self._sock
            try:
                while buffers:
                    group = buffers[:_MAX_IOVECS]
                    sent = sock.sendmsg(group)
                    done = 0  # chunks of the group that went out whole
                    while done < len(group) and sent >= len(group[done]):
                        sent -= len(group[done])
                        done += 1
                    if done < len(group) and sent:
                        chunk = group[done]
                        # A view of bytes needs no copy; a mutable chunk is copied by the queue.
                        buffers[done] = memoryview(chunk)[sent:] if type(chunk) is bytes else chunk[sent:]
                    del buffers[:done]
                    if done < len(group):
                        break  # the socket took less than offered: the rest waits for writability
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self._fatal_error(exc)
                return
            if not buffers:
                return
            for chunk in buffers:
                queue.append(chunk)
            self._register_writer()
        else:
            for chunk in buffers:
                queue.append(chunk)
        self._maybe_pause_protocol()

    def sendfile(
        self,
        file: _File | int,
        offset: int = 0,
        count: int | None = None,
        on_done: Callable[[BaseException | None], Any] | None = None,
    ) -> None:
        """Queue ``count`` bytes of ``file`` from ``offset`` (to its end when None).

        Uses ``os.sendfile`` with non-blocking partial progress, after the
        bytes already queued; falls back to reading and sending blocks where
        sendfile cannot be used.  The caller keeps the file open until
        ``on_done(exc)`` is called (exc None on success).
        """
        fd = file if isinstance(file, int) else file.fileno()
        if count is None:
            count = max(0, os.fstat(fd).st_size - offset)
        if self._eof_pending or self._eof_written:
            raise RuntimeError("cannot sendfile after write_eof()")
        if self._closing:
            if on_done is not None:
                self._deliver_on_done(on_done, ConnectionError("transport is closing"))
            return
        if count <= 0:
            if on_done is not None:
                self._deliver_on_done(on_done, None)
            return
        done = None if on_done is None else functools.partial(self._deliver_on_done, on_done)
        self._queue.append_file(FileRegion(fd, offset, count, done))
        if not self._writing_registered:
            self._on_writable()  # make progress now; registers write interest if it must wait
        self._maybe_pause_protocol()

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

    def write_eof(self) -> None:
        """Shut down the writing side once the queue has drained (half-close)."""
        if self._closing or self._eof_pending or self._eof_written:
            return
        if self._queue:
            self._eof_pending = True
        else:
            self._shutdown_write()

    def can_write_eof(self) -> bool:
        return True

    def _shutdown_write(self) -> None:
        self._eof_written = True
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _register_writer(self) -> None:
        if not self._writing_registered:
            self._writing_registered = True
            self._reactor.add_writer(self._sock, self._on_writable)

    def _on_writable(self) -> None:
        queue = self._queue
        sock = self._sock
        try:
            while queue:
                region = queue.head_file()
                if region is None:
                    buffers = queue.buffers()
                    sent = sock.sendmsg(buffers) if len(buffers) > 1 else sock.send(buffers[0])
                    queue.consume(sent)
                    if queue.size and queue.head_file() is None:
                        break  # the socket took less than we offered: wait for writability
                elif not self._send_file_block(region):
                    break
        except (BlockingIOError, InterruptedError):
            pass
        except (OSError, EOFError) as exc:
            self._fatal_error(exc)
            return
        if queue:
            self._register_writer()
        else:
            if self._writing_registered:
                self._writing_registered = False
                self._reactor.remove_writer(sock)
            if self._closing:
                self._finish_close(None)
                return
            if self._eof_pending:
                self._eof_pending = False
                self._shutdown_write()
        self._maybe_resume_protocol()

    def _send_file_block(self, region: FileRegion) -> bool:
        """Send part of the head file region; returns False when the socket is full."""
        queue = self._queue
        try:
            sent = os.sendfile(self._sock.fileno(), region.fd, region.offset, min(region.remaining, _SENDFILE_BLOCK))
        except OSError as exc:
            if exc.errno not in _SENDFILE_UNSUPPORTED_ERRNOS:
                raise
            # Not a regular file, or a socket sendfile does not support: read and send.
            size = min(region.remaining, _FALLBACK_BLOCK)
            try:
                data = os.pread(region.fd, size, region.offset)
            except OSError as read_exc:
                if read_exc.errno != errno.ESPIPE:
                    raise
                # A pipe or another stream: offsets do not apply, read what comes next.
                data = os.read(region.fd, size)
            if not data:
                raise EOFError("file ended before the requested byte range") from None
            queue.file_head_read(region, data)
            return True
        if sent == 0:
            # The file is shorter than promised: fail rather than wait forever.
            raise EOFError("file ended before the requested byte range")
        asked = min(region.remaining, _SENDFILE_BLOCK)
        queue.file_progress(region, sent)
        # A short send means the socket buffer is full: wait for writability.
        return region.remaining <= 0 or sent == asked

    def _maybe_pause_protocol(self) -> None:
        if not self._protocol_paused and self._queue.size > self._high_water:
            self._protocol_paused = True
            try:
                self._protocol.pause_writing()
            except Exception as exc:
                self._report(exc, "protocol.pause_writing() failed")

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self._queue.size <= self._low_water and not self._closed:
            self._protocol_paused = False
            try:
                self._protocol.resume_writing()
            except Exception as exc:
                self._report(exc, "protocol.resume_writing() failed")

    # --------------------------------------------------------------- closing
    def close(self, timeout_s: float | None = None) -> None:
        """Stop reading, send what is queued, then close and call ``connection_lost(None)``.

        ``timeout_s``: when the queue has not drained that long after this
        call (a peer that stopped reading), abort instead; ``connection_lost``
        then gets a ``TimeoutError``.  None waits as long as the peer takes.
        On a transport already closing, a ``timeout_s`` sooner than the one
        in force (or the first one) takes effect.
        """
        if timeout_s is not None and not (0 <= timeout_s < math.inf):
            raise ValueError(f"close() needs a finite timeout_s >= 0, got {timeout_s!r}")
        if self._closing:
            if timeout_s is not None and not self._closed:
                self._arm_close_timer(timeout_s)
            return
        self._closing = True
        if self._reading:
            self._reading = False
            self._reactor.remove_reader(self._sock)
        if not self._queue:
            self._finish_close(None)
        elif timeout_s is not None:
            self._arm_close_timer(timeout_s)

    def _arm_close_timer(self, timeout_s: float) -> None:
        timer = self._close_timer
        if timer is not None:
            if timer.when <= self._reactor.time() + timeout_s:
                return  # the timer in force is sooner
            timer.cancel()
        self._close_timer = self._reactor.call_later(timeout_s, self._close_timed_out, timeout_s)

    def _close_timed_out(self, timeout_s: float) -> None:
        self._close_timer = None
        self._force_close(TimeoutError(f"close(): the write buffer did not drain within {timeout_s} s"))

    def abort(self) -> None:
        """Close now, dropping whatever is queued; ``connection_lost(None)`` follows."""
        self._force_close(None)

    def _fatal_error(self, exc: BaseException) -> None:
        if isinstance(exc, OSError) and exc.errno not in _DISCONNECT_ERRNOS:
            logger.debug("transport error on %r: %s", self.peername, exc)
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closing = True
        # Pending file regions were not sent: never report them done with None.
        self._queue.clear(exc if exc is not None else ConnectionAbortedError("transport aborted"))
        self._finish_close(exc)

    def _finish_close(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing = True
        reactor = self._reactor
        # Unregister before closing: a closed fd number may be reused at once.
        if self._reading:
            self._reading = False
            reactor.remove_reader(self._sock)
        if self._writing_registered:
            self._writing_registered = False
            reactor.remove_writer(self._sock)
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self._lost_exc = exc
        reactor.call_soon(self._call_connection_lost)

    def _call_connection_lost(self) -> None:
        if self._lost_called:
            return  # already called (by the reactor's close())
        self._lost_called = True
        self._reactor._untrack(self)
        try:
            self._protocol.connection_lost(self._lost_exc)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self._report(exc, "protocol.connection_lost() failed")
        finally:
            self._sock.close()
            self._protocol = None  # type: ignore[assignment]  # break the cycle

    def _close_with_reactor(self) -> None:
        """The reactor is closing: abort now and call ``connection_lost`` before it returns."""
        self._force_close(None)
        self._call_connection_lost()

    def _discard_after_fork(self) -> None:
        """In a forked child: close this process's copy of the socket, call nothing back.

        A plain ``close`` of the descriptor leaves the parent's epoll set as
        it is; keeping it open would keep the connection open after the
        parent closed it.
        """
        self._closed = self._closing = self._lost_called = True
        self._reading = self._writing_registered = False
        self._close_timer = None
        self._sock.close()


class Listener:
    """Listening sockets that accept connections into new transports.

    ``addresses`` lists the bound addresses; ``port`` is the port of the first
    (the one the kernel picked when port 0 was asked for).  On ``EMFILE`` or
    ``ENFILE`` the listener stops polling for a short back-off, logs once per
    episode and resumes, so it never spins.
    """

    def __init__(
        self,
        reactor: Reactor,
        protocol_factory: Callable[[], Protocol],
        sockets: list[socket.socket],
        *,
        transport_kwargs: dict[str, Any] | None = None,
        unlink_path: str | None = None,
    ) -> None:
        self._reactor = reactor
        self._protocol_factory = protocol_factory
        self.sockets = sockets
        self._transport_kwargs = transport_kwargs or {}
        self._unlink_path = unlink_path
        self._accepting = False
        self._paused = False            # by the user (pause_accepting)
        self._backoff_timer: Any = None  # by exhaustion of descriptors
        self._exhausted_episode = False
        self._closed = False
        try:
            reactor._track(self)
        except BaseException:
            for sock in sockets:  # ours from here: not left open by a refused listen()
                sock.close()
            raise
        for sock in sockets:
            sock.setblocking(False)
        self._start_accepting()

    @property
    def addresses(self) -> list[Any]:
        return [sock.getsockname() for sock in self.sockets]

    @property
    def port(self) -> int | None:
        for sock in self.sockets:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                port: int = sock.getsockname()[1]
                return port
        return None

    def pause_accepting(self) -> None:
        """Stop accepting; pending connections wait in the kernel's backlog."""
        self._paused = True
        self._stop_accepting()

    def resume_accepting(self) -> None:
        self._paused = False
        if self._backoff_timer is None:
            self._start_accepting()

    def _start_accepting(self) -> None:
        if self._accepting or self._closed or self._paused:
            return
        self._accepting = True
        for sock in self.sockets:
            self._reactor.add_reader(sock, self._on_acceptable, sock)

    def _stop_accepting(self) -> None:
        if not self._accepting:
            return
        self._accepting = False
        for sock in self.sockets:
            self._reactor.remove_reader(sock)

    def accept_pending(self, limit: int | None = None) -> int:
        """Accept and serve the connections queued now (at most ``limit``); returns how many.

        Meant for a drain, just before ``close()``, which would reset whatever
        is still queued: it accepts even while ``pause_accepting()`` is in
        effect.  It stops when every queue is empty (EAGAIN) or when no
        descriptor is left (EMFILE, ENFILE): then it logs an error and leaves
        the rest queued.
        """
        count = 0
        for sock in self.sockets:
            accepted, exhausted = self._accept(sock, None if limit is None else limit - count, ignore_pause=True)
            count += accepted
            if exhausted is not None:
                logger.error("accept() failed: %s; %d connections accepted, the rest left queued", exhausted, count)
                break
        return count

    def _on_acceptable(self, sock: socket.socket) -> None:
        _, exhausted = self._accept(sock, _ACCEPT_BATCH, ignore_pause=False)
        if exhausted is not None:
            self._back_off(exhausted)

    def _accept(self, sock: socket.socket, limit: int | None, ignore_pause: bool) -> tuple[int, OSError | None]:
        """Accept and serve up to ``limit`` connections (None: all queued).

        Returns how many, and the error if descriptors ran out.
        """
        count = 0
        while limit is None or count < limit:
            if self._closed or not (self._accepting or ignore_pause):
                break  # a connection just served paused or closed us (--max-connections, shutdown)
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno in _ACCEPT_EXHAUSTED_ERRNOS:
                    return count, exc
                if exc.errno in _DISCONNECT_ERRNOS or exc.errno == errno.EPROTO:
                    continue  # the client gave up before we accepted it
                raise
            if self._exhausted_episode:
                self._exhausted_episode = False
                logger.warning("accepting connections again")
            self._serve(conn, addr)
            count += 1
        return count, None

    def _serve(self, conn: socket.socket, addr: Any) -> None:
        # A failing factory or connection_made costs that connection only:
        # it is reported with its context and the listener goes on accepting.
        try:
            protocol = self._protocol_factory()
            transport = SocketTransport(self._reactor, conn, protocol, peername=addr, **self._transport_kwargs)
        except (KeyboardInterrupt, SystemExit):
            conn.close()
            raise
        except BaseException as exc:
            conn.close()
            self._reactor.call_exception_handler(
                {"message": "protocol factory failed; connection closed", "exception": exc, "listener": self}
            )
            return
        try:
            transport.start()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            transport._report(exc, "protocol.connection_made() failed; connection aborted")

    def _back_off(self, exc: OSError) -> None:
        if not self._exhausted_episode:
            self._exhausted_episode = True
            logger.error("accept() failed: %s; pausing accepts for %.0f ms at a time", exc, _ACCEPT_BACKOFF_S * 1000)
        self._stop_accepting()
        self._backoff_timer = self._reactor.call_later(_ACCEPT_BACKOFF_S, self._end_back_off)

    def _end_back_off(self) -> None:
        self._backoff_timer = None
        self._start_accepting()

    def close(self) -> None:
        """Stop accepting and close the listening sockets (open connections are not touched)."""
        if self._closed:
            return
        self._stop_accepting()
        self._closed = True
        self._reactor._untrack(self)
        if self._backoff_timer is not None:
            self._backoff_timer.cancel()
            self._backoff_timer = None
        for sock in self.sockets:
            sock.close()
        if self._unlink_path is not None:
            unlink_stale_socket(self._unlink_path)

    _close_with_reactor = close

    def _discard_after_fork(self) -> None:
        """In a forked child: the listening sockets stay open (pre-fork servers hand them on).

        A later ``close()`` in the child closes its copies but never removes
        a Unix socket's file: it is the parent's.
        """
        self._accepting = False
        self._backoff_timer = None
        self._unlink_path = None

def listen(
    reactor: Reactor,
    protocol_factory: Callable[[], Protocol],
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    backlog: int = 1024,
    reuse_port: bool = False,
    sock: socket.socket | None = None,
    path: str | None = None,
    transport_kwargs: dict[str, Any] | None = None,
) -> Listener:
    """Listen for connections and give each a new transport and ``protocol_factory()``.

    Exactly one of: ``host``/``port`` (IPv4 or IPv6; ``host`` None or "" binds
    every interface; port 0 picks a free port, reported by ``listener.port``),
    ``path`` (a Unix domain socket; a stale socket file is replaced), or
    ``sock`` (an already bound socket, e.g. inherited; ``listen()`` is called on it).
    """
    if sock is not None:
        sock.listen(backlog)
        return Listener(reactor, protocol_factory, [sock], transport_kwargs=transport_kwargs)
    if path is not None:
        usock = bind_unix_socket(path, backlog=backlog)
        return Listener(reactor, protocol_factory, [usock], transport_kwargs=transport_kwargs, unlink_path=path)
    sockets = bind_sockets(host, port, reuse_port=reuse_port, backlog=backlog)
    return Listener(reactor, protocol_factory, sockets, transport_kwargs=transport_kwargs)


def bind_sockets(
    host: str | None, port: int, *, reuse_port: bool = False, backlog: int | None = None
) -> list[socket.socket]:
    """Bind one TCP socket per address of ``host`` (None or "": every interface); returns them.

    Each gets ``SO_REUSEADDR``, and ``SO_REUSEPORT`` when ``reuse_port``;
    IPv6 sockets are IPv6-only.  With port 0 the first address picks a free
    port and the others take the same one.  The sockets listen only when
    ``backlog`` is not None.  On any failure every socket is closed.
    """
    infos = socket.getaddrinfo(host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    seen: set[Any] = set()
    try:
        for family, type_, proto, _, addr in infos:
            if (family, addr[:2]) in seen:
                continue
            seen.add((family, addr[:2]))
            s = socket.socket(family, type_, proto)
            sockets.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                # Several addresses and port 0: use the port the first one got.
                s.bind((addr[0], sockets[0].getsockname()[1]) + tuple(addr[2:]))
            else:
                s.bind(addr)
            if backlog is not None:
                s.listen(backlog)
    except BaseException:
        for s in sockets:
            s.close()
        raise
    return sockets


def is_abstract_socket_name(path: str | bytes) -> bool:
    """True for a Linux abstract socket name (it starts with a NUL byte and names no file)."""
    return path[:1] in ("\0", b"\0")


def bind_unix_socket(path: str, *, backlog: int | None = None) -> socket.socket:
    """Bind a Unix stream socket at ``path``, replacing a stale socket file (never another file).

    It listens only when ``backlog`` is not None; on failure it is closed.
    """
    unlink_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        if backlog is not None:
            sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


Resolver = Callable[[Any, Any, int, int], list[tuple[Any, ...]]]
"""``resolver(host, port, family, type)`` returns ``socket.getaddrinfo``-style tuples."""

HAPPY_EYEBALLS_DELAY_S = 0.25  # RFC 8305 section 5: the recommended "Connection Attempt Delay"


class PendingConnection:
    """A client connection being established by ``connect()``.

    ``future`` resolves to the ``SocketTransport`` once connected (after the
    protocol's ``connection_made``), or fails with the error that
    ``connection_failed`` also received.  ``cancel()`` gives up: it closes
    every attempt, cancels ``future``, and guarantees that the protocol gets
    no callback from this connection afterwards (once connected, ``cancel()``
    does nothing: close the transport instead).

    Several addresses are tried with Happy Eyeballs (RFC 8305): the list is
    ordered to alternate address families, starting with IPv6 when there is
    one; the next attempt starts when the current one fails or after
    ``happy_eyeballs_delay_s`` without an answer, whichever comes first; the
    first attempt to succeed wins and the others are closed.
    """

    def __init__(
        self,
        reactor: Reactor,
        protocol: Protocol,
        transport_kwargs: dict[str, Any],
        *,
        local_addr: tuple[Any, ...] | None = None,
        happy_eyeballs_delay_s: float = HAPPY_EYEBALLS_DELAY_S,
    ) -> None:
        self._reactor = reactor
        self._protocol = protocol
        self._transport_kwargs = transport_kwargs
        self._local_addr = local_addr
        self._delay_s = happy_eyeballs_delay_s
        self.future: Future[SocketTransport] = reactor.create_future()
        self.transport: SocketTransport | None = None
        self._addresses: list[tuple[int, int, int, Any]] = []  # (family, type, proto, addr) still to try
        self._attempts: dict[socket.socket, Any] = {}           # in flight: socket -> address
        self._errors: list[BaseException] = []
        self._stagger_timer: Any = None
        self._timeout_timer: Any = None
        self._done = False
        # asyncio users cancel the future itself: that gives up too.
        self.future.add_done_callback(self._future_done)

    def done(self) -> bool:
        """True once connected, failed or cancelled."""
        return self._done

    def cancel(self) -> None:
        """Give up; no protocol callback follows.  Harmless after the end."""
        if self._done:
            return
        self._end()
        self.future.cancel()

    def _future_done(self, future: Future[SocketTransport]) -> None:
        if future.cancelled() and not self._done:
            self._end()

    def _abandoned(self) -> bool:
        """True when ``future`` was cancelled directly: the connection is given up quietly."""
        if self.future.cancelled():
            if not self._done:
                self._end()
            return True
        return False

    # ----------------------------------------------------------- attempts
    def _start(self, addresses: list[tuple[int, int, int, Any]], timeout_s: float | None) -> None:
        self._addresses = _interleave_families(addresses)
        if timeout_s is not None:
            self._timeout_timer = self._reactor.call_later(timeout_s, self._timed_out, timeout_s)
        self._try_next()

    def _try_next(self) -> None:
        """Start the next attempt (and arm the stagger timer); fail when none is left."""
        if self._abandoned():
            return
        if self._stagger_timer is not None:
            self._stagger_timer.cancel()
            self._stagger_timer = None
        while self._addresses:
            family, type_, proto, addr = self._addresses.pop(0)
            sock = None
            try:
                sock = socket.socket(family, type_, proto)
                sock.setblocking(False)
                if self._local_addr is not None:
                    sock.bind(self._local_addr)
                err = sock.connect_ex(addr)
                # EAGAIN is a failure here: a full backlog on a Unix socket,
                # or no free local port for TCP.
                if err not in (0, errno.EINPROGRESS):
                    raise OSError(err, f"connect to {_format_addr(addr)}: {os.strerror(err)}")
                self._reactor.add_writer(sock, self._on_writable, sock)
            except (KeyboardInterrupt, SystemExit):
                if sock is not None:
                    sock.close()
                raise
            except Exception as exc:  # OSError, or e.g. a descriptor past SelectSelector's limit
                if sock is not None:
                    sock.close()
                self._errors.append(exc)
                continue  # RFC 8305: a failed attempt starts the next one at once
            self._attempts[sock] = addr
            if self._addresses:
                self._stagger_timer = self._reactor.call_later(self._delay_s, self._try_next)
            return
        if not self._attempts:
            self._fail(_combined_error(self._errors))

    def _on_writable(self, sock: socket.socket) -> None:
        if self._done or self._abandoned() or sock not in self._attempts:
            return
        self._reactor.remove_writer(sock)
        addr = self._attempts.pop(sock)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            sock.close()
            self._errors.append(OSError(err, f"connect to {_format_addr(addr)}: {os.strerror(err)}"))
            self._try_next()
            return
        self._connected(sock)

    def _connected(self, sock: socket.socket) -> None:
        """``sock`` is connected: end the other attempts and start the transport."""
        if self._abandoned():
            sock.close()
            return
        self._end(keep=sock)
        try:
            transport = SocketTransport(self._reactor, sock, self._protocol, **self._transport_kwargs)
        except (KeyboardInterrupt, SystemExit):
            sock.close()
            raise
        except Exception as exc:  # e.g. a socket that is not a connected stream
            sock.close()
            self.future.set_exception(exc)
            self._protocol.connection_failed(exc)
            return
        self.transport = transport
        try:
            transport.start()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self.future.set_exception(exc)
            transport._report(exc, "protocol.connection_made() failed; connection aborted")
            return
        self.future.set_result(transport)

    def _timed_out(self, timeout_s: float) -> None:
        self._timeout_timer = None
        self._fail(TimeoutError(f"connect: no connection within {timeout_s} s"))

    # ------------------------------------------------------------- endings
    def _fail(self, exc: BaseException) -> None:
        if self._done or self._abandoned():
            return
        self._end()
        self.future.set_exception(exc)
        self._protocol.connection_failed(exc)

    def _end(self, keep: socket.socket | None = None) -> None:
        """Stop every timer and close every attempt but ``keep``."""
        self._done = True
        self._reactor._untrack(self)
        for timer in (self._stagger_timer, self._timeout_timer):
            if timer is not None:
                timer.cancel()
        self._stagger_timer = self._timeout_timer = None
        for sock in list(self._attempts):
            if sock is not keep:
                self._reactor.remove_writer(sock)
                sock.close()
        self._attempts.clear()
        self._addresses.clear()

    def _close_with_reactor(self) -> None:
        self.cancel()

    def _discard_after_fork(self) -> None:
        self._done = True
        for sock in self._attempts:
            sock.close()
        self._attempts.clear()


def _interleave_families(addresses: list[tuple[int, int, int, Any]]) -> list[tuple[int, int, int, Any]]:
    """RFC 8305 section 4: alternate address families, starting with the first address's.

    ``getaddrinfo`` sorts by RFC 6724, which puts IPv6 first where it is
    usable and follows the host's ``gai.conf``; that order is kept within
    each family.
    """
    by_family: dict[int, list[tuple[int, int, int, Any]]] = {}
    for entry in addresses:
        by_family.setdefault(entry[0], []).append(entry)
    families = list(by_family)  # dicts keep insertion order: the first address's family first
    ordered: list[tuple[int, int, int, Any]] = []
    queues = [by_family[family] for family in families]
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


def _format_addr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = f"[{addr[0]}]" if ":" in str(addr[0]) else str(addr[0])
        return f"{host}:{addr[1]}"
    return repr(addr)


def _combined_error(errors: list[BaseException]) -> BaseException:
    if not errors:
        return OSError("connect: no address to connect to")
    if len(errors) == 1:
        return errors[0]
    first = errors[0]
    message = "every address failed: " + "; ".join(str(exc) for exc in errors)
    errnos = {getattr(exc, "errno", None) for exc in errors}
    if len(errnos) == 1 and isinstance(first, OSError) and first.errno is not None:
        return OSError(first.errno, message)
    return OSError(message)


def _default_resolver(host: Any, port: Any, family: int, type_: int) -> list[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port, family, type_)


def connect(
    reactor: Reactor,
    protocol_factory: Callable[[], Protocol],
    host: str | None = None,
    port: int | str | None = None,
    *,
    path: str | None = None,
    sock: socket.socket | None = None,
    local_addr: tuple[Any, ...] | None = None,
    timeout_s: float | None = None,
    happy_eyeballs_delay_s: float = HAPPY_EYEBALLS_DELAY_S,
    resolver: Resolver | None = None,
    transport_kwargs: dict[str, Any] | None = None,
) -> PendingConnection:
    """Open a non-blocking client connection; returns a ``PendingConnection``.

    Exactly one of: ``host``/``port`` (every address of the name is tried,
    with Happy Eyeballs, RFC 8305, see ``PendingConnection``), ``path`` (a
    Unix socket; a leading NUL names an abstract socket), or ``sock`` (an
    already connected stream socket, wrapped as it is).

    When connected, the protocol gets ``connection_made`` and
    ``pending.future`` the transport; when every address failed or
    ``timeout_s`` passed first, the protocol gets ``connection_failed(exc)``
    and the future that exception (``TimeoutError`` for the timeout).  Both
    happen from the loop, never inside this call.  ``local_addr`` binds each
    attempt's socket first (then only addresses of its family can work).
    ``pending.cancel()`` gives up with no callback afterwards.

    Name resolution: ``resolver(host, port, family, type)`` returns
    ``getaddrinfo``-style tuples; the default is ``socket.getaddrinfo``,
    which blocks the loop for a name that is neither numeric nor in
    ``/etc/hosts`` until it is answered.  Pass numeric addresses in
    latency-sensitive code.  A resolution error is reported like any other
    failure.

    ``ValueError`` (raised by this call) for more than one of ``host``,
    ``path`` and ``sock``, or a timeout or delay that is not a finite number
    of seconds >= 0.  With ``sock`` there is nothing to wait for, so
    ``timeout_s`` does not apply.
    """
    if sum(value is not None for value in (host, path, sock)) > 1:
        raise ValueError("connect() takes one of host/port, path or sock")
    if sock is not None and sock.type != socket.SOCK_STREAM:
        raise ValueError(f"connect(sock=...) needs a stream socket, got {sock.type!r}")
    if reactor.is_closed:
        raise RuntimeError("reactor is closed")
    for name, value in (("timeout_s", timeout_s), ("happy_eyeballs_delay_s", happy_eyeballs_delay_s)):
        if value is not None and not 0 <= value < math.inf:
            raise ValueError(f"connect(): {name} must be a finite number of seconds >= 0, got {value!r}")
    protocol = protocol_factory()
    pending = PendingConnection(
        reactor, protocol, transport_kwargs or {}, local_addr=local_addr,
        happy_eyeballs_delay_s=happy_eyeballs_delay_s,
    )
    reactor._track(pending)
    if sock is not None:
        pending._attempts[sock] = None  # ours now: cancel() closes it
        reactor.call_soon(_adopt_socket, pending, sock)
        return pending
    if path is not None:
        addresses: list[tuple[int, int, int, Any]] = [(socket.AF_UNIX, socket.SOCK_STREAM, 0, path)]
    else:
        try:
            infos = (resolver or _default_resolver)(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
            addresses = [(family, type_, proto, addr) for family, type_, proto, _, addr in infos]
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # socket.gaierror, a bad IDNA label, a failing resolver: reported like any failure
            reactor.call_soon(pending._fail, exc)
            return pending
    # Started from the loop, so that even an immediate failure is reported
    # after connect() returned.
    reactor.call_soon(_start_pending, pending, addresses, timeout_s)
    return pending


def _start_pending(
    pending: PendingConnection, addresses: list[tuple[int, int, int, Any]], timeout_s: float | None
) -> None:
    if not pending.done():
        pending._start(addresses, timeout_s)


def _adopt_socket(pending: PendingConnection, sock: socket.socket) -> None:
    if not pending.done():
        pending._connected(sock)


def unlink_stale_socket(path: str | bytes) -> None:
    """Remove ``path`` if it is a socket (left by an earlier server); anything else is kept.

    An abstract socket name (Linux: a leading NUL byte) has no file: nothing to do.
    """
    if is_abstract_socket_name(path):
        return
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
