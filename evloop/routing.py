"""The route table: URL patterns with path parameters, matched to handlers by method.

A pattern is a decoded path holding ``{name}`` (one non-empty segment) and
``{name:path}`` (the rest of the path) parameters.  Literal patterns are found
in a dict; the others are joined into one regex with a branch per pattern, so
a path costs one C-level scan however many routes there are.  A pattern
that is a literal prefix and one last segment (``/items/{item_id}``) is also
found by that prefix in a dict, when no earlier pattern could match its
paths (``Router._tail_table``; ``Router._find`` looks there first).  ``Router``
builds no request and no response: ``evloop.app.App`` is a ``Router`` that
serves requests, answering 404, 405 and OPTIONS itself.

This module imports no ``socket``, ``selectors`` or ``time``.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .http.target import target_parts

if TYPE_CHECKING:
    from .app import Request, Response

__all__ = ["Handler", "Router"]

_NO_PARAMS: Mapping[str, str] = types.MappingProxyType({})
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}")
_CONVERTERS = {None: "[^/]+", "str": "[^/]+", "path": ".*"}
Handler = Callable[..., "Response | None"]
# What Router._find answers: (handler, path_params, allowed, the positional value), see there.
Found = tuple["Handler | None", Mapping[str, str], Sequence[str], "str | None"]


class _Route:
    __slots__ = ("pattern", "regex", "plain", "handlers", "tail", "param", "tail_calls", "found")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.regex, self.plain = _compile(pattern)
        self.handlers: dict[str, Handler] = {}
        # A pattern that is a literal prefix ending in "/" and one segment
        # parameter, "/items/{item_id}": (prefix, name), else None (see Router._tail_table).
        self.tail = _tail_of(pattern) if self.regex is not None else None
        self.param = self.tail[1] if self.tail is not None else ""
        # A tail route's handlers by method, each with whether it takes the
        # tail parameter as its second positional argument (a plain function
        # naming it so): then called without the keyword dict, which cost
        # ~1,500 instructions a call.
        self.tail_calls: dict[str, tuple[Handler, bool]] = {}
        # A literal route's answer to Router._find by method, made once: (handler, {}, (), None).
        self.found: dict[str, Found] = {}

    def lookup(self, method: str) -> Handler | None:
        handler = self.handlers.get(method)
        if handler is None and method == "HEAD":
            handler = self.handlers.get("GET")
        return handler

    def allowed(self) -> list[str]:
        methods = list(self.handlers)
        if "GET" in methods and "HEAD" not in methods:
            methods.insert(methods.index("GET") + 1, "HEAD")
        if "OPTIONS" not in methods:
            methods.append("OPTIONS")
        return methods


def _tail_of(pattern: str) -> tuple[str, str] | None:
    """``(prefix, name)`` of a ``prefix{name}`` pattern (``prefix`` literal, ending in "/"), else None."""
    m = _PARAM.search(pattern)
    if m is None or m.end() != len(pattern) or m.group(2) not in (None, "str"):
        return None
    prefix = pattern[: m.start()]
    return (prefix, m.group(1)) if prefix.endswith("/") and "{" not in prefix and "}" not in prefix else None


def _takes_by_position(handler: Handler, name: str) -> bool:
    """Is ``handler(request, value)`` the same call as ``handler(request, **{name: value})``?

    True for a plain function whose second parameter is ``name`` and may be
    passed by position; anything else (a callable object, a wrapper taking
    ``**kwargs``) is called with the keyword.
    """
    if type(handler) is not types.FunctionType:
        return False
    code = handler.__code__
    return code.co_argcount >= 2 and code.co_posonlyargcount < 2 and code.co_varnames[1] == name


def _compile(pattern: str) -> tuple[re.Pattern[str] | None, str]:
    """Regex for a pattern with ``{name}`` / ``{name:path}`` parts (None if
    literal), and its source with plain groups instead of named ones."""
    parts = []
    plain = []
    names = set()
    pos = 0
    for m in _PARAM.finditer(pattern):
        name, conv = m.group(1), m.group(2)
        if conv not in _CONVERTERS:
            raise ValueError(f"{pattern}: unknown converter {conv!r}")
        if name in names:
            raise ValueError(f"{pattern}: parameter {name!r} used twice")
        names.add(name)
        literal = re.escape(pattern[pos : m.start()])
        # Parameter regexes hold no groups of their own, so group i of the
        # pattern is its i-th parameter (Router._combine relies on it).
        parts += [literal, f"(?P<{name}>{_CONVERTERS[conv]})"]
        plain += [literal, f"({_CONVERTERS[conv]})"]
        pos = m.end()
    if not names:
        if "{" in pattern or "}" in pattern:
            raise ValueError(f"{pattern}: malformed parameter")
        return None, ""
    rest = pattern[pos:]
    if "{" in rest or "}" in rest:
        raise ValueError(f"{pattern}: malformed parameter")
    parts.append(re.escape(rest))
    plain.append(re.escape(rest))
    return re.compile("".join(parts), re.DOTALL), "".join(plain)  # DOTALL: a decoded path may hold "\n"


class Router:
    """A table from ``(method, path)`` to handlers.

    ``@router.route("/items/{id}", methods=["GET", "POST"])`` registers
    ``handler(request, id=...)``. ``{name}`` matches one non-empty path
    segment, ``{name:path}`` the rest of the path, slashes included (possibly
    empty). Literal routes are looked up in a dict first; patterns are tried in
    registration order. HEAD goes to the GET handler.  ``evloop.app.App`` is
    the router as a server app.
    """

    def __init__(self) -> None:
        self._exact: dict[str, _Route] = {}
        self._dynamic: list[_Route] = []
        # Tail routes by their prefix ("/items/" for "/items/{item_id}"),
        # those that no earlier pattern can match before them (see
        # _tail_table): _find finds one with a dict lookup instead of the
        # combined regex.
        self._tails: dict[str, _Route] = {}
        self._combined: re.Pattern[str] | None = None
        self._branches: list[tuple[_Route, list[tuple[str, int]]] | None] = []
        self._by_pattern: dict[str, _Route] = {}
        # ``streams_body(method, target)`` for the server: None until a route
        # streams its body, so an app without one costs its requests nothing.
        # The server reads it when it is given the app: register such routes first.
        self.streams_body: Callable[[str, str], bool] | None = None

    def route(self, pattern: str, methods: Iterable[str] = ("GET",)) -> Callable[[Handler], Handler]:
        """Decorator registering a handler for ``pattern`` and ``methods``."""

        def register(handler: Handler) -> Handler:
            self.add_route(pattern, handler, methods)
            return handler

        return register

    def add_route(self, pattern: str, handler: Handler, methods: Iterable[str] = ("GET",)) -> None:
        """Register ``handler`` for ``pattern``; ``ValueError`` on a duplicate or bad pattern."""
        if isinstance(methods, str):
            raise TypeError("methods must be a list of method names, not a str")
        if not pattern.startswith("/"):
            raise ValueError(f"route pattern must start with '/': {pattern!r}")
        route = self._by_pattern.get(pattern)
        if route is None:
            route = _Route(pattern)
            self._by_pattern[pattern] = route
            if route.regex is None:
                self._exact[pattern] = route
            else:
                self._dynamic.append(route)
                self._combined = None
        for method in methods:
            method = method.upper()
            if method in route.handlers:
                raise ValueError(f"{method} {pattern} registered twice")
            route.handlers[method] = handler
            if route.regex is None:
                route.found[method] = (handler, _NO_PARAMS, (), None)
            if route.tail is not None:
                route.tail_calls[method] = (handler, _takes_by_position(handler, route.param))
        if route.regex is not None:
            self._tails = self._tail_table()

    def _tail_table(self) -> dict[str, _Route]:
        """The tail routes that a path ``prefix + segment`` reaches before any other pattern, by prefix.

        A pattern can match such a path only if its literal start (the text
        before its first parameter) and ``prefix`` are one the other's
        prefix; a tail route is in the table when no pattern registered
        before it has such a start, so it is the combined regex's first
        match for every path it matches.
        """
        tails: dict[str, _Route] = {}
        starts: list[str] = []
        for route in self._dynamic:
            start = route.pattern[: route.pattern.index("{")]
            tail = route.tail
            if tail is not None and not any(s.startswith(tail[0]) or tail[0].startswith(s) for s in starts):
                tails[tail[0][:-1]] = route  # by the prefix without its last "/", as _find_from cuts a path
            starts.append(start)
        return tails

    def websocket(
        self, pattern: str, *, plain: Handler | None = None
    ) -> Callable[[Callable[[Request], Any]], Callable[[Request], Any]]:
        """Decorator registering a WebSocket endpoint for GET ``pattern``.

        The decorated object is a ``evloop.websocket.WebSocketHandler``
        subclass, or any callable ``factory(request)`` returning a handler:
        one is made per upgrade request (path parameters are in
        ``request.path_params``).  A GET without ``Upgrade: websocket`` goes
        to ``plain(request, **params)`` when given, else gets 426.  WSGI apps
        cannot serve WebSockets (WSGI has no way to hand over a connection).
        """
        from .websocket import WebSocketRoute  # the WebSocket layer is loaded only by apps that use it

        def register(factory: Callable[[Request], Any]) -> Callable[[Request], Any]:
            self.add_route(pattern, WebSocketRoute(factory, plain), ["GET"])
            return factory

        return register

    def stream_request_body(
        self, pattern: str, methods: Iterable[str] = ("POST", "PUT")
    ) -> Callable[[Callable[[Request], Any]], Callable[[Request], Any]]:
        """Decorator registering a route that takes its request body as it arrives.

        The decorated object is an ``evloop.streamed_body.BodyReceiver``
        subclass, or any callable ``factory(request)`` returning one: one is
        made per request, when its head arrives (path parameters are in
        ``request.path_params``).  See ``evloop.streamed_body`` for the
        receiver's methods and backpressure.
        """
        from .streamed_body import StreamedBodyRoute  # loaded only by apps that use it

        def register(factory: Callable[[Request], Any]) -> Callable[[Request], Any]:
            self.add_route(pattern, StreamedBodyRoute(factory), methods)
            self.streams_body = self._streams_body
            return factory

        return register

    def _streams_body(self, method: str, target: str) -> bool:
        """Does the route of this request take its body as it arrives?  Asked at the head of a request with a body."""
        handler, _, _ = self.resolve(method, target_parts(target)[1])
        return getattr(handler, "streams_body", False) is True

    def resolve(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], list[str]]:
        """``(handler, path_params, allowed)`` for a decoded path.

        ``handler`` is None when nothing matches: then ``allowed`` lists the
        methods of the routes matching the path (empty: 404; else 405).
        """
        handler, params, allowed, _ = self._find(method, path)
        return handler, dict(params), list(allowed)  # the caller's own: find() may share them

    def _find(self, method: str, path: str) -> Found:
        """``resolve()``'s answer, without its copies, and how to call the handler: the one place a path is resolved.

        The fourth item is the value of the path's one parameter when the
        handler takes it as its second positional argument (``App`` calls
        ``handler(request, value)``; a keyword call cost ~1,500 instructions
        more), else None.  The mappings and lists returned may be shared
        between calls: read them, never change them.

        Two lookups come before the combined regex: a literal route, and a
        "/prefix/{name}" route found by the path's last segment when
        ``_tail_table`` says that is the match the regex would find
        (callgrind: the demo's GET /items/ID through App 18,660 -> 14,000
        instructions; tests/unit/app/test_app_fast_paths.py checks it against the regex).
        ``App.__call__`` makes the same two lookups itself, without this
        call, its tuple and their unpacking (~750 instructions for a literal
        route, ~1,000 for a tail route), and sends what they miss to
        ``_search``; tests/unit/app/test_app_fast_paths.py compares its
        answers with ``_search``'s and ``resolve()``'s.
        """
        return self._find_from(method, path, self._exact.get(path))

    def _find_from(self, method: str, path: str, route: _Route | None) -> Found:
        """``_find()`` once the literal route of ``path`` is looked up (``route``).

        The path is cut at its last "/" by one ``rpartition`` (the tail table
        is keyed by the prefix without that "/"): ~1,200 instructions less
        than a search and two slices (load/bench_instructions.py --manual-clock browser).
        """
        if route is not None:
            found = route.found.get(method)  # (handler, {}, (), None), made when the handler was added
            if found is not None:
                return found
        else:
            prefix, slash, value = path.rpartition("/")
            tail = self._tails.get(prefix)
            if tail is not None and value and slash:
                call = tail.tail_calls.get(method)  # (handler, takes the value by position)
                if call is not None:
                    return call[0], {tail.param: value}, (), value if call[1] else None
        return self._search(method, path, route)

    def _search(self, method: str, path: str, exact: _Route | None) -> Found:
        """``_find()`` for the paths its lookups leave: HEAD served by GET, a pattern, 404 or 405."""
        allowed: list[str] = []
        if exact is not None:
            handler = exact.lookup(method)
            if handler is not None:
                return handler, {}, allowed, None
            allowed = exact.allowed()
        if not self._dynamic:
            return None, {}, allowed, None
        combined = self._combined or self._combine()
        m = combined.fullmatch(path)
        if m is None:
            return None, {}, allowed, None
        # The first pattern that matches, in registration order (alternation
        # tries its branches in order); its outer group closes last.
        # lastindex is set: every branch is a group, and one of them matched.
        first, params = self._branches[m.lastindex]  # type: ignore[index,misc]
        handler = first.lookup(method)
        if handler is not None:
            if len(params) == 1:
                # One parameter, the common route: no comprehension to run
                # (callgrind: ~1,500 instructions less a request).
                ((name, index),) = params
                return handler, {name: m[index]}, allowed, None
            return handler, {name: m.group(i) for name, i in params}, allowed, None
        # Wrong method on the first match: the slow path looks at every
        # matching pattern, for a handler or for the Allow list.
        for route in self._dynamic:
            m = route.regex.fullmatch(path)  # type: ignore[union-attr]
            if m is None:
                continue
            handler = route.lookup(method)
            if handler is not None:
                return handler, m.groupdict(), [], None
            for name in route.allowed():
                if name not in allowed:
                    allowed.append(name)
        return None, {}, allowed, None

    def _combine(self) -> re.Pattern[str]:
        """One regex with a branch per pattern: a single C-level scan per request."""
        branches = []
        self._branches = [None]  # indexed by group number: (route, [(param, group)])
        for route in self._dynamic:
            regex = route.regex
            assert regex is not None
            outer = len(self._branches)
            params = [(name, outer + i) for name, i in regex.groupindex.items()]
            self._branches.append((route, params))
            self._branches.extend([None] * regex.groups)
            # Group names must be unique in one regex: turn each parameter
            # into a plain group, found again by number.
            branches.append(f"({route.plain})")
        self._combined = re.compile("|".join(branches), re.DOTALL)
        return self._combined

    def would_accept(self, method: str, target: str) -> bool:
        """Would ``app(request)`` reach a handler (or answer OPTIONS)?

        ``target`` is the raw request-target (``RequestHead.target``). The
        server uses this for ``Expect: 100-continue``: when it is False the
        request gets its final 404/405 without a 100 and without reading the
        body. Other apps may lack this method; treat that as True.
        """
        handler, _, allowed = self.resolve(method, target_parts(target)[1])
        return handler is not None or (method == "OPTIONS" and bool(allowed))
