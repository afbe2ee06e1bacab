"""Serving processes: ``serve()``, the one entry point, and what it runs.

``serve(app, ...)`` runs a ``Worker`` in this process (``workers=1``, the
default) or a ``Supervisor`` that forks ``workers`` of them.  ``worker.py``
is one serving process, ``supervisor.py`` the process that forks, replaces
and stops them, ``sockets.py`` where they listen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..loading import AppLoader
from ..logsetup import configure_default_logging
from ..reactor import Reactor
from ..server import Server, ServerConfig
from .reloader import SourceWatcher
from .sockets import reuse_port_available, systemd_sockets
from .supervisor import Supervisor, SupervisorPhase, WorkerState
from .worker import SupervisorLink, Worker, WorkerPhase, current_worker

__all__ = [
    "serve", "Supervisor", "SupervisorPhase", "Worker", "WorkerPhase", "WorkerState", "SupervisorLink",
    "current_worker", "systemd_sockets", "reuse_port_available", "SourceWatcher",
]


def serve(
    app: Callable[..., Any] | AppLoader,
    host: str | None = "127.0.0.1",
    port: int = 8080,
    *,
    workers: int = 1,
    max_requests: int = 0,
    max_requests_jitter: int = 0,
    worker_timeout_s: float = 30.0,
    share_socket: bool = False,
    watcher: SourceWatcher | None = None,
    config: ServerConfig | None = None,
    reactor: Reactor | None = None,
    on_started: Callable[[Server], Any] | None = None,
    slow_callback_s: float | None = None,
    **settings: Any,
) -> int:
    """Serve ``app`` until SIGINT, SIGTERM or SIGQUIT; returns the exit status (0 after an orderly stop).

    ``settings`` are ``ServerConfig`` fields (``header_timeout_s=...``),
    applied over ``config`` when both are given.  With ``workers=1`` and no
    ``max_requests`` a ``Worker`` serves in this process: the first stop
    signal drains requests in flight (bounded by ``graceful_timeout_s``), a
    second SIGINT stops at once; ``reactor`` (left open) and
    ``on_started(server)`` (called once listening) apply only here.
    Otherwise a ``Supervisor`` forks ``workers`` processes, each running a
    ``Worker``; see ``evloop.workers.supervisor``.  There,
    ``worker_timeout_s`` kills and replaces a worker whose loop has not turned
    for that long (0: never), and ``share_socket`` has the workers share one
    listening socket, so that only idle workers take new connections (for
    apps that block, WSGI apps above all), rather than each listening on its
    own ``SO_REUSEPORT`` socket; see ``evloop.workers.sockets``.  Raises ``OSError`` when
    the address cannot be bound.  Call it from the main thread.

    ``app`` may be an ``AppLoader``: a lone process loads it here (raising
    ``AppLoadError``), a supervisor's workers each load it after the fork,
    so SIGHUP brings in new code.  ``watcher`` (a ``SourceWatcher``, for
    development) runs a supervisor even with one worker and replaces the
    workers whenever a watched file changes.

    A program that has not configured logging gets ``evloop-demo``'s
    (``evloop.logsetup``): server lines and the access log on stderr.
    """
    if config is None:
        config = ServerConfig(host=host, port=port, **settings)
    elif settings:
        config = dataclasses.replace(config, **settings)
    configure_default_logging(access_log=config.access_log)
    if workers == 1 and not max_requests and watcher is None:
        if isinstance(app, AppLoader):
            app = app.load()
        return Worker(app, config, reactor=reactor, slow_callback_s=slow_callback_s, on_started=on_started).run()
    supervisor = Supervisor(app, config, workers, watcher=watcher, max_requests=max_requests,
                            max_requests_jitter=max_requests_jitter, slow_callback_s=slow_callback_s,
                            share_socket=share_socket, worker_timeout_s=worker_timeout_s)
    return supervisor.run()
