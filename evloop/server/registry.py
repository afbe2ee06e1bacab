"""The server: its listeners, the registry of its connections, and graceful shutdown.

It knows no wire protocol: each accepted socket gets the protocol
``make_protocol`` builds (HTTP/1.1 today), which sees the server only
through the narrow ``ServerContext`` interface.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from ..app import Request, Response
from ..binds import BindKind, open_bind
from ..http.caches import HTTP1Caches
from ..http.grammar import field_value_problem
from ..listener import Listener, listen
from ..proxy import TrustedProxies
from ..reactor import Reactor
from .access_log import AccessLog, make_access_log
from .config import ServerConfig
from .context import HTTP1Shared, ServedConnection, app_caller
from .h1 import HTTPProtocol
from .metrics import MetricsRoutes, ServerMetrics, metrics_server
from .phases import Phase, phase_timeouts
from .proxied import ProxiedHTTPProtocol
from .tls import PLAINTEXT_REPLY, ServerTLS
from .wallclock import WallClock
from .ws import WebSocketSettings

__all__ = ["Server", "address_url"]

logger = logging.getLogger("evloop.server")


class Server:
    """Serves ``app`` on ``reactor`` with ``config``: listeners, connections, shutdown.

    Implements ``ServerContext`` for its connections.
    """

    def __init__(self, app: Callable[[Request], Response | None], reactor: Reactor, config: ServerConfig | None = None):
        self.app = app
        self.reactor = reactor
        self.config = config or ServerConfig()
        self.listeners: list[Listener] = []
        # Those on sockets this server bound itself (not inherited: fd://,
        # a socket a supervisor shares): with workers, each worker's own
        # SO_REUSEPORT sockets, whose accept queues die with them.
        self.own_listeners: list[Listener] = []
        self.connections: set[ServedConnection] = set()
        # Chosen once here, so that no response asks: the Date field's text
        # (None when off) and the Server field's value (None: left out).
        self.wall = WallClock(reactor, http_date=self.config.date_header)
        self.server_header = _server_field(self.config.server_header)
        self.h1 = HTTP1Shared(reactor, phase_timeouts(self.config))
        self.ws_settings = WebSocketSettings.from_config(self.config)
        # The HTTP/1.1 speed-ups (parsed heads, framed responses), bounded and
        # shared by this server's connections only; see evloop.http.caches.
        self.http1_caches = HTTP1Caches()
        self.access_log: AccessLog | None = make_access_log(reactor, self.wall, self.config)
        self.trusted_proxies = TrustedProxies(self.config.forwarded_allow_ips) if self.config.proxy_headers else None
        # The PROXY protocol's trusted peers, parsed here (a bad list is an
        # error at construction, before any worker forks), not in start().
        self._proxy_protocol_peers = (
            (self.trusted_proxies or TrustedProxies(self.config.forwarded_allow_ips))
            if self.config.proxy_protocol else None
        )
        self._served_by_closed = 0  # requests_served of the connections gone
        self.accepted = 0  # connections opened
        self.accept_pauses = 0  # times --max-connections paused accepting
        # --metrics-path, --status-path: the figures, and their routes in
        # front of the app (or on a server of their own at --metrics-bind).
        self.metrics: ServerMetrics | None = None
        self.metrics_server: Server | None = None
        self.serves_metrics_bind = True  # False in a group's worker: the supervisor serves it
        cfg = self.config
        if cfg.metrics_path or cfg.status_path or cfg.metrics_bind is not None:
            self.metrics = ServerMetrics(self)
            if cfg.metrics_bind is None:
                self.app = MetricsRoutes(app, reactor, self.metrics.snapshots, metrics_path=cfg.metrics_path,
                                         status_path=cfg.status_path)
        # Graceful shutdown began: close_when_idle makes each connection's next response its last.
        self.shutting_down = False
        self._shutdown_timer: Any = None
        self._on_shutdown_done: Callable[[], None] | None = None
        self._accept_paused = False
        self._limit_episode = False  # at --max-connections since the last drop below the low mark
        self.tls: ServerTLS | None = None  # built by start(): the listeners' TLS context

    @property
    def phase_timeouts(self) -> dict[Phase, float | None]:
        """Each connection phase's timeout in seconds (None: none), from the config."""
        return self.h1.timeouts

    @property
    def app(self) -> Callable[[Request], Response | None]:
        return self._app

    @app.setter
    def app(self, app: Callable[[Request], Response | None]) -> None:
        self._app = app
        self.call_app: Callable[[Request], Response | None] = app_caller(app)  # its method, bound (see there)
        self.would_accept: Callable[[str, str], bool] | None = getattr(app, "would_accept", None)
        self.streams_body: Callable[[str, str], bool] | None = getattr(app, "streams_body", None)

    # --------------------------------------------------------------- start
    def start(self) -> list[Listener]:
        """Open the listening sockets named by the config, one listener per bind; returns the listeners.

        Raises ``evloop.binds.BindError`` (an ``OSError`` naming the address)
        when one cannot be opened; ``close()`` closes those opened before it.
        """
        cfg = self.config
        self.tls = ServerTLS.of(cfg)
        options: dict[str, Any] = {
            "backlog": cfg.backlog, "transport_kwargs": {"high_water": cfg.write_high_water},
            "accept_batch": cfg.accept_batch, "deferred_accept": cfg.deferred_accept,
        }
        if self.tls is not None:
            # The header timeout covers the handshake too: a client that sends no
            # ClientHello (or half of one) costs at most that long.
            options.update(ssl=self.tls.context, ssl_handshake_timeout_s=cfg.header_timeout_s,
                           ssl_plaintext_reply=PLAINTEXT_REPLY)
        if cfg.proxy_protocol:
            # Before TLS and HTTP: the header's client address becomes the
            # transport's peername, which the access log, Request.client and
            # the proxy headers' walk (evloop.proxy) all start from.
            assert self._proxy_protocol_peers is not None
            options.update(proxy_protocol=self._proxy_protocol_peers.is_trusted_peer,
                           proxy_header_timeout_s=cfg.header_timeout_s)
        # Each connection's protocol: a closed connection's, renewed, when one is free (HTTPProtocol.for_connection).
        # A partial, not a method of the server: a Python frame less per connection.
        factory = functools.partial((ProxiedHTTPProtocol if cfg.proxy_protocol else HTTPProtocol).for_connection, self)
        for bind in cfg.listen_binds():
            sockets = open_bind(bind, reuse_port=cfg.reuse_port, uds_mode=cfg.uds_mode, uds_group=cfg.uds_group)
            unlink = bind.path if bind.kind is BindKind.UNIX else None
            listener = listen(self.reactor, factory, sockets=sockets, unlink_path=unlink, **options)
            self.listeners.append(listener)
            if bind.kind is BindKind.TCP or bind.kind is BindKind.UNIX:
                self.own_listeners.append(listener)
        if self.metrics is not None:
            self.metrics.start()
            if cfg.metrics_bind is not None and self.serves_metrics_bind:
                self.metrics_server = metrics_server(self.reactor, cfg, self.metrics.snapshots)
                self.metrics_server.start()
                for url in self.metrics_server.urls:
                    logger.info("metrics and status on %s", url)
        return self.listeners

    @property
    def urls(self) -> list[str]:
        scheme = "http" if self.tls is None else "https"
        return [address_url(addr, scheme) for listener in self.listeners for addr in listener.addresses]

    def reload_tls(self) -> bool:
        """Load the certificates again (SIGHUP): new connections get them, open ones keep theirs.

        Returns whether the new ones are served; a certificate or key that
        does not load is logged and the old ones stay.
        """
        if self.tls is None or not self.tls.reload():
            return False
        for listener in self.listeners:
            if listener.tls is not None:
                listener.tls.context = self.tls.context
        return True

    # ------------------------------------------------- connection accounting
    def connection_opened(self, protocol: ServedConnection) -> None:
        self.connections.add(protocol)
        self.accepted += 1
        if self.shutting_down:
            # Accepted before the listeners closed, made only now (a TLS
            # handshake finishing during the drain): its first response is its last.
            protocol.close_when_idle()
            return
        limit = self.config.max_connections
        if limit is not None and len(self.connections) >= limit and not self._accept_paused:
            self._accept_paused = True
            self.accept_pauses += 1
            if not self._limit_episode:
                self._limit_episode = True
                logger.warning("%d connections open (--max-connections): pausing accepts; "
                               "the kernel's backlog holds new clients", len(self.connections))
            for listener in self.listeners:
                listener.pause_accepting()

    @property
    def requests_served(self) -> int:
        """Responses completed by this server (its connections count their own)."""
        return self._served_by_closed + sum(protocol.requests_served for protocol in self.connections)

    def connection_switched(self, old: ServedConnection, new: ServedConnection) -> None:
        """An upgrade: ``new`` (WebSocket) holds the connection ``old`` (HTTP/1.1) had; the count stays."""
        if old in self.connections:
            self.connections.discard(old)
            self._served_by_closed += old.requests_served
            self.connections.add(new)
            if self.metrics is not None:
                self.metrics.counts.websockets_opened += 1

    def connection_closed(self, protocol: ServedConnection) -> None:
        connections = self.connections
        if protocol in connections:
            connections.discard(protocol)
            self._served_by_closed += protocol.requests_served
        if not (self._accept_paused or self._limit_episode or self.shutting_down):
            return  # the usual close: no limit reached, no shutdown
        limit = self.config.max_connections or 0
        if self._accept_paused and len(connections) < limit:
            # Accept again at once (clients wait in the backlog), but a server
            # hovering at the limit pauses and resumes with every connection:
            # the episode, and its one log line, end only below 3/4 of the
            # limit (a low water mark, as for the write buffer).
            self._accept_paused = False
            for listener in self.listeners:
                listener.resume_accepting()
        if self._limit_episode and len(connections) <= limit * 3 // 4:
            self._limit_episode = False
            logger.info("%d connections open, below --max-connections again", len(connections))
        if self.shutting_down and not connections:
            self._finish_shutdown()

    # ------------------------------------------------------------ shutdown
    def shutdown(self, on_done: Callable[[], None] | None = None, *, graceful: bool = True) -> None:
        """Stop accepting, close idle connections, let requests in flight finish, send WebSockets Close 1001.

        ``on_done()`` is called when every connection is gone, or after
        ``graceful_timeout_s`` when the rest are closed by force.  With
        ``graceful=False`` every connection is aborted at once.
        """
        if on_done is not None:
            self._on_shutdown_done = on_done
        if not self.shutting_down:
            self.shutting_down = True
            self._stop_metrics()
            for listener in self.listeners:
                listener.close()
            self._shutdown_timer = self.reactor.call_later(self.config.graceful_timeout_s, self._shutdown_expired)
            for protocol in list(self.connections):
                protocol.close_when_idle()
        if not graceful:
            for protocol in list(self.connections):
                protocol.abort()
        if not self.connections:
            self._finish_shutdown()

    def _shutdown_expired(self) -> None:
        self._shutdown_timer = None
        if self.connections:
            logger.warning("graceful timeout: closing %d connections still open", len(self.connections))
        for protocol in list(self.connections):
            protocol.abort()
        self._finish_shutdown()

    def _finish_shutdown(self) -> None:
        if self._shutdown_timer is not None:
            self._shutdown_timer.cancel()
            self._shutdown_timer = None
        if self.access_log is not None:
            self.access_log.flush()
        on_done, self._on_shutdown_done = self._on_shutdown_done, None
        if on_done is not None:
            self.reactor.call_soon(on_done)

    def close(self) -> None:
        """Close the listeners, abort every connection now, and write the access log's last lines.

        The sockets are closed by ``connection_lost`` callbacks on the next
        pass of the reactor: run one (``reactor.run_once(0)``) before closing it.
        """
        if self._shutdown_timer is not None:
            self._shutdown_timer.cancel()
            self._shutdown_timer = None
        self._stop_metrics()
        for listener in self.listeners:
            listener.close()
        for protocol in list(self.connections):
            protocol.abort()
        self.wall.stop()
        self.h1.close()  # the aborted connections' deadlines: their connection_lost comes next pass
        if self.access_log is not None:
            self.access_log.close()
            self.access_log = None  # nothing more is logged


    def _stop_metrics(self) -> None:
        """The sampling stops, and the metrics server closes (its scrapes and status pages are not drained)."""
        if self.metrics is not None:
            self.metrics.stop()
        if self.metrics_server is not None:
            self.metrics_server.close()


def address_url(addr: Any, scheme: str = "http") -> str:
    """The URL of a listening socket address: ``http://host:port``, ``http://[v6]:port`` or ``unix:path``."""
    if isinstance(addr, str):
        return f"unix:{addr}"
    if ":" in addr[0]:
        return f"{scheme}://[{addr[0]}]:{addr[1]}"
    return f"{scheme}://{addr[0]}:{addr[1]}"


def _server_field(value: str | None) -> bytes | None:
    """``ServerConfig.server_header`` as it goes out (None: no Server field); ValueError for a value that cannot."""
    if not value:
        return None
    problem = field_value_problem(value)
    if problem is not None:
        raise ValueError(f"server_header {problem}")
    return value.encode("latin-1")
