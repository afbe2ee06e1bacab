"""Datagram transports: UDP over IPv4 and IPv6, and Unix datagram sockets.

``listen_datagram`` binds a socket that hears from anyone; ``connect_datagram``
connects one to a single peer.  Either way the protocol (``DatagramProtocol``)
gets asyncio's calls in asyncio's order::

    connection_made -> (datagram_received | error_received)* -> connection_lost

plus ``pause_writing`` / ``resume_writing`` around the send queue's water
marks (``WriteFlowControl``, the same code and defaults as TCP).

Theory of operation.  ``sendto`` hands the datagram to the kernel at once
and queues it only when the kernel answers ``EAGAIN``; from then on later
datagrams queue behind it, so order is kept, and the queue drains on
writability.  Each queued datagram counts its payload plus
``DATAGRAM_OVERHEAD_BYTES`` (asyncio 3.12 does the same), so a burst of empty
datagrams still reaches the high water mark.

When does the kernel say ``EAGAIN``?  A Unix datagram stays charged to the
sender's ``SO_SNDBUF`` until the receiver reads it, and a full receive queue
refuses more: both push back.  UDP over loopback never does on Linux: the
loopback device releases each datagram from the sender's buffer before
``sendto`` returns (``loopback_xmit`` orphans the buffer), so however small
``SO_SNDBUF`` is, the queue only fills on real interfaces (neighbour
resolution, a qdisc that queues).  What the receiver cannot hold is dropped:
UDP has no flow control, and neither has this transport.

ICMP errors.  Linux reports an ICMP error for a connected UDP socket (port
unreachable: ``ECONNREFUSED``) on its next send or receive; either way it goes
to ``error_received(exc)`` and the transport stays open: a datagram socket
has no connection to lose.  An unconnected socket hears of none of them
(Linux needs ``IP_RECVERR`` for that).  Errors of a single send (``EMSGSIZE``
for a datagram too large, say) reach ``error_received`` too, and the next
datagram goes on.
"""

from __future__ import annotations

import collections
import logging
import socket
from collections.abc import Callable
from typing import Any

from ..buffers import byte_view
from ..reactor import Reactor
from .base import DEFAULT_HIGH_WATER, BaseProtocol, PausableReading, WriteFlowControl
from .unix import SocketFile, unlink_stale_socket

__all__ = ["DatagramProtocol", "DatagramTransport", "listen_datagram", "connect_datagram",
           "DATAGRAM_OVERHEAD_BYTES"]

logger = logging.getLogger("evloop")

DATAGRAM_OVERHEAD_BYTES = 8  # counted per queued datagram on top of its payload (a UDP header)
# Datagrams read per readiness event: fewer passes of the loop under a burst,
# and a bound so one busy socket cannot hold the loop.
_RECV_BATCH = 32

Address = Any  # (host, port) or (host, port, flowinfo, scope_id), or a Unix path


class DatagramProtocol(BaseProtocol):
    """Base class for datagram protocols; every method is optional to override.

    Call order: ``connection_made(transport)`` once, then
    ``datagram_received(data, addr)`` and ``error_received(exc)`` any number
    of times, and ``connection_lost(exc)`` exactly once (exc None after
    ``close()`` or ``abort()``).  ``pause_writing()`` / ``resume_writing()``
    bracket the periods in which the send queue is over its high water mark.
    """

    __slots__ = ()

    def connection_made(self, transport: DatagramTransport) -> None:
        pass

    def datagram_received(self, data: bytes, addr: Address) -> None:
        pass

    def error_received(self, exc: OSError) -> None:
        """A send failed, or the kernel reported an ICMP error (``ConnectionRefusedError``)."""
        logger.debug("datagram error: %s", exc)

    def connection_lost(self, exc: BaseException | None) -> None:
        pass


class DatagramTransport(PausableReading, WriteFlowControl):
    """A non-blocking datagram socket driven by a reactor (made by ``listen_datagram``/``connect_datagram``).

    ``peername`` is the peer of a connected transport (None otherwise);
    ``sockname`` the local address.  An exception from the protocol's
    ``datagram_received`` or ``error_received`` is reported to the reactor's
    exception handler and the next datagram is delivered as usual: one bad
    datagram must not end a server.
    """

    __slots__ = ("_sock", "_queue", "_queued_bytes", "_closing", "_closed", "_reading", "_reading_paused",
                 "_writing_registered", "_lost_called", "_socket_file", "peername", "sockname")

    _protocol: DatagramProtocol

    def __init__(
        self,
        reactor: Reactor,
        sock: socket.socket,
        protocol: DatagramProtocol,
        *,
        unlink_path: str | None = None,
        high_water: int = DEFAULT_HIGH_WATER,
        low_water: int | None = None,
    ) -> None:
        self._reactor = reactor
        self._sock = sock
        self._protocol = protocol
        self._high_water = high_water
        self._low_water = high_water // 4 if low_water is None else low_water
        self._protocol_paused = False
        self._queue: collections.deque[tuple[bytes, Address]] = collections.deque()
        self._queued_bytes = 0
        self._closing = False
        self._closed = False
        self._reading = False
        self._reading_paused = False
        self._writing_registered = False
        self._lost_called = False
        self._socket_file = SocketFile.of(unlink_path)  # removed when closed, if still ours
        self.sockname = sock.getsockname()
        try:
            self.peername: Address = sock.getpeername()
        except OSError:
            self.peername = None
        sock.setblocking(False)

    def _start(self) -> None:
        """Track, ``connection_made``, start reading; on failure close the socket and raise."""
        try:
            self._reactor._track(self)
        except BaseException:
            self._close_socket()
            raise
        try:
            self._protocol.connection_made(self)
        except BaseException:
            self.abort()
            raise
        if not self._closing and not self._reading_paused:
            try:
                self._reactor.add_reader(self._sock, self._on_readable)
            except BaseException:  # e.g. a descriptor past SelectSelector's limit
                self.abort()
                raise
            self._reading = True

    # ------------------------------------------------------------ properties
    @property
    def protocol(self) -> DatagramProtocol:
        return self._protocol

    @property
    def socket(self) -> socket.socket:
        return self._sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """asyncio's names: ``peername``, ``sockname``, ``socket``; else ``default``."""
        return {"peername": self.peername, "sockname": self.sockname, "socket": self._sock}.get(name, default)

    def get_write_buffer_size(self) -> int:
        """Queued datagrams: their payload plus ``DATAGRAM_OVERHEAD_BYTES`` each."""
        return self._queued_bytes

    def is_closing(self) -> bool:
        return self._closing

    def _protocol_reachable(self) -> bool:
        return not self._closed

    # --------------------------------------------------------------- reading
    # pause_reading, resume_reading, is_reading: PausableReading (while
    # paused the kernel keeps what arrives, then drops it).
    def _read_file(self) -> Any:
        return self._sock

    def _on_readable(self) -> None:
        buffer = self._reactor.read_buffer
        sock = self._sock
        for _ in range(_RECV_BATCH):
            try:
                size, addr = sock.recvfrom_into(buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error on a connected socket, most likely
                self._deliver_error(exc)
                return
            try:
                self._protocol.datagram_received(buffer[:size].tobytes(), addr)
            except Exception as exc:
                self._report(exc, "protocol.datagram_received() failed")
            if not self._reading:
                return  # the protocol paused reading or closed the transport

    def _deliver_error(self, exc: OSError) -> None:
        try:
            self._protocol.error_received(exc)
        except Exception as error:
            self._report(error, "protocol.error_received() failed")

    # --------------------------------------------------------------- sending
    def sendto(self, data: bytes | bytearray | memoryview, addr: Address = None) -> None:
        """Send one datagram: at once, or after those queued before it.

        ``addr`` is required on a transport from ``listen_datagram`` and must
        be None (or the peer's address) on one from ``connect_datagram``:
        ``ValueError`` otherwise.  Ignored once the transport is closing.
        Errors of the send go to the protocol's ``error_received``.
        """
        peer = self.peername
        if peer is not None:
            if addr is not None and addr != peer:
                raise ValueError(f"this transport is connected to {peer!r}; sendto() got {addr!r}")
        elif addr is None:
            raise ValueError("sendto() needs an address on a transport that is not connected")
        data = byte_view(data)  # TypeError for what is not a buffer
        if self._closing:
            return
        if not self._queue:
            try:
                if peer is None:
                    self._sock.sendto(data, addr)
                else:
                    self._sock.send(data)
                return
            except (BlockingIOError, InterruptedError):
                self._writing_registered = True
                self._reactor.add_writer(self._sock, self._on_writable)
            except OSError as exc:
                self._deliver_error(exc)
                return
        self._queue.append((bytes(data), addr))
        self._queued_bytes += len(data) + DATAGRAM_OVERHEAD_BYTES
        self._maybe_pause_protocol()

    def _on_writable(self) -> None:
        queue = self._queue
        sock = self._sock
        connected = self.peername is not None
        while queue:
            data, addr = queue[0]
            try:
                if connected:
                    sock.send(data)
                else:
                    sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._dequeue(len(data))
                self._deliver_error(exc)
                if self._closed:
                    return  # error_received aborted the transport
                continue
            self._dequeue(len(data))
        if not queue:
            if self._writing_registered:
                self._writing_registered = False
                self._reactor.remove_writer(sock)
            if self._closing:
                self._finish_close(None)
                return
        self._maybe_resume_protocol()

    def _dequeue(self, size: int) -> None:
        self._queue.popleft()
        self._queued_bytes -= size + DATAGRAM_OVERHEAD_BYTES

    # --------------------------------------------------------------- closing
    def close(self) -> None:
        """Stop reading, send what is queued, then close; ``connection_lost(None)`` follows."""
        if self._closing:
            return
        self._closing = True
        if self._reading:
            self._reading = False
            self._reactor.remove_reader(self._sock)
        if not self._queue:
            self._finish_close(None)

    def abort(self) -> None:
        """Close now, dropping what is queued; ``connection_lost(None)`` follows."""
        self._queue.clear()
        self._queued_bytes = 0
        self._closing = True
        self._finish_close(None)

    def _finish_close(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        reactor = self._reactor
        # Unregister before closing: a closed fd number may be reused at once.
        if self._reading:
            self._reading = False
            reactor.remove_reader(self._sock)
        if self._writing_registered:
            self._writing_registered = False
            reactor.remove_writer(self._sock)
        reactor.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        if self._lost_called:
            return  # already called (by the reactor's close())
        self._lost_called = True
        self._reactor._untrack(self)
        try:
            self._tell_connection_lost(exc)
        finally:
            self._close_socket()
            self._protocol = None  # type: ignore[assignment]  # break the cycle

    def _close_socket(self) -> None:
        self._sock.close()
        if self._socket_file is not None:
            self._socket_file.remove()

    def _close_with_reactor(self) -> None:
        """The reactor is closing: abort now and call ``connection_lost`` before it returns."""
        self.abort()
        self._call_connection_lost(None)

    def _discard_after_fork(self) -> None:
        """In a forked child: close this process's copy of the socket, call nothing back, unlink nothing."""
        self._closed = self._closing = self._lost_called = True
        self._reading = self._writing_registered = False
        self._socket_file = None
        self._sock.close()


ProtocolFactory = Callable[[], DatagramProtocol]


def listen_datagram(
    reactor: Reactor,
    protocol_factory: ProtocolFactory,
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    reuse_port: bool = False,
    path: str | None = None,
    sock: socket.socket | None = None,
) -> DatagramTransport:
    """Bind a datagram socket that receives from anyone; returns its transport.

    Exactly one of: ``host``/``port`` (UDP over IPv4 or IPv6: the first
    address ``getaddrinfo`` gives for ``host``, where None or "" is every
    IPv4 interface and "::" every IPv6 one; port 0 picks a free port, read it
    from ``transport.sockname``), ``path`` (a Unix datagram socket; a stale
    socket file there is replaced, and removed again on close; a leading NUL
    names a Linux abstract socket) or ``sock`` (a bound datagram socket,
    adopted).  ``reuse_port`` sets ``SO_REUSEPORT`` (several processes
    sharing the port, the kernel spreading the datagrams); ``SO_REUSEADDR`` is
    never set on UDP: it would let another process take over the port.

    The protocol's ``connection_made`` is called before this returns; what
    it raises closes the socket and propagates.
    """
    unlink_path = None
    if sock is not None:
        if sock.type != socket.SOCK_DGRAM:
            raise ValueError(f"listen_datagram() needs a datagram socket, got {sock.type!r}")
    else:
        if path is not None:
            unlink_stale_socket(path, socket.SOCK_DGRAM)
            sock = _bound_socket(socket.AF_UNIX, path)
            unlink_path = path
        else:
            family, _, proto, _, addr = socket.getaddrinfo(
                host or "0.0.0.0", port, 0, socket.SOCK_DGRAM, 0, socket.AI_PASSIVE)[0]
            sock = _bound_socket(family, addr, proto, reuse_port=reuse_port)
    return _make_transport(reactor, protocol_factory, sock, unlink_path)


def connect_datagram(
    reactor: Reactor,
    protocol_factory: ProtocolFactory,
    host: str | None = None,
    port: int | None = None,
    *,
    path: str | None = None,
    local_addr: Address = None,
) -> DatagramTransport:
    """A datagram socket connected to one peer; returns its transport.

    ``host``/``port``: UDP to that peer (each address of the name in turn
    until a socket connects; a UDP connect sends nothing, so it fails only
    locally, with no route, say).  Names are looked up with
    ``socket.getaddrinfo``, which blocks for a name that is neither numeric
    nor in ``/etc/hosts``: resolve those first with ``reactor.resolve(host,
    port, type=socket.SOCK_DGRAM)`` (a future) and pass the address.  ``path``: a Unix datagram socket connected to
    that path; without ``local_addr`` it is bound to an abstract name the
    kernel picks (Linux autobind), so that the peer can answer.
    ``local_addr`` binds first: ``(host, port)``, or a path for Unix (removed
    again on close).  Only datagrams from the peer are received; sending to
    a UDP port where nothing listens brings ``ConnectionRefusedError`` to
    ``error_received``.
    """
    if path is not None:
        sock = _bound_socket(socket.AF_UNIX, "" if local_addr is None else local_addr)
        try:
            sock.connect(path)
        except BaseException:
            sock.close()
            raise
        unlink_path = local_addr if local_addr else None
        return _make_transport(reactor, protocol_factory, sock, unlink_path)
    if host is None or port is None:
        raise ValueError("connect_datagram() needs host and port, or path")
    errors: list[OSError] = []
    for family, _, proto, _, addr in socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM):
        try:
            sock = _bound_socket(family, local_addr, proto)
        except OSError as exc:
            errors.append(exc)
            continue
        try:
            sock.connect(addr)
        except OSError as exc:
            sock.close()
            errors.append(exc)
            continue
        except BaseException:
            sock.close()
            raise
        return _make_transport(reactor, protocol_factory, sock, None)
    if len(errors) == 1:
        raise errors[0]
    raise OSError(f"could not connect a datagram socket to {host}:{port}: {'; '.join(map(str, errors))}")


def _bound_socket(family: int, addr: Address, proto: int = 0, *, reuse_port: bool = False) -> socket.socket:
    """A new datagram socket of ``family``, bound to ``addr`` unless it is None; closed on failure."""
    sock = socket.socket(family, socket.SOCK_DGRAM, proto)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if addr is not None:
            sock.bind(addr)
    except BaseException:
        sock.close()
        raise
    return sock


def _make_transport(
    reactor: Reactor, protocol_factory: ProtocolFactory, sock: socket.socket, unlink_path: str | None
) -> DatagramTransport:
    try:
        protocol = protocol_factory()
        transport = DatagramTransport(reactor, sock, protocol, unlink_path=unlink_path)
    except BaseException:
        socket_file = SocketFile.of(unlink_path)  # bound a moment ago: ours
        sock.close()
        if socket_file is not None:
            socket_file.remove()
        raise
    transport._start()
    return transport
