"""A WebSocket client on the reactor: ``connect_websocket(reactor, url, handler)``.

The connection is made with ``evloop.connect``, the opening handshake is
``evloop.ws.ClientHandshake`` over it, and after the 101 the transport is
switched to the same ``WebSocketProtocol`` the server runs, driving the
same ``WebSocketHandler`` API.  Embedders and tests use it; nothing in the
server depends on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from ssl import SSLContext
from typing import Any
from urllib.parse import urlsplit

from .client import connect
from .futures import Future
from .net.base import Protocol, Transport
from .net.tls_context import client_context
from .reactor import Reactor
from .server.ws import WebSocketProtocol, WebSocketSettings
from .websocket import WebSocketHandler
from .ws import ClientHandshake, HandshakeError, Role, WebSocketConnection

__all__ = ["connect_websocket"]

MAX_RESPONSE_HEAD_BYTES = 64 * 1024


def connect_websocket(
    reactor: Reactor,
    url: str,
    handler: WebSocketHandler,
    *,
    subprotocols: Sequence[str] = (),
    headers: Iterable[tuple[str, str]] = (),
    settings: WebSocketSettings | None = None,
    timeout_s: float | None = 10.0,
    ssl: SSLContext | None = None,
) -> Future[WebSocketHandler]:
    """Open a WebSocket to ``url`` (``ws://host[:port]/path?query``) driving ``handler``.

    Returns a future: ``handler`` once the handshake is done (its
    ``opened`` has run), or the exception that ended the attempt:
    ``OSError`` from connecting, ``HandshakeError`` for an answer that is
    not a valid 101 (its status, a wrong accept key, an extension or
    subprotocol not offered), ``ConnectionError`` when the server closed
    first, ``TimeoutError`` when connecting and the handshake took longer
    than ``timeout_s``.  ``subprotocols`` are offered in that order
    (``handler.subprotocol`` says which was chosen); ``headers`` are added
    to the request (``Origin``, cookies, ...).  ``settings``: size limit,
    pings, timeouts and whether to offer permessage-deflate
    (``WebSocketSettings``; its defaults offer it).

    ``wss://`` goes over TLS: ``ssl`` is the client context (default: the
    system's CAs, verification on, ``evloop.net.tls_context.client_context()``); the
    URL's host is sent as SNI and checked.  ``ValueError`` for another scheme.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    if timeout_s is not None and not 0 <= timeout_s < math.inf:
        raise ValueError(f"timeout_s must be a finite number of seconds >= 0, got {timeout_s!r}")
    secure = parts.scheme == "wss"
    if secure and ssl is None:
        ssl = client_context()
    port = parts.port or (443 if secure else 80)
    host = parts.hostname
    host_field = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        host_field += f":{parts.port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    settings = settings or WebSocketSettings()
    handshake = ClientHandshake(host_field, target, subprotocols=subprotocols, deflate=settings.deflate,
                                headers=headers)
    future: Future[WebSocketHandler] = reactor.create_future()
    opening = _Opening(reactor, handshake, handler, settings, future)
    pending = connect(reactor, lambda: opening, host, port, timeout_s=timeout_s, ssl=ssl if secure else None)
    if timeout_s is not None:
        opening.timer = reactor.call_later(timeout_s, opening.timed_out, pending)
    return future


class _Opening(Protocol):
    """The client's side of the opening handshake, until the 101 hands the transport over."""

    def __init__(self, reactor: Reactor, handshake: ClientHandshake, handler: WebSocketHandler,
                 settings: WebSocketSettings, future: Future[WebSocketHandler]) -> None:
        self.reactor = reactor
        self.handshake = handshake
        self.handler = handler
        self.settings = settings
        self.future = future
        self.transport: Transport | None = None
        self.received = bytearray()
        self.timer: Any = None

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport
        transport.write(self.handshake.request())

    def data_received(self, data: bytes) -> None:
        received = self.received
        received += data
        end = received.find(b"\r\n\r\n")
        if end < 0:
            if len(received) > MAX_RESPONSE_HEAD_BYTES:
                self._fail(HandshakeError(f"response head over {MAX_RESPONSE_HEAD_BYTES} bytes"))
            return
        try:
            status, fields = _parse_head(bytes(received[:end]))
            negotiated = self.handshake.check_response(status, fields)
        except HandshakeError as exc:
            self._fail(exc)
            return
        transport = self.transport
        assert transport is not None
        conn = WebSocketConnection(Role.CLIENT, deflate=negotiated.deflate, subprotocol=negotiated.subprotocol,
                                   max_message_bytes=self.settings.max_message_bytes)
        protocol = WebSocketProtocol(self.reactor, self.settings, conn, self.handler)
        transport.set_protocol(protocol)
        self._cancel_timer()
        if not self.future.done():
            self.future.set_result(self.handler)  # its callbacks run from the loop, after opened()
        protocol.start(transport, bytes(received[end + 4:]))

    def eof_received(self) -> bool | None:
        self._fail(ConnectionError("the server closed the connection during the handshake"))
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_timer()
        if not self.future.done():
            self.future.set_exception(exc or ConnectionError("connection closed during the handshake"))

    def connection_failed(self, exc: BaseException) -> None:
        self._cancel_timer()
        if not self.future.done():
            self.future.set_exception(exc)

    def timed_out(self, pending: Any) -> None:
        self.timer = None
        pending.cancel()  # still connecting: no callback follows
        self._fail(TimeoutError("WebSocket connection and handshake timed out"))

    def _fail(self, exc: BaseException) -> None:
        self._cancel_timer()
        if not self.future.done():
            self.future.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def _parse_head(head: bytes) -> tuple[int, list[tuple[str, str]]]:
    """Status and fields of a response head (without its empty line); ``HandshakeError`` if malformed."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise HandshakeError(f"not an HTTP/1.1 status line: {lines[0][:100]!r}")
    fields = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise HandshakeError(f"malformed response field: {line[:100]!r}")
        fields.append((name, value.strip(" \t")))
    return int(code), fields
