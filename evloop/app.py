"""The handler API: Request, Response, and App (the router of ``evloop.routing`` as a server app).

Contract with the server (server.py builds requests and sends responses)
------------------------------------------------------------------------
1. For each complete request the server builds ``Request(method, target,
   version, headers, body, client, server, scheme, reactor, responder,
   parts, tls)`` (by position; the names work as keywords too; ``parts`` is
   the parsed head's ``target_parts``, computed from ``target`` when
   omitted) and calls ``app(request)``.  A body the server spooled to a file
   comes in a ``SpooledRequest`` instead, made over that file.
2. ``app(request)`` returns a ``Response`` or ``None``. ``None`` means the
   handler keeps the request and calls ``request.respond(response)`` later
   (from a timer, another callback, or even before returning); ``respond``
   calls ``responder(response)`` exactly once. A second ``respond`` raises
   ``RuntimeError``. An exception out of ``app(request)`` is the server's to
   turn into a 500.
3. The server sends ``response.status``, ``response.headers`` (a list of
   ``(str, str)``, never containing Content-Length) and frames the body with
   ``response.content_length``:

   - ``bytes``: sent as is; ``content_length == len(body)``.
   - ``FileBody``: ``body.count`` bytes of ``body.file`` from ``body.offset``,
     meant for ``os.sendfile``; ``content_length == body.count``.
   - any other iterable of bytes: streamed. The server calls ``iter(body)``
     and pulls chunks only while its send buffer is below the high water mark.
     Empty chunks may occur and must be skipped (an empty chunk would end a
     chunked body). ``content_length`` is the Content-Length the handler
     declared, or ``None`` (chunked on HTTP/1.1, close-delimited on 1.0).
     The server must not send more than a declared length, and must close
     the connection if the iterable ends short of it.

   Whatever the body, the server calls ``response.close()`` exactly once when
   the response is finished, abandoned (HEAD, 304, error, timeout) or the
   connection dies. It closes the file of a ``FileBody`` and calls ``close()``
   on an iterable that has one (a generator, a WSGI iterable), which is how
   ``finally`` blocks in streaming handlers run.

Paths: ``Request.path`` is the percent-decoded path with
``errors="surrogateescape"``: undecodable UTF-8 bytes become lone surrogates,
so ``path.encode("utf-8", "surrogateescape")`` gives back the exact bytes the
client sent (``os.fsencode`` does the same, so static files with non-UTF-8
names still map). ``raw_path`` is the path as sent, without the query. Routing
uses the decoded path, so ``{name}`` never matches a ``%2F``-encoded slash as
part of one segment; no dot-segment normalisation is done here.

This module imports no ``socket``, ``selectors`` or ``time``.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs

from . import request_ids
from .app_fields import checked_app_fields
from .app_headers import Headers as Headers  # re-exported: defined in its own module
from .http.fields import check_field
from .http.target import split_target, target_parts
from .http.writer import custom_status_line
from .routing import Handler as Handler  # re-exported: handlers were typed from here
from .routing import Router

__all__ = [
    "App",
    "FileBody",
    "Headers",
    "Request",
    "Response",
    "split_target",
]

TEXT_PLAIN = "text/plain; charset=utf-8"
# Content types that are valid field values as written here: ``Response``
# checks any other ``content_type`` (check_field: ~4,300 instructions, a
# third of a Response with a content type; a set lookup ~150).
_VALID_CONTENT_TYPES = frozenset((
    TEXT_PLAIN, "text/plain", "text/html", "text/html; charset=utf-8", "text/css", "text/javascript",
    "application/json", "application/javascript", "application/octet-stream", "application/xml",
    "image/png", "image/jpeg", "image/gif", "image/svg+xml", "image/webp", "image/x-icon",
))


# --------------------------------------------------------------------- request


_NO_PATH_PARAMS: Mapping[str, str] = MappingProxyType({})


class Request:
    """One HTTP request, built by the server.

    Fields: ``method``, ``target`` (as sent), ``path`` (percent-decoded),
    ``raw_path`` (not decoded, no query), ``query`` (``dict[str, list[str]]``,
    parsed on first access, blank values kept), ``query_string``, ``version``,
    ``headers`` (``Headers``, built on first access), ``body`` (bytes),
    ``stream`` (the body as a binary file, see below),
    ``client`` (peer address or None), ``server`` (``(host, port)`` or None),
    ``scheme``, ``reactor``, ``path_params`` (set by the router), ``tls``
    (over HTTPS an ``evloop.net.tls_context.TLSInfo``: ``client_cert``, ``client_subject``,
    ``version``, ``cipher``, ``server_name``; else None).  ``parts``:
    ``(raw_path, path, query_string)`` as ``evloop.http.target.target_parts``
    gives them for ``target`` (a ``RequestHead`` carries them), or None to
    have them computed.

    A body longer than the server's ``body_spool_bytes`` arrives spooled to
    an unnamed temporary file (``stream``): ``request.stream`` is that file,
    seekable, at offset 0 when the handler starts; ``request.body`` reads it
    whole into memory on first access (and keeps it), as Werkzeug's
    ``get_data()`` and Starlette's ``body()`` do, so code written for small
    bodies works unchanged; read ``stream`` in blocks to keep memory
    bounded.  A short body is ``body``, and ``stream`` a ``BytesIO`` over
    it.  The server closes the file when the response is done (or the
    connection is lost); a handler that answers later must read it before.

    The server passes its arguments by position: with keywords the
    constructor takes twice as long (measured: 0.7 against 0.3 us).  Code of
    your own may use keywords.
    """

    __slots__ = (
        "method",
        "target",
        "path",
        "raw_path",
        "query_string",
        "_query",
        "version",
        "_headers",
        "body",
        "client",
        "server",
        "scheme",
        "reactor",
        "path_params",
        "_responder",
        "_responded",
        "tls",
        "_request_id",
        "_stream",
    )
    # A spooled body's file (SpooledRequest), or the BytesIO ``stream`` made
    # over a short body; unset until then.
    _stream: Any

    def __init__(
        self,
        method: str,
        target: str,
        version: str = "HTTP/1.1",
        headers: Headers | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        client: Any = None,
        server: Any = None,
        scheme: str = "http",
        reactor: Any = None,
        responder: Callable[[Response], None] | None = None,
        parts: tuple[str, str, str] | None = None,
        tls: Any = None,
    ) -> None:
        # What every request on one connection shares: set once, kept when
        # the server reuses this object for the connection's next request.
        self.server = server
        self.reactor = reactor
        self._responder = responder
        # Over HTTPS, the connection's evloop.net.tls_context.TLSInfo (version, cipher,
        # SNI name, client_cert and client_subject when one was verified).
        self.tls: Any = tls
        # (raw_path, path, query_string): the server passes a head's target_parts.
        self._renew(method, target, version, headers, body, client, scheme,
                    target_parts(target) if parts is None else parts)

    def _renew(self, method: str, target: str, version: str, headers: Headers | Iterable[tuple[str, str]],
               body: bytes, client: Any, scheme: str, parts: tuple[str, str, str]) -> None:
        """Set what is the request's own: the constructor's work, and the server's when it reuses a request.

        The server reuses a request that nobody kept for the next one on its
        connection (server/h1.py ``_process``); the connection's fields stay:
        five arguments and four stores fewer a request (load/bench_instructions.py:
        pipelined 19,940 -> 19,220, keepalive 29,826 -> 29,110).
        """
        self.method = method
        self.target = target
        self.raw_path, self.path, self.query_string = parts
        self._query: dict[str, list[str]] | None = None
        self.version = version
        # A Headers, or the pairs it will wrap when a handler first asks: most
        # handlers never look, and the wrapper is a third of the constructor.
        self._headers = headers
        self.body = body
        self.client = client
        self.scheme = scheme
        # Set by the router for a route with parameters; a read-only empty
        # mapping until then, shared: most routes have none, and a dict per
        # request cost ~150 instructions (load/bench_instructions.py, pipelined).
        self.path_params: Mapping[str, str] = _NO_PATH_PARAMS
        self._responded = False
        # The request id once asked (see request_id); True while the server
        # trusts the peer's X-Request-ID and nobody has asked.
        self._request_id: str | bool | None = None

    @property
    def body_length(self) -> int:
        """The body's length in bytes (without reading a spooled body)."""
        return len(self.body)

    spooled = False  # True in a SpooledRequest: the body is in a temporary file

    @property
    def stream(self) -> io.BufferedIOBase:
        """The body as a readable, seekable binary file (see the class docstring)."""
        # The slot is not set by the constructor (one store less per request):
        # unset until a handler asks.
        stream: io.BufferedIOBase | None
        try:
            stream = self._stream
        except AttributeError:
            stream = None
        if stream is None:
            body = self.body
            stream = io.BytesIO(body)
            if body:  # the server clears it when it recycles the request; an empty one is never kept
                self._stream = stream
        return stream

    @property
    def headers(self) -> Headers:
        headers = self._headers
        if type(headers) is not Headers:
            if type(headers) is not tuple:
                headers = self._headers = Headers(headers)
                return headers
            # The server's tuple of pairs (read-only), wrapped as it is: Headers(pairs) without the type call
            # and __init__ (callgrind 3,554 -> 1,774 instructions), made here, not by a function of app_headers.py,
            # whose call cost a request that reads a header 443 (load/bench_instructions.py echo4k 46,591 -> 46,148).
            wrapped: Headers = _new_object(Headers)
            wrapped.raw = headers
            wrapped._index = None
            self._headers = wrapped
            return wrapped
        return headers

    @property
    def header_pairs(self) -> tuple[tuple[str, str], ...] | list[tuple[str, str]]:
        """The ``(name, value)`` pairs as received (``headers.raw``), without making the ``Headers``
        wrapper: for code that reads every field once (evloop.wsgi's environ)."""
        headers = self._headers
        if type(headers) is tuple or type(headers) is list:
            return headers
        return self.headers.raw

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            if self.query_string:
                self._query = parse_qs(
                    self.query_string, keep_blank_values=True, errors="surrogateescape"
                )
            else:
                self._query = {}
        return self._query

    @property
    def request_id(self) -> str:
        """This request's id: the ``X-Request-ID`` a trusted proxy sent, else one made here.

        The server trusts the field when it honours the peer's proxy headers
        (``--proxy-headers`` and ``--forwarded-allow-ips``), and when the
        value is 1 to 200 visible ASCII characters; a client's own is not
        believed.  A made id is 32 hex digits, as nginx's ``$request_id``
        (``evloop.request_ids``: a random prefix per process and a counter),
        made on first access: a request nobody asks costs nothing.  It is
        unique across the workers of a server, not secret.
        """
        request_id = self._request_id
        if request_id is None:  # asked first, no proxy to believe: made (a WSGI request always asks, evloop.wsgi)
            request_id = self._request_id = next(request_ids.made)
        elif type(request_id) is not str:  # True: a trusted proxy's X-Request-ID, if it is one
            sent = self.headers.get("x-request-id")
            if sent is not None and 0 < len(sent) <= 200 and sent.isascii() and sent.isprintable() \
                    and " " not in sent and '"' not in sent and "\\" not in sent:
                request_id = sent
            else:
                request_id = next(request_ids.made)
            self._request_id = request_id
        return request_id

    def trust_request_id(self) -> None:
        """Take ``request_id`` from the request's ``X-Request-ID`` (the server calls it for a trusted proxy's)."""
        if self._request_id is None:
            self._request_id = True

    @property
    def responded(self) -> bool:
        """True once ``respond`` has been called."""
        return self._responded

    def respond(self, response: Response) -> None:
        """Send ``response`` for a request whose handler returned None.

        Calls the server's responder once. Raises ``RuntimeError`` on a
        second call or when the request has no responder, ``TypeError`` when
        ``response`` is not a ``Response``.
        """
        if not isinstance(response, Response):
            raise TypeError(f"respond() needs a Response, got {type(response).__name__}")
        if self._responded:
            raise RuntimeError(f"{self.method} {self.target}: respond() called twice")
        if self._responder is None:
            raise RuntimeError(f"{self.method} {self.target}: request has no responder")
        self._responded = True
        self._responder(response)

    @property
    def abandoned(self) -> bool:
        """True once the server gave up on this request (see ``abandon``): a
        handler working on a slow answer may check it and stop."""
        return self._responder is _drop_response

    def abandon(self) -> None:
        """Called by the server when no response to this request can be sent any
        more: the client left, or the handler timeout answered 503 instead.  A
        later ``respond()`` is accepted and its response dropped (closed), quietly."""
        self._responder = _drop_response

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target} {self.version}>"


# The slot under SpooledRequest's ``body`` property.
_BODY_SLOT: Any = Request.__dict__["body"]


class SpooledRequest(Request):
    """A request whose body was spooled to a temporary file (``stream``) by the server.

    ``body`` is a property here, read from the file on its first access; a
    subclass, so that every other request keeps ``body`` a plain slot.  A
    ``__getattr__`` on ``Request`` cost every request ~1,800 instructions
    (load/bench_instructions.py, keepalive: it turns off the interpreter's
    specialised attribute reads for the whole class), and a property there
    would cost every read of ``body`` a Python call.

    The server turns a ``Request`` into one (``spool``) before it renews it
    for a spooled body, and back (``unspool``) when it closes the file, so
    one object per connection serves both kinds (the two have the same slots).
    """

    __slots__ = ()

    spooled = True

    @staticmethod
    def spool(request: Request, file: Any) -> None:
        """Make ``request`` (a plain one) a SpooledRequest over ``file``; ``_renew`` then sets the rest."""
        request.__class__ = SpooledRequest
        request._stream = file

    def unspool(self) -> None:
        """The server closed the file (the response is done): from now on a plain request with an empty body.

        A handler that kept the request finds ``body`` empty, unless it read
        it before; the file it took from ``stream`` is closed.
        """
        if _BODY_SLOT.__get__(self) is None:
            _BODY_SLOT.__set__(self, b"")
        self._stream = None
        self.__class__ = Request  # type: ignore[assignment]

    def _renew(self, method: str, target: str, version: str, headers: Headers | Iterable[tuple[str, str]],
               body: bytes, client: Any, scheme: str, parts: tuple[str, str, str]) -> None:
        super()._renew(method, target, version, headers, body, client, scheme, parts)
        _BODY_SLOT.__set__(self, None)  # not read yet: read from the file on first access

    @property  # the slot, read from the file on first access
    def body(self) -> bytes:
        body: bytes | None = _BODY_SLOT.__get__(self)
        if body is None:  # not read yet
            stream = self._stream
            position = stream.tell()
            stream.seek(0)
            body = stream.read()
            stream.seek(position)
            _BODY_SLOT.__set__(self, body)
        return body

    @body.setter
    def body(self, value: bytes | None) -> None:
        _BODY_SLOT.__set__(self, value)

    @property
    def body_length(self) -> int:
        if _BODY_SLOT.__get__(self) is None:
            return os.fstat(self._stream.fileno()).st_size
        return len(self.body)


def _drop_response(response: Response) -> None:
    """The responder of an abandoned request: the response is released, never sent."""
    response.close()


# -------------------------------------------------------------------- response

_new_object = object.__new__


class FileBody:
    """``count`` bytes of an open binary ``file`` from ``offset``, for sendfile.

    ``count=None`` means up to the end of the file. ``close()`` closes the file
    and then calls ``on_close`` if given (WSGI uses it to close its wrapper).
    """

    __slots__ = ("file", "offset", "count", "_on_close")

    def __init__(
        self,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        if offset < 0:
            raise ValueError(f"negative offset {offset}")
        if count is None:
            count = max(0, os.fstat(file.fileno()).st_size - offset)
        elif count < 0:
            raise ValueError(f"negative count {count}")
        self.file = file
        self.offset = offset
        self.count = count
        self._on_close = on_close

    def close(self) -> None:
        try:
            self.file.close()
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()

    def __repr__(self) -> str:
        return f"<FileBody {getattr(self.file, 'name', self.file)!r} offset={self.offset} count={self.count}>"


class Response:
    """Status, headers and body of a response.

    ``body`` is bytes, str (encoded as UTF-8; Content-Type defaults to
    ``text/plain; charset=utf-8``), a ``FileBody``, or an iterable of bytes.
    ``headers`` is a list of ``(name, value)`` str pairs (a dict or
    ``Headers`` is accepted too). ``content_type`` adds a Content-Type field;
    giving it as well as a Content-Type header is a ``ValueError``.

    A Content-Length header is taken out of ``headers``: for an iterable it
    becomes ``content_length``; for bytes and ``FileBody`` it must agree with
    the body's length (``ValueError`` otherwise). See the module docstring for
    how the server consumes the body and when it calls ``close()``.
    ``reason`` replaces the status line's standard reason phrase (a WSGI
    app's ``299 Very Custom``); a CR, LF or other control in it is a
    ``ValueError``.
    """

    __slots__ = ("status", "headers", "body", "content_length", "reason")

    def __init__(
        self,
        status: int = 200,
        headers: Iterable[tuple[str, str]] | dict[str, str] | Headers | None = None,
        body: Any = b"",
        *,
        content_type: str | None = None,
        reason: str | None = None,
    ) -> None:
        if type(status) is not int or not 100 <= status <= 599:  # RFC 9110 15
            # Refused here, so the app's mistake is a logged 500, never a wire "999".
            raise ValueError(f"invalid status {status!r} (RFC 9110 15: 100 to 599)")
        if headers is None and reason is None and type(body) is bytes and (
                content_type is None or content_type in _VALID_CONTENT_TYPES):
            # The common response, without the general path's decisions (tests/unit/app/test_app_fast_paths.py
            # compares the two): Response(200, body=b"item 1", content_type="text/plain") 6,290 -> 5,860
            # instructions (callgrind; the class call itself, keywords and all, is ~3,400 of them).
            self.status = status
            self.headers: list[tuple[str, str]] = [] if content_type is None else [("Content-Type", content_type)]
            self.body: Any = body
            self.content_length: int | None = len(body)
            self.reason: str | None = None
            return
        if reason is not None:
            custom_status_line(status, reason)  # ValueError for a CR, LF or control, as headers
        if headers is None:
            header_list: list[tuple[str, str]] = []
            declared: int | None = None
            has_content_type = False
        else:
            header_list, declared, has_content_type = checked_app_fields(headers)

        if content_type is not None:
            if has_content_type:
                raise ValueError("content_type given twice (argument and header)")
            if content_type not in _VALID_CONTENT_TYPES:
                check_field("Content-Type", content_type)
            header_list.append(("Content-Type", content_type))
            has_content_type = True

        if isinstance(body, bytes):
            length: int | None = len(body)
        elif isinstance(body, str):
            body = body.encode("utf-8")
            length = len(body)
            if not has_content_type:
                header_list.append(("Content-Type", TEXT_PLAIN))
        elif isinstance(body, (bytearray, memoryview)):
            body = bytes(body)
            length = len(body)
        elif isinstance(body, FileBody):
            length = body.count
        elif hasattr(body, "__iter__"):
            length = declared
        else:
            raise TypeError(f"unsupported body type {type(body).__name__}")
        if declared is not None and length != declared:
            raise ValueError(f"Content-Length {declared} does not match a body of {length} bytes")

        self.status = status
        self.headers = header_list
        self.body = body
        self.content_length = length
        self.reason = reason

    @classmethod
    def checked(cls, status: int, headers: list[tuple[str, str]], body: Any, content_length: int | None,
                reason: str | None = None) -> Response:
        """A Response from parts already checked as the constructor checks them; no check is repeated.

        For adapters that check each distinct head once and remember it
        (``evloop.wsgi``'s start_response cache): ``headers`` hold no
        Content-Length, every field passed ``check_field``, ``reason`` passed
        ``custom_status_line``, ``status`` is 100..599 and ``content_length``
        is the body's length (bytes) or the declared one (an iterable).
        """
        response = cls.__new__(cls)
        response.status = status
        response.headers = headers
        response.body = body
        response.content_length = content_length
        response.reason = reason
        return response

    @classmethod
    def from_bytes(cls, body: bytes, content_type: str | None = None, status: int = 200) -> Response:
        """``Response(status, body=body, content_type=content_type)``, the same response, made cheaper.

        The common one (bytes, a content type known valid) is made without
        the class call with keywords, CPython 3.11's dearest call: callgrind
        ~4,000 instructions against ~5,300.  Anything else (a subclass too)
        is the constructor's, with its checks and errors.
        """
        if cls is Response and type(body) is bytes and type(status) is int and 100 <= status <= 599 and (
                content_type is None or content_type in _VALID_CONTENT_TYPES):
            response = _new_object(cls)  # object.__new__: no __init__ call
            response.status = status
            response.headers = [] if content_type is None else [("Content-Type", content_type)]
            response.body = body
            response.content_length = len(body)
            response.reason = None
            return response
        return cls(status, None, body, content_type=content_type)

    @classmethod
    def text(
        cls,
        text: str,
        status: int = 200,
        headers: Iterable[tuple[str, str]] | None = None,
        *,
        content_type: str = TEXT_PLAIN,
    ) -> Response:
        """A text response encoded as UTF-8."""
        return cls(status, headers, text.encode("utf-8"), content_type=content_type)

    @classmethod
    def json(
        cls, obj: Any, status: int = 200, headers: Iterable[tuple[str, str]] | None = None
    ) -> Response:
        """``obj`` as compact JSON, ``application/json``."""
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return cls(status, headers, body, content_type="application/json")

    def close(self) -> None:
        """Release the body: close a FileBody's file or call the iterable's close()."""
        body = self.body
        if isinstance(body, bytes):
            return
        close = getattr(body, "close", None)
        if close is not None:
            close()

    def __repr__(self) -> str:
        return f"<Response {self.status} {type(self.body).__name__} length={self.content_length}>"


# ---------------------------------------------------------------------- router


class App(Router):
    """A router from ``(method, path)`` to handlers (see ``evloop.routing.Router``); itself a server app.

    ``app(request)`` calls the handler of the route matching the request,
    with the path parameters as keywords (also in ``request.path_params``).
    Unknown path: 404. Known path, other method: 405 with Allow. HEAD goes to
    the GET handler (the server drops the body). OPTIONS on a known path
    without an OPTIONS handler: 204 with Allow.
    """

    def __call__(self, request: Request) -> Response | None:
        # A literal route's answer, made when its handler was added (Router._find_from's first lookup), taken
        # here without the call: ~750 instructions a request (load/bench_instructions.py --manual-clock
        # pipelined 20,278 -> 19,541, keepalive 29,158 -> 28,435).  What they miss goes to Router._search.
        path = request.path
        route = self._exact.get(path)
        if route is not None:
            found = route.found.get(request.method)
            if found is not None and found[0] is not None:  # its handler: never None there
                return found[0](request)
        else:
            # A "/prefix/{name}" route by the path's last segment, as Router._find_from finds it, without
            # that call and its tuple: ~1,000 instructions (callgrind, GET /items/ID; test_app_fast_paths.py).
            prefix, slash, value = path.rpartition("/")
            tail = self._tails.get(prefix)
            if tail is not None and value and slash:
                call = tail.tail_calls.get(request.method)  # (handler, takes the value by position)
                if call is not None:
                    one = request.path_params = {tail.param: value}
                    return call[0](request, value) if call[1] else call[0](request, **one)
        # What Router._find_from does after the two lookups above (the literal route's ``found``, the tail table).
        handler, params, allowed, _ = self._search(request.method, path, route)
        if handler is not None:
            if params:
                request.path_params = params
                return handler(request, **params)
            return handler(request)
        if not allowed:
            return Response(404, None, b"Not Found\n", content_type=TEXT_PLAIN)
        allow = ", ".join(allowed)
        if request.method == "OPTIONS":
            return Response(204, [("Allow", allow)])
        return Response(405, [("Allow", allow)], b"Method Not Allowed\n", content_type=TEXT_PLAIN)
