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
    """The ``Date`` field value, formatted at most once a second (RFC 9110 section 6.6.1)."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def get(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._value = email.utils.formatdate(now, usegmt=True).encode("ascii")
        return self._value


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

    @property
    def shutting_down(self) -> bool: ...

    def connection_opened(self, protocol: HTTPProtocol) -> None: ...

    def connection_closed(self, protocol: HTTPProtocol) -> None: ...
