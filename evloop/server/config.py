"""What a server is told: ``ServerConfig``, every limit and timeout with its default."""

from __future__ import annotations

import dataclasses
import socket
import ssl
from collections.abc import Callable

from ..binds import Bind
from ..http import Limits
from ..listener import ACCEPT_BATCH

__all__ = ["ServerConfig", "LINGER_S", "LINGER_TOTAL_S"]

# After an error response, the client's bytes are drained before closing (a
# lingering close), so that its unread bytes do not make the close a reset
# that destroys the response before the client reads it.  The drain ends
# LINGER_S after the last bytes came (nginx's lingering_timeout) or
# LINGER_TOTAL_S after the response (nginx's lingering_time), whichever is
# first: a client still sending a large upload over a slow link reads its
# 413 or 500, one that sends for ever is cut off.
LINGER_S = 2.0
LINGER_TOTAL_S = 30.0


@dataclasses.dataclass
class ServerConfig:
    """Settings of an HTTP server; every limit and timeout has a default.

    Times are in seconds.  ``limits`` holds the parser's size limits
    (request line, head, header count, body).
    """

    host: str | None = "127.0.0.1"
    port: int = 8080
    uds: str | None = None
    sock: socket.socket | None = None
    # Where to listen, when given: every one of these (evloop.binds), and
    # host/port, uds and sock are ignored.  See listen_binds().
    binds: tuple[Bind, ...] = ()
    # A Unix socket's permissions and group, set before it listens (None: the
    # umask's and the process's), so that a proxy running as another user can connect.
    uds_mode: int | None = None
    uds_group: str | None = None
    backlog: int = 1024
    reuse_port: bool = False
    # TCP connections are accepted once their first bytes arrive (evloop.listener.listen's deferred_accept):
    # HTTP's client speaks first.
    deferred_accept: bool = True
    # Accepts per readiness event.  Workers sharing one listening socket take
    # one at a time, so that one about to block holds no others back.
    accept_batch: int = ACCEPT_BATCH
    limits: Limits = dataclasses.field(default_factory=Limits)
    # A request body longer than this goes to an unnamed temporary file as it
    # arrives (in tmp_dir; None: tempfile's default, $TMPDIR or /tmp), so
    # memory stays bounded whatever limits.max_body_bytes allows; see bodies.py.
    body_spool_bytes: int = 1 << 20
    tmp_dir: str | None = None
    header_timeout_s: float = 10.0
    keepalive_timeout_s: float = 5.0
    body_timeout_s: float = 30.0
    send_timeout_s: float = 30.0
    # How long a handler may hold a request without answering (it returned
    # None and has not called respond()): then 503.  0 turns it off.
    handler_timeout_s: float = 60.0
    graceful_timeout_s: float = 30.0
    max_connections: int | None = None
    access_log: bool = True
    # The access log's line: None, Common Log Format and the duration; "json",
    # one JSON object; else gunicorn's atoms (evloop.logline.compile_access_format).
    access_log_format: str | None = None
    server_header: str | None = "evloop"  # None or "": no Server field
    date_header: bool = True  # False: no Date field (RFC 9110 6.6.1 allows it without a clock)
    write_high_water: int = 64 * 1024
    debug_log_heads: bool = False
    # Behind a load balancer: read Forwarded / X-Forwarded-For / -Proto from
    # these peers (addresses, CIDR ranges, "*", "unix:"); see evloop.proxy.
    proxy_headers: bool = False
    forwarded_allow_ips: str = "127.0.0.1"
    # --proxy-protocol: peers in forwarded_allow_ips must open with a PROXY
    # protocol header (v1 or v2) within header_timeout_s, and its client
    # address is the connection's; other peers are served as they are and
    # may not send one (see evloop.net.proxy_protocol).
    proxy_protocol: bool = False
    # HTTPS (see evloop.server.tls): a certificate chain (and its key, when
    # not in the same file) turns TLS on.  cert_reqs: "none", "optional" or
    # "required" client certificates, verified against ca_certs.
    # tls_min_version: "1.2" or "1.3".  sni_certs: server name -> (certfile,
    # keyfile) served instead of the default to clients that ask for it.
    certfile: str | None = None
    keyfile: str | None = None
    keyfile_password: str | None = None
    ca_certs: str | None = None
    cert_reqs: str = "none"
    ciphers: str | None = None
    tls_min_version: str = "1.2"
    sni_certs: dict[str, tuple[str, str | None]] = dataclasses.field(default_factory=dict)
    # A ready server context instead of the files (the library API; not reloaded).
    ssl_context: ssl.SSLContext | None = None
    # sni_callback(server_name) -> the context for that name, or None for the default.
    sni_callback: Callable[[str | None], ssl.SSLContext | None] | None = None
    # WebSocket (server/ws.py): uvicorn's names and defaults where it has them.
    ws_max_message_bytes: int = 16 * 1024 * 1024  # --ws-max-size: a longer message (inflated) closes with 1009
    ws_ping_interval_s: float = 20.0  # --ws-ping-interval: a Ping this long after the last; 0: none
    # --ws-ping-timeout: the Pong (and the peer's answer to our Close) must come within this; else closed
    ws_ping_timeout_s: float = 20.0
    ws_idle_timeout_s: float = 0.0  # --ws-idle-timeout: closed (1000) after this long without a message; 0: never
    # --ws-max-queue: bytes a connection may have waiting to be sent; past it the
    # app ignored backpressure and the connection is aborted.  Above a whole
    # message, so that one echoed message of ws_max_message_bytes fits.
    ws_max_queue_bytes: int = 32 * 1024 * 1024
    ws_per_message_deflate: bool = True  # --ws-per-message-deflate: accept permessage-deflate (RFC 7692)

    # Metrics (evloop.server.metrics): the Prometheus text at this path, and
    # the live status page (and its WebSocket) at status_path; None: not
    # served.  metrics_bind: serve both on this address only, not on the
    # main binds (with workers, the supervisor serves it).
    metrics_path: str | None = None
    status_path: str | None = None
    metrics_bind: Bind | None = None

    @property
    def serves_https(self) -> bool:
        """A certificate (or a context) makes every bind HTTPS."""
        return self.certfile is not None or self.ssl_context is not None

    def listen_binds(self) -> tuple[Bind, ...]:
        """The addresses to listen on: ``binds``, else ``sock``, else ``uds``, else ``host``/``port``."""
        if self.binds:
            return self.binds
        if self.sock is not None:
            return (Bind.of_socket(self.sock),)
        if self.uds is not None:
            return (Bind.unix(self.uds),)
        return (Bind.tcp(self.host, self.port),)
