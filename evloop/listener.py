"""Listening sockets: accepting connections into transports, and binding them.

``listen()`` binds TCP (IPv4, IPv6), Unix-domain (abstract names included) or
inherited sockets and returns a ``Listener``, which accepts in batches and
backs off when descriptors run out (it never spins on EMFILE).  The helpers
that bind are shared with the worker supervisor, which binds before it forks.
"""

from __future__ import annotations

import _socket
import errno
import ipaddress
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable
from functools import partial
from ssl import SSLContext
from typing import Any

from .net.base import DEFAULT_HIGH_WATER, DISCONNECT_ERRNOS, Protocol
from .net.proxy_protocol import DEFAULT_PROXY_HEADER_TIMEOUT_S, ProxyProtocolAcceptor
from .net.tcp import PlainSocket, SocketTransport
from .net.tls import DEFAULT_HANDSHAKE_TIMEOUT_S
from .net.tls_context import TLSAcceptor
from .net.unix import SocketFile, is_abstract_socket_name, unlink_stale_socket
from .reactor import Reactor

__all__ = ["Listener", "listen", "bind_sockets", "bind_unix_socket", "unlink_stale_socket", "is_abstract_socket_name"]

logger = logging.getLogger("evloop")

ACCEPT_BATCH = 128                    # accepts per readiness event, so one listener cannot hog a pass
_ACCEPT_BACKOFF_S = 0.1               # pause on EMFILE/ENFILE before polling the listener again
_ACCEPT_EXHAUSTED_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# Linux's TCP_INFO on a listening socket: tcpi_unacked (a u32 at byte 24 of
# struct tcp_info) is the length of its accept queue (see _queued).
_TCP_INFO = getattr(socket, "TCP_INFO", None)
_IPPROTO_TCP = socket.IPPROTO_TCP
# Unpacked from the first 28 bytes: ~1,200 instructions fewer than a slice and int.from_bytes.
_QUEUE_LENGTH = struct.Struct("24xI")
_QUEUE_INFO_BYTES = _QUEUE_LENGTH.size


class Listener:
    """Listening sockets that accept connections into new transports.

    ``addresses`` lists the bound addresses; ``port`` is the port of the first
    (the one the kernel picked when port 0 was asked for).  Each readiness
    event accepts at most ``accept_batch`` connections.  On ``EMFILE`` or
    ``ENFILE`` the listener stops polling for a short back-off, logs once per
    episode and resumes, so it never spins.  ``tls`` is the ``TLSAcceptor``
    of a TLS listener (None for plain TCP): set ``listener.tls.context`` to
    serve a new certificate to the connections accepted from then on.
    ``deferred_accept``: see ``listen()``.
    """

    def __init__(
        self,
        reactor: Reactor,
        protocol_factory: Callable[[], Protocol],
        sockets: list[socket.socket],
        *,
        transport_kwargs: dict[str, Any] | None = None,
        unlink_path: str | None = None,
        accept_batch: int = ACCEPT_BATCH,
        tls: TLSAcceptor | None = None,
        deferred_accept: bool = False,
    ) -> None:
        self._reactor = reactor
        self.tls = tls
        self._accept_batch = accept_batch
        self._protocol_factory = protocol_factory
        self.sockets = sockets
        # Unpacked once: each connection's transport is made with positional
        # arguments (a call with keywords builds a dict for them every time).
        water = transport_kwargs or {}
        unknown = set(water) - {"high_water", "low_water"}
        if unknown:
            raise TypeError(f"unknown transport arguments: {sorted(unknown)}")
        self._high_water: int = water.get("high_water", DEFAULT_HIGH_WATER)
        self._low_water: int | None = water.get("low_water")
        self._socket_file = SocketFile.of(unlink_path)  # removed by close(), if still ours
        self._accepting = False
        self._paused = False            # by the user (pause_accepting)
        self._backoff_timer: Any = None  # by exhaustion of descriptors
        self._exhausted_episode = False
        self.backoffs = 0  # times accepting paused because descriptors ran out
        self._closed = False
        try:
            if accept_batch < 1:
                raise ValueError(f"accept_batch must be at least 1, got {accept_batch}")
            reactor._track(self)
        except BaseException:
            for sock in sockets:  # ours from here: not left open by a refused listen()
                sock.close()
            raise
        for sock in sockets:
            sock.setblocking(False)
            if deferred_accept:
                _defer_accepts(sock)
        # What every connection a listening socket accepts shares, read once:
        # - its (family, type, proto): socket.accept() reads the listening
        #   socket's family and type for every connection, each made an enum
        #   (~6,300 instructions apiece), and the transport its family once
        #   more (load/server_instructions.py close: 212,272 -> 190,787
        #   instructions a request);
        # - its local address, when it is one IP (not a wildcard): the
        #   transports take it rather than each asking getsockname(), a system
        #   call and a tuple per connection that an idle connection kept
        #   (~150 bytes); None for a wildcard.
        # - whether it tells the length of its accept queue (_queued);
        # - whether its connections inherit TCP_NODELAY from it (_passes_nodelay_on).
        self._shared = {sock: (sock.family, sock.type, sock.proto, _fixed_local_address(sock), _tells_queue(sock),
                               not _passes_nodelay_on(sock))
                        for sock in sockets}
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
            # A partial, not arguments: the reactor calls a reader without arguments in its own frame (see _run_passes).
            self._reactor.add_reader(sock, partial(self._accept, sock, self._accept_batch, False))

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

    def _accept(self, sock: socket.socket, limit: int | None, ignore_pause: bool) -> tuple[int, OSError | None]:
        """Accept and serve up to ``limit`` connections (None: all queued); returns how many, and the error if
        descriptors ran out.  The reader callback itself (``ignore_pause`` False: then it backs off when they ran
        out), and the accepts, the sockets and the transports made in this one frame: a listener's Python frames
        are a connection's, and each costs ~250 instructions beyond its bytecodes."""
        count = 0
        exhausted = None
        accepted: list[SocketTransport] = []  # to read once all that was queued is accepted (_read_first)
        family, kind, proto, local, tells_queue, nodelay = self._shared[sock]
        reactor, factory = self._reactor, self._protocol_factory
        high_water, low_water = self._high_water, self._low_water
        # Its descriptor alone when its local address is known (net/tcp.py: no socket object, whose making asks
        # the kernel for that address); else the plain C socket, which the transport asks for it.
        bare = local is not None
        # Accepts the kernel said are queued and not yet made (tells_queue: TCP_INFO, see _queued, written out
        # here).  The queue is asked whether anything is left instead of accepting until an accept fails with
        # EAGAIN: that failure, an exception, costs ~7,400 instructions, asking ~2,600 (callgrind, one call in a
        # loop).  The first accept asks nothing: readiness promised one.
        known = 1
        while limit is None or count < limit:
            if self._closed or not (self._accepting or ignore_pause):
                break  # a connection just served paused or closed us (--max-connections, shutdown)
            if tells_queue:
                if not known:
                    known = _QUEUE_LENGTH.unpack(sock.getsockopt(_IPPROTO_TCP, _TCP_INFO, _QUEUE_INFO_BYTES))[0]  # type: ignore[arg-type]
                    if not known:
                        break
                known -= 1
            try:
                # What socket.accept() does, with the kinds read once (see __init__), and its socket the plain
                # C one (net/tcp.py PlainSocket: the transport hands out a socket.socket when asked).
                fd, addr = sock._accept()  # type: ignore[attr-defined]
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno in _ACCEPT_EXHAUSTED_ERRNOS:
                    exhausted = exc
                    break
                if exc.errno in DISCONNECT_ERRNOS or exc.errno == errno.EPROTO:
                    continue  # the client gave up before we accepted it
                raise
            if self._exhausted_episode:
                self._exhausted_episode = False
                logger.warning("accepting connections again")
            count += 1
            conn = fd if bare else PlainSocket(family, kind, proto, fd)
            # A failing factory or connection_made costs that connection only: it is reported with its context
            # and the listener goes on accepting.
            try:
                transport = SocketTransport(reactor, conn, factory(), high_water, low_water, addr, local, family,
                                            nodelay)
            except (KeyboardInterrupt, SystemExit):
                _close_accepted(conn)
                raise
            except BaseException as exc:
                _close_accepted(conn)
                reactor.call_exception_handler(
                    {"message": "protocol factory failed; connection closed", "exception": exc, "listener": self})
                continue
            try:
                transport.start(True)  # read_first, by position: one per connection
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                transport._report(exc, "protocol.connection_made() failed; connection aborted")
                continue
            accepted.append(transport)
        for transport in accepted:  # not enumerate(): its object cost every readiness event ~450 instructions
            try:
                transport._read_first()  # the request usually came with the connection
            except BaseException:  # a stop request from the app: the others are still watched
                for rest in accepted[accepted.index(transport) + 1:]:
                    rest._watch()
                raise
        if exhausted is not None and not ignore_pause:
            self._back_off(exhausted)
        return count, exhausted

    def _back_off(self, exc: OSError) -> None:
        self.backoffs += 1
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
        if self._socket_file is not None:
            self._socket_file.remove()

    _close_with_reactor = close

    def _discard_after_fork(self) -> None:
        """In a forked child: the listening sockets stay open (pre-fork servers hand them on).

        A later ``close()`` in the child closes its copies but never removes
        a Unix socket's file: it is the parent's.
        """
        self._accepting = False
        self._backoff_timer = None
        self._socket_file = None

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
    sockets: list[socket.socket] | None = None,
    unlink_path: str | None = None,
    transport_kwargs: dict[str, Any] | None = None,
    accept_batch: int = ACCEPT_BATCH,
    ssl: SSLContext | None = None,
    ssl_handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
    ssl_plaintext_reply: bytes | None = None,
    proxy_protocol: Callable[[Any], bool] | None = None,
    proxy_header_timeout_s: float = DEFAULT_PROXY_HEADER_TIMEOUT_S,
    deferred_accept: bool = False,
) -> Listener:
    """Listen for connections and give each a new transport and ``protocol_factory()``.

    Exactly one of: ``host``/``port`` (IPv4 or IPv6; ``host`` None or "" binds
    every interface; port 0 picks a free port, reported by ``listener.port``),
    ``path`` (a Unix domain socket; a stale socket file is replaced),
    ``sock`` (an already bound socket, e.g. inherited; ``listen()`` is called on it), or
    ``sockets`` (bound ones, as ``evloop.binds.open_bind`` gives; ``unlink_path``:
    the Unix socket file among them, removed when the listener closes). ``accept_batch``: accepts per event.

    ``ssl``: a server ``SSLContext`` (one per listener: resumption depends on
    it) makes every connection TLS; the protocol gets ``connection_made``
    once the handshake is done, within ``ssl_handshake_timeout_s`` of the
    accept (a failed handshake is logged, never reaches the protocol).
    ``ssl_plaintext_reply`` is sent in the clear, before closing, to a client
    whose first byte is not a TLS record (someone speaking plain HTTP).

    ``proxy_protocol``: a predicate on the peer's address; a peer for which
    it is true must open with a PROXY protocol header (version 1 or 2,
    complete within ``proxy_header_timeout_s`` of the accept), whose client
    address becomes the transport's ``peername`` (its destination the
    ``sockname``) before the protocol, or the TLS handshake, sees the
    connection; any other peer is served as it is, and refused if it sends
    a header (see ``evloop.net.proxy_protocol``).

    ``deferred_accept``: for protocols whose client speaks first, TCP connections
    are accepted once their first bytes arrive, or after a second (Linux: see
    ``_defer_accepts``).
    """
    tls = None
    if ssl is not None:
        kwargs = transport_kwargs or {}
        tls = TLSAcceptor(
            reactor, ssl, handshake_timeout_s=ssl_handshake_timeout_s, plaintext_reply=ssl_plaintext_reply,
            high_water=kwargs.get("high_water", DEFAULT_HIGH_WATER), low_water=kwargs.get("low_water"),
        )
    proxied = None
    if proxy_protocol is not None:
        proxied = ProxyProtocolAcceptor(reactor, proxy_protocol, timeout_s=proxy_header_timeout_s)
    protocol_factory = _layered(protocol_factory, tls, proxied)
    options: dict[str, Any] = {"transport_kwargs": transport_kwargs, "accept_batch": accept_batch, "tls": tls,
                               "deferred_accept": deferred_accept}
    if sockets is not None:
        try:
            for s in sockets:
                s.listen(backlog)
        except BaseException:
            for s in sockets:
                s.close()
            raise
        return Listener(reactor, protocol_factory, sockets, unlink_path=unlink_path, **options)
    if sock is not None:
        sock.listen(backlog)
        return Listener(reactor, protocol_factory, [sock], **options)
    if path is not None:
        usock = bind_unix_socket(path, backlog=backlog)
        return Listener(reactor, protocol_factory, [usock], unlink_path=path, **options)
    sockets = bind_sockets(host, port, reuse_port=reuse_port, backlog=backlog)
    return Listener(reactor, protocol_factory, sockets, **options)


def _layered(
    protocol_factory: Callable[[], Protocol], tls: TLSAcceptor | None, proxied: ProxyProtocolAcceptor | None
) -> Callable[[], Protocol]:
    """``protocol_factory`` behind the stages an accepted connection passes first: the PROXY header, then TLS."""
    if tls is not None:
        app_factory = protocol_factory

        def protocol_factory() -> Protocol:
            return tls.wrap(app_factory())

    if proxied is not None:
        inner_factory = protocol_factory

        def protocol_factory() -> Protocol:  # the header comes first, before any TLS record
            return proxied.wrap(inner_factory())

    return protocol_factory


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


def _queued(sock: socket.socket) -> int:
    """The connections waiting in a listening TCP socket's accept queue (Linux, TCP_INFO)."""
    queued: int = _QUEUE_LENGTH.unpack(sock.getsockopt(_IPPROTO_TCP, _TCP_INFO, _QUEUE_INFO_BYTES))[0]  # type: ignore[arg-type]
    return queued


def _is_linux_tcp(sock: socket.socket) -> bool:
    """An IPv4 or IPv6 socket on Linux: where the TCP options the listener sets mean what it says."""
    return sys.platform.startswith("linux") and sock.family in (socket.AF_INET, socket.AF_INET6)


def _tells_queue(sock: socket.socket) -> bool:
    """Does ``_queued`` work on ``sock``: a TCP socket on Linux, whose (empty) queue it reads as 0?"""
    if _TCP_INFO is None or not _is_linux_tcp(sock):
        return False
    try:
        info = sock.getsockopt(_IPPROTO_TCP, _TCP_INFO, _QUEUE_INFO_BYTES)
    except OSError:
        return False
    return len(info) == _QUEUE_INFO_BYTES


def _passes_nodelay_on(sock: socket.socket) -> bool:
    """Set TCP_NODELAY on a listening TCP socket; True when the connections it accepts inherit it.

    Linux copies the listening socket's TCP options into each connection it
    accepts (the child socket is a clone of the listener's): set once here,
    TCP_NODELAY costs no ``setsockopt`` per connection (one system call of
    the eight a ``Connection: close`` request made; strace -f of evloop-demo).
    Elsewhere, and for other families, each transport sets it as before.
    """
    if not _is_linux_tcp(sock):
        return False
    try:
        sock.setsockopt(_IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        return False
    return True


def _defer_accepts(sock: socket.socket) -> None:
    """Have the kernel hold a connection to ``sock`` until its first bytes arrive (at most ~1 second).

    A client that speaks first usually sends its request right after the
    handshake, but the handshake's last ACK makes the listener readable
    before the request comes: one connection in six under wrk (50 clients,
    ``Connection: close``) over loopback, more across a real network.  Such
    a connection's first read fails (EAGAIN, an exception), it is registered
    with the poller and unregistered at close (two ``epoll_ctl``), and read
    again in a later pass.  With the option the first read finds the request:
    WSGI hello with ``Connection: close``, 1.08x the requests per CPU-second
    of the same code without it (load/BENCHMARKS.md, stop 38).  One that sends
    nothing is accepted once the second has passed (the kernel's SYN-ACK
    retransmission), and its header deadline starts then.  1 second is what
    nginx sets; the kernel rounds it to its retransmission schedule.
    """
    if not _is_linux_tcp(sock):
        return
    try:
        sock.setsockopt(_IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
    except OSError as exc:  # not a TCP socket after all (an inherited descriptor): accept as before
        logger.debug("TCP_DEFER_ACCEPT not set on %r: %s", sock, exc)


def _close_accepted(conn: _socket.socket | int) -> None:
    """Close a connection no transport took (its factory failed)."""
    if isinstance(conn, int):
        os.close(conn)
    else:
        conn.close()


def _fixed_local_address(sock: socket.socket) -> Any:
    """The address every connection accepted on ``sock`` has: its own, for one IPv4 or IPv6 address; None
    for a wildcard (a connection's is the address it came to) or another family."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        address = sock.getsockname()
    except OSError:
        return None
    return None if ipaddress.ip_address(address[0].partition("%")[0]).is_unspecified else address
