"""What a connection's protocol may see of its server: a narrow interface.

A wire protocol (HTTP/1.1, WebSocket; HTTP/2 next) needs the
configuration, the app, the reactor (clock and timers), a few shared
helpers and counters, and to report that it opened and closed.  It must not
reach into listeners or shutdown bookkeeping: ``Server`` implements this
interface, and tests may pass anything else that does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ..app import Request, Response
from ..http.caches import HTTP1Caches
from ..proxy import TrustedProxies
from ..reactor import Reactor
from .access_log import AccessLog
from .config import ServerConfig
from .phases import Phase
from .wallclock import WallClock

if TYPE_CHECKING:
    from .metrics import ServerMetrics
    from .ws import WebSocketSettings

__all__ = ["ServerContext", "ServedConnection"]


class ServedConnection(Protocol):
    """A connection's protocol as the registry sees it, whatever its wire protocol."""

    @property
    def requests_served(self) -> int: ...

    def close_when_idle(self) -> None:
        """Graceful shutdown: end the connection once what is in progress is done."""

    def abort(self) -> None: ...


class ServerContext(Protocol):
    """The server as its connections see it."""

    config: ServerConfig
    reactor: Reactor
    wall: WallClock
    server_header: bytes | None  # None: no Server field
    # The app's entry point, ready to call (see Server.app), and its
    # ``would_accept(method, target)`` when it has one (Expect: 100-continue).
    call_app: Callable[[Request], Response | None]
    would_accept: Callable[[str, str], bool] | None
    trusted_proxies: TrustedProxies | None
    access_log: AccessLog | None  # None: off
    phase_timeouts: dict[Phase, float | None]
    http1_caches: HTTP1Caches  # shared by the server's connections: parsed heads, framed responses
    shutting_down: bool  # graceful shutdown began: WebSocket upgrades are refused (HTTP: close_when_idle)
    ws_settings: WebSocketSettings  # limits and deadlines of WebSocket connections (server/ws.py)
    metrics: ServerMetrics | None  # None: off (--metrics-path, --status-path)

    def connection_opened(self, protocol: ServedConnection) -> None: ...

    def connection_closed(self, protocol: ServedConnection) -> None: ...

    def connection_switched(self, old: ServedConnection, new: ServedConnection) -> None:
        """``new`` speaks for the connection ``old`` had (an upgrade): the registry swaps them."""
