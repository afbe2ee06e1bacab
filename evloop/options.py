"""Every option of ``evloop-demo``, once: the table behind its command line, environment and file.

One ``Option`` per setting (see ``evloop.cli``), in the order ``--help``
and ``--print-config`` show them, grouped.  Defaults come from
``ServerConfig`` and ``Limits`` where the server has them, so the two cannot
drift.  To add an option, add an entry here: with ``field=`` it reaches
``ServerConfig`` by itself; otherwise read ``settings.<dest>`` in
``evloop.demo``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .binds import check_host, parse_bind
from .cli import (
    Option,
    at_least_one,
    boolean,
    choice,
    integer,
    octal_mode,
    off_or_positive,
    port_number,
    positive,
    seconds,
    text,
)
from .http import Limits
from .http.grammar import field_value_problem
from .logline import compile_access_format
from .server.config import ServerConfig
from .server.tls import CERT_REQS, TLS_VERSIONS

__all__ = ["OPTIONS", "GROUP_HELP"]

_server = ServerConfig()
_limits = Limits()

# The groups, in --help's order.
CONFIGURATION = "configuration"
BINDING = "binding"
TLS = "TLS (a certificate turns HTTPS on; SIGHUP reloads the files)"
HTTP = "HTTP limits and headers"
TIMEOUTS = "timeouts (seconds)"
WEBSOCKET = "WebSocket"
WORKERS = "workers"
LOGGING = "logging"
PROXY = "proxy"
METRICS = "metrics and status page"
STATIC = "static files"
APPLICATION = "application (WSGI and evloop apps)"
GROUP_HELP = {
    APPLICATION: "MODULE means MODULE:application, else MODULE:app; MODULE:NAME, MODULE:NAME.ATTR, "
                 "MODULE:FACTORY() and MODULE:FACTORY('literal', debug=True) work too, with the current "
                 "directory first on sys.path",
}


T = TypeVar("T")


def _optional(parse: Callable[[Any], T]) -> Callable[[Any], T | None]:
    """``parse``, with an empty value read as "not set" (``EVLOOP_CERTFILE=`` unsets a file's value)."""
    def read(raw: Any) -> T | None:
        return None if raw == "" else parse(raw)
    return read


def _backlog_problem(value: int) -> str | None:
    # listen(2) takes a C int; the kernel caps it at net.core.somaxconn anyway.
    return positive(value) or (None if value < 2**31 else f"must be below 2**31, got {value}")


def _trusted_proxies_problem(value: str) -> str | None:
    from .proxy import TrustedProxies

    try:
        TrustedProxies(value)
    except ValueError as exc:
        return str(exc).removeprefix("--forwarded-allow-ips: ")  # the error names the option already
    return None


def _host(raw: Any) -> str:
    return check_host(text(raw))


def _access_log_target(raw: Any) -> bool | str:
    """``--access-log``'s value: on or off (``true``, ``off``...), ``-`` for stderr, else a file to append to."""
    if isinstance(raw, bool):
        return raw
    value = text(raw).strip()
    if not value:
        raise ValueError("expected true, false, '-' (stderr) or a file name")
    if value == "-":
        return True
    try:
        return boolean(value)
    except ValueError:
        return value


def _access_format_problem(fmt: str) -> str | None:
    try:
        compile_access_format(fmt)
    except ValueError as exc:
        return str(exc).removeprefix("--access-log-format: ")
    return None


def _url_path(raw: Any) -> str:
    path = text(raw)
    if not path.startswith("/") or any(c in path for c in "?# "):
        raise ValueError(f"expected a URL path starting with '/', got {path!r}")
    return path


OPTIONS: tuple[Option, ...] = (
    # ------------------------------------------------------------ configuration
    Option("config", _optional(text), None, "read settings from this TOML file (NAME = value, as in --print-config)",
           CONFIGURATION, metavar="FILE"),
    Option("print-config", boolean, False, "print the settings in effect, and where each came from, as TOML; "
           "then exit", CONFIGURATION, flag=True, cli_only=True),
    # ------------------------------------------------------------------ binding
    Option("host", _host, _server.host, "address or host name to listen on, with --port ('' or 0.0.0.0: every "
           "IPv4 interface, :: every IPv6 one)", BINDING),
    Option("port", integer, _server.port, "port to listen on, with --host; 0 picks a free one", BINDING,
           check=port_number),
    Option("bind", parse_bind, [], "listen on ADDRESS instead of --host/--port: HOST:PORT, [IPv6]:PORT, unix:PATH "
           "or fd://N (IPv4 and IPv6 together: --bind 0.0.0.0:8080 --bind [::]:8080)", BINDING, metavar="ADDRESS",
           repeatable=True),
    Option("uds", _optional(text), None, "listen on this Unix domain socket (as --bind unix:PATH)", BINDING,
           metavar="PATH"),
    Option("uds-mode", _optional(octal_mode), None, "permissions of the Unix sockets, in octal (0660: the group "
           "may connect)", BINDING, metavar="MODE", default_text="the umask's", show="0o{:03o}".format,
           field="uds_mode"),
    Option("uds-group", _optional(text), None, "group of the Unix sockets (a name or a number)", BINDING,
           metavar="GROUP", default_text="the process's", field="uds_group"),
    Option("fd", _optional(integer), None, "serve this already-open listening socket (as --bind fd://N); systemd's "
           "LISTEN_FDS are served when no address is given", BINDING, metavar="N", check=off_or_positive),
    Option("backlog", integer, _server.backlog, "connections the kernel queues before they are accepted", BINDING,
           metavar="N", check=_backlog_problem, field="backlog"),
    Option("deferred-accept", boolean, _server.deferred_accept, "accept a TCP connection once its first bytes "
           "arrive, or after a second (Linux TCP_DEFER_ACCEPT, as nginx's listen ... deferred)", BINDING, flag=True,
           field="deferred_accept"),
    # --------------------------------------------------------------------- TLS
    Option("certfile", _optional(text), None, "the server's certificate chain (and key, if in the same file)", TLS,
           metavar="PEM", field="certfile"),
    Option("keyfile", _optional(text), None, "the certificate's private key", TLS, metavar="PEM", field="keyfile"),
    Option("keyfile-password", _optional(text), None, "the password of an encrypted --keyfile", TLS,
           metavar="PASSWORD", secret=True, field="keyfile_password"),
    Option("ca-certs", _optional(text), None, "CA certificates that client certificates are verified against", TLS,
           metavar="PEM", field="ca_certs"),
    Option("cert-reqs", choice(*sorted(CERT_REQS)), _server.cert_reqs, "client certificates: none, optional "
           "(verified when sent) or required", TLS, metavar="|".join(sorted(CERT_REQS)), field="cert_reqs"),
    Option("ciphers", _optional(text), None, "OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are fixed)", TLS,
           metavar="LIST", default_text="OpenSSL's", field="ciphers"),
    Option("tls-min-version", choice(*sorted(TLS_VERSIONS)), _server.tls_min_version, "the oldest TLS version "
           "accepted", TLS, metavar="|".join(sorted(TLS_VERSIONS)), field="tls_min_version"),
    Option("cert", text, [], "serve this certificate to clients asking for NAME (SNI)", TLS,
           metavar="NAME=CERTFILE[,KEYFILE]", repeatable=True),
    # ------------------------------------------------------------------- HTTP
    Option("max-body-bytes", integer, _limits.max_body_bytes, "longest request body; longer ones get 413. Bodies "
           "past --body-spool-bytes go to a temporary file, so this bounds disk, not memory (1 GiB, as waitress; "
           "nginx: 1 MiB; gunicorn: no limit)", HTTP, metavar="BYTES", check=positive, field="limits.max_body_bytes"),
    Option("body-spool-bytes", integer, _server.body_spool_bytes, "a request body longer than this goes to a "
           "temporary file as it arrives (1 MiB); 0: every body", HTTP, metavar="BYTES", check=off_or_positive,
           field="body_spool_bytes"),
    Option("tmp-dir", _optional(text), None, "where spooled request bodies go, as unnamed files", HTTP,
           metavar="DIR", default_text="$TMPDIR, else /tmp", field="tmp_dir"),
    Option("max-head-bytes", integer, _limits.max_head_bytes, "longest request head; longer ones get 431", HTTP,
           metavar="BYTES", check=positive, field="limits.max_head_bytes"),
    Option("max-request-line-bytes", integer, _limits.max_request_line_bytes, "longest request line; longer ones "
           "get 414", HTTP, metavar="BYTES", check=positive, field="limits.max_request_line_bytes"),
    Option("max-header-count", integer, _limits.max_header_count, "most header fields in a request; more get 431",
           HTTP, metavar="N", check=positive, field="limits.max_header_count"),
    Option("max-connections", _optional(integer), None, "connections open at once; past it accepting pauses and "
           "new clients wait in the backlog", HTTP, metavar="N", check=positive, default_text="no limit",
           field="max_connections"),
    Option("server-header", text, _server.server_header, "the value of the Server field of every response", HTTP,
           metavar="VALUE", off_flag="--no-server-header", off_value="", off_help="send no Server field",
           check=field_value_problem, field="server_header"),
    Option("date-header", boolean, True, "send a Date field with every response", HTTP, flag=True,
           field="date_header"),
    # --------------------------------------------------------------- timeouts
    Option("header-timeout", seconds, _server.header_timeout_s, "a request head (and a TLS handshake) must arrive "
           "within this", TIMEOUTS, metavar="S", check=positive, field="header_timeout_s"),
    Option("keepalive-timeout", seconds, _server.keepalive_timeout_s, "close a kept-alive connection idle this long",
           TIMEOUTS, metavar="S", check=positive, field="keepalive_timeout_s"),
    Option("body-timeout", seconds, _server.body_timeout_s, "close a connection whose request body stalls this long",
           TIMEOUTS, metavar="S", check=positive, field="body_timeout_s"),
    Option("send-timeout", seconds, _server.send_timeout_s, "close a connection that reads none of our response "
           "for this long", TIMEOUTS, metavar="S", check=positive, field="send_timeout_s"),
    Option("handler-timeout", seconds, _server.handler_timeout_s, "answer 503 when a handler holds a request this "
           "long without responding; 0: never", TIMEOUTS, metavar="S", check=off_or_positive,
           field="handler_timeout_s"),
    Option("graceful-timeout", seconds, _server.graceful_timeout_s, "on SIGTERM, wait this long for requests in "
           "flight, then close what is left", TIMEOUTS, metavar="S", check=positive, field="graceful_timeout_s"),
    # -------------------------------------------------------------- WebSocket
    Option("ws-max-size", integer, _server.ws_max_message_bytes, "longest WebSocket message (after inflating); "
           "longer ones close with 1009", WEBSOCKET, metavar="BYTES", check=positive, field="ws_max_message_bytes"),
    Option("ws-ping-interval", seconds, _server.ws_ping_interval_s, "send a WebSocket Ping this often; 0: never",
           WEBSOCKET, metavar="S", check=off_or_positive, field="ws_ping_interval_s"),
    Option("ws-ping-timeout", seconds, _server.ws_ping_timeout_s, "close a WebSocket whose Pong (or answer to our "
           "Close) takes longer", WEBSOCKET, metavar="S", check=positive, field="ws_ping_timeout_s"),
    Option("ws-idle-timeout", seconds, _server.ws_idle_timeout_s, "close a WebSocket without a message for this "
           "long; 0: never", WEBSOCKET, metavar="S", check=off_or_positive, field="ws_idle_timeout_s"),
    Option("ws-max-queue", integer, _server.ws_max_queue_bytes, "abort a WebSocket with more than this waiting to "
           "be sent", WEBSOCKET, metavar="BYTES", check=positive, field="ws_max_queue_bytes"),
    Option("ws-per-message-deflate", boolean, _server.ws_per_message_deflate, "accept permessage-deflate "
           "compression", WEBSOCKET, metavar="true|false", field="ws_per_message_deflate",
           default_text="true" if _server.ws_per_message_deflate else "false"),
    # ---------------------------------------------------------------- workers
    Option("workers", integer, 1, "worker processes, each with its own reactor; 1: no supervisor", WORKERS,
           metavar="N", check=at_least_one),
    Option("balance", _optional(choice("shared", "reuseport")), None, "how workers share new connections: "
           "'shared', one listening socket from which only idle workers accept; 'reuseport', a SO_REUSEPORT "
           "socket per worker, spread evenly by the kernel, busy or not", WORKERS, metavar="shared|reuseport",
           default_text="shared with --wsgi, whose handlers block; else reuseport"),
    Option("max-requests", integer, 0, "replace a worker after about N requests; 0: never", WORKERS, metavar="N",
           check=off_or_positive),
    Option("max-requests-jitter", integer, 0, "add 0..J to --max-requests per worker, so workers do not all "
           "restart at once", WORKERS, metavar="J", check=off_or_positive),
    Option("worker-timeout", seconds, 30.0, "with a supervisor: kill and replace a worker whose loop has not turned "
           "for this long (a handler blocked), its stack written to stderr first; 0: never", WORKERS, metavar="S",
           check=off_or_positive),
    # ---------------------------------------------------------------- logging
    Option("log-level", choice("critical", "error", "warning", "info", "debug"), "info", "the server log's level "
           "(any case)", LOGGING, metavar="LEVEL"),
    Option("log-format", choice("text", "json"), "text", "the server and access logs' lines: text, or one JSON "
           "object a line (for log shippers)", LOGGING, metavar="text|json"),
    Option("log-config", _optional(text), None, "configure logging from this file instead (logging.config: "
           "dictConfig for a .json file, fileConfig for INI), levels and formats included; --no-access-log and "
           "--access-log FILE still apply", LOGGING, metavar="FILE"),
    Option("access-log", _access_log_target, True, "log each request (Common Log Format and the duration, on "
           "stderr); with FILE, append the lines to FILE", LOGGING, flag=True, flag_value=True,
           metavar="FILE"),
    Option("access-log-format", _optional(text), None, "the access log's line in gunicorn's atoms: %%(h)s "
           "client, %%(t)s time, %%(r)s request line, %%(m)s %%(U)s %%(q)s %%(H)s its parts, %%(s)s status, "
           "%%(b)s bytes ('-' for 0), %%(B)s bytes, %%(f)s referer, %%(a)s user agent, %%(D)s %%(M)s %%(T)s "
           "%%(L)s duration in us, ms, s, s with decimals, %%(p)s pid, %%({NAME}i)s a request field, "
           "%%({x-request-id}i)s the request id, %%%% a percent sign", LOGGING, metavar="FORMAT",
           check=_access_format_problem, default_text="Common Log Format and the duration in seconds",
           field="access_log_format"),
    Option("slow-callback", _optional(seconds), None, "log callbacks that hold the loop longer than this", LOGGING,
           metavar="S", check=positive, default_text="off"),
    # ---------------------------------------------------------------- metrics
    Option("metrics-path", _optional(_url_path), None, "serve Prometheus metrics (text format 0.0.4) at this path, "
           "e.g. /metrics; with --workers a scrape sees every worker (series labelled worker=\"N\")", METRICS,
           metavar="PATH", default_text="off", field="metrics_path"),
    Option("status-path", _optional(_url_path), None, "serve a live status page (and its WebSocket) at this path, "
           "e.g. /status", METRICS, metavar="PATH", default_text="off", field="status_path"),
    Option("metrics-bind", _optional(parse_bind), None, "serve --metrics-path (default /metrics) and --status-path "
           "on this address only, not on the main ones (with --workers the supervisor serves it)", METRICS,
           metavar="ADDRESS", default_text="the main binds", field="metrics_bind"),
    # ------------------------------------------------------------------ proxy
    Option("proxy-headers", boolean, False, "take the client address and scheme from Forwarded / X-Forwarded-For "
           "/ X-Forwarded-Proto sent by a trusted proxy", PROXY, flag=True, field="proxy_headers"),
    Option("forwarded-allow-ips", text, _server.forwarded_allow_ips, "proxies trusted with --proxy-headers and "
           "--proxy-protocol: "
           "addresses, CIDR ranges, '*' or 'unix:', comma-separated (also read from $FORWARDED_ALLOW_IPS)", PROXY,
           metavar="LIST", env_aliases=("FORWARDED_ALLOW_IPS",), check=_trusted_proxies_problem,
           field="forwarded_allow_ips"),
    Option("proxy-protocol", boolean, False, "connections from --forwarded-allow-ips must open with a PROXY "
           "protocol header (v1 or v2, HAProxy's send-proxy / send-proxy-v2) giving the client's address; other "
           "peers are served as they are and may not send one", PROXY, flag=True, field="proxy_protocol"),
    # ----------------------------------------------------------------- static
    Option("root", _optional(text), None, "static files: served under /static/ by the demo, under --static-path in "
           "front of --wsgi or --app", STATIC, metavar="DIR", default_text="the demo's bundled folder"),
    Option("static-path", _optional(text), None, "with --wsgi or --app and --root: the URL prefix of the files",
           STATIC, metavar="PREFIX", default_text="/static"),
    Option("static-cache-control", _optional(text), None, "the Cache-Control field of static files (200, 206 and "
           "304 responses), e.g. 'public, max-age=3600'", STATIC, metavar="VALUE"),
    # ------------------------------------------------------------ application
    Option("wsgi", _optional(text), None, "serve this WSGI application instead of the demo endpoints", APPLICATION,
           metavar="MODULE:APP"),
    Option("app", _optional(text), None, "serve this evloop application (an App, or any callable taking a "
           "Request) instead of the demo endpoints", APPLICATION, metavar="MODULE:APP"),
    Option("chdir", _optional(text), None, "change to DIR before loading the application", APPLICATION,
           metavar="DIR"),
    Option("preload", boolean, False, "with workers: import the application once in the supervisor, before the fork "
           "(memory shared copy-on-write; SIGHUP then restarts the workers on the same code); by default each "
           "worker imports it, so SIGHUP brings in new code", APPLICATION, flag=True),
    Option("reload", boolean, False, "for development: restart the workers when a watched file changes (polled); "
           "code that does not load is logged and the running worker goes on serving", APPLICATION, flag=True),
    Option("reload-dir", text, [], "watch DIR instead of the current directory", APPLICATION, metavar="DIR",
           repeatable=True),
    Option("reload-include", text, [], "watch the files matching GLOB", APPLICATION, metavar="GLOB",
           repeatable=True, default_text="*.py"),
)
