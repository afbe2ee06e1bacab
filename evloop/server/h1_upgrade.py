"""The WebSocket upgrade of an HTTP/1.1 connection, a part of ``HTTPProtocol`` (``h1.py``).

A route that answers ``WebSocketUpgrade`` hands the connection to
``server/ws.py``: the 101 goes out, and the transport, the registry's entry
and the request become the WebSocket protocol's.  ``HTTPProtocol`` inherits
this method (``_send_body`` calls it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..app import Response
from .ws import accept_websocket, start_websocket

if TYPE_CHECKING:
    from ..app import Request
    from ..http import ServerConnection
    from ..net.base import Transport
    from ..websocket import WebSocketUpgrade
    from .context import ServerContext
    from .phases import PhaseEvent

__all__ = ["WebSocketUpgrading"]


class WebSocketUpgrading:
    """``HTTPProtocol``'s step from HTTP/1.1 to a WebSocket (see the module docstring)."""

    # No state of its own (see h1_streaming.ResponseStreaming).
    if not TYPE_CHECKING:
        __slots__ = ()

    # HTTPProtocol's state and methods, which this uses.
    ctx: ServerContext
    transport: Transport | None
    conn: ServerConnection
    request: Request | None
    requests_served: int
    _out: list[bytes]
    _status: int
    _sink: Any
    _responder: Any
    _reading_paused: bool
    _write_paused: bool

    if TYPE_CHECKING:
        def _to(self, event: PhaseEvent) -> None: ...
        def _finish(self) -> None: ...
        def _send(self, response: Response) -> None: ...
        def _move_deadline(self, queue: Any) -> None: ...
        def _release_body(self, why: str) -> None: ...
        def _log_unusual(self, status: int, size: int, incomplete: bool = False) -> None: ...

    def _upgrade(self, upgrade: WebSocketUpgrade) -> None:
        """A WebSocket route accepted an upgrade request: 101 and the transport to server/ws.py, or the refusal.

        The refusal (a bad handshake, a refused origin) is an ordinary
        response on this connection.  After the 101 this protocol lets go:
        the transport, the registry's entry and the request are the
        WebSocket protocol's, and bytes that came after the request are its
        first.
        """
        request: Any = self.request
        ctx = self.ctx
        accepted = accept_websocket(ctx, request, upgrade)
        if isinstance(accepted, Response):
            self._send(accepted)
            return
        self._status = 101
        self.requests_served += 1  # the 101 answers this request; server/ws.py counts from it
        self._out.append(self.conn.send_switching_protocols(accepted.headers, ctx.wall.http_date, ctx.server_header))
        self._to("upgrade")
        self._log_unusual(101, 0)
        self._finish()  # the 101 leaves before any frame
        transport: Any = self.transport
        self.transport = None
        self._move_deadline(None)
        if self._sink is not None:
            self._release_body("the connection was upgraded")
        request._responder = None  # the handler keeps the request: it must not keep this protocol
        self.request = None
        # Break this protocol's one cycle (a bound method of itself), so it is freed now, by its
        # count, not by a full collection much later: ~1 KiB per WebSocket (its parser, buffer).
        self._responder = None
        start_websocket(ctx, self, transport, accepted, self.conn.trailing_data(),
                        reading_paused=self._reading_paused, write_paused=self._write_paused)

