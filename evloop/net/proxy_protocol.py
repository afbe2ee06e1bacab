"""The PROXY protocol on accepted connections: a stage before the application's protocol.

Theory of operation.  A listener made with ``listen(proxy_protocol=...)``
gives each accepted socket a ``ProxyHeaderReader`` wrapping the protocol it
would have had (HTTP, or the ``TLSTransport`` under which HTTP runs: the
header comes before the TLS ClientHello).  The reader decides by the peer's
address, never by what the peer sends (the specification's section 5: a
receiver must not guess whether a header is there):

- From a trusted peer (a proxy) a header is required.  Bytes are buffered
  and given to the sans-I/O parser (``proxy_header.py``) until it answers;
  the header must be complete within ``timeout_s`` of the accept.  Then the
  socket transport's ``peername`` and ``sockname`` become the client's
  addresses (LOCAL and UNKNOWN keep the real ones), the header itself is its
  ``get_extra_info("proxy_header")`` (a TLS transport above passes both
  on), the transport is handed
  to the wrapped protocol (``set_protocol`` and ``connection_made``), and
  the bytes after the header are its first ``data_received``.  A bad,
  truncated or late header is logged and the connection aborted: no
  answer is sent, since the peer is not speaking HTTP yet.  The wrapped
  protocol never hears of such a connection (as with a failed TLS handshake).
- From any other peer no header is believed.  The wrapped protocol gets
  ``connection_made`` at once (its own deadlines count from the accept) and
  the reader passes it everything, except that the first bytes are looked
  at: a peer that starts with a PROXY signature is trying to choose its own
  address, and is logged and aborted.

After the hand-over the reader is out of the path: every later callback
goes from the socket transport to the protocol directly, so the PROXY
protocol costs nothing per request.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any

from ..reactor import Reactor
from .base import Protocol, Transport
from .proxy_header import ProxyHeaderError, parse_proxy_header, signature_version
from .tcp import SocketTransport

__all__ = ["ProxyProtocolAcceptor", "ProxyHeaderReader", "ReaderPhase", "DEFAULT_PROXY_HEADER_TIMEOUT_S"]

logger = logging.getLogger("evloop")

DEFAULT_PROXY_HEADER_TIMEOUT_S = 10.0


class ReaderPhase(enum.Enum):
    EXPECTING = "expecting"  # a trusted peer: its header is being read
    WATCHING = "watching"    # an untrusted peer: its first bytes are checked for a forged header
    PASSED = "passed"        # the wrapped protocol has the transport
    CLOSED = "closed"        # refused, or lost before the header


class ProxyProtocolAcceptor:
    """What a listener with the PROXY protocol wraps each accepted connection's protocol in; one per listener.

    ``trusted(peername)`` says whether a peer is a proxy whose header is
    required and believed (``evloop.proxy.TrustedProxies.is_trusted_peer``
    in the server); ``timeout_s`` bounds the header's arrival from the accept.
    """

    def __init__(self, reactor: Reactor, trusted: Callable[[Any], bool], *,
                 timeout_s: float = DEFAULT_PROXY_HEADER_TIMEOUT_S) -> None:
        self.reactor = reactor
        self.trusted = trusted
        self.timeout_s = timeout_s

    def wrap(self, protocol: Protocol) -> ProxyHeaderReader:
        return ProxyHeaderReader(self, protocol)


class ProxyHeaderReader(Protocol):
    """The socket transport's first protocol: reads (or refuses) the PROXY header, then hands over.

    ``phase`` says where it stands; the accepted header is the transport's
    ``get_extra_info("proxy_header")``.
    """

    __slots__ = ("_acceptor", "_inner", "_transport", "_buffer", "_timer", "phase")

    def __init__(self, acceptor: ProxyProtocolAcceptor, protocol: Protocol) -> None:
        self._acceptor = acceptor
        self._inner = protocol
        self._transport: Transport | None = None
        self._buffer = b""
        self._timer: Any = None
        self.phase = ReaderPhase.EXPECTING

    def connection_made(self, transport: Transport) -> None:
        self._transport = transport
        if self._acceptor.trusted(transport.peername):
            self._timer = self._acceptor.reactor.call_later(self._acceptor.timeout_s, self._timed_out)
        else:
            self.phase = ReaderPhase.WATCHING
            self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.phase is ReaderPhase.EXPECTING:
            self._buffer += data
            self._read_header()
        elif self.phase is ReaderPhase.WATCHING:
            self._watch(self._buffer + data if self._buffer else data)

    def eof_received(self) -> bool | None:
        if self.phase is ReaderPhase.WATCHING:
            inner = self._inner
            if self._buffer:  # a few first bytes, too few to tell: they were not a header after all
                held, self._buffer = self._buffer, b""
                self._hand_over(held, announced=True)
            return inner.eof_received()
        if self.phase is ReaderPhase.EXPECTING:
            if self._buffer:
                self._refuse(logging.WARNING, f"the connection ended {len(self._buffer)} bytes into the header")
            else:  # connected and left: an L4 health check or a port scan
                logger.debug("PROXY protocol: peer %s: closed before sending a header", _peer(self._transport))
                self.phase = ReaderPhase.CLOSED
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_timer()
        if self.phase is ReaderPhase.WATCHING:
            self.phase = ReaderPhase.CLOSED
            self._inner.connection_lost(exc)
        self.phase = ReaderPhase.CLOSED
        self._inner = None  # type: ignore[assignment]  # the connection is gone: nothing to hand over
        self._transport = None

    def pause_writing(self) -> None:
        if self.phase is ReaderPhase.WATCHING:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self.phase is ReaderPhase.WATCHING:
            self._inner.resume_writing()

    # ------------------------------------------------------------ trusted
    def _read_header(self) -> None:
        try:
            parsed = parse_proxy_header(self._buffer)
        except ProxyHeaderError as exc:
            self._refuse(logging.WARNING, f"bad header ({exc})")
            return
        if parsed is None:
            return
        header, used = parsed
        self._cancel_timer()
        transport = self._transport
        assert transport is not None
        if header.source is not None:
            logger.debug("PROXY protocol: peer %s: v%d header, client %s, to %s", _peer(transport), header.version,
                         _address(header.source), _address(header.destination))
            transport.peername, transport.sockname = header.source, header.destination
        if isinstance(transport, SocketTransport):
            transport.proxy_header = header  # get_extra_info("proxy_header"), through TLS too
        rest, self._buffer = self._buffer[used:], b""
        self._hand_over(rest)

    def _timed_out(self) -> None:
        self._timer = None
        if self.phase is ReaderPhase.EXPECTING:
            self._refuse(logging.WARNING, f"no complete header within {self._acceptor.timeout_s:g} s"
                         f" ({len(self._buffer)} bytes came)")

    # ---------------------------------------------------------- untrusted
    def _watch(self, data: bytes) -> None:
        version = signature_version(data)
        if version is None:
            self._buffer = data  # "PRO", "\r\n": too short to tell; the protocol's own deadline bounds the wait
            return
        if version:
            self._refuse(logging.INFO, "sent a header, but is not a trusted proxy (--forwarded-allow-ips)")
            return
        self._buffer = b""
        self._hand_over(data, announced=True)

    # ------------------------------------------------------------- shared
    def _hand_over(self, data: bytes, *, announced: bool = False) -> None:
        """The wrapped protocol takes the transport: every later callback goes to it directly."""
        transport = self._transport
        inner = self._inner
        assert transport is not None
        self.phase = ReaderPhase.PASSED
        self._transport = None
        self._inner = None  # type: ignore[assignment]
        transport.set_protocol(inner)
        if not announced:
            inner.connection_made(transport)
        if data and not transport.is_closing():
            inner.data_received(data)

    def _refuse(self, level: int, reason: str) -> None:
        """Log why and abort: no answer, the peer is not speaking the protocol after the header."""
        logger.log(level, "PROXY protocol: peer %s: %s; connection closed", _peer(self._transport), reason)
        self._cancel_timer()
        if self.phase is ReaderPhase.EXPECTING:
            self.phase = ReaderPhase.CLOSED  # the wrapped protocol never heard of the connection
        self._buffer = b""
        if self._transport is not None:
            self._transport.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _address(address: Any) -> str:
    if isinstance(address, tuple):
        host = address[0]
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return repr(address) if isinstance(address, bytes) else str(address or "-")


def _peer(transport: Transport | None) -> str:
    return "-" if transport is None else _address(transport.peername)
