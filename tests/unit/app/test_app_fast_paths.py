"""App's fast paths against the plain ones: a "/prefix/{name}" route found by the path's last segment
(``Router._tail_table``), and a Response with a bytes body and a known content type."""

import pytest

from evloop.app import App, Request, Response


def _recording(name):
    """A handler (a plain function, called by position when it may be) answering with what it was given."""
    def handler(request, item_id=None, **rest):
        return Response(200, body=repr((name, item_id, rest, dict(request.path_params))).encode())
    return handler


def _keyword_only(request, *, item_id):
    return Response(200, body=repr(("keyword", item_id, dict(request.path_params))).encode())


def _positional_only(request, item_id, /):
    return Response(200, body=b"positional only")


def _app() -> App:
    app = App()
    app.add_route("/files/{rest:path}", _recording("files"), ["GET"])
    app.add_route("/items/special{x}", _recording("special"), ["GET"])
    app.add_route("/items/{item_id}", _recording("items"), ["GET", "POST"])
    app.add_route("/items/{other}", _recording("shadowed"), ["PUT"])  # same prefix: never a tail route
    app.add_route("/files/x/{item_id}", _recording("files-x"), ["GET"])  # behind /files/{rest:path}
    app.add_route("/kw/{item_id}", _keyword_only, ["GET"])
    app.add_route("/pos/{item_id}", _positional_only, ["GET"])
    app.add_route("/users/{item_id}", _recording("users"), ["GET"])
    app.add_route("/users/me", _recording("me"), ["GET"])  # a literal route wins
    app.add_route("/a/{item_id:str}", _recording("str"), ["GET"])
    app.add_route("/b/{item_id}/c", _recording("inner"), ["GET"])
    return app


def _plain(app: App, method: str, path: str) -> bytes:
    """What the plain path (a literal route, else the combined regex in registration order) makes of the request:
    Router._search, which Router._find (App's and resolve()'s) falls back to when its lookups find nothing."""
    handler, params, allowed, _ = app._search(method, path, app._exact.get(path))
    if handler is None:
        return b"404" if not allowed else b"405"
    request = Request(method, path)
    request.path_params = params
    try:
        return handler(request, **params).body
    except TypeError as exc:
        return repr(exc).encode()


def _served(app: App, method: str, path: str) -> bytes:
    try:
        response = app(Request(method, path))
    except TypeError as exc:
        return repr(exc).encode()
    assert response is not None
    return b"404" if response.status == 404 else b"405" if response.status == 405 else response.body


PATHS = ["/items/1a", "/items/", "/items", "/items/a/b", "/items/specialx", "/items/special", "/items/a\nb",
         "/items/\udcff", "/files/x/1", "/files/a", "/kw/5", "/pos/5", "/users/me", "/users/you", "/a/b", "/a/",
         "/b/1/c", "/b/1", "/", "/nothing/1", "items/1", "",
         # The same edges under a prefix that is in the tail table (/items/ is not: see the next test).
         "/users/", "/users/a/b", "/users/a\nb", "/users/\udcff", "/users/me/"]


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize("path", PATHS)
def test_tail_routes_serve_what_the_plain_path_finds(method, path):
    app = _app()
    assert _served(app, method, path) == _plain(app, method, path)
    handler, params, allowed = app.resolve(method, path)  # resolve() answers through the same lookups
    plain_handler, plain_params, plain_allowed, _ = app._search(method, path, app._exact.get(path))
    assert (handler, params, allowed) == (plain_handler, plain_params, plain_allowed)


def test_resolve_gives_the_caller_its_own_mappings():
    """Router._find shares a literal route's answer between calls; resolve() copies it."""
    app = _app()
    _, params, allowed = app.resolve("GET", "/users/me")
    params["x"], allowed[:] = "y", ["PATCH"]
    assert app.resolve("GET", "/users/me")[1:] == ({}, [])


def test_the_tail_table_holds_only_routes_nothing_earlier_can_match():
    app = _app()
    # Keyed by the prefix without its last "/": /items/ is behind /items/special{x}
    assert set(app._tails) == {"/kw", "/pos", "/users", "/a"}
    by_position = {prefix: [m for m, (_, by) in route.tail_calls.items() if by] for prefix, route in app._tails.items()}
    assert by_position["/kw"] == by_position["/pos"] == []  # called by keyword
    alone = App()
    alone.add_route("/items/{item_id}", _recording("items"), ["GET"])
    assert set(alone._tails) == {"/items"} and alone._tails["/items"].tail_calls["GET"][1]  # by position
    assert _served(alone, "GET", "/items/7") == _plain(alone, "GET", "/items/7")


@pytest.mark.parametrize("body", [b"", b"item 1", b"x" * 70000])
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json", "text/x-custom"])
@pytest.mark.parametrize("status", [200, 204, 404, 599])
def test_a_plain_bytes_response_is_what_the_general_path_makes(status, body, content_type):
    fast = Response(status, body=body, content_type=content_type)
    general = Response(status, [], body, content_type=content_type)  # a header list: the general path
    assert (fast.status, fast.headers, fast.body, fast.content_length, fast.reason) == (
        general.status, general.headers, general.body, general.content_length, general.reason)
    assert fast.headers is not Response(status, body=body, content_type=content_type).headers  # its own list


def test_a_tail_route_at_the_root_takes_what_the_regex_takes():
    app = App()
    app.add_route("/{name}", _recording("root"), ["GET"])
    for path in ["/abc", "/", "*", "//x", "/a/b"]:
        assert _served(app, "GET", path) == _plain(app, "GET", path), path


def _fields(response):
    return (type(response), response.status, response.headers, response.body, response.content_length,
            response.reason)


@pytest.mark.parametrize("body", [b"", b"item 1", b"x" * 70000, "text", bytearray(b"ba"), iter([b"a"])])
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json", "text/x-custom"])
@pytest.mark.parametrize("status", [200, 204, 599])
def test_from_bytes_makes_what_the_constructor_makes(status, body, content_type):
    """Response.from_bytes's own path (bytes, a known content type) against the general path's response."""
    fast = Response.from_bytes(body, content_type, status)
    general = Response(status, [], body, content_type=content_type)  # a header list: the general path
    if isinstance(body, bytes):
        assert _fields(fast) == _fields(general)
    else:
        assert _fields(fast)[:3] == _fields(general)[:3] and fast.reason is None
    assert fast.headers is not Response.from_bytes(body, content_type, status).headers  # its own list


@pytest.mark.parametrize("args", [(b"x", "text/plain", 99), (b"x", "text/plain", 600), (b"x", "text/plain", "200"),
                                  (b"x", "bad\r\nvalue", 200), (object(), None, 200)])
def test_from_bytes_refuses_what_the_constructor_refuses(args):
    body, content_type, status = args
    with pytest.raises((ValueError, TypeError)) as plain:
        Response(status, body=body, content_type=content_type)
    with pytest.raises(plain.type):
        Response.from_bytes(body, content_type, status)


def test_from_bytes_of_a_subclass_runs_its_constructor():
    class Tagged(Response):
        __slots__ = ("tag",)

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.tag = "made"

    made = Tagged.from_bytes(b"x", "text/plain")
    assert type(made) is Tagged and made.tag == "made" and made.headers == [("Content-Type", "text/plain")]


HEADER_PAIRS = [
    (),
    (("Host", "h"), ("Content-Type", "text/plain")),
    (("host", "h"), ("X-Twice", "1"), ("x-twice", "2"), ("X-Empty", ""), ("CONTENT-TYPE", "a/b")),
    # Names the scan's length test must not skip: U+0130 lowers to two characters, the Kelvin sign to "k";
    # and names of the looked-up names' lengths that differ from them.
    (("\u0130", "dotted"), ("\u212a", "kelvin"), ("Content-Typf", "f"), ("hosu", "u"), ("X-Twice", "1")),
]
LOOKED_UP = ["content-type", "Content-Type", "CONTENT-TYPE", "x-twice", "X-Empty", "host", "absent", "",
             "i\u0307", "\u0130", "k", "K", "\u212a"]


@pytest.mark.parametrize("pairs", HEADER_PAIRS)
@pytest.mark.parametrize("name", LOOKED_UP)
def test_a_first_header_lookup_by_scan_finds_what_the_index_finds(pairs, name):
    from evloop.app_headers import Headers

    for raw in (pairs, list(pairs)):
        scanned = Headers(raw)
        first = scanned.get(name, "default")  # the first lookup: a scan of the pairs
        indexed = Headers(raw)
        assert "anything" not in indexed  # a lookup that builds the index first
        assert first == indexed.get(name, "default")
        assert scanned.get(name, "default") == first  # the second lookup: the index, built now
        assert scanned.get_all(name) == indexed.get_all(name) == [v for n, v in pairs if n.lower() == name.lower()]
        assert (name in scanned) == (name in indexed) == bool(indexed.get_all(name))


@pytest.mark.parametrize("pairs", HEADER_PAIRS)
def test_a_requests_tuple_of_pairs_wrapped_without_the_constructor_is_what_the_constructor_makes(pairs):
    from evloop.app_headers import Headers

    wrapped = Request("GET", "/", headers=pairs).headers  # the server's tuple: wrapped without the constructor
    made = Headers(pairs)
    assert type(wrapped) is Headers and wrapped.raw is pairs and repr(wrapped) == repr(made)
    assert list(wrapped) == list(made) and len(wrapped) == len(made) and wrapped.items() == made.items()
    for name in LOOKED_UP:
        assert wrapped.get(name) == made.get(name) and wrapped.get_all(name) == made.get_all(name)
        assert (name in wrapped) == (name in made)
    assert Request("GET", "/", headers=list(pairs)).headers.raw == list(pairs)  # a list: the constructor's
