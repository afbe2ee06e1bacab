"""evloop: a single-threaded, event-loop HTTP/1.1 server in pure Python, and the reactor under it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .client import PendingConnection, connect
from .clock import ManualClock, MonotonicClock
from .framing import LengthPrefixedProtocol, LineProtocol
from .futures import CancelledError, Future, InvalidStateError
from .listener import Listener, listen
from .net.base import Protocol
from .net.process import ProcessProtocol, ProcessTransport, spawn
from .net.tcp import SocketTransport
from .net.udp import DatagramProtocol, DatagramTransport, connect_datagram, listen_datagram
from .reactor import Handle, LoopStats, Reactor, Timer
from .timers import PeriodicHandle

__version__ = "0.1.0"

__all__ = [
    "Reactor", "Handle", "Timer", "PeriodicHandle", "LoopStats", "ManualClock", "MonotonicClock",
    "Future", "CancelledError", "InvalidStateError",
    "Protocol", "SocketTransport", "Listener", "listen", "connect", "PendingConnection",
    "LineProtocol", "LengthPrefixedProtocol", "Resolver",
    "DatagramProtocol", "DatagramTransport", "listen_datagram", "connect_datagram",
    "ProcessProtocol", "ProcessTransport", "spawn",
    "App", "Request", "Response", "FileBody", "serve", "Server", "ServerConfig", "Supervisor",
    "BodyReceiver",
]

if TYPE_CHECKING:
    # What type checkers see; at run time these names are imported on first use (below).
    from .app import App, FileBody, Request, Response
    from .net.resolver import Resolver
    from .server import Server, ServerConfig
    from .streamed_body import BodyReceiver
    from .workers import Supervisor, serve

# The HTTP layer is imported on first use, so embedding only the reactor stays light.
_LAZY = {
    "App": "app", "Request": "app", "Response": "app", "FileBody": "app",
    "serve": "workers", "Server": "server", "ServerConfig": "server", "Supervisor": "workers",
    "BodyReceiver": "streamed_body", "Resolver": "net.resolver",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evloop' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
