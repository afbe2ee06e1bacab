"""What a connection's protocol may see of its server: a narrow interface.

A wire protocol (HTTP/1.1 today; WebSocket and HTTP/2 next) needs the
configuration, the app, the reactor (clock and timers), a few shared
helpers and counters, and to report that it opened and closed.  It must not
reach into listeners or shutdown bookkeeping: ``Server`` implements this
interface, and tests may pass anything else that does.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ..app import Request, Response
from ..proxy import TrustedProxies
from ..reactor import Reactor
from .access_log import AccessLog
from .config import ServerConfig
from .phases import Phase

if TYPE_CHECKING:
    from .h1 import HTTPProtocol

__all__ = ["ServerContext", "DateHeader"]


class DateHeader:
    """The ``Date`` field value (RFC 9110 section 6.6.1), refreshed once a second by a reactor timer.

    A response reads ``value``, an attribute: reading the wall clock per
    response and calling a method for it cost ~600 instructions a pipelined
    request (load/bench_instructions.py).  The value may lag the wall clock
    by up to a second, as uvicorn's and nginx's cached dates do.
    """

    __slots__ = ("value", "_timer")

    def __init__(self, reactor: Reactor | None = None) -> None:
        self.value = b""
        self.refresh()
        self._timer = reactor.call_every(1.0, self.refresh) if reactor is not None else None

    def refresh(self) -> None:
        self.value = email.utils.formatdate(time.time(), usegmt=True).encode("ascii")

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class ServerContext(Protocol):
    """The server as its connections see it."""

    config: ServerConfig
    reactor: Reactor
    date: DateHeader
    server_header: bytes
    # The app's entry point, ready to call (see Server.app), and its
    # ``would_accept(method, target)`` when it has one (Expect: 100-continue).
    call_app: Callable[[Request], Response | None]
    would_accept: Callable[[str, str], bool] | None
    trusted_proxies: TrustedProxies | None
    access_log: AccessLog | None  # None: off
    phase_timeouts: dict[Phase, float | None]
    requests_served: int
    shutting_down: bool  # graceful shutdown began: every response is the connection's last

    def connection_opened(self, protocol: HTTPProtocol) -> None: ...

    def connection_closed(self, protocol: HTTPProtocol) -> None: ...
