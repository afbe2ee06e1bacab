"""WebSocket for applications: the connection object, the App route kind, and broadcast.

A WebSocket endpoint is a ``WebSocketHandler`` subclass (tornado's
``WebSocketHandler`` shape, without coroutines)::

    @app.websocket("/ws/echo")
    class Echo(WebSocketHandler):
        def message_received(self, message):
            self.send(message)

One handler object per connection.  Call grammar of the methods the server
calls (override any)::

    check_origin? -> opened -> ( message_received | pong_received | drained )* -> closed

``closed`` comes exactly once for a handler that was ``opened``, whoever
closed.  Commands (``send_text``, ``send_bytes``, ``send``,
``send_prepared``, ``ping``, ``close``) write at once, or queue what the
socket does not take; after the closing handshake started they are dropped
quietly (as a closing transport drops writes).  ``buffered_amount`` is what
waits to be sent: while it is over the write buffer's high water mark the
server reads nothing more from this peer, and ``drained`` says when it is
back under the low mark.  An app that keeps sending regardless is cut off
at ``ServerConfig.ws_max_queue_bytes``.

The same handler class works for a client (``evloop.websocket_client``).
This module imports no ``socket``, ``selectors`` or ``time``; the server's
side of the wire is ``evloop.server.ws``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from .app import Request, Response
from .ws import CloseCode, PreparedMessage, wants_websocket

__all__ = ["WebSocketHandler", "WebSocketRoute", "WebSocketUpgrade", "broadcast", "field_value"]


class WebSocketLink(Protocol):
    """What a handler needs of the protocol driving its connection (``evloop.server.ws.WebSocketProtocol``)."""

    def send_text(self, text: str) -> None: ...

    def send_bytes(self, data: bytes | bytearray | memoryview) -> None: ...

    def send_prepared(self, message: PreparedMessage) -> None: ...

    def ping(self, payload: bytes) -> None: ...

    def close(self, code: int, reason: str) -> None: ...

    def buffered_amount(self) -> int: ...

    def is_open(self) -> bool: ...


class WebSocketHandler:
    """One WebSocket connection as the application sees it.

    ``request``: the upgrade request (its headers, path, ``path_params``,
    client), None on a client.  ``subprotocol``: the negotiated one, or None.
    ``close_code``/``close_reason``: set when the connection has closed (the
    peer's Close code, the code we failed it with, or 1006 when the TCP
    connection ended without a closing handshake).

    Class attribute ``subprotocols``: those the endpoint speaks, in order of
    preference (the first the client also offers is chosen).  Declare
    ``__slots__`` in a subclass to keep an idle connection small.
    """

    __slots__ = ("request", "subprotocol", "close_code", "close_reason", "_link", "__weakref__")

    subprotocols: ClassVar[Sequence[str]] = ()

    def __init__(self, request: Request | None = None) -> None:
        self.request = request
        self.subprotocol: str | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self._link: WebSocketLink | None = None  # set while the connection is open

    # ------------------------------------------------ called by the server
    def check_origin(self, origin: str) -> bool:
        """May a browser page from ``origin`` open this endpoint?  False answers 403.

        Called before ``opened`` when the handshake carries an ``Origin``
        (browsers always send one; other clients usually do not, and are not
        asked).  The default is tornado's: the origin's host must be the
        request's ``Host``, so a page of another site cannot open a socket
        with the user's cookies.  Override to allow others.
        """
        request = self.request
        if request is None:
            return True
        host = field_value(request, "host")
        return host is not None and urlsplit(origin).netloc.lower() == host.lower()

    def opened(self) -> None:
        """The handshake is done: messages may be sent."""

    def message_received(self, message: str | bytes) -> None:
        """A whole message: ``str`` for a text message, ``bytes`` for a binary one."""

    def pong_received(self, payload: bytes) -> None:
        """A Pong: the answer to a ``ping``, the server's keep-alive pings', or unsolicited."""

    def drained(self) -> None:
        """The send buffer went back under its low water mark after being over the high one."""

    def closed(self, code: int, reason: str) -> None:
        """The connection is gone (``close_code`` and ``close_reason`` are set)."""

    # ------------------------------------------------------------ commands
    def send_text(self, text: str) -> None:
        """Send a text message."""
        link = self._link
        if link is not None:
            link.send_text(text)

    def send_bytes(self, data: bytes | bytearray | memoryview) -> None:
        """Send a binary message."""
        link = self._link
        if link is not None:
            link.send_bytes(data)

    def send(self, message: str | bytes) -> None:
        """``send_text`` for a ``str``, ``send_bytes`` for bytes: an echo is ``self.send(message)``."""
        link = self._link
        if link is not None:
            if type(message) is str:
                link.send_text(message)
            else:
                link.send_bytes(message)  # type: ignore[arg-type]

    def send_prepared(self, message: PreparedMessage) -> None:
        """Send a message framed once for many connections (see ``broadcast``)."""
        link = self._link
        if link is not None:
            link.send_prepared(message)

    def ping(self, payload: bytes = b"") -> None:
        """Send a Ping (at most 125 bytes); its Pong comes to ``pong_received``."""
        link = self._link
        if link is not None:
            link.ping(payload)

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the closing handshake; ``closed`` follows once the peer answers (or a timeout)."""
        link = self._link
        if link is not None:
            link.close(code, reason)

    @property
    def buffered_amount(self) -> int:
        """Bytes written and not yet taken by the socket (0 once closed)."""
        link = self._link
        return link.buffered_amount() if link is not None else 0

    @property
    def is_open(self) -> bool:
        """True from ``opened`` until the closing handshake starts."""
        link = self._link
        return link is not None and link.is_open()


def field_value(request: Request, name: str) -> str | None:
    """The first value of field ``name`` (lowercase) by a scan of the pairs.

    ``request.headers.get`` would build the request's lookup index, and a
    WebSocket keeps its request for its whole life: ~750 bytes a connection
    (tracemalloc) for two lookups at the handshake.
    """
    for field, value in request.headers.raw:
        if field.lower() == name:
            return value
    return None


def broadcast(handlers: Iterable[WebSocketHandler], message: str | bytes | PreparedMessage) -> int:
    """Send ``message`` to every open handler in ``handlers``, framed once; returns how many it went to.

    The frame is made once (``PreparedMessage``) and the same bytes are
    queued on each connection (a connection whose compression has no
    context takeover gets one shared compressed frame instead).  Closed and
    closing handlers are skipped.  Backpressure stays each handler's: one
    that does not read is cut off at its queue bound, the others go on.
    """
    prepared = message if isinstance(message, PreparedMessage) else PreparedMessage(message)
    sent = 0
    for handler in handlers:
        link = handler._link
        if link is not None and link.is_open():
            link.send_prepared(prepared)
            sent += 1
    return sent


HandlerFactory = Callable[[Request], WebSocketHandler]


class WebSocketUpgrade(Response):
    """What a WebSocket route answers an upgrade request with: the server takes it from here.

    The server runs the handshake (``evloop.server.ws``): a refusal (a bad
    handshake, a refused origin, a server shutting down) is sent as an
    ordinary HTTP response; an acceptance answers 101 and the connection
    becomes ``factory(request)``'s.
    """

    __slots__ = ("factory",)

    def __init__(self, factory: HandlerFactory) -> None:
        super().__init__(101, None, ())
        self.factory = factory


_UPGRADE_REQUIRED = (
    426,
    [("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
    b"Upgrade Required: this is a WebSocket endpoint\n",
)


class WebSocketRoute:
    """The GET handler ``App.websocket`` registers: an upgrade goes to the server, a plain GET to ``plain``.

    ``plain(request, **params)`` answers a GET without ``Upgrade:
    websocket``; without it such a GET gets ``426 Upgrade Required``.
    """

    __slots__ = ("factory", "plain")

    def __init__(self, factory: HandlerFactory, plain: Callable[..., Response | None] | None = None) -> None:
        self.factory = factory
        self.plain = plain

    def __call__(self, request: Request, **params: Any) -> Response | None:
        if wants_websocket(request.headers):
            return WebSocketUpgrade(self.factory)
        if self.plain is not None:
            return self.plain(request, **params)
        status, headers, body = _UPGRADE_REQUIRED
        return Response(status, headers, body, content_type="text/plain; charset=utf-8")
