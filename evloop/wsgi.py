"""Run a PEP 3333 (WSGI) application as an evloop app.

``WSGIApp(wsgi_app)`` is a callable ``(request) -> Response``: give it to the
server as the app, or route it (path parameters are ignored; set
``script_name`` to the mount prefix so it is moved from PATH_INFO to
SCRIPT_NAME).

The single thread
-----------------
A WSGI application is synchronous and runs on the loop's only thread: while
it computes a response, or blocks on a database or ``time.sleep``, no other
connection is served. The reactor's slow-callback warning names the callback
that held the loop; run several worker processes to spread the load. Work
that must wait belongs in a native evloop handler (``request.respond`` from a
timer), not in a WSGI app.

How a call proceeds
-------------------
1. The environ is built from the request.  The body is already fully
   received: ``wsgi.input`` is a ``BytesIO`` over a short one, or the
   temporary file a long one was spooled to (``ServerConfig.body_spool_bytes``,
   1 MiB; see ``evloop.server.bodies``), seekable either way, and
   ``wsgi.input_terminated`` is True; CONTENT_LENGTH is the received body
   length, also for a chunked request.  The file is closed (and deleted)
   when the response is done.
2. ``app(environ, start_response)`` returns an iterable. PEP 3333 lets the
   app call ``start_response`` as late as its first non-empty chunk, so the
   adapter pulls from the iterable until ``start_response`` has been called
   and either a non-empty chunk arrives or the iterable ends. Until then the
   headers are not sent: ``start_response(..., exc_info)`` may replace them,
   and an exception becomes the server's ordinary 500.
3. The ``Response`` carries the rest as a body iterator: data given to the
   legacy ``write()`` callable first, then the first chunk, then the
   remaining chunks, pulled lazily by the server (with backpressure). Once
   the response is returned its head counts as sent: a later
   ``start_response(..., exc_info)`` re-raises, and the server, unable to
   change the status, aborts the connection.
4. The body iterator has a ``close()`` that calls the app iterable's
   ``close()`` exactly once (an exception from it is logged: the body already
   went out whole). It runs when the iterator is exhausted or raises;
   otherwise the server must call ``Response.close()`` when the response ends
   early (HEAD, client gone, timeout). HEAD is passed to the app as is; the
   server drops the body.

``wsgi.file_wrapper``: when the app returns a ``FileWrapper`` around a regular
binary file, the body is a ``FileBody`` from the file's current position (up
to the app's Content-Length, if any), so the server uses ``sendfile``.

Response headers: PEP 3333 forbids hop-by-hop fields (Connection,
Transfer-Encoding, Keep-Alive, ...) to applications; the server frames the
response and manages the connection itself.  They are dropped (gunicorn does
the same; wsgiref raises), and the first of each name an app sends is logged
as a warning, with one exception: a Connection field holding ``close``
becomes ``Connection: close`` and the server closes the connection after the
response.  The status line keeps the app's reason phrase (``299 Very
Custom``); the standard phrase is sent when the app's is the same.
"""

from __future__ import annotations

import io
import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from evloop import __version__
from evloop.app import FileBody, Request, Response, SpooledRequest
from evloop.http.fields import check_field, parse_content_length
from evloop.http.parser import list_elements
from evloop.http.writer import reason_phrase

__all__ = ["FileWrapper", "WSGIApp", "build_environ"]

logger = logging.getLogger("evloop.wsgi")

SERVER_SOFTWARE = f"evloop/{__version__}"

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
     "te", "trailer", "trailers", "transfer-encoding", "upgrade"}
)


class FileWrapper:
    """``wsgi.file_wrapper``: iterate a file in blocks; sent with sendfile when possible."""

    def __init__(self, filelike: Any, blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        close = getattr(filelike, "close", None)
        if close is not None:
            self.close = close

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        data: bytes = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


class _ErrorStream:
    """``wsgi.errors``: lines written by the app go to the ``evloop.wsgi`` logger."""

    def __init__(self) -> None:
        self._partial = ""

    def write(self, text: str) -> None:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            logger.error("wsgi.errors: %s", line)

    def writelines(self, seq: Iterable[str]) -> None:
        for text in seq:
            self.write(text)

    def flush(self) -> None:
        if self._partial:
            logger.error("wsgi.errors: %s", self._partial)
            self._partial = ""


def _path_info(raw_path: str) -> str:
    # PEP 3333: PATH_INFO holds the decoded bytes, each as one latin-1 char.
    if "%" not in raw_path and raw_path.isascii():
        return raw_path
    try:
        raw = raw_path.encode("latin-1")
    except UnicodeEncodeError:
        raw = raw_path.encode("utf-8", "surrogateescape")
    return unquote_to_bytes(raw).decode("latin-1")


def _split_host(host: str) -> tuple[str, str]:
    """``"h:80"`` -> ``("h", "80")``; ``"[::1]:80"`` -> ``("[::1]", "80")``; no port -> ``""``."""
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and not name.endswith(":"):
        return name, port
    return host, ""


def build_environ(
    request: Request, *, script_name: str = "", multiprocess: bool = False,
    errors: Any = None,
) -> dict[str, Any]:
    """The PEP 3333 environ for ``request``.

    Header fields whose names contain ``_`` are left out: ``X_Forwarded_For``
    and ``X-Forwarded-For`` would both become ``HTTP_X_FORWARDED_FOR``, which
    lets a client spoof a field set by a proxy (as waitress and nginx do).
    Repeated fields are joined with ``, `` (``; `` for Cookie).
    """
    path_info = _path_info(request.raw_path)
    if script_name and (path_info == script_name or path_info.startswith(script_name + "/")):
        path_info = path_info[len(script_name):]
    server = request.server
    if isinstance(server, tuple) and len(server) >= 2:
        server_name, server_port = str(server[0]), str(server[1])
    else:
        server_name, server_port = _split_host(request.headers.get("Host") or "localhost")
        server_port = server_port or ("443" if request.scheme == "https" else "80")
    client = request.client
    if isinstance(client, tuple) and len(client) >= 2:
        remote_addr, remote_port = str(client[0]), str(client[1])
    else:
        remote_addr, remote_port = "", ""

    if type(request) is SpooledRequest:  # a long body, in a temporary file (evloop.server.bodies)
        wsgi_input: Any = request.stream
        length = request.body_length
    else:
        body = request.body
        wsgi_input = io.BytesIO(body)
        length = len(body)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": request.query_string,
        "SERVER_NAME": server_name,
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": request.version,
        "REMOTE_ADDR": remote_addr,
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": request.scheme,
        "wsgi.input": wsgi_input,
        "wsgi.errors": errors if errors is not None else _ErrorStream(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
        "evloop.request": request,
        "evloop.reactor": request.reactor,
    }
    if remote_port:
        environ["REMOTE_PORT"] = remote_port
    if request.tls is not None:
        environ.update(request.tls.cgi_variables())  # HTTPS=on and mod_ssl's SSL_* (SSL_CLIENT_S_DN, ...)
    for name, value in request.headers.raw:
        if "_" in name:
            continue
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
            continue
        if key == "CONTENT_LENGTH":
            continue
        key = "HTTP_" + key
        old = environ.get(key)
        if old is None:
            environ[key] = value
        else:
            environ[key] = old + ("; " if key == "HTTP_COOKIE" else ", ") + value
    if length or "Content-Length" in request.headers or "Transfer-Encoding" in request.headers:
        environ["CONTENT_LENGTH"] = str(length)
    # The request id: a trusted proxy's X-Request-ID, else made (a client's own is replaced).
    environ["HTTP_X_REQUEST_ID"] = request.request_id
    return environ


class _Call:
    """The state of one application call: start_response, write, headers sent."""

    __slots__ = ("status", "reason", "headers", "headers_sent", "pending", "started", "warned")

    def __init__(self, warned: set[str]) -> None:
        self.status = 0
        self.reason: str | None = None
        self.warned = warned  # hop-by-hop names already warned about (one set per WSGIApp)
        self.headers: list[tuple[str, str]] = []
        self.headers_sent = False
        self.started = False
        self.pending: list[bytes] = []

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle through the frame
        elif self.started:
            raise RuntimeError("start_response() called twice without exc_info")
        if not isinstance(status, str):
            raise TypeError(f"status must be str, got {type(status).__name__}")
        code, _, reason = status.partition(" ")
        if len(code) != 3 or not code.isdigit() or not code.isascii():
            raise ValueError(f"invalid WSGI status {status!r}")
        if not isinstance(headers, list):
            raise TypeError(f"headers must be a list, got {type(headers).__name__}")
        kept = []
        for item in headers:
            if type(item) is not tuple or len(item) != 2:
                raise TypeError(f"header must be a (name, value) tuple: {item!r}")
            name, value = item
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(f"header name and value must be str: {item!r}")
            check_field(name, value)  # the wire's rules: refused here, so the client gets a 500
            lname = name.lower()
            if lname in _HOP_BY_HOP:
                if lname == "connection" and _asks_to_close(value) and ("Connection", "close") not in kept:
                    # The one hop-by-hop wish the server can grant: the
                    # connection ends after this response.
                    kept.append(("Connection", "close"))
                elif lname not in self.warned:
                    self.warned.add(lname)
                    logger.warning("dropping the hop-by-hop response header %s: %s (PEP 3333: the server "
                                   "manages the connection and the framing; logged once per name)", name, value)
                continue
            kept.append((name, value))
        self.status = int(code)
        # Kept unless it is the standard phrase or none: then the server's ready-made status line serves.
        self.reason = None if not reason or reason == reason_phrase(self.status) else reason  # checked by Response
        self.headers = kept
        self.started = True
        return self.write

    def write(self, data: bytes) -> None:
        if not self.started:
            raise RuntimeError("write() before start_response()")
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"write() needs bytes, got {type(data).__name__}")
        if data:
            self.headers_sent = True
            self.pending.append(bytes(data))


def _asks_to_close(connection: str) -> bool:
    """Does a Connection field value hold the ``close`` option (RFC 9110 7.6.1)?"""
    return "close" in list_elements(connection.lower())


class _WSGIBody:
    """The rest of an app iterable, as a body iterator with ``close()``."""

    __slots__ = ("_call", "_iterable", "_iterator", "_first", "_closed")

    def __init__(self, call: _Call, iterable: Any, iterator: Iterator[bytes] | None,
                 first: bytes | None) -> None:
        self._call = call
        self._iterable = iterable
        self._iterator = iterator  # None: the iterable is exhausted
        self._first = first
        self._closed = False

    def __iter__(self) -> _WSGIBody:
        return self

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        pending = self._call.pending
        if pending:
            return pending.pop(0)
        first = self._first
        if first is not None:
            self._first = None
            return first
        if self._iterator is None:
            self.close()
            raise StopIteration
        try:
            while True:
                chunk = next(self._iterator)
                if not isinstance(chunk, bytes):
                    raise TypeError(f"WSGI app yielded {type(chunk).__name__}, not bytes")
                if pending:  # write() called from inside the iterable
                    if chunk:
                        pending.append(chunk)
                    return pending.pop(0)
                if chunk:
                    return chunk
        except StopIteration:
            self._iterator = None
            if pending:
                return pending.pop(0)
            self.close()
            raise
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Call the app iterable's ``close()`` once; an exception from it is logged, not raised.

        It runs after the last chunk was taken: raising would turn a body sent
        whole into a failed stream (an abort, its end never framed).
        """
        if self._closed:
            return
        self._closed = True
        self._iterator = None
        close = getattr(self._iterable, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                logger.exception("close() of the WSGI app's iterable failed")


def _file_body(result: FileWrapper, call: _Call, declared: int | None) -> FileBody | None:
    """A FileBody for a FileWrapper around a regular binary file, else None."""
    filelike = result.filelike
    if call.pending or not isinstance(filelike, (io.BufferedIOBase, io.RawIOBase)):
        return None
    try:
        fd = filelike.fileno()
        st = os.fstat(fd)
        offset = filelike.tell()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    count = max(0, st.st_size - offset)
    if declared is not None:
        count = min(count, declared)
    return FileBody(filelike, offset, count, on_close=getattr(result, "close", None))


class WSGIApp:
    """Adapter from a WSGI application to an evloop app; see the module docstring.

    ``script_name``: the mount prefix (SCRIPT_NAME). ``multiprocess``: the
    value of ``wsgi.multiprocess`` (True when running several workers).
    ``errors``: a stream for ``wsgi.errors`` (default: the ``evloop.wsgi``
    logger).
    """

    def __init__(
        self, app: Callable[..., Iterable[bytes]], *, script_name: str = "",
        multiprocess: bool = False, errors: Any = None,
    ) -> None:
        self.app = app
        self.script_name = script_name.rstrip("/")
        self.multiprocess = multiprocess
        self.errors = errors
        self._warned: set[str] = set()

    def would_accept(self, method: str, target: str) -> bool:
        """Always True: only the app knows, and it cannot be asked without running it."""
        return True

    def __call__(self, request: Request, **_path_params: str) -> Response:
        environ = build_environ(
            request, script_name=self.script_name, multiprocess=self.multiprocess,
            errors=self.errors,
        )
        call = _Call(self._warned)
        result = self.app(environ, call.start_response)
        try:
            return self._response(call, result)
        except BaseException:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            raise

    def _response(self, call: _Call, result: Any) -> Response:
        if isinstance(result, FileWrapper) and call.started:
            declared = _declared_length(call.headers)
            body = _file_body(result, call, declared)
            if body is not None:
                call.headers_sent = True
                headers = [h for h in call.headers if h[0].lower() != "content-length"]
                return Response(call.status, headers, body, reason=call.reason)

        if type(result) in (list, tuple) and len(result) <= 1 and not call.pending:
            # The common [b"body"]: bytes, so the server can send head and
            # body in one write.
            if not call.started:
                raise RuntimeError("WSGI app returned without calling start_response()")
            data = result[0] if result else b""
            if not isinstance(data, bytes):
                raise TypeError(f"WSGI app returned {type(data).__name__}, not bytes")
            declared = _declared_length(call.headers)
            if declared is None or declared == len(data):
                call.headers_sent = True
                return Response(call.status, call.headers, data, reason=call.reason)

        # Pull until start_response was called and there is data to send, or
        # the iterable ends (PEP 3333: the head may wait for the first
        # non-empty chunk).
        iterator: Iterator[bytes] | None = iter(result)
        first = None
        while not call.pending:
            try:
                chunk = next(iterator)  # type: ignore[arg-type]
            except StopIteration:
                iterator = None
                break
            if not isinstance(chunk, bytes):
                raise TypeError(f"WSGI app yielded {type(chunk).__name__}, not bytes")
            if chunk:
                first = chunk
                break
        if not call.started:
            raise RuntimeError("WSGI app produced its body without calling start_response()")
        call.headers_sent = True
        return Response(call.status, call.headers, _WSGIBody(call, result, iterator, first), reason=call.reason)


def _declared_length(headers: list[tuple[str, str]]) -> int | None:
    values = [value for name, value in headers if name.lower() == "content-length"]
    if not values:
        return None
    try:
        return parse_content_length(values)
    except ValueError as exc:
        raise ValueError(f"WSGI app sent an invalid Content-Length: {exc}") from None

