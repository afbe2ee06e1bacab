"""A server's metrics: what it counts, its once-a-second sample, and the routes that show them.

``ServerMetrics`` is built by ``Server`` when ``metrics_path`` or
``status_path`` is set (else the server has none, and the HTTP path checks
one ``None``).  Its ``counts`` (``evloop.metrics.RequestCounts``) are added
to by the protocols; the rest is read when a snapshot is taken: connections
by phase from the registry, accept back-offs from the listeners, the loop's
figures from ``Reactor.stats()``, which the sampler calls once a second (so
``evloop_loop_lag_seconds`` is the worst lag of the last second).

Where the snapshots come from is ``source``: the server's own by default; a
worker of a group replaces it with the union of the group's shared table
(``evloop.workers.metrics_table``), and ``on_sample`` publishes its own
snapshot there each second.

``MetricsRoutes`` puts the two paths in front of an app: the Prometheus text
at ``metrics_path``, and at ``status_path`` the status page (a plain GET)
and its WebSocket feed (an upgrade), which pushes a frame a second to each
open page.
"""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..app import FileBody, Request, Response
from ..metrics import BACKOFF_KINDS, CONTENT_TYPE, STATUS_CLASSES, RequestCounts, exposition, fold
from ..reactor import Reactor
from ..websocket import WebSocketHandler, WebSocketRoute, broadcast
from .config import ServerConfig
from .context import app_caller
from .phases import Phase

if TYPE_CHECKING:
    from .registry import Server

__all__ = ["ServerMetrics", "MetricsRoutes", "union", "status_frame", "Snapshots", "metrics_server"]

Snapshots = Callable[[], list[dict[str, Any]]]

SAMPLE_INTERVAL_S = 1.0
HISTORY_SAMPLES = 300  # five minutes of one-second samples, drawn by the status page
_STATUS_PAGE = Path(__file__).with_name("status.html")


class ServerMetrics:
    """One server's figures (see the module docstring); ``start()`` begins the sampling, ``stop()`` ends it."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.reactor: Reactor = server.reactor
        self.counts = RequestCounts()
        self.worker: int | None = None  # a worker's slot, in a group
        self.started = time.time()
        self.lag_s = 0.0
        self.loop_passes = 0
        self.loop_callbacks = 0
        self.slow_callbacks = 0
        # [unix second, requests, 1xx..5xx, bytes in, bytes out, open connections, lag ms]
        self.history: collections.deque[list[float]] = collections.deque(maxlen=HISTORY_SAMPLES)
        self.source: Snapshots = lambda: [self.snapshot()]  # replaced in a group of workers
        self.on_sample: list[Callable[[], None]] = []
        self._timer: Any = None

    def snapshots(self) -> list[dict[str, Any]]:
        """The snapshots to show: this server's, or its group's (``source``)."""
        return self.source()

    def start(self) -> None:
        if self._timer is None:
            self.sample()  # the figures of the start-up, so that a scrape at once has every series
            self._timer = self.reactor.call_every(SAMPLE_INTERVAL_S, self.sample)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def sample(self) -> None:
        """The loop's figures of the last interval, a history row, then whoever waits for a sample."""
        stats = self.reactor.stats()
        self.lag_s = stats.max_timer_lag_s
        self.loop_passes = stats.passes
        self.loop_callbacks = stats.callbacks
        self.slow_callbacks = stats.slow_callbacks
        counts = self.counts
        classes = [0] * 5
        for method_counts in (*counts.by_method.values(), counts.other):
            for index in range(5):
                classes[index] += method_counts[index + 1]
        self.history.append([int(time.time()), sum(classes), *classes, counts.bytes_in, counts.bytes_out,
                             len(self.server.connections), round(self.lag_s * 1000, 3)])
        for callback in self.on_sample:
            callback()

    def snapshot(self) -> dict[str, Any]:
        """Every figure of this server now, JSON-able (see ``evloop.metrics``)."""
        server = self.server
        counters = self.counts.counters()
        backoffs = dict.fromkeys(BACKOFF_KINDS, 0)
        backoffs["descriptors"] = sum(listener.backoffs for listener in server.listeners)
        backoffs["max_connections"] = server.accept_pauses
        counters.update(accepted=server.accepted, backoffs=backoffs, loop_passes=self.loop_passes,
                        loop_callbacks=self.loop_callbacks, slow_callbacks=self.slow_callbacks)
        connections: dict[str, int] = {}
        for protocol in server.connections:
            phase = getattr(protocol, "phase", None)
            state = phase.value if isinstance(phase, Phase) else "websocket"
            connections[state] = connections.get(state, 0) + 1
        return {
            "worker": self.worker,
            "pid": os.getpid(),
            "counters": counters,
            "gauges": {"connections": connections, "loop_lag_s": self.lag_s, "started": self.started},
            "history": list(self.history),
        }


def union(snapshots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One snapshot per worker slot: the counters of every process the slot had added up (the retired
    ones' included), the gauges of its live ones (connections added, the worst lag)."""
    by_slot: dict[Any, dict[str, Any]] = {}
    for snapshot in snapshots:
        slot = snapshot.get("worker")
        merged = by_slot.get(slot)
        if merged is None:
            merged = by_slot[slot] = {"worker": slot, "pids": [], "counters": {}, "history": []}
        fold(merged["counters"], snapshot.get("counters") or {})
        gauges = snapshot.get("gauges")
        if gauges is None:
            continue  # a retired slot's totals
        merged["pids"].append(snapshot.get("pid"))
        mine = merged.setdefault("gauges", {"connections": {}, "loop_lag_s": 0.0, "started": gauges["started"]})
        fold(mine["connections"], gauges["connections"])
        mine["loop_lag_s"] = max(mine["loop_lag_s"], gauges["loop_lag_s"])
        mine["started"] = min(mine["started"], gauges["started"])
        merged["history"].append(snapshot.get("history") or [])
    return [by_slot[slot] for slot in sorted(by_slot, key=lambda s: -1 if s is None else s)]


def status_frame(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """What the status page draws: a row per worker (or the lone process) and the history of the whole server."""
    rows = []
    history: dict[int, list[float]] = {}
    for merged in union(snapshots):
        counters = merged["counters"]
        classes = dict.fromkeys(STATUS_CLASSES, 0)
        for key, value in (counters.get("requests") or {}).items():
            classes[key.partition(" ")[2]] += value
        gauges = merged.get("gauges") or {"connections": {}, "loop_lag_s": 0.0}
        rows.append({
            "worker": merged["worker"], "pids": merged["pids"], "requests": sum(classes.values()),
            "classes": classes, "connections": gauges["connections"], "loop_lag_s": gauges["loop_lag_s"],
            "bytes_in": counters.get("bytes_in", 0), "bytes_out": counters.get("bytes_out", 0),
        })
        # The retired processes' totals are not in a live one's history:
        # rows of a second are summed across workers, and rates come from
        # differences, which a retired total does not change.
        for rows_of_process in merged["history"]:
            for row in rows_of_process:
                second = int(row[0])
                total = history.get(second)
                if total is None:
                    history[second] = list(row)
                else:
                    for i in range(1, len(row) - 1):
                        total[i] += row[i]
                    total[-1] = max(total[-1], row[-1])  # the lag: the worst, not the sum
    return {"time": time.time(), "workers": rows, "history": [history[s] for s in sorted(history)]}


class MetricsRoutes:
    """An app in front of another: ``metrics_path`` and ``status_path`` here, every other path ``app``'s.

    ``source()`` gives the snapshots to show; ``reactor`` runs the status
    feed's timer.  Either path may be None (not served).
    """

    def __init__(self, app: Callable[..., Any], reactor: Reactor, source: Snapshots, *,
                 metrics_path: str | None, status_path: str | None) -> None:
        for path in (metrics_path, status_path):
            if path is not None and not path.startswith("/"):
                raise ValueError(f"a metrics or status path must start with '/': {path!r}")
        if metrics_path is not None and metrics_path == status_path:
            raise ValueError(f"the metrics and status paths must differ, both are {metrics_path!r}")
        self.app = app
        self._call_app: Callable[..., Any] = app_caller(app)  # as Server calls an app
        self.metrics_path = metrics_path
        self.status_path = status_path
        self.source = source
        self.feed = StatusFeed(reactor, source)
        self._status = WebSocketRoute(self.feed.make_handler, self._status_page)
        self._app_would_accept: Callable[[str, str], bool] | None = getattr(app, "would_accept", None)

    def __call__(self, request: Request) -> Any:
        path = request.path
        if path == self.metrics_path:
            if request.method not in ("GET", "HEAD"):
                return Response(405, [("Allow", "GET, HEAD")], b"Method Not Allowed\n")
            return Response(200, body=exposition(union(self.source())).encode(), content_type=CONTENT_TYPE)
        if path == self.status_path:
            if request.method != "GET":
                return Response(405, [("Allow", "GET")], b"Method Not Allowed\n")
            return self._status(request)
        return self._call_app(request)

    def _status_page(self, request: Request) -> Response:
        return Response(200, [("Cache-Control", "no-store")], FileBody(open(_STATUS_PAGE, "rb")),
                        content_type="text/html; charset=utf-8")

    def would_accept(self, method: str, target: str) -> bool:
        path = target.partition("?")[0]
        if path in (self.metrics_path, self.status_path):
            return False  # no body is read on these paths
        return self._app_would_accept is None or self._app_would_accept(method, target)


class StatusFeed:
    """The status pages' WebSocket: a frame (``status_frame``) to every open page, once a second."""

    def __init__(self, reactor: Reactor, source: Snapshots) -> None:
        self.reactor = reactor
        self.source = source
        self.watchers: set[WebSocketHandler] = set()
        self._timer: Any = None

    def make_handler(self, request: Request) -> WebSocketHandler:
        return _StatusWatcher(self, request)

    def opened(self, watcher: WebSocketHandler) -> None:
        self.watchers.add(watcher)
        watcher.send_text(json.dumps(status_frame(self.source())))  # the page draws at once
        if self._timer is None:
            self._timer = self.reactor.call_every(SAMPLE_INTERVAL_S, self._push)

    def closed(self, watcher: WebSocketHandler) -> None:
        self.watchers.discard(watcher)
        if not self.watchers and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _push(self) -> None:
        broadcast(self.watchers, json.dumps(status_frame(self.source())))


class _StatusWatcher(WebSocketHandler):
    __slots__ = ("feed",)

    def __init__(self, feed: StatusFeed, request: Request) -> None:
        super().__init__(request)
        self.feed = feed

    def opened(self) -> None:
        self.feed.opened(self)

    def closed(self, code: int, reason: str) -> None:
        self.feed.closed(self)


def not_found(request: Request) -> Response:
    return Response(404, body=b"Not Found\n", content_type="text/plain; charset=utf-8")


def metrics_server(reactor: Reactor, config: ServerConfig, source: Snapshots) -> Server:
    """A server of its own for ``config.metrics_bind``: the metrics and status paths, 404 elsewhere.

    Not started; its access log is off (a scrape every few seconds would fill it).
    """
    from .registry import Server

    assert config.metrics_bind is not None
    routes = MetricsRoutes(not_found, reactor, source, metrics_path=config.metrics_path or "/metrics",
                           status_path=config.status_path)
    return Server(routes, reactor, ServerConfig(binds=(config.metrics_bind,), access_log=False,
                                                server_header=config.server_header))
