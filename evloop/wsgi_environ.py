"""The WSGI environ (PEP 3333) of a request, and the objects it holds: ``wsgi.input``, ``wsgi.errors``,
``wsgi.file_wrapper``.

``build_environ`` is the plain path; ``evloop.wsgi.WSGIApp`` fills a copy
of its ``environ_template`` through its ``WSGICaches`` (``_fill_environ``),
which gives the same environ (tests/wsgi/test_speedups.py checks it).  The
module docstring of ``evloop.wsgi`` says what the environ holds and when.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from evloop import __version__, request_ids
from evloop.app import Request, SpooledRequest
from evloop.http.caches import BoundedCache

__all__ = ["SERVER_SOFTWARE", "FileWrapper", "LastEnviron", "LastFields", "build_environ", "environ_key",
           "environ_template", "header_fields"]

logger = logging.getLogger("evloop.wsgi")

SERVER_SOFTWARE = f"evloop/{__version__}"


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


class _NoBody(io.BufferedIOBase):
    """``wsgi.input`` of a request without a body: always at its end, one object for all such requests.

    Nothing in it changes (``close()`` leaves it open, nothing can be
    written), so sharing it is safe, and a bodiless request does not make
    and free a ``BytesIO`` (~1,200 instructions; see ``WSGIApp``).  It reads, seeks and iterates as an
    empty ``BytesIO`` does.
    """

    __slots__ = ()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return b""

    read1 = read

    def readinto(self, buffer: Any) -> int:
        return 0

    readinto1 = readinto

    def readline(self, size: int | None = -1) -> bytes:
        return b""

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return []

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence not in (0, 1, 2) or (whence == 0 and offset < 0):
            raise ValueError(f"invalid seek: offset {offset}, whence {whence}")
        return 0

    def tell(self) -> int:
        return 0

    def getvalue(self) -> bytes:
        return b""

    def close(self) -> None:
        pass

    @property
    def closed(self) -> bool:
        return False


_NO_BODY = _NoBody()


def _path_info(raw_path: str) -> str:
    # PEP 3333: PATH_INFO holds the decoded bytes, each as one latin-1 char
    # (build_environ passes a plain ASCII path as it is, without this call).
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


def _server_from_host(request: Request) -> tuple[str, str]:
    """SERVER_NAME and SERVER_PORT from the Host field, when the server address is not (host, port): a Unix socket."""
    server_name, server_port = _split_host(request.headers.get("Host") or "localhost")
    return server_name, server_port or ("443" if request.scheme == "https" else "80")


def environ_template(script_name: str = "", multiprocess: bool = False, errors: Any = None) -> dict[str, Any]:
    """The environ keys that are the same for every request of one app: each request's environ starts as a copy.

    ``wsgi.input`` is the empty stream every bodiless request shares (a
    request with a body gets its own: one store less for the others).
    ``errors`` None: one ``wsgi.errors`` stream to the ``evloop.wsgi``
    logger, shared by the requests made from this template (as gunicorn
    shares its error log).
    """
    return {
        "SCRIPT_NAME": script_name,
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "wsgi.version": (1, 0),
        "wsgi.errors": errors if errors is not None else _ErrorStream(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.input": _NO_BODY,  # a bodiless request's; one with a body gets its own (see _NoBody)
        "wsgi.file_wrapper": FileWrapper,
    }


def environ_key(name: str) -> str:
    """The environ key of request header ``name``: ``HTTP_X_FOO``, ``CONTENT_TYPE`` or ``CONTENT_LENGTH``.

    ``""`` for a name holding ``_``: ``X_Forwarded_For`` and
    ``X-Forwarded-For`` would both become ``HTTP_X_FORWARDED_FOR``, which
    lets a client spoof a field set by a proxy (waitress and nginx drop them too).
    """
    if "_" in name:
        return ""
    key = name.upper().replace("-", "_")
    return key if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH" else "HTTP_" + key


def _learn_key(keys: BoundedCache[str, str], name: str) -> str:
    """``environ_key(name)`` on a miss of ``WSGIApp``'s cache of them, remembered there."""
    keys.misses += 1
    key = environ_key(name)
    keys.put(name, key)
    return key


# What header_fields makes of a request's header pairs: the environ items and
# whether the request is framed (a Content-Length or Transfer-Encoding field).
_Fields = tuple[dict[str, str], bool]


def header_fields(pairs: Iterable[tuple[str, str]], keys: BoundedCache[str, str] | None = None) -> _Fields:
    """The environ items of request header ``pairs`` (``HTTP_*``, ``CONTENT_TYPE``), and whether one of them
    frames a body (Content-Length or Transfer-Encoding: CONTENT_LENGTH is then set).

    Names holding ``_`` are left out (see ``environ_key``); repeated fields
    are joined with ``, `` (``; `` for Cookie).  ``keys``: ``WSGICaches.keys``.
    """
    known = keys.entries if keys is not None else None
    items: dict[str, str] = {}
    framed = False
    for name, value in pairs:
        key = known.get(name) if known is not None else None
        if key is None:
            key = environ_key(name) if keys is None else _learn_key(keys, name)
        if not key:
            continue
        if key == "CONTENT_LENGTH":
            framed = True
            continue
        old = items.get(key)
        if old is None or key == "CONTENT_TYPE":
            items[key] = value
        else:
            items[key] = old + ("; " if key == "HTTP_COOKIE" else ", ") + value
    return items, framed or "HTTP_TRANSFER_ENCODING" in items


class LastFields:
    """What ``header_fields`` made of the last request's header pairs, for a request with the very same pairs.

    The parser hands out the same tuple of pairs for every head it serves
    from its cache of heads (a repeated head, on any connection), so an
    identity test finds them: no hash, nothing to bound; other pairs take
    the place.  A hit is one ``dict.update`` instead of a pass over the
    fields in Python, whose cost grows with their number.  (A cache by value,
    a ``BoundedCache`` of 128 pairs, cost a head with a unique field, such as
    load/bench_instructions.py's wsgi-unique, ~5,500 instructions in misses.)
    It serves the requests ``LastEnviron`` does not: a repeated head on a new
    connection (wsgi-close).
    """

    __slots__ = ("pairs", "found")

    def __init__(self) -> None:
        self.pairs: tuple[tuple[str, str], ...] | None = None
        self.found: _Fields = ({}, False)


class LastEnviron:
    """The last remembered environ before its per-request keys, for a request from equal sources.

    Everything in an environ but ``wsgi.input``, ``evloop.request``,
    CONTENT_LENGTH, HTTP_X_REQUEST_ID and the client's REMOTE_ADDR and
    REMOTE_PORT comes from the request's head (its header pairs, method,
    path, query and version), its connection (``server``, ``scheme``,
    ``tls``, ``reactor``) and the app's template: ``key`` holds them, and
    equal sources give an equal environ.  The parser hands out the same
    objects for every head it serves from its cache of heads, so a repeated
    head compares equal element by element in C: nothing to hash, nothing to
    bound; any other request takes the place.  The client is left out of the
    key: a hit from another connection than the memo's (``client``, the
    same tuple for every request of a connection) sets its two keys anew.
    So the memo serves a repeated head on one keep-alive connection, and as
    well the same head from many connections taking turns (wrk's 50 or 1,000
    connections; a new connection each request).  An environ is remembered
    when a request's sources equal the request's before (``seen``): a stream
    of different heads never pays the memo's copy.  A hit is one dict copy
    and four stores instead of the path's decoding, four ``str()`` and a
    dozen stores: load/bench_instructions.py wsgi-keepalive 51,688 -> 45,379,
    wsgi-echo4k 80,000 -> 75,253 (see ``WSGIApp``).  Only a tuple of pairs
    is remembered: a list (a Request made by hand) can change under the memo.
    """

    __slots__ = ("key", "environ", "framed", "client", "seen", "length", "length_text")

    def __init__(self) -> None:
        self.length = -1  # the last CONTENT_LENGTH given, and its text (not part of the memo's environ)
        self.length_text = ""
        self.key: tuple[Any, ...] | None = None
        self.seen: tuple[Any, ...] | None = None  # the sources of the last request not served by the memo
        self.client: Any = None  # the client whose address the memo's environ holds
        self.environ: dict[str, Any] = {}
        self.framed = False


def _set_client(environ: dict[str, Any], client: Any) -> None:
    """REMOTE_ADDR and REMOTE_PORT of ``client`` (no REMOTE_PORT for an address that is not (host, port))."""
    if isinstance(client, tuple) and len(client) >= 2:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(client[0]), str(client[1])
    else:
        environ["REMOTE_ADDR"] = ""
        environ.pop("REMOTE_PORT", None)


def build_environ(
    request: Request, *, script_name: str = "", multiprocess: bool = False,
    errors: Any = None, template: dict[str, Any] | None = None,
    keys: BoundedCache[str, str] | None = None,
) -> dict[str, Any]:
    """The PEP 3333 environ for ``request``.  Header fields whose names contain ``_`` are left out (see
    ``environ_key``); repeated fields are joined with ``, `` (``; `` for Cookie).

    ``template`` and ``keys`` are ``WSGIApp``'s speed-ups (the plain path
    gives the same environ: tests/wsgi/test_speedups.py checks it):
    ``template``, an ``environ_template`` to copy instead of building the
    constant keys (``script_name``, ``multiprocess`` and ``errors`` are then
    the template's); ``keys``, header names mapped to their ``environ_key``.
    """
    if template is None:
        template = environ_template(script_name, multiprocess, errors)
    return _fill_environ(request, template, keys)


def _fill_environ(request: Request, template: dict[str, Any], keys: BoundedCache[str, str] | None,
                  fields: LastFields | None = None, last: LastEnviron | None = None) -> dict[str, Any]:
    """``build_environ``'s work: a copy of ``template`` filled for ``request`` (or of the last request's, from
    ``last``), then the request's own keys set.

    ``WSGIApp`` calls it by position (keyword arguments cost a call more).
    ``fields`` and ``last``: ``WSGICaches.fields`` and ``.environ``.
    """
    pairs = request._headers  # header_pairs without the property's call, for the server's tuple
    if type(pairs) is not tuple:
        pairs = request.header_pairs
    key = None
    if last is not None and (key := (pairs, request.raw_path, request.method, request.query_string, request.version,
                                      request.server, request.scheme, request.tls, request.reactor,
                                      template)) == last.key:
        environ = last.environ.copy()
        framed = last.framed
        client = request.client
        if client is not last.client:  # another connection: its own address (see LastEnviron)
            if type(client) is tuple and len(client) >= 2:  # _set_client's (host, port), without its call
                environ["REMOTE_ADDR"] = str(client[0])
                environ["REMOTE_PORT"] = str(client[1])
            else:
                _set_client(environ, client)
    else:
        environ, framed = _environ_of_head(request, pairs, template, keys, fields, last, key)
    if type(request) is SpooledRequest:  # a long body, in a temporary file (evloop.server.bodies)
        environ["wsgi.input"] = request.stream
        length = request.body_length
    else:
        body = request.body
        length = len(body)
        if length:  # else the template's wsgi.input, the shared empty stream: no store
            environ["wsgi.input"] = io.BytesIO(body)
    environ["evloop.request"] = request
    if length or framed:
        # The text of the last length met again (a client posting one size of body) is no new str() (~200
        # instructions; tests/wsgi/test_speedups.py).
        if last is not None and length == last.length:
            environ["CONTENT_LENGTH"] = last.length_text
        else:
            environ["CONTENT_LENGTH"] = text = str(length)
            if last is not None:
                last.length, last.length_text = length, text
    # The request id: a trusted proxy's X-Request-ID, else made (a client's own is replaced).  A request nobody
    # asked yet gets its id made here, as ``Request.request_id`` makes it: 3.11 does not specialize a property
    # read, whose call cost ~900 instructions a request (tests/wsgi/test_speedups.py: the id is the property's).
    request_id = request._request_id
    if request_id is None:
        request_id = request._request_id = next(request_ids.made)
    elif type(request_id) is not str:  # True: a trusted proxy's, read by the property
        request_id = request.request_id
    environ["HTTP_X_REQUEST_ID"] = request_id
    return environ


def _environ_of_head(request: Request, pairs: Any, template: dict[str, Any], keys: BoundedCache[str, str] | None,
                     fields: LastFields | None, last: LastEnviron | None,
                     key: tuple[Any, ...] | None) -> tuple[dict[str, Any], bool]:
    """``_fill_environ`` without a remembered environ: the template's copy filled from the request's head and
    connection, and whether the request is framed; remembered in ``last`` when ``key`` came twice running."""
    raw_path = request.raw_path
    path_info = raw_path if "%" not in raw_path and raw_path.isascii() else _path_info(raw_path)
    script_name = template["SCRIPT_NAME"]
    if script_name and (path_info == script_name or path_info.startswith(script_name + "/")):
        path_info = path_info[len(script_name):]
    server = request.server
    if isinstance(server, tuple) and len(server) >= 2:
        server_name, server_port = str(server[0]), str(server[1])
    else:
        server_name, server_port = _server_from_host(request)
    environ = template.copy()  # a dict copy, not nine constants stored anew (measured: see WSGIApp)
    environ["REQUEST_METHOD"] = request.method
    environ["PATH_INFO"] = path_info
    environ["QUERY_STRING"] = request.query_string
    environ["SERVER_NAME"] = server_name
    environ["SERVER_PORT"] = server_port
    environ["SERVER_PROTOCOL"] = request.version
    environ["wsgi.url_scheme"] = request.scheme
    environ["evloop.reactor"] = request.reactor
    client = request.client
    _set_client(environ, client)
    if request.tls is not None:
        environ.update(request.tls.cgi_variables())  # HTTPS=on and mod_ssl's SSL_* (SSL_CLIENT_S_DN, ...)
    # The pairs as received: read through Headers, a lookup would build its index.
    if fields is not None and pairs is fields.pairs:
        items, framed = fields.found
    else:
        items, framed = found = header_fields(pairs, keys)
        if fields is not None and type(pairs) is tuple:  # a tuple: the same object holds the same pairs
            fields.pairs, fields.found = pairs, found
    environ.update(items)
    if last is not None and type(pairs) is tuple:  # a tuple: the same object holds the same pairs
        if key == last.seen:  # the same sources twice running: remembered (see LastEnviron)
            last.key, last.environ, last.framed, last.client = key, environ, framed, client
            environ = environ.copy()  # the app's own: the memo's stays as it was made
        last.seen = key
    return environ, framed


# The keys build_environ sets for every request: WSGIApp's template holds
# them too, as None, so that its copy has room for them all and each store
# replaces a value instead of growing the dict (two resizes a request):
# load/bench_instructions.py wsgi-keepalive 61,904 -> 60,252.  (REMOTE_PORT,
# set for a client address only, is not among them: a placeholder would have
# to be taken out again for a Unix socket's client.)
_REQUEST_KEYS = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL",
                 "wsgi.url_scheme", "evloop.request", "evloop.reactor", "REMOTE_ADDR",
                 "HTTP_X_REQUEST_ID")
