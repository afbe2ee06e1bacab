"""Client connections: ``connect()`` with Happy Eyeballs, a timeout and a future.

Every address of a name is tried as RFC 8305 describes (see
``PendingConnection``); the winner becomes a ``SocketTransport`` whose
protocol gets ``connection_made``, and ``pending.future`` the transport.
Failures reach the protocol's ``connection_failed`` and the future, always
from the loop, never inside ``connect()``.
"""

from __future__ import annotations

import errno
import math
import os
import socket
from collections.abc import Callable
from ssl import SSLContext
from typing import Any

from .futures import Future
from .net.base import Protocol, Transport
from .net.tcp import SocketTransport
from .net.tls import DEFAULT_HANDSHAKE_TIMEOUT_S, TLSOrigin, TLSTransport
from .reactor import Reactor

__all__ = ["connect", "PendingConnection", "AddressResolver", "HAPPY_EYEBALLS_DELAY_S"]


AddressResolver = Callable[[Any, Any, int, int], "list[tuple[Any, ...]] | Future[list[tuple[Any, ...]]]"]
"""``resolver(host, port, family, type)`` returns ``socket.getaddrinfo``-style tuples, or a ``Future``
of them (``Resolver.resolve`` and ``Reactor.resolve`` do)."""

HAPPY_EYEBALLS_DELAY_S = 0.25  # RFC 8305 section 5: the recommended "Connection Attempt Delay"


class PendingConnection:
    """A client connection being established by ``connect()``.

    ``future`` resolves to the transport once connected (after the
    protocol's ``connection_made``; with TLS, after the handshake), or fails with the error that
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
        self.future: Future[Transport] = reactor.create_future()
        self.transport: SocketTransport | None = None
        self._addresses: list[tuple[int, int, int, Any]] = []  # (family, type, proto, addr) still to try
        self._attempts: dict[socket.socket, Any] = {}           # in flight: socket -> address
        self._errors: list[BaseException] = []
        self._stagger_timer: Any = None
        self._timeout_timer: Any = None
        self._resolution: Future[list[tuple[Any, ...]]] | None = None  # the name being looked up
        self._done = False
        # asyncio users cancel the future itself: that gives up too.
        self.future.add_done_callback(self._future_done)

    def done(self) -> bool:
        """True once connected, failed or cancelled."""
        return self._done

    def cancel(self) -> None:
        """Give up until ``future`` resolves (over TLS that includes the handshake);
        no protocol callback follows.  Harmless after the end."""
        if self.future.done():
            return
        if not self._done:
            self._end()
        self.future.cancel()  # a TLS layer waiting on it aborts its handshake

    def _future_done(self, future: Future[Transport]) -> None:
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
    def _arm_timeout(self, timeout_s: float | None) -> None:
        """The whole connection, name resolution included, has ``timeout_s``."""
        if timeout_s is not None:
            self._timeout_timer = self._reactor.call_later(timeout_s, self._timed_out, timeout_s)

    def _start(self, addresses: list[tuple[int, int, int, Any]]) -> None:
        self._addresses = _interleave_families(addresses)
        self._try_next()

    def _look_up(self, resolver: AddressResolver, host: str | None, port: int | str | None) -> None:
        """Ask ``resolver`` for the addresses of ``host``; they (or its failure) arrive from the loop."""
        try:
            infos = resolver(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # socket.gaierror, a bad IDNA label, a failing resolver: reported like any failure
            self._reactor.call_soon(self._fail, exc)
            return
        if not isinstance(infos, Future):
            answered: Future[list[tuple[Any, ...]]] = self._reactor.create_future()
            answered.set_result(infos)
            infos = answered
        # Its callbacks run from the loop: even an immediate failure is reported after connect() returned.
        self._resolution = infos
        infos.add_done_callback(self._resolved)

    def _resolved(self, resolution: Future[list[tuple[Any, ...]]]) -> None:
        self._resolution = None
        if self._done or self._abandoned() or resolution.cancelled():
            return
        exc = resolution.exception()
        if exc is not None:
            self._fail(exc)
            return
        self._start([(family, type_, proto, addr) for family, type_, proto, _, addr in resolution.result()])

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
        if type(self._protocol) is TLSTransport:
            return  # the TLS layer resolves the future once its handshake is done
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
        if self._resolution is not None:
            self._resolution.cancel()  # a look-up nobody waits for stops
            self._resolution = None
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
    resolver: AddressResolver | None = None,
    transport_kwargs: dict[str, Any] | None = None,
    ssl: SSLContext | None = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
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
    ``getaddrinfo``-style tuples or a ``Future`` of them; the default is
    ``reactor.resolve``, which never blocks the loop (``evloop.Resolver``:
    ``/etc/hosts``, then DNS).  ``timeout_s`` covers the look-up too.  A
    resolution error (``socket.gaierror``) is reported like any other
    failure.

    ``ssl``: a client ``SSLContext`` makes it TLS: ``connection_made`` and
    the future come after the handshake (within ``ssl_handshake_timeout_s``
    of the TCP connection), and a handshake that fails is
    ``connection_failed``.  ``server_hostname`` (default: ``host``) is sent
    as SNI and checked against the certificate.

    ``ValueError`` (raised here) for more than one of ``host``, ``path`` and
    ``sock``, or a timeout or delay that is not finite seconds >= 0.  With
    ``sock`` there is nothing to wait for: ``timeout_s`` does not apply.
    """
    _check_connect_arguments(reactor, host, path, sock, timeout_s, happy_eyeballs_delay_s)
    if ssl is not None and server_hostname is None:
        if ssl.check_hostname and host is None:
            raise ValueError("connect(ssl=...) needs server_hostname when there is no host to check")
        server_hostname = host
    protocol = protocol_factory()
    if ssl is not None:
        protocol = _tls_client(reactor, protocol, ssl, server_hostname, ssl_handshake_timeout_s, transport_kwargs)
    pending = PendingConnection(
        reactor, protocol, transport_kwargs or {}, local_addr=local_addr,
        happy_eyeballs_delay_s=happy_eyeballs_delay_s,
    )
    if type(protocol) is TLSTransport:
        protocol.set_waiter(pending.future)
    reactor._track(pending)
    if sock is not None:
        pending._attempts[sock] = None  # ours now: cancel() closes it
        reactor.call_soon(_adopt_socket, pending, sock)
        return pending
    pending._arm_timeout(timeout_s)
    if path is not None:
        reactor.call_soon(_start_pending, pending, [(socket.AF_UNIX, socket.SOCK_STREAM, 0, path)])
        return pending
    pending._look_up(resolver or reactor.resolve, host, port)
    return pending


def _tls_client(
    reactor: Reactor, protocol: Protocol, ssl: SSLContext, server_hostname: str | None, handshake_timeout_s: float,
    transport_kwargs: dict[str, Any] | None,
) -> TLSTransport:
    """The TLS layer between the TCP transport to come and ``protocol``."""
    kwargs = transport_kwargs or {}
    return TLSTransport(
        reactor, protocol, ssl, origin=TLSOrigin.CONNECTED, server_side=False, server_hostname=server_hostname,
        handshake_timeout_s=handshake_timeout_s, high_water=kwargs.get("high_water", 64 * 1024),
        low_water=kwargs.get("low_water"),
    )


def _check_connect_arguments(
    reactor: Reactor, host: str | None, path: str | None, sock: socket.socket | None, timeout_s: float | None,
    happy_eyeballs_delay_s: float,
) -> None:
    """``connect()``'s ``ValueError`` and ``RuntimeError`` cases (see its docstring)."""
    if sum(value is not None for value in (host, path, sock)) > 1:
        raise ValueError("connect() takes one of host/port, path or sock")
    if sock is not None and sock.type != socket.SOCK_STREAM:
        raise ValueError(f"connect(sock=...) needs a stream socket, got {sock.type!r}")
    if reactor.is_closed:
        raise RuntimeError("reactor is closed")
    for name, value in (("timeout_s", timeout_s), ("happy_eyeballs_delay_s", happy_eyeballs_delay_s)):
        if value is not None and not 0 <= value < math.inf:
            raise ValueError(f"connect(): {name} must be a finite number of seconds >= 0, got {value!r}")


def _start_pending(pending: PendingConnection, addresses: list[tuple[int, int, int, Any]]) -> None:
    if not pending.done():
        pending._start(addresses)


def _adopt_socket(pending: PendingConnection, sock: socket.socket) -> None:
    if not pending.done():
        pending._connected(sock)
