"""``serve()`` in this process: one server on one reactor until a signal stops it."""

from __future__ import annotations

import dataclasses
import logging
import signal
from collections.abc import Callable
from typing import Any

from ..app import Request, Response
from ..reactor import Reactor
from .config import ServerConfig
from .registry import Server

__all__ = ["serve"]

logger = logging.getLogger("evloop.server")


def serve(
    app: Callable[[Request], Response | None],
    host: str | None = "127.0.0.1",
    port: int = 8080,
    *,
    config: ServerConfig | None = None,
    reactor: Reactor | None = None,
    on_started: Callable[[Server], Any] | None = None,
    **settings: Any,
) -> None:
    """Run ``app`` on a fresh reactor until SIGINT or SIGTERM, then shut down gracefully.

    ``settings`` are ``ServerConfig`` fields (``header_timeout_s=...``).  The
    first SIGINT/SIGTERM drains requests in flight (bounded by
    ``graceful_timeout_s``); a second SIGINT stops at once.
    """
    if config is None:
        config = ServerConfig(host=host, port=port, **settings)
    elif settings:
        config = dataclasses.replace(config, **settings)
    own_reactor = reactor is None
    reactor = reactor if reactor is not None else Reactor()
    server = Server(app, reactor, config)
    server.start()
    for url in server.urls:
        logger.info("evloop serving on %s", url)
    if on_started is not None:
        on_started(server)

    def on_signal(signum: int) -> None:
        if server.shutting_down:
            if signum == signal.SIGINT:
                logger.warning("second SIGINT: stopping now")
                server.shutdown(reactor.stop, graceful=False)
            return
        logger.info("%s: shutting down gracefully", signal.Signals(signum).name)
        server.shutdown(reactor.stop)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
        reactor.add_signal_handler(signum, on_signal, signum)
    try:
        reactor.run()
    finally:
        server.close()
        reactor.run_once(0)  # run the connection_lost callbacks: they close the sockets
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
            reactor.remove_signal_handler(signum)
        if own_reactor:
            reactor.close()
