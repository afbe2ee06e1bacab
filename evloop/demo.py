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
``GET /items/ID``      200 ``text/plain`` ``item ID``: ID is the decoded path segment, sent back as its bytes
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
import dataclasses
import hashlib
import logging
import os
import ssl
import sys
from collections.abc import Callable, Iterator
from typing import Any

from . import __version__, cli
from .app import App, FileBody, Request, Response, SpooledRequest
from .binds import Bind, BindError, BindKind
from .http import Limits
from .http.fields import check_field
from .loading import AppLoader, AppLoadError, load_object, put_cwd_first
from .logsetup import LoggingSetupError, configure_logging
from .options import GROUP_HELP, OPTIONS
from .server import ServerConfig
from .static import StaticFiles, StaticMount
from .websocket import WebSocketHandler, broadcast
from .workers import SourceWatcher, current_worker, serve, systemd_sockets

__all__ = ["make_app", "main", "build_parser", "config_from_settings", "load_object"]

logger = logging.getLogger("evloop.demo")

MAX_BYTES = 1 << 30          # /bytes/N: 1 GiB
MAX_STREAM_CHUNKS = 1_000_000
MAX_DELAY_MS = 60_000
_BLOCK = b"x" * 65536        # /bytes/N is N times b"x", sent 64 KiB at a time
_BUNDLED_ROOT = os.path.join(os.path.dirname(__file__), "demo_root")

_TEXT = "text/plain; charset=utf-8"
# Response.from_bytes bound once: a classmethod looked up on its class is an unspecialised lookup and a new
# bound method on every call on CPython 3.11 (callgrind: GET /items/ID through the app 10,100 -> 9,750).
_from_bytes = Response.from_bytes


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


def make_app(root: str | None = None, *, static_cache_control: str | None = None) -> App:
    """The demo application, serving static files from ``root`` (the bundled folder by default).

    ``static_cache_control``: the Cache-Control field of the static files
    (``--static-cache-control``).  ``/favicon.ico`` is the bundled icon,
    cached for a day unless ``static_cache_control`` says otherwise.
    """
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
        if type(request) is SpooledRequest:
            return Response(200, body=FileBody(request.stream), content_type=content_type)
        return Response.from_bytes(request.body, content_type)

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

    @app.route("/items/{item_id}", methods=["GET"])
    def item(request: Request, item_id: str) -> Response:
        # A route with a path parameter whose value changes on every request, as a site's pages do:
        # the benchmark's ``browser-unique`` scenario fetches it.  surrogateescape: the bytes sent.
        return _from_bytes(b"item " + item_id.encode("utf-8", "surrogateescape"), "text/plain")

    _add_websocket_routes(app)
    _add_static_routes(app, root, static_cache_control)
    return app


def _add_static_routes(app: App, root: str | None, static_cache_control: str | None) -> None:
    """``/static/...`` from ``root`` (the bundled folder by default), ``/static`` redirected, ``/favicon.ico``."""
    static = StaticFiles(root or _BUNDLED_ROOT, cache_control=static_cache_control)
    favicon = StaticFiles(_BUNDLED_ROOT, cache_control=static_cache_control or "public, max-age=86400")
    app.add_route("/favicon.ico", lambda request: favicon(request, "favicon.ico"), ["GET", "HEAD"])
    app.add_route("/static/{path:path}", static, ["GET", "HEAD"])
    app.add_route("/static", lambda request: Response(301, [("Location", "/static/")], b""), ["GET", "HEAD"])


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


DESCRIPTION = """\
Run an evloop HTTP server: the demo endpoints, an evloop app (--app) or a WSGI app (--wsgi).

Every option is also read from the environment as EVLOOP_<NAME> (EVLOOP_PORT=9000,
EVLOOP_ACCESS_LOG=false) and from a TOML file given with --config (port = 9000);
the command line wins over the environment, which wins over the file.
--print-config shows the values in effect and where each came from."""

EPILOG = """\
examples:
  %(prog)s --port 8000 --workers 4
  %(prog)s --bind 0.0.0.0:8080 --bind [::]:8080 --wsgi myproject.wsgi
  %(prog)s --bind unix:/run/evloop.sock --uds-mode 0660 --app mymodule:app
  EVLOOP_WORKERS=2 %(prog)s --config evloop.toml --print-config"""


def build_parser(prog: str = "evloop-demo") -> argparse.ArgumentParser:
    """The command line, from the option table (``evloop.options``); ``prog`` is the name ``--help`` shows."""
    return cli.build_parser(OPTIONS, prog, DESCRIPTION, EPILOG, version=__version__, group_help=GROUP_HELP)


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


def listen_binds(settings: cli.Settings) -> tuple[Bind, ...]:
    """Where to listen: ``--bind``, ``--uds`` and ``--fd`` (all of them), else systemd's sockets, else host:port.

    As gunicorn's ``--bind``, the addresses named replace the default one:
    to listen on ``--host``/``--port`` as well, name it with ``--bind`` too.
    """
    binds: list[Bind] = list(settings.bind)
    if settings.uds is not None:
        binds.append(Bind.unix(settings.uds))
    if settings.fd is not None:
        binds.append(Bind(BindKind.FD, fd=settings.fd))
    if binds:
        if settings.given("host") or settings.given("port"):
            logger.warning("--host and --port are not used: --bind, --uds or --fd name the addresses "
                           "(add --bind HOST:PORT to listen there too)")
        return tuple(binds)
    activated = systemd_sockets()  # systemd socket activation (LISTEN_FDS, LISTEN_PID)
    if activated:
        return tuple(Bind.of_socket(sock) for sock in activated)
    return (Bind.tcp(settings.host, settings.port),)


def config_from_settings(settings: cli.Settings) -> ServerConfig:
    """The ``ServerConfig`` of ``settings``: each option with a ``field`` sets it; ValueError for a bad ``--cert``."""
    fields: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for option in OPTIONS:
        if option.field is not None:
            value = getattr(settings, option.dest)
            if option.field.startswith("limits."):
                limits[option.field.removeprefix("limits.")] = value
            else:
                fields[option.field] = value
    if settings.log_format == "json" and fields["access_log_format"] is None:
        fields["access_log_format"] = "json"  # --log-format json: the access log's lines too
    return ServerConfig(
        **fields,
        host=settings.host,
        port=settings.port,
        binds=listen_binds(settings),
        limits=dataclasses.replace(Limits(), **limits),
        access_log=bool(settings.access_log),
        debug_log_heads=settings.log_level == "debug",
        sni_certs=_sni_certs(settings.cert),
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


def main(argv: list[str] | None = None, prog: str = "evloop-demo") -> int:
    """``evloop-demo``: returns the exit status (2 for a usage error, 1 when it cannot listen)."""
    parser = build_parser(prog)
    try:
        settings, warnings = cli.load(OPTIONS, parser, argv)
    except cli.UsageError as exc:
        parser.error(str(exc))
    if settings.print_config:
        for warning in warnings:
            print(f"{parser.prog}: warning: {warning}", file=sys.stderr)
        sys.stdout.write(cli.render_settings(OPTIONS, settings))
        return 0
    try:
        configure_logging(settings.log_level, access_log=settings.access_log, log_format=settings.log_format,
                          log_config=settings.log_config)
    except LoggingSetupError as exc:
        parser.error(str(exc))
    for warning in warnings:
        logger.warning("%s", warning)
    raise_nofile_limit()
    loaded = _app_from_args(parser, settings)
    if loaded is None:
        return 1  # logged
    app, watcher = loaded
    try:
        config = config_from_settings(settings)
    except ValueError as exc:
        parser.error(str(exc))
    if config.certfile is None and (settings.cert or settings.keyfile or settings.ca_certs):
        parser.error("--keyfile, --ca-certs and --cert need --certfile")
    if config.cert_reqs != "none" and config.ca_certs is None:
        # No CA trusted: every client certificate would fail its handshake.
        parser.error(f"--cert-reqs {config.cert_reqs} needs --ca-certs (the CAs client certificates are verified "
                     f"against)")
    if config.certfile is not None:
        from .server.tls import ServerTLS

        try:
            ServerTLS(config)  # a certificate that does not load is an error now, not in every worker
        except (OSError, ValueError, ssl.SSLError) as exc:
            parser.error(f"TLS: {exc}")
    if settings.status_path is not None and settings.status_path == (settings.metrics_path or (
            "/metrics" if settings.metrics_bind is not None else None)):
        parser.error(f"--metrics-path and --status-path must differ, both are {settings.status_path!r}")
    balance = settings.balance or ("shared" if settings.wsgi else "reuseport")
    try:
        # Logs "evloop serving on <URL>" once listening (with workers: once every worker listens).
        return serve(app, config=config, workers=settings.workers, max_requests=settings.max_requests,
                     max_requests_jitter=settings.max_requests_jitter, slow_callback_s=settings.slow_callback,
                     worker_timeout_s=settings.worker_timeout, share_socket=balance == "shared", watcher=watcher)
    except OSError as exc:
        # Most often the port is taken: one line saying where (and by whom), no traceback.
        logger.error("%s", exc if isinstance(exc, BindError) else f"cannot listen: {exc}")
        return 1


# --------------------------------------------------------------- loading the app

def _check_loading_options(p: argparse.ArgumentParser, args: cli.Settings) -> None:
    if (args.reload_dir or args.reload_include) and not args.reload:
        p.error("--reload-dir and --reload-include need --reload")
    if args.reload and args.preload:
        p.error("--reload needs each worker to import the code: leave out --preload")
    if args.static_path is not None and not (args.root and (args.wsgi or args.app)):
        p.error("--static-path needs --root and --wsgi or --app")
    if args.root and not os.path.isdir(args.root):
        p.error(f"--root: not a directory: {args.root}")
    if args.tmp_dir is not None and not os.path.isdir(args.tmp_dir):
        p.error(f"--tmp-dir: not a directory: {args.tmp_dir}")
    if args.static_cache_control is not None:
        try:
            check_field("Cache-Control", args.static_cache_control)
        except ValueError as exc:
            p.error(f"--static-cache-control: {exc}")


def _wrapper(args: cli.Settings) -> Callable[[Any], Callable[..., Any]]:
    """What turns the loaded object into the app served: WSGIApp for --wsgi, and --root's files in front."""
    def wrap(obj: Any) -> Callable[..., Any]:
        app: Callable[..., Any] = obj
        if args.wsgi:
            from .wsgi import WSGIApp

            app = WSGIApp(obj, multiprocess=args.workers > 1)
        if args.root:
            app = StaticMount(app, args.static_path or "/static",
                              StaticFiles(args.root, cache_control=args.static_cache_control))
        return app
    return wrap


def _app_from_args(
    parser: argparse.ArgumentParser, args: cli.Settings
) -> tuple[Callable[..., Any] | AppLoader, SourceWatcher | None] | None:
    """The app to serve, or its ``AppLoader`` when each worker is to import it, and the ``--reload`` watcher.

    None when the application cannot be loaded: the reason is logged as one
    line (the traceback too at ``--log-level debug``).
    """
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
        return make_app(args.root, static_cache_control=args.static_cache_control), watcher
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
    sys.exit(main(prog="python -m evloop.demo"))
