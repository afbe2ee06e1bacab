"""``SocketTransport``: streams over TCP and Unix sockets (the contract: ``net/base.py``).

Writes try ``send`` at once and queue only what the socket did not take;
write interest is registered only while bytes are queued (one selector
``modify`` costs more than half a small send+recv).  A peer reset is an
ordinary close reported through ``connection_lost(exc)``, not an error log.
Files go out with ``os.sendfile`` in blocks (read-and-send where it is
not available).  Listeners are in ``listener.py``, ``connect`` in ``client.py``.
"""


from __future__ import annotations

import _socket
import errno
import logging
import os
import socket
from collections.abc import Iterable
from socket import socket as _FullSocket
from typing import TYPE_CHECKING, Any

from ..buffers import FileRegion, SendQueue, byte_view
from ..reactor import Reactor
from ..timers import Handle
from .base import DEFAULT_HIGH_WATER, DISCONNECT_ERRNOS, Protocol, Transport, check_close_timeout, read_file_block
from .proxy_header import ProxyHeader

if TYPE_CHECKING:
    import ssl

    from ..futures import Future
    from .tls import TLSTransport

__all__ = ["SocketTransport"]

logger = logging.getLogger("evloop")

_SENDFILE_BLOCK = 4 * 1024 * 1024     # per sendfile() call: fair to other connections
_FALLBACK_BLOCK = 256 * 1024          # read-and-send block when sendfile is unavailable
# The most one read takes.  recv() allocates this much and shrinks it to what came: ~740 instructions a read
# fewer than recv_into() the reactor's 256 KiB read_buffer and a copy out of it (a 40-byte request, callgrind).
# Kept under glibc's 128 KiB mmap threshold: a bigger allocation may be an mmap and a munmap per read (the
# reason read_buffer exists, load/BENCHMARKS.md 2026-11-26).  A 64 KiB read is what the selectors floor of
# load/bench/floor.py makes.
_RECV_SIZE = 64 * 1024
# A stream socket's reads and writes go through os.read and os.write on its descriptor: the same system calls
# (recv and send without flags are read and write), errors (BlockingIOError, ConnectionResetError, BrokenPipeError:
# Python ignores SIGPIPE) and retries on EINTR as the socket methods, but their arguments are parsed by Argument
# Clinic, not PyArg_ParseTuple's format strings, and they are module functions, not methods looked up on the
# socket's class: ~520 instructions a call fewer (callgrind, a 40-byte read and write on a socketpair: 7,312 ->
# 6,271 a pair).  Unix only, as the rest of the reactor.
_read = os.read
_write = os.write
_writev = os.writev  # what sendmsg() without ancillary data or an address is, for a descriptor
_set_blocking = os.set_blocking
_SENDMSG_MAX_BUFFERS = 64             # writelines offers at most this many chunks to one writev at once
# The socket module's constants as plain ints, read once: each connection tests and sets them.
_TCP_FAMILIES = frozenset((int(socket.AF_INET), int(socket.AF_INET6)))
_IPPROTO_TCP = int(socket.IPPROTO_TCP)
_TCP_NODELAY = int(socket.TCP_NODELAY)
# The C socket type that ``socket.socket`` derives from.  A listener gives its transports these (every method
# the transport calls is the C one): ``socket.socket``'s Python-level ``__init__`` and ``close`` (and
# ``_real_close``) cost ~3,600 instructions a connection more (callgrind, made and closed in a loop: 5,400
# against 1,770).  ``SocketTransport.socket`` hands out a ``socket.socket`` all the same (``_full_socket``).
PlainSocket = _socket.socket
# ESPIPE: sendfile() with an offset on a pipe.
_SENDFILE_UNSUPPORTED_ERRNOS = frozenset({errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK, errno.EOPNOTSUPP, errno.ESPIPE})


class _NothingQueued(SendQueue):
    """The send queue of every transport that has queued nothing yet: one shared, empty object.

    Most connections never queue a byte (each write is sent at once): a
    queue of their own, made and freed, cost every connection ~1,470
    instructions (callgrind, ``SendQueue()`` in a loop).  A transport reads
    this one's ``size`` as its own and gets a queue of its own the first
    time bytes or a file must wait (``SocketTransport._own_queue``).  Shared
    by all, so never added to: these raise rather than corrupt the others.
    """

    __slots__ = ()

    def append(self, data: bytes | bytearray | memoryview) -> None:
        raise RuntimeError("the shared empty send queue is never appended to")

    def append_file(self, region: FileRegion) -> None:
        raise RuntimeError("the shared empty send queue is never appended to")


_NOTHING_QUEUED = _NothingQueued()


class SocketTransport(Transport):
    """A connected non-blocking stream socket driven by a reactor.

    ``high_water``/``low_water`` (bytes) bound the write buffer: above the
    high mark the protocol's ``pause_writing()`` is called, and
    ``resume_writing()`` once it drains to the low mark.  The arguments
    may be passed by position: a listener does, as a call with keywords
    builds a dict for them on every accepted connection.  ``nodelay``
    False: TCP_NODELAY is set already (else the transport sets it on a TCP
    socket).
    """

    # Those every read and write touches first, next to the base classes' (fewer cache lines a request).
    __slots__ = (
        "_fd", "_queue", "_eof_pending", "_eof_written", "_sock", "_closed", "_reading", "_reading_paused",
        "_writing_registered", "_eof_received", "_lost_exc", "_lost_called", "proxy_header", "_family",
    )

    def __init__(
        self,
        reactor: Reactor,
        sock: _socket.socket | int,  # a socket.socket, a listener's plain one (PlainSocket) or its descriptor
        protocol: Protocol,
        high_water: int = DEFAULT_HIGH_WATER,
        low_water: int | None = None,
        peername: Any = None,
        sockname: Any = None,
        family: int | None = None,
        nodelay: bool = True,
    ) -> None:
        self._reactor = reactor
        self._protocol = protocol
        self._queue: SendQueue = _NOTHING_QUEUED  # its own once something must wait (_own_queue)
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
        self.proxy_header: ProxyHeader | None = None  # set by a listener's PROXY protocol stage (net/proxy_protocol.py)
        self.peername = peername
        self._family = family
        # The descriptor, read and written with os.read/os.write (see _read and _write below).  Valid while the
        # transport may touch the socket: it is closed only in _call_connection_lost, after the last read or write.
        if isinstance(sock, int):
            # A listener's accepted descriptor whose addresses the listener knows (listener.py): no socket object
            # until one is asked for (``socket``), as CPython checks every descriptor it wraps with a getsockname()
            # system call (~700 ns a connection with the object, made and freed).
            self._fd = sock
            self._sock: _socket.socket | None = None
            self.sockname = sockname
            # The ioctl(FIONBIO) socket.setblocking() makes (CPython's _Py_set_blocking on Linux), ~450 ns a call
            # against fcntl.ioctl's ~1,100 for the same (its arguments parsed by format, an audit event, a result).
            _set_blocking(sock, False)
            if nodelay and family in _TCP_FAMILIES:  # not inherited from the listener
                # Through a socket object that gives the descriptor back: the listener closes it if this raises.
                borrowed = PlainSocket(family, socket.SOCK_STREAM, 0, sock)
                try:
                    borrowed.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
                finally:
                    borrowed.detach()
            return
        self._sock = sock
        self._fd = sock.fileno()
        try:
            # A listener that knows its connections' address passes it (listener.py).
            self.sockname = sockname if sockname is not None else sock.getsockname()
            if peername is None:
                self.peername = sock.getpeername()
        except OSError:
            self.sockname = None
        sock.setblocking(False)
        # ``family``: the socket's, when the caller knows it (a listener reads
        # its sockets' once): ``sock.family`` makes an enum, ~6,300 instructions.
        # ``nodelay`` False: the socket has TCP_NODELAY already (a listener
        # whose connections inherit it from the listening socket, listener.py).
        if nodelay and (sock.family if family is None else family) in _TCP_FAMILIES:
            # Responses are written whole; Nagle would only delay them.
            sock.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)

    def start(self, read_first: bool = False) -> None:
        """Call ``connection_made`` and start reading (done by listeners and ``connect``).

        ``read_first`` (a listener's accepted connection): only
        ``connection_made``; the listener calls ``_read_first()`` once it
        has accepted what was queued with this connection.
        """
        reactor = self._reactor
        if reactor._closing or reactor._closed:
            reactor._track(self)  # raises: nothing starts on a closing reactor
        reactor._resources.add(self)  # reactor._track(self) without its call: every connection starts here
        try:
            self._protocol.connection_made(self)
        except BaseException:
            self.abort()
            raise
        if not read_first:
            self._watch()

    def _read_first(self) -> None:
        """Read once before the socket is watched, then watch it (an accepted connection, after ``start``).

        A client that sends its request as soon as it is connected (curl,
        wrk, a browser's first request) has sent it by the time the listener
        accepted and set the connection up: served at once, a ``Connection:
        close`` request takes one pass of the loop instead of two, and its
        socket is never registered with the selector and unregistered
        (load/server_instructions.py wsgi-close: see load/BENCHMARKS.md).
        When nothing came yet, the read fails with EAGAIN and the socket is
        watched as usual, as it is after a read: level-triggered readiness
        reports what is left, so nothing waits for an event that never
        comes.  The listener reads after accepting the connections queued
        with this one, as readiness would: a line one member of a chat sends
        reaches those who connected before it was sent.
        """
        if not self._closing and not self._reading_paused:
            self._on_readable()
        if not self._closing:  # a Connection: close request is answered and closed by now: no _watch call
            self._watch()

    def _watch(self) -> None:
        """Start reading unless closing, paused, at EOF or reading already."""
        if not self._closing and not self._reading_paused and not self._reading and not self._eof_received:
            try:
                self._reactor.add_reader(self._fd, self._on_readable)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # e.g. a descriptor past SelectSelector's limit
                self._report(exc, "cannot watch the connection for reading; aborting it")
                self._force_close(exc)
                return
            self._reading = True

    # ------------------------------------------------------------ properties
    @property
    def socket(self) -> socket.socket:
        """The ``socket.socket`` (a listener's plain C socket or bare descriptor becomes one when first asked
        for: ``_full_socket``, ``_socket_of``)."""
        sock = self._sock
        if sock is None:
            self._sock = sock = _socket_of(self._fd, self._family)
        elif type(sock) is PlainSocket:
            self._sock = sock = _full_socket(sock)
        return sock  # type: ignore[return-value]  # a socket.socket from here on

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """asyncio's transport details: ``peername``, ``sockname``, ``socket``; else ``default``.

        Behind a listener with the PROXY protocol, ``peername`` and
        ``sockname`` are the addresses the header gave, and ``proxy_header``
        is the ``ProxyHeader`` itself (None without one).
        """
        if name == "peername":
            return self.peername
        if name == "sockname":
            return self.sockname
        if name == "socket":
            return self.socket
        if name == "proxy_header":
            return self.proxy_header
        return default

    def get_write_buffer_size(self) -> int:
        """Bytes queued and not yet sent (file regions included)."""
        return self._queue.size

    # --------------------------------------------------------------- reading
    def pause_reading(self) -> None:
        """Stop calling ``data_received`` until ``resume_reading()``."""
        if self._reading_paused:
            return
        self._reading_paused = True
        if self._reading:
            self._reading = False
            self._reactor.remove_reader(self._fd)

    def resume_reading(self) -> None:
        if not self._reading_paused:
            return
        self._reading_paused = False
        # After EOF there is nothing left to read: eof_received is called once.
        if not self._closing and not self._reading and not self._eof_received:
            self._reading = True
            self._reactor.add_reader(self._fd, self._on_readable)

    def is_reading(self) -> bool:
        return self._reading

    def _on_readable(self) -> None:
        try:
            data = _read(self._fd, _RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc)
            return
        if data:
            try:
                self._protocol.data_received(data)
            except Exception as exc:
                self._protocol_failed(exc, "data_received")
            return
        # EOF from the peer.
        self._eof_received = True
        if self._reading:  # not yet, when it came with the connection (_read_first)
            self._reading = False
            self._reactor.remove_reader(self._fd)
        self._deliver_eof()

    def _abort_with(self, exc: BaseException | None) -> None:
        self._force_close(exc)

    def _protocol_reachable(self) -> bool:
        return not self._closed

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
        if not queue.size:  # empty (queued regions are never empty): no Python __bool__ call, ~400 instructions a write
            try:
                sent = _write(self._fd, data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._fatal_error(exc)
                return
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
            self._own_queue().append(data)
            self._register_writer()
        else:
            queue.append(data)
        self._maybe_pause_protocol()

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        """Write several chunks in order, gathered by ``writev`` (``sendmsg``'s work, on the descriptor).

        When nothing is queued, a list of at most ``_SENDMSG_MAX_BUFFERS``
        chunks is offered to one ``writev`` at once, as ``write`` sends
        first, and only what the socket did not take is queued (a streamed
        body, 256 KiB in 64 KiB chunks a call: the whole server's
        instructions a MiB, ``load/server_instructions.py bytes1m``, 304,136
        -> 229,847 against going through the queue).  The try is spelled
        out here as in ``write``: a shared helper would be one more call on
        every response.  Otherwise the chunks join the send queue (big ones
        are not copied, small ones coalesce) and, when nothing was waiting
        before them, the queue's one drain (``_on_writable``, the same that
        writability and ``sendfile`` use) sends what the socket takes: the
        kernel gathers up to 64 chunks per system call, and the rest waits
        for writability.
        """
        if self._closing:
            return
        if self._eof_pending or self._eof_written:
            raise RuntimeError("cannot write after write_eof()")
        queue = self._queue
        drain = self._on_writable
        if not queue.size and type(chunks) is list and 0 < len(chunks) <= _SENDMSG_MAX_BUFFERS:
            try:
                sent = _writev(self._fd, chunks)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._fatal_error(exc)
                return
            chunks = _unsent(chunks, sent)
            if not chunks:
                return
            drain = self._register_writer  # the socket is full: another try now would only fail
        queue = self._own_queue()
        for chunk in chunks:
            if chunk:
                queue.append(chunk if type(chunk) is bytes else byte_view(chunk))
        if queue.size and not self._writing_registered:
            drain()
        self._maybe_pause_protocol()

    def _write_ended(self) -> bool:
        return self._eof_pending or self._eof_written

    def _own_queue(self) -> SendQueue:
        """The transport's own send queue, made when first needed (see ``_NothingQueued``)."""
        queue = self._queue
        if queue is _NOTHING_QUEUED:
            queue = self._queue = SendQueue()
        return queue

    def _queue_file(self, region: FileRegion) -> None:
        self._own_queue().append_file(region)
        if not self._writing_registered:
            self._on_writable()  # make progress now; registers write interest if it must wait

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

    def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        handshake_timeout_s: float = 60.0,
    ) -> Future[TLSTransport]:
        """Upgrade this connection to TLS (STARTTLS); returns a future of the TLS transport.

        What is queued is sent first, in the clear; the handshake follows on
        the same socket, with reading resumed.  From this call on the
        protocol writes only to the TLS transport the future gives (after the
        handshake) and never again to this one, which now carries the
        ciphertext; its protocol stays the same object and gets the
        decrypted bytes.  A failed or timed-out handshake fails the future
        and ends the connection with ``connection_lost(exc)``; cancelling the
        future aborts it.  ``server_hostname`` is checked against the peer's
        certificate on the client side (``context.check_hostname``).
        """
        from .tls_context import upgrade

        if self._closing:
            raise RuntimeError("start_tls() on a closing transport")
        if self._eof_pending or self._eof_written:
            raise RuntimeError("start_tls() after write_eof()")
        tls, future = upgrade(self, context, server_side=server_side, server_hostname=server_hostname,
                              handshake_timeout_s=handshake_timeout_s, paused=self._protocol_paused,
                              high_water=self._high_water, low_water=self._low_water)
        self._protocol = tls
        tls.connection_made(self)
        self.resume_reading()
        return future

    def _shutdown_write(self) -> None:
        self._eof_written = True
        try:
            (self._sock or self.socket).shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _register_writer(self) -> None:
        if not self._writing_registered:
            self._writing_registered = True
            self._reactor.add_writer(self._fd, self._on_writable)

    def _on_writable(self) -> None:
        queue = self._queue
        fd = self._fd
        try:
            while queue:
                region = queue.head_file()
                if region is None:
                    buffers = queue.buffers()
                    sent = _writev(fd, buffers) if len(buffers) > 1 else _write(fd, buffers[0])
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
                self._reactor.remove_writer(fd)
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
            sent = os.sendfile(self._fd, region.fd, region.offset, min(region.remaining, _SENDFILE_BLOCK))
        except OSError as exc:
            if exc.errno not in _SENDFILE_UNSUPPORTED_ERRNOS:
                raise
            # Not a regular file, or a socket sendfile does not support: read and send.
            queue.file_head_read(region, read_file_block(region, _FALLBACK_BLOCK))
            return True
        if sent == 0:
            # The file is shorter than promised: fail rather than wait forever.
            raise EOFError("file ended before the requested byte range")
        asked = min(region.remaining, _SENDFILE_BLOCK)
        queue.file_progress(region, sent)
        # A short send means the socket buffer is full: wait for writability.
        return region.remaining <= 0 or sent == asked

    # --------------------------------------------------------------- closing
    def close(self, timeout_s: float | None = None) -> None:
        """Stop reading, send what is queued, then close and call ``connection_lost(None)``.

        ``timeout_s``: when the queue has not drained that long after this
        call (a peer that stopped reading), abort instead; ``connection_lost``
        then gets a ``TimeoutError``.  None waits as long as the peer takes.
        On a transport already closing, a ``timeout_s`` sooner than the one
        in force (or the first one) takes effect.
        """
        if timeout_s is not None:  # the check's call skipped on the common close(): every connection ends here
            check_close_timeout(timeout_s)
        if self._closing:
            if timeout_s is not None and not self._closed:
                self._arm_close_timer(timeout_s)
            return
        self._closing = True
        if self._reading:
            self._reading = False
            self._reactor.remove_reader(self._fd)
        if not self._queue.size:  # empty (as in write): no Python __bool__ call
            self._finish_close(None)
        elif timeout_s is not None:
            self._arm_close_timer(timeout_s)

    def abort(self) -> None:
        """Close now, dropping whatever is queued; ``connection_lost(None)`` follows."""
        self._force_close(None)

    def _fatal_error(self, exc: BaseException) -> None:
        if isinstance(exc, OSError) and exc.errno not in DISCONNECT_ERRNOS:
            logger.debug("transport error on %r: %s", self.peername, exc)
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closing = True
        # Pending file regions were not sent: never report them done with None.
        if self._queue is not _NOTHING_QUEUED:  # the shared empty one is never written to
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
            reactor.remove_reader(self._fd)
        if self._writing_registered:
            self._writing_registered = False
            reactor.remove_writer(self._fd)
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self._lost_exc = exc
        # reactor.call_soon(self._call_connection_lost) without its call (~450 instructions): every connection
        # ends here, and a transport is closed before its reactor is (Reactor.close closes its transports).
        reactor._ready.append(Handle(self._call_connection_lost, ()))

    def _call_connection_lost(self) -> None:
        if self._lost_called:
            return  # already called (by the reactor's close())
        self._lost_called = True
        self._reactor._resources.discard(self)  # reactor._untrack(self) without its call: every connection ends here
        try:
            self._protocol.connection_lost(self._lost_exc)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self._report(exc, "protocol.connection_lost() failed")
        finally:
            # _close_socket() without its call (~300 instructions): every connection ends here.
            sock = self._sock
            if sock is not None:
                sock.close()
            else:
                fd, self._fd = self._fd, -1
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._protocol = None  # type: ignore[assignment]  # break the cycle
            # And the error's: its traceback holds the frames that raised it, whose ``self`` is this transport.
            # Kept, it made every reset connection a cycle of ~25 objects (its request, response, body
            # iterator, buffers) freed only by a full collection: the heap grew ~12 KiB a reset connection
            # until one ran (tests/reliability/test_resets_and_garbage.py).
            self._lost_exc = None

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
        self._close_socket()

    def _close_socket(self) -> None:
        """Close the socket, or the bare descriptor of a listener's connection no one asked the socket of."""
        sock = self._sock
        if sock is not None:
            sock.close()
            return
        fd, self._fd = self._fd, -1
        try:
            os.close(fd)
        except OSError:  # ECONNRESET on some systems, as socket.close() ignores: the descriptor is gone all the same
            pass


def _socket_of(fd: int, family: int | None) -> socket.socket:
    """A ``socket.socket`` owning a listener's accepted descriptor ``fd`` (its number, which the transport and
    the selector know it by, stays); for -1 (closed by the transport), a closed stream socket of ``family``."""
    if fd < 0:
        full = _FullSocket(socket.AF_INET if family is None else family, socket.SOCK_STREAM)
        full.close()
        return full
    full = _FullSocket(fileno=fd)  # its family, type and protocol asked of the kernel
    full.setblocking(False)  # made from a descriptor, it would take the process's default timeout
    return full


def _full_socket(sock: _socket.socket) -> socket.socket:
    """A ``socket.socket`` in place of a listener's plain C socket (see ``PlainSocket``): the descriptor moves to
    it (its number, which the transport and the selector know it by, stays); a closed one's is closed too."""
    family, kind, proto = sock.family, sock.type, sock.proto
    fd = sock.detach()
    if fd < 0:  # closed: a closed socket of the same kind, as a socket.socket closed by the transport would be
        full = _FullSocket(family, kind, proto)
        full.close()
        return full
    full = _FullSocket(family, kind, proto, fd)
    full.setblocking(False)  # made from a descriptor, it would take the process's default timeout
    return full


def _unsent(chunks: list[bytes | bytearray | memoryview], sent: int) -> list[bytes | bytearray | memoryview]:
    """What ``writev(fd, chunks)`` left when it took ``sent`` bytes: the first chunk not wholly sent (a view of its
    rest) and those after it."""
    for i, chunk in enumerate(chunks):
        size = len(chunk) if type(chunk) is bytes else memoryview(chunk).nbytes
        if sent < size:
            rest = chunks[i:]
            if sent:
                rest[0] = memoryview(byte_view(chunk))[sent:]
            return rest
        sent -= size
    return []
