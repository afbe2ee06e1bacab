"""``evloop-demo``: a ready HTTP server with the demo endpoints, static files and WSGI apps.

The endpoints are a fixed contract (load tests and benchmarks talk to them):

=====================  ========================================================
``GET /``              200 ``text/plain`` ``Hello, World!``
``POST|PUT /echo``     the request body, with the request's Content-Type
``* /inspect``         JSON: method, path, query, version, scheme, headers, body_length, body_sha256
``GET /bytes/N``       exactly N bytes (N <= 1 GiB), streamed with a Content-Length
``GET /stream/N``      N chunks ``chunk i\\n`` (chunked; close-delimited for HTTP/1.0)
``GET /delay/MS``      ``delayed`` after MS milliseconds, through a reactor timer
``GET /healthz``       ``ok``
``GET /static/<path>`` files under ``--root``
``WS /ws/echo``        WebSocket: each text message back as the same text, each binary one as the same bytes
``WS /ws/chat``        WebSocket: each text message to every member; a plain GET gets the chat page
=====================  ========================================================

With ``--wsgi module:app`` the WSGI application serves every path instead;
with ``--app module:app``, an evloop application (an ``App``) does.  Both
are found as gunicorn finds them (``evloop.loading``: the current directory
first on ``sys.path``, ``module``, ``module:name``, ``module:factory(...)``),
and with ``--root DIR`` the files under ``DIR`` are served under
``--static-path`` (``/static``) in front of them.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import ssl
import sys
from collections.abc import Callable, Iterator
from typing import Any

from .app import App, FileBody, Request, Response, SpooledRequest
from .http import Limits
from .loading import AppLoader, AppLoadError, load_object, put_cwd_first
from .server import ServerConfig, install_access_handler
from .server.tls import CERT_REQS, TLS_VERSIONS
from .static import StaticFiles, StaticMount
from .websocket import WebSocketHandler, broadcast
from .workers import SourceWatcher, current_worker, serve, systemd_sockets

__all__ = ["make_app", "main", "build_parser", "load_object"]

logger = logging.getLogger("evloop.demo")

MAX_BYTES = 1 << 30          # /bytes/N: 1 GiB
MAX_STREAM_CHUNKS = 1_000_000
MAX_DELAY_MS = 60_000
_BLOCK = b"x" * 65536        # /bytes/N is N times b"x", sent 64 KiB at a time
_BUNDLED_ROOT = os.path.join(os.path.dirname(__file__), "demo_root")

_TEXT = "text/plain; charset=utf-8"


def _number(text: str, name: str, maximum: int) -> int | Response:
    """A path number: ASCII digits only, at most ``maximum``; else a 400 response saying why."""
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        return Response(400, body=f"{name} must be a non-negative integer, got {text!r}\n", content_type=_TEXT)
    value = int(text)
    if value > maximum:
        return Response(400, body=f"{name} must be at most {maximum}, got {value}\n", content_type=_TEXT)
    return value


def _bytes_body(n: int) -> Iterator[bytes]:
    full, rest = divmod(n, len(_BLOCK))
    for _ in range(full):
        yield _BLOCK
    if rest:
        yield _BLOCK[:rest]


def _stream_body(n: int) -> Iterator[bytes]:
    for i in range(n):
        yield b"chunk %d\n" % i


def make_app(root: str | None = None) -> App:
    """The demo application, serving static files from ``root`` (the bundled folder by default)."""
    app = App()
    # Built once: these responses never change, and the server does not mutate them.
    hello = Response(200, body=b"Hello, World!", content_type="text/plain")
    healthz = Response(200, body=b"ok", content_type="text/plain")

    @app.route("/", methods=["GET"])
    def index(request: Request) -> Response:
        return hello

    @app.route("/healthz", methods=["GET"])
    def health(request: Request) -> Response:
        return healthz

    @app.route("/echo", methods=["POST", "PUT"])
    def echo(request: Request) -> Response:
        content_type = request.headers.get("content-type") or "application/octet-stream"
        # A spooled body goes back from its file with sendfile, never whole in memory.  (``type() is``:
        # the cheapest test on CPython 3.11; request.spooled and isinstance() look attributes up.)
        body = FileBody(request.stream) if type(request) is SpooledRequest else request.body
        return Response(200, body=body, content_type=content_type)

    @app.route("/inspect", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    def inspect(request: Request) -> Response:
        digest = hashlib.sha256()
        for block in iter(lambda: request.stream.read(1 << 16), b""):
            digest.update(block)
        return Response.json({
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "version": request.version,
            "scheme": request.scheme,
            "headers": [[name, value] for name, value in request.headers],
            "body_length": request.body_length,
            "body_sha256": digest.hexdigest(),
            **({"worker": worker} if (worker := current_worker()) is not None else {}),
        })

    @app.route("/bytes/{n}", methods=["GET"])
    def bytes_(request: Request, n: str) -> Response:
        count = _number(n, "N", MAX_BYTES)
        if isinstance(count, Response):
            return count
        return Response(200, [("Content-Length", str(count))], _bytes_body(count),
                        content_type="application/octet-stream")

    @app.route("/stream/{n}", methods=["GET"])
    def stream(request: Request, n: str) -> Response:
        count = _number(n, "N", MAX_STREAM_CHUNKS)
        if isinstance(count, Response):
            return count
        return Response(200, None, _stream_body(count), content_type=_TEXT)

    @app.route("/delay/{ms}", methods=["GET"])
    def delay(request: Request, ms: str) -> None | Response:
        millis = _number(ms, "MS", MAX_DELAY_MS)
        if isinstance(millis, Response):
            return millis
        response = Response(200, body=b"delayed", content_type="text/plain")
        request.reactor.call_later(millis / 1000.0, request.respond, response)
        return None

    _add_websocket_routes(app)
    static = StaticFiles(root or _BUNDLED_ROOT)
    app.add_route("/static/{path:path}", static, ["GET", "HEAD"])
    app.add_route("/static", lambda request: Response(301, [("Location", "/static/")], b""), ["GET", "HEAD"])
    return app


def _add_websocket_routes(app: App) -> None:
    """``/ws/echo`` and ``/ws/chat`` (a plain GET of the chat gets its page)."""
    @app.websocket("/ws/echo")
    class Echo(WebSocketHandler):
        __slots__ = ()

        def message_received(self, message: str | bytes) -> None:
            self.send(message)

    members: set[WebSocketHandler] = set()
    chat_page = os.path.join(_BUNDLED_ROOT, "chat.html")

    def chat_page_response(request: Request) -> Response:
        return Response(200, body=FileBody(open(chat_page, "rb")), content_type="text/html; charset=utf-8")

    @app.websocket("/ws/chat", plain=chat_page_response)
    class Chat(WebSocketHandler):
        __slots__ = ()

        def opened(self) -> None:
            members.add(self)

        def message_received(self, message: str | bytes) -> None:
            if isinstance(message, str):
                broadcast(members, message)  # framed once for the whole room

        def closed(self, code: int, reason: str) -> None:
            members.discard(self)


def build_parser() -> argparse.ArgumentParser:
    defaults = ServerConfig()
    limits = Limits()
    p = argparse.ArgumentParser(prog="evloop-demo", description="Run the evloop demo HTTP server.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="port to bind; 0 picks a free one (default: %(default)s)")
    p.add_argument("--uds", metavar="PATH", help="bind a Unix domain socket instead of host/port")
    p.add_argument("--fd", type=int, help="serve an already-open listening socket with this file descriptor")
    p.add_argument("--root", metavar="DIR", help="static files served under /static/ (default: a bundled folder)")
    p.add_argument("--wsgi", metavar="MODULE:APP", help="serve this WSGI application instead of the demo endpoints")
    p.add_argument("--app", metavar="MODULE:APP",
                   help="serve this evloop application (an App, or any callable taking a Request) instead of the "
                        "demo endpoints")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--no-access-log", action="store_true", help="do not log each request")
    p.add_argument("--backlog", type=int, default=defaults.backlog)
    p.add_argument("--max-body-bytes", type=int, default=limits.max_body_bytes, metavar="BYTES",
                   help="longest request body; longer ones get 413. Bodies past --body-spool-bytes go to a "
                        "temporary file, so this bounds disk, not memory (default: %(default)s, 1 GiB, as "
                        "waitress; nginx: 1 MiB; gunicorn: no limit)")
    p.add_argument("--body-spool-bytes", type=int, default=defaults.body_spool_bytes, metavar="BYTES",
                   help="a request body longer than this is written to a temporary file as it arrives "
                        "(default: %(default)s, 1 MiB)")
    p.add_argument("--tmp-dir", metavar="DIR", default=defaults.tmp_dir,
                   help="where spooled request bodies go, as unnamed files (default: $TMPDIR, else /tmp)")
    p.add_argument("--max-head-bytes", type=int, default=limits.max_head_bytes)
    p.add_argument("--max-request-line-bytes", type=int, default=limits.max_request_line_bytes)
    p.add_argument("--max-header-count", type=int, default=limits.max_header_count)
    p.add_argument("--header-timeout", type=float, default=defaults.header_timeout_s, metavar="S")
    p.add_argument("--keepalive-timeout", type=float, default=defaults.keepalive_timeout_s, metavar="S")
    p.add_argument("--body-timeout", type=float, default=defaults.body_timeout_s, metavar="S")
    p.add_argument("--send-timeout", type=float, default=defaults.send_timeout_s, metavar="S")
    p.add_argument("--handler-timeout", type=float, default=defaults.handler_timeout_s, metavar="S",
                   help="answer 503 when a handler holds a request this long without responding; 0: never "
                        "(default: %(default)s)")
    p.add_argument("--graceful-timeout", type=float, default=defaults.graceful_timeout_s, metavar="S")
    p.add_argument("--max-connections", type=int, default=None)
    p.add_argument("--slow-callback", type=float, default=None, metavar="S",
                   help="log callbacks that hold the loop longer than this")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="worker processes, each with its own reactor (default: %(default)s, no supervisor)")
    p.add_argument("--max-requests", type=int, default=0, metavar="N",
                   help="replace a worker after about N requests (0: never)")
    p.add_argument("--max-requests-jitter", type=int, default=0, metavar="J",
                   help="add 0..J to --max-requests per worker, so workers do not all restart at once")
    p.add_argument("--worker-timeout", type=float, default=30.0, metavar="S",
                   help="with a supervisor (--workers above 1 or --max-requests): a worker whose loop has not "
                        "turned for S seconds (a handler blocked) is killed and replaced, its stack written to "
                        "stderr first; 0: never (default: %(default)s)")
    p.add_argument("--balance", choices=["shared", "reuseport"], default=None,
                   help="how workers share new connections: 'shared', one listening socket from which only "
                        "idle workers accept (the default with --wsgi, whose handlers block); 'reuseport', a "
                        "SO_REUSEPORT socket per worker, spread evenly by the kernel, busy or not (the default "
                        "otherwise)")
    p.add_argument("--proxy-headers", action="store_true",
                   help="take the client address and scheme from Forwarded / X-Forwarded-For / "
                        "X-Forwarded-Proto sent by a trusted proxy")
    p.add_argument("--forwarded-allow-ips", default=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
                   metavar="LIST",
                   help="proxies trusted with --proxy-headers: addresses, CIDR ranges, '*' or 'unix:', "
                        "comma-separated (default: $FORWARDED_ALLOW_IPS or %(default)s)")
    _add_tls_options(p, defaults)
    _add_websocket_options(p, defaults)
    return _with_loading_options(p)


def _add_tls_options(p: argparse.ArgumentParser, defaults: ServerConfig) -> None:
    tls = p.add_argument_group("HTTPS", "a certificate turns TLS on; SIGHUP reloads the files")
    tls.add_argument("--certfile", metavar="PEM", help="the server's certificate chain (and key, if in the same file)")
    tls.add_argument("--keyfile", metavar="PEM", help="the certificate's private key")
    tls.add_argument("--keyfile-password", metavar="PASSWORD", help="the password of an encrypted --keyfile")
    tls.add_argument("--ca-certs", metavar="PEM", help="CA certificates that client certificates are verified against")
    tls.add_argument("--cert-reqs", choices=sorted(CERT_REQS), default=defaults.cert_reqs,
                     help="client certificates: none, optional (verified when sent) or required "
                          "(default: %(default)s)")
    tls.add_argument("--ciphers", metavar="LIST", help="OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are fixed)")
    tls.add_argument("--tls-min-version", choices=sorted(TLS_VERSIONS), default=defaults.tls_min_version,
                     help="the oldest TLS version accepted (default: %(default)s)")
    tls.add_argument("--cert", action="append", default=[], metavar="NAME=CERTFILE[,KEYFILE]",
                     help="serve this certificate to clients asking for NAME (SNI); repeatable")


def _add_websocket_options(p: argparse.ArgumentParser, defaults: ServerConfig) -> None:
    p.add_argument("--ws-max-size", type=int, default=defaults.ws_max_message_bytes, metavar="BYTES",
                   help="longest WebSocket message (after inflating); longer ones close with 1009 "
                        "(default: %(default)s)")
    p.add_argument("--ws-ping-interval", type=float, default=defaults.ws_ping_interval_s, metavar="S",
                   help="send a WebSocket Ping this often; 0: never (default: %(default)s)")
    p.add_argument("--ws-ping-timeout", type=float, default=defaults.ws_ping_timeout_s, metavar="S",
                   help="close a WebSocket whose Pong (or answer to our Close) takes longer (default: %(default)s)")
    p.add_argument("--ws-idle-timeout", type=float, default=defaults.ws_idle_timeout_s, metavar="S",
                   help="close a WebSocket without a message for this long; 0: never (default: %(default)s)")
    p.add_argument("--ws-max-queue", type=int, default=defaults.ws_max_queue_bytes, metavar="BYTES",
                   help="abort a WebSocket with more than this waiting to be sent (default: %(default)s)")
    p.add_argument("--ws-per-message-deflate", choices=["true", "false"],
                   default="true" if defaults.ws_per_message_deflate else "false",
                   help="accept permessage-deflate compression (default: %(default)s)")


# The HTTPS options that are ServerConfig fields of the same name.
_TLS_OPTIONS = ("certfile", "keyfile", "keyfile_password", "ca_certs", "cert_reqs", "ciphers", "tls_min_version")


def _sni_certs(specs: list[str]) -> dict[str, tuple[str, str | None]]:
    """``--cert NAME=CERTFILE[,KEYFILE]`` values as ``ServerConfig.sni_certs``; ValueError for a malformed one."""
    certs: dict[str, tuple[str, str | None]] = {}
    for spec in specs:
        name, sep, files = spec.partition("=")
        certfile, _, keyfile = files.partition(",")
        if not sep or not name or not certfile:
            raise ValueError(f"--cert needs NAME=CERTFILE[,KEYFILE], got {spec!r}")
        certs[name] = (certfile, keyfile or None)
    return certs


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    import dataclasses
    import socket

    limits = dataclasses.replace(
        Limits(),
        max_body_bytes=args.max_body_bytes,
        max_head_bytes=args.max_head_bytes,
        max_request_line_bytes=args.max_request_line_bytes,
        max_header_count=args.max_header_count,
    )
    sock = socket.socket(fileno=args.fd) if args.fd is not None else None
    if sock is None and args.uds is None:
        activated = systemd_sockets()  # systemd socket activation (LISTEN_FDS, LISTEN_PID)
        if activated:
            sock = activated[0]
            if len(activated) > 1:
                logger.warning("systemd passed %d sockets: serving the first (fd 3) only", len(activated))
    return ServerConfig(
        host=args.host,
        port=args.port,
        uds=args.uds,
        sock=sock,
        backlog=args.backlog,
        limits=limits,
        body_spool_bytes=args.body_spool_bytes,
        tmp_dir=args.tmp_dir,
        header_timeout_s=args.header_timeout,
        keepalive_timeout_s=args.keepalive_timeout,
        body_timeout_s=args.body_timeout,
        send_timeout_s=args.send_timeout,
        handler_timeout_s=args.handler_timeout,
        graceful_timeout_s=args.graceful_timeout,
        max_connections=args.max_connections,
        access_log=not args.no_access_log,
        debug_log_heads=args.log_level == "debug",
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=args.forwarded_allow_ips,
        sni_certs=_sni_certs(args.cert),
        **{name: getattr(args, name) for name in _TLS_OPTIONS},
        ws_max_message_bytes=args.ws_max_size,
        ws_ping_interval_s=args.ws_ping_interval,
        ws_ping_timeout_s=args.ws_ping_timeout,
        ws_idle_timeout_s=args.ws_idle_timeout,
        ws_max_queue_bytes=args.ws_max_queue,
        ws_per_message_deflate=args.ws_per_message_deflate == "true",
    )


def raise_nofile_limit() -> None:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit, and log it.

    Every connection costs a descriptor, and distributions still default the
    soft limit to 1024 for compatibility with ``select()``; the reactor uses
    epoll or poll, so the hard limit is the real bound (Go's runtime does the
    same at start-up).  Past it, accept() fails with EMFILE and the listener
    backs off.
    """
    try:
        import resource
    except ImportError:  # not a Unix
        return
    soft, hard = limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20  # Linux's default fs.nr_open; "unlimited" is refused for NOFILE
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, limits[1]))
        except (ValueError, OSError) as exc:
            logger.info("could not raise the soft RLIMIT_NOFILE from %d to %d: %s", soft, hard, exc)
        else:
            logger.info("raised the soft RLIMIT_NOFILE from %d to %d (the hard limit)", soft, hard)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.no_access_log:
        logging.getLogger("evloop.access").setLevel(logging.WARNING)
    else:
        # One Common Log Format line per response on stderr, written in
        # batches (see evloop.server.access_log).
        install_access_handler(sys.stderr)
    raise_nofile_limit()
    loaded = _app_from_args(args)
    if loaded is None:
        return 1  # logged
    app, watcher = loaded
    try:
        config = config_from_args(args)
    except ValueError as exc:
        build_parser().error(str(exc))
    if config.certfile is None and (args.cert or args.keyfile or args.ca_certs):
        build_parser().error("--keyfile, --ca-certs and --cert need --certfile")
    if config.certfile is not None:
        from .server.tls import ServerTLS

        try:
            ServerTLS(config)  # a certificate that does not load is an error now, not in every worker
        except (OSError, ValueError, ssl.SSLError) as exc:
            build_parser().error(f"TLS: cannot load the certificate {config.certfile} or its key: {exc}")
    if args.proxy_headers:
        from .proxy import TrustedProxies

        try:
            TrustedProxies(args.forwarded_allow_ips)
        except ValueError as exc:
            build_parser().error(str(exc))
    if args.workers < 1:
        build_parser().error("--workers must be at least 1")
    if args.body_spool_bytes < 0 or args.max_body_bytes < 0:
        build_parser().error("--body-spool-bytes and --max-body-bytes must not be negative")
    if args.tmp_dir is not None and not os.path.isdir(args.tmp_dir):
        build_parser().error(f"--tmp-dir: not a directory: {args.tmp_dir}")
    if not 0 <= args.worker_timeout < float("inf"):
        build_parser().error("--worker-timeout must be 0 (never) or a positive number of seconds")
    balance = args.balance or ("shared" if args.wsgi else "reuseport")
    # Logs "evloop serving on <URL>" once listening (with workers: once every worker listens).
    return serve(app, config=config, workers=args.workers, max_requests=args.max_requests,
                 max_requests_jitter=args.max_requests_jitter, slow_callback_s=args.slow_callback,
                 worker_timeout_s=args.worker_timeout, share_socket=balance == "shared", watcher=watcher)


# --------------------------------------------------------------- loading the app
def _with_loading_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    load = p.add_argument_group(
        "loading the application (--wsgi, --app)",
        "MODULE means MODULE:application, else MODULE:app; MODULE:NAME, MODULE:NAME.ATTR, MODULE:FACTORY() and "
        "MODULE:FACTORY('literal', debug=True) work too, with the current directory first on sys.path")
    load.add_argument("--chdir", metavar="DIR", help="change to DIR before loading the application")
    load.add_argument("--preload", action="store_true",
                      help="with workers: import the application once in the supervisor, before the fork (memory "
                           "shared copy-on-write; SIGHUP then restarts the workers on the same code). By default "
                           "each worker imports it, so SIGHUP brings in new code")
    load.add_argument("--reload", action="store_true",
                      help="for development: restart the workers when a watched file changes (polled); code that "
                           "does not load is logged and the running worker goes on serving")
    load.add_argument("--reload-dir", action="append", default=[], metavar="DIR",
                      help="watch DIR instead of the current directory; repeatable")
    load.add_argument("--reload-include", action="append", default=[], metavar="GLOB",
                      help="watch the files matching GLOB (default: *.py); repeatable")
    load.add_argument("--static-path", default=None, metavar="PREFIX",
                      help="with --wsgi or --app and --root: serve the files under --root at PREFIX/ in front of "
                           "the application (default: /static)")
    return p


def _check_loading_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.reload_dir or args.reload_include) and not args.reload:
        p.error("--reload-dir and --reload-include need --reload")
    if args.reload and args.preload:
        p.error("--reload needs each worker to import the code: leave out --preload")
    if args.static_path is not None and not (args.root and (args.wsgi or args.app)):
        p.error("--static-path needs --root and --wsgi or --app")
    if args.root and not os.path.isdir(args.root):
        p.error(f"--root: not a directory: {args.root}")


def _wrapper(args: argparse.Namespace) -> Callable[[Any], Callable[..., Any]]:
    """What turns the loaded object into the app served: WSGIApp for --wsgi, and --root's files in front."""
    def wrap(obj: Any) -> Callable[..., Any]:
        app: Callable[..., Any] = obj
        if args.wsgi:
            from .wsgi import WSGIApp

            app = WSGIApp(obj, multiprocess=args.workers > 1)
        if args.root:
            app = StaticMount(app, args.static_path or "/static", StaticFiles(args.root))
        return app
    return wrap


def _app_from_args(args: argparse.Namespace) -> tuple[Callable[..., Any] | AppLoader, SourceWatcher | None] | None:
    """The app to serve, or its ``AppLoader`` when each worker is to import it, and the ``--reload`` watcher.

    None when the application cannot be loaded: the reason is logged as one
    line (the traceback too at ``--log-level debug``).
    """
    parser = build_parser()
    _check_loading_options(parser, args)
    if args.chdir:
        try:
            os.chdir(args.chdir)
        except OSError as exc:
            parser.error(f"--chdir: {exc}")
    put_cwd_first()
    watcher = None
    if args.reload:
        try:
            watcher = SourceWatcher(args.reload_dir or [os.getcwd()], args.reload_include or ["*.py"])
        except ValueError as exc:
            parser.error(str(exc))
    spec = args.app or args.wsgi
    if not spec:
        return make_app(args.root), watcher
    try:
        loader = AppLoader(spec, _wrapper(args))
        if (args.workers > 1 or args.max_requests or watcher is not None) and not args.preload:
            return loader, watcher  # imported by each worker after the fork
        return loader.load(), watcher
    except AppLoadError as exc:
        logger.error("%s", exc)
        logger.debug("the application's import failed here:", exc_info=exc.__cause__ or exc)
        return None


if __name__ == "__main__":
    sys.exit(main())
