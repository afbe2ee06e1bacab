"""What a connection's protocol may see of its server: a narrow interface.

A wire protocol (HTTP/1.1, WebSocket; HTTP/2 next) needs the
configuration, the app, the reactor (clock and timers), a few shared
helpers and counters, and to report that it opened and closed.  It must not
reach into listeners or shutdown bookkeeping: ``Server`` implements this
interface, and tests may pass anything else that does.
"""

from __future__ import annotations

import operator
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..app import Request, Response
from ..deadlines import DeadlineQueue
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

__all__ = ["ServerContext", "ServedConnection", "HTTP1Shared"]


class HTTP1Shared:
    """What a server's HTTP/1.1 connections share besides its configuration (``ServerContext.h1``).

    ``timeouts``: each phase's timeout in seconds (None: that phase has
    none).  ``deadlines``: each phase's ``DeadlineQueue``, one per timeout
    value (phases with the same timeout share one; its ``timeout_s`` is
    that value), None for a phase without a timeout; a connection's
    deadline is in its phase's queue, which calls its ``_on_deadline`` once
    it passes.  ``spare_request``: a ``Request`` nobody kept, for the next
    request on any connection to reuse (server/h1.py).  ``idle_protocols``:
    closed connections' protocols for new connections to reuse
    (``HTTPProtocol.for_connection``), at most ``h1_reuse.IDLE_PROTOCOLS_MAX``.

    An object of their own, not attributes of the server: the server's
    instance dict is at CPython 3.11's limit of 29 keys that stay a split
    dict; past it, reading any of its attributes costs more
    (load/bench_instructions.py: keepalive +119 instructions a request).
    """

    __slots__ = ("timeouts", "deadlines", "spare_request", "idle_protocols")

    def __init__(self, reactor: Reactor, phase_timeouts: dict[Phase, float | None]) -> None:
        self.timeouts = phase_timeouts
        expired = operator.methodcaller("_on_deadline")
        by_timeout: dict[float, DeadlineQueue] = {}
        self.deadlines: dict[Phase, DeadlineQueue | None] = {}
        for phase, timeout in phase_timeouts.items():
            if timeout is not None and timeout not in by_timeout:
                by_timeout[timeout] = DeadlineQueue(reactor, expired, timeout)
            self.deadlines[phase] = None if timeout is None else by_timeout[timeout]
        self.spare_request: Request | None = None
        self.idle_protocols: list[Any] = []

    def close(self) -> None:
        """The server closes: no deadline fires after this (its connections are aborted)."""
        for queue in self.deadlines.values():
            if queue is not None:
                queue.close()
        self.idle_protocols.clear()


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
    # ``streams_body(method, target)``: does the route take its body as it
    # arrives (App.stream_request_body)?  None: the app has no such route.
    streams_body: Callable[[str, str], bool] | None
    trusted_proxies: TrustedProxies | None
    access_log: AccessLog | None  # None: off
    h1: HTTP1Shared  # the phases' deadline queues and the spare Request of the HTTP/1.1 connections
    http1_caches: HTTP1Caches  # shared by the server's connections: parsed heads, framed responses
    shutting_down: bool  # graceful shutdown began: WebSocket upgrades are refused (HTTP: close_when_idle)
    ws_settings: WebSocketSettings  # limits and deadlines of WebSocket connections (server/ws.py)
    metrics: ServerMetrics | None  # None: off (--metrics-path, --status-path)

    def connection_opened(self, protocol: ServedConnection) -> None: ...

    def connection_closed(self, protocol: ServedConnection) -> None: ...

    def connection_switched(self, old: ServedConnection, new: ServedConnection) -> None:
        """``new`` speaks for the connection ``old`` had (an upgrade): the registry swaps them."""


def app_caller(app: Callable[..., Any]) -> Callable[[Request], Any]:
    """What the server calls with each request: ``app``'s ``serve_request`` or ``__call__`` method bound to it.

    Calling an instance of a class with a Python ``__call__`` (an App) goes
    through a slot wrapper first: ~600 instructions a request (load/bench_instructions.py).
    An app whose ``__call__`` takes a router's ``**path_params`` (a new dict
    each call) names its request-only entry ``serve_request``:
    ``evloop.wsgi.WSGIApp`` (~470 instructions a request).
    """
    method = getattr(type(app), "serve_request", None)
    if type(method) is not types.FunctionType:
        method = getattr(type(app), "__call__", None)  # noqa: B004 (the function itself is wanted, not a test)
    return types.MethodType(method, app) if type(method) is types.FunctionType else app
