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
   received: ``wsgi.input`` is a ``BytesIO`` over a short one (an empty
   stream shared by the requests without one), or the
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
   A list or tuple of bytes (the common ``[b"body"]``) needs no pulling:
   it goes out with its Content-Length, joined into one write with the
   head when it is at most 64 KiB, else streamed element by element.
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
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from evloop.app import FileBody, Request, Response
from evloop.http.caches import BoundedCache, CacheStats
from evloop.http.fields import check_field, parse_content_length
from evloop.http.parser import list_elements
from evloop.http.writer import custom_status_line, reason_phrase
from evloop.wsgi_environ import (
    _REQUEST_KEYS,
    SERVER_SOFTWARE,
    FileWrapper,
    LastEnviron,
    LastFields,
    _fill_environ,
    build_environ,
    environ_key,
    environ_template,
    header_fields,
)

__all__ = ["SERVER_SOFTWARE", "FileWrapper", "WSGIApp", "WSGICaches", "build_environ", "check_head", "environ_key",
           "environ_template", "header_fields"]

logger = logging.getLogger("evloop.wsgi")

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
     "te", "trailer", "trailers", "transfer-encoding", "upgrade"}
)




# What start_response makes of a status and header list: (status, reason or
# None, the fields without Content-Length, the declared Content-Length or None).
_Head = tuple[int, "str | None", tuple[tuple[str, str], ...], "int | None"]


def check_head(status: str, headers: list[tuple[str, str]], warned: set[str]) -> _Head:
    """start_response's checks of ``status`` and ``headers``: the plain path, raising on what cannot be sent.

    Hop-by-hop fields are dropped (the first of each name is logged, and
    added to ``warned``), but for ``Connection: close``; Content-Length is
    taken out and parsed, as ``Response`` would.
    """
    if not isinstance(status, str):
        raise TypeError(f"status must be str, got {type(status).__name__}")
    code, _, reason = status.partition(" ")
    if len(code) != 3 or not code.isdigit() or not code.isascii():
        raise ValueError(f"invalid WSGI status {status!r}")
    status_code = int(code)
    if not 100 <= status_code <= 599:  # as Response() says it: a logged 500, never a wire "999"
        raise ValueError(f"invalid status {status_code} (RFC 9110 15: 100 to 599)")
    if not isinstance(headers, list):
        raise TypeError(f"headers must be a list, got {type(headers).__name__}")
    kept: list[tuple[str, str]] = []
    lengths = []
    for item in headers:
        if type(item) is not tuple or len(item) != 2:
            raise TypeError(f"header must be a (name, value) tuple: {item!r}")
        name, value = item
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"header name and value must be str: {item!r}")
        check_field(name, value)  # the wire's rules: refused here, so the client gets a 500
        lname = name.lower()
        if lname == "content-length":
            lengths.append(value)
            continue
        if lname in _HOP_BY_HOP:
            if lname == "connection" and _asks_to_close(value) and ("Connection", "close") not in kept:
                # The one hop-by-hop wish the server can grant: the
                # connection ends after this response.
                kept.append(("Connection", "close"))
            elif lname not in warned:
                warned.add(lname)
                logger.warning("dropping the hop-by-hop response header %s: %s (PEP 3333: the server "
                               "manages the connection and the framing; logged once per name)", name, value)
            continue
        kept.append((name, value))
    declared = None
    if lengths:
        try:
            declared = parse_content_length(lengths)
        except ValueError as exc:
            raise ValueError(f"WSGI app sent an invalid Content-Length: {exc}") from None
    # Kept unless it is the standard phrase or none: then the server's ready-made status line serves.
    phrase = None if not reason or reason == reason_phrase(status_code) else reason
    if phrase is not None:
        custom_status_line(status_code, phrase)  # ValueError for a CR, LF or control
    return status_code, phrase, tuple(kept), declared


class WSGICaches:
    """The speed-ups of one ``WSGIApp``, bounded; each a pure speed-up of a plain path.

    ``heads`` -- what ``check_head`` made of a ``(status, tuple(headers))``
        seen before: an app answers with the same few heads, and a hit is one
        lookup instead of the type checks, the field matches and the
        Content-Length parse (which ``Response()`` then did again).
    ``keys`` -- request header names to their environ keys (``environ_key``).
    ``fields`` -- what ``header_fields`` made of the last request's header
        pairs, for the next with the same (``LastFields``): one entry.
    ``last_head`` -- the last head ``heads`` gave, for a start_response with
        an equal status and list (``LastHead``): one entry, in front of ``heads``.
    ``environ`` -- the last request's environ before its per-request keys,
        for the next with the same head over the same connection
        (``LastEnviron``): one entry.

    ``remember_fields=False`` leaves out ``fields`` and ``environ``,
    ``max_heads=0`` ``heads`` and ``last_head``.  What each saves was
    measured with load/bench_instructions.py (see ``WSGIApp``).
    ``disabled()`` holds nothing: every step takes the plain path.
    """

    __slots__ = ("heads", "keys", "fields", "environ", "last_head")

    def __init__(self, *, max_heads: int = 256, max_keys: int = 256, remember_fields: bool = True) -> None:
        self.heads: BoundedCache[tuple[str, tuple[tuple[str, str], ...]], _Head] = BoundedCache("wsgi_heads", max_heads)
        self.keys: BoundedCache[str, str] = BoundedCache("wsgi_keys", max_keys)
        self.fields = LastFields() if remember_fields else None
        self.environ = LastEnviron() if remember_fields else None
        self.last_head = LastHead() if max_heads else None

    @classmethod
    def disabled(cls) -> WSGICaches:
        return cls(max_heads=0, max_keys=0, remember_fields=False)

    def stats(self) -> list[CacheStats]:
        return [self.heads.stats(), self.keys.stats()]


class LastHead:
    """start_response's last status and header list, and what ``check_head`` made of them (``WSGICaches.last_head``).

    An app answers request after request with the same head: the list it
    passes equals the last one, which a comparison in C finds with no key
    made and hashed (``caches.heads`` is looked up by ``(status, tuple(headers))``).
    load/bench_instructions.py wsgi-keepalive 46,897 -> 45,379 (see ``WSGIApp``).
    """

    __slots__ = ("status", "headers", "head")

    def __init__(self) -> None:
        self.status: object = object()  # equal to no status: the first call takes the plain path
        self.headers: list[tuple[str, str]] = []
        self.head: _Head = (200, None, (), None)


_NO_WRITES = ()  # a call's ``pending`` before its first write()
_new_object = object.__new__  # _Call made without the class's __new__ looked up (~210 instructions a call)
_refcount = sys.getrefcount
# The longest body a spare call (``WSGIApp._spare_call``) may keep alive until the next request.
_SPARE_BODY_MAX_BYTES = 64 * 1024


class _Call(Response):
    """One application call, and the response it makes: start_response and write() fill it in.

    The call's state (``started``, ``headers_sent``, what ``write()`` was
    given) lives on the ``Response`` the server is handed, so a call makes one
    object, not two: ``WSGIApp.__call__`` sets the body and returns the call
    itself (a call of ``WSGIApp`` on a hello, counted with callgrind: 31,212
    -> 29,775 instructions against a ``Response.checked`` made from a
    separate call object; see ``WSGIApp``).  The server
    sees an ordinary ``Response``; the app's later calls of start_response
    or write() cannot change what was sent (see the module docstring).
    """

    __slots__ = ("declared", "headers_sent", "pending", "started", "app")
    # Set by start_response (status, reason, headers, declared) and by
    # WSGIApp.__call__ (body, content_length): read only once ``started`` is
    # True; not stored by a constructor.
    declared: int | None
    # Set by WSGIApp.__call__, which makes it: a class without __init__.
    app: WSGIApp
    headers_sent: bool
    started: bool
    # What write() was given: ``_NO_WRITES`` until its first call (most apps
    # never make one), then the list ``writes()`` made.
    pending: list[bytes] | tuple[()]

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
        caches = self.app.caches
        last = caches.last_head
        head: _Head | None
        # A list is compared element by element in C, with no key made nor hashed.
        if last is not None and status == last.status and type(headers) is list and headers == last.headers:
            head = last.head
        else:
            heads = caches.heads
            head = None
            key = None
            if type(headers) is list:  # a tuple of pairs would hash as the list's key does, and is refused
                try:
                    key = (status, tuple(headers))
                    head = heads.entries.get(key)
                except TypeError:  # an unhashable status or pair: never valid, check_head says why
                    key = None
            if head is None:
                heads.misses += 1
                head = check_head(status, headers, self.app.warned)
                if key is not None:
                    heads.put(key, head)
            if last is not None and key is not None:
                # A copy of the list: the app may change its own.
                last.status, last.headers, last.head = status, headers.copy(), head
        self.status, self.reason, fields, self.declared = head
        self.headers = [*fields]  # the response's own list (the cache's tuple stays as it is); no call of list()
        self.started = True
        return self.write

    def write(self, data: bytes) -> None:
        if not self.started:
            raise RuntimeError("write() before start_response()")
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"write() needs bytes, got {type(data).__name__}")
        if data:
            self.headers_sent = True
            self.writes().append(bytes(data))

    def writes(self) -> list[bytes]:
        """The list of what write() was given, made on first need: the body iterator shares it.

        A call starts with the empty tuple ``_NO_WRITES`` in its place, not a
        list of its own: a list made and freed each request that no write()
        fills (see ``WSGIApp``).
        """
        pending = self.pending
        if isinstance(pending, tuple):
            pending = self.pending = []
        return pending


def _asks_to_close(connection: str) -> bool:
    """Does a Connection field value hold the ``close`` option (RFC 9110 7.6.1)?"""
    return "close" in list_elements(connection.lower())


class _WSGIBody:
    """The rest of an app iterable, as a body iterator with ``close()``."""

    __slots__ = ("_pending", "_taken", "_iterable", "_iterator", "_first", "_closed")

    def __init__(self, pending: list[bytes], iterable: Any, iterator: Iterator[bytes] | None,
                 first: bytes | None) -> None:
        # What write() was given, sent first: the call's list, not the call (the
        # response), which holds this body: no reference cycle.  Non-empty only
        # while it holds chunks not yet taken (``_take_pending``).
        self._pending = pending
        self._taken = 0
        self._iterable = iterable
        self._iterator = iterator  # None: the iterable is exhausted
        self._first = first
        self._closed = False

    def __iter__(self) -> _WSGIBody:
        return self

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        pending = self._pending
        if pending:
            return self._take_pending()
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
                    return self._take_pending()
                if chunk:
                    return chunk
        except StopIteration:
            self._iterator = None
            if pending:
                return self._take_pending()
            self.close()
            raise
        except BaseException:
            self.close()
            raise

    def _take_pending(self) -> bytes:
        """The oldest chunk given to write() and not taken yet.

        Taken by index, not with ``list.pop(0)``, which moves every later item:
        an app that writes a row at a time made its response quadratic
        (twice the write() calls cost 3.5 to 4.1 times the CPU, from 20,000 to
        160,000 calls, the loop held all the while; now 2 times:
        tests/wsgi/test_write_callable.py).  The list is cleared once every
        chunk is taken.
        """
        pending = self._pending
        taken = self._taken
        chunk = pending[taken]
        taken += 1
        if taken == len(pending):
            pending.clear()
            taken = 0
        else:
            pending[taken - 1] = b""  # the chunk's memory goes now, not with the list
        self._taken = taken
        return chunk

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


def _file_body(result: FileWrapper, call: _Call) -> FileBody | None:
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
    if call.declared is not None:
        count = min(count, call.declared)
    return FileBody(filelike, offset, count, on_close=getattr(result, "close", None))


class WSGIApp:
    """Adapter from a WSGI application to an evloop app; see the module docstring.

    ``script_name``: the mount prefix (SCRIPT_NAME). ``multiprocess``: the
    value of ``wsgi.multiprocess`` (True when running several workers).
    ``errors``: a stream for ``wsgi.errors`` (default: the ``evloop.wsgi``
    logger).  ``caches``: the ``WSGICaches`` (default: a new one).

    The speed-ups, each checked against the plain path by
    tests/wsgi/test_speedups.py, measured in instructions a request with
    load/bench_instructions.py wsgi-keepalive (the raw app of
    load/bench/peers/wsgi_app.py; 123,089 before any of them, 59,003 with
    all), each against the same code without it:

    - ``caches.heads``: start_response's checks once per distinct head, and
      the Response built from them without a second check
      (``Response.checked``): 83,870 -> 59,003;
    - the environ a copy of ``environ_template``: 64,744 -> 59,003;
    - ``caches.keys``, header names to environ keys: 64,399 -> 58,704;
    - besides: Content-Length and Transfer-Encoding seen in the one pass over
      the fields (no ``Headers`` index built), one ``wsgi.errors`` stream per
      app rather than one a request, ``[b"body"]`` sent without a call.

    Later, measured the same way from 64,433: a bodiless request's shared
    ``wsgi.input`` and the request id made from bytes, -2,300 (62,110); a
    plain ASCII path taken as PATH_INFO without a call, 62,207 -> 61,904;
    the template's placeholders for every request's keys (``_REQUEST_KEYS``),
    61,904 -> 60,252; ``_Call`` without the four stores start_response
    makes, 60,252 -> 60,034.

    Then (issue 18 again), measured per call of ``WSGIApp`` on a hello
    request: the environ filled by a positional call (``_fill_environ``,
    no keyword arguments) 30,733 -> 30,071; ``[b"body"]`` framed in
    ``__call__`` -> 29,556; ``_Call`` without an ``__init__`` -> 29,070
    (wsgi-keepalive 59,962 -> 58,644); ``caches.fields``, the environ
    items of the last header pairs, 29,070 -> 28,466, and for the browser
    head of load/bench/browser.py (13 fields) 50,390 -> 36,547 (against
    all of these undone).  Filling the environ with one
    ``update`` from a dict display instead of the stores was tried: a
    request cost ~4,400 more.

    Then (the WSGI per-request path, from wsgi-keepalive 54,158, wsgi-echo4k
    82,238): the call object as the Response (``_Call``), 31,212 -> 29,775
    a call of ``WSGIApp``; ``caches.environ``, the last request's environ
    copied for a repeated request on a keep-alive connection, wsgi-keepalive
    51,688 -> 45,379, wsgi-echo4k 80,000 -> 75,253; ``caches.last_head``,
    wsgi-keepalive 46,897 -> 45,379 (each against the final code without
    it).  In all wsgi-keepalive 54,158 -> 45,379, wsgi-echo4k
    82,238 -> 75,253; the whole server (load/server_instructions.py,
    ``--no-access-log``, each build through ``--src``) 70,673 -> 61,926 and
    99,621 -> 90,577, wsgi-close 132,858 -> 131,806 (its connections' one request never hits
    ``caches.environ``).  Tried and left: splitting the memo in a head's and
    a connection's items, each merged with ``dict.update``, saved a third of
    what the one memo saves.

    Stop 33 (glue: ``PYTHONHASHSEED=0 load/bench_instructions.py --reads 300
    900 --manual-clock``): ``_fill_environ`` reads the server's tuple of pairs
    without the ``header_pairs`` property's call, and a remembered environ's
    path no longer passes the head's (``_environ_of_head``, a call of its own
    on a miss), with ``write()``'s list made on its first call
    (``_Call.writes``): wsgi-keepalive 44,005 -> 42,925.

    Stop 34 (same glue command): ``_Call`` made by ``object.__new__`` bound
    once (not looked up on the class), start_response's list made by
    ``[*fields]`` (no call of ``list``), and a bodiless request's
    ``wsgi.input`` the template's (no store): wsgi-keepalive 42,971 ->
    42,245.  Tried and left: remembering the REMOTE_ADDR and REMOTE_PORT texts
    of up to 1,024 clients (a hello over 100 connections in turn 45,500 ->
    44,397), as the whole server's wsgi-close, a new client each request,
    paid more (116,643 -> 121,076).

    Stop 35 (same glue command, from wsgi-keepalive 40,345, wsgi-echo4k
    56,485, wsgi-close 70,981): a new request's id made by ``_fill_environ``
    (a property read is left unspecialized by 3.11) and the app called from
    a local, -740; a remembered environ's REMOTE_ADDR and REMOTE_PORT for
    another connection set without ``_set_client``'s call (a loop of
    ``_fill_environ`` over 1,000 clients in turn 10,378 -> 9,936); the
    response set in one tail of ``__call__`` for every body, so
    ``[b"body"]`` makes no call of its own (-340): wsgi-keepalive 39,300,
    wsgi-close 69,911.  Tried and left: a cache of port-number texts
    (REMOTE_PORT), 1,000 clients in turn 9,936 -> 9,645 but a new client each
    request 9,674 -> 10,949.

    Stop 36 (same glue command, from wsgi-keepalive 38,699, wsgi-echo4k
    54,445, wsgi-close 64,558): the last call reused when nothing holds it
    (``_spare_call``; tests/wsgi/test_speedups.py compares it with new
    calls and with an app that keeps its start_response): 37,888, 53,896
    and 63,981; the last CONTENT_LENGTH text given again for the same
    length (``LastEnviron.length_text``), wsgi-echo4k 53,644 -> 53,392;
    the server calling ``serve_request``, not ``__call__`` and its
    ``**path_params`` dict: wsgi-keepalive 38,137 -> 37,660, wsgi-echo4k
    53,392 -> 52,992.  (A docstring's change alone moves these by up to
    ~250: object addresses, and so some dict probes, move with it.)
    """

    def __init__(
        self, app: Callable[..., Iterable[bytes]], *, script_name: str = "",
        multiprocess: bool = False, errors: Any = None, caches: WSGICaches | None = None,
    ) -> None:
        self.app = app
        self.script_name = script_name.rstrip("/")
        self.multiprocess = multiprocess
        self.errors = errors
        self.caches = caches if caches is not None else WSGICaches()
        self.warned: set[str] = set()  # hop-by-hop names already warned about
        self._template = environ_template(self.script_name, multiprocess, errors) | dict.fromkeys(_REQUEST_KEYS)
        # The last request's call, for the next request once nothing else
        # holds it: the server let go of the response and the app kept no
        # start_response or write() (a stale one must never reach a later
        # request's response), which the reference count proves.  Only a
        # call whose body is short bytes is kept (it keeps the body alive
        # until the next request).  A call made and freed each request cost
        # ~550-800 instructions (see Stop 36 in the docstring).
        self._spare_call: _Call | None = None

    def would_accept(self, method: str, target: str) -> bool:
        """Always True: only the app knows, and it cannot be asked without running it."""
        return True

    def __call__(self, request: Request, **_path_params: str) -> Response:
        """The request's response; a router's path parameters are ignored."""
        return self.serve_request(request)

    def serve_request(self, request: Request) -> Response:
        """``__call__`` without a router's ``**path_params``, whose dict every call made (~470 instructions a
        request): what the server calls (``evloop.server.context.app_caller``)."""
        caches = self.caches
        environ = _fill_environ(request, self._template, caches.keys, caches.fields, caches.environ)
        # The last request's call when nothing holds it any more (see
        # ``_spare_call``): its slot, this name and getrefcount's argument.
        call = self._spare_call
        if call is None or _refcount(call) != 3:
            # Made without running Response.__init__, and set here rather than by
            # an __init__ of its own: the call of a Python __init__ cost ~490
            # instructions a request.
            call = _new_object(_Call)
            call.app = self
        call.headers_sent = call.started = False
        call.pending = _NO_WRITES
        app = self.app  # called from a local: 3.11 leaves ``self.app(...)`` of an instance attribute unspecialized
        result = app(environ, call.start_response)
        body: Any
        length: int | None
        # [b"body"], the common answer, is framed here without _response's
        # call (~500 instructions a request; tests/wsgi/test_speedups.py
        # holds it to what _response makes of a one-item tuple).
        if not (type(result) is list and len(result) == 1 and call.started and not call.pending
                and type(body := result[0]) is bytes
                and ((length := len(body)) == call.declared or call.declared is None)):
            try:
                body, length = self._response(call, result)
            except BaseException:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                raise
        # The call is the response to send (the body and its length checked
        # above, as Response.checked takes them), set here for every kind of
        # body, without a call of its own (~370 instructions a request); its
        # head counts as sent from now on.
        call.headers_sent = True
        call.body = body
        call.content_length = length
        if type(body) is bytes and length <= _SPARE_BODY_MAX_BYTES:  # type: ignore[operator]
            self._spare_call = call
        return call

    def _response(self, call: _Call, result: Any) -> tuple[Any, int | None]:
        """The body to send for the app's ``result`` and its length (None: unknown, the body is streamed)."""
        result_type = type(result)
        if (result_type is list or result_type is tuple) and call.started and not call.pending:
            # A list or tuple of bytes (the common [b"body"]): its length is
            # known, so it goes out with a Content-Length rather than chunked,
            # and a short one in one piece, head and body in one write.
            body, size = _list_body(call, result)
            if size is not None and (call.declared is None or call.declared == size):
                return body, size

        if isinstance(result, FileWrapper) and call.started:
            file_body = _file_body(result, call)
            if file_body is not None:
                return file_body, file_body.count

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
        return _WSGIBody(call.writes(), result, iterator, first), call.declared


_JOIN_MAX_BYTES = 64 * 1024  # a longer list or tuple is streamed as it is (a copy would double its memory)


def _list_body(call: _Call, result: list[Any] | tuple[Any, ...]) -> tuple[Any, int | None]:
    """``(body, length)`` for a list or tuple of bytes: joined when short, else streamed as it is; ``(None, None)``
    when an element is not bytes."""
    size = 0
    for data in result:
        if type(data) is not bytes:
            return None, None
        size += len(data)
    if size <= _JOIN_MAX_BYTES:
        return b"".join(result), size
    return _WSGIBody(call.writes(), result, iter(result), None), size
