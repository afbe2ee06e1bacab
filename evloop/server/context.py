"""What a connection's protocol may see of its server: a narrow interface.

A wire protocol (HTTP/1.1 today; WebSocket and HTTP/2 next) needs the
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
    from .h1 import HTTPProtocol

__all__ = ["ServerContext"]


class ServerContext(Protocol):
    """The server as its connections see it."""

    config: ServerConfig
    reactor: Reactor
    wall: WallClock
    server_header: bytes
    # The app's entry point, ready to call (see Server.app), and its
    # ``would_accept(method, target)`` when it has one (Expect: 100-continue).
    call_app: Callable[[Request], Response | None]
    would_accept: Callable[[str, str], bool] | None
    trusted_proxies: TrustedProxies | None
    access_log: AccessLog | None  # None: off
    phase_timeouts: dict[Phase, float | None]
    http1_caches: HTTP1Caches  # shared by the server's connections: parsed heads, framed responses
    shutting_down: bool  # graceful shutdown began: every response is the connection's last

    def connection_opened(self, protocol: HTTPProtocol) -> None: ...

    def connection_closed(self, protocol: HTTPProtocol) -> None: ...
