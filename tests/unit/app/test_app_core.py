"""evloop.app: Headers, Request, Response, FileBody, the router, the access log."""

import pytest

from evloop.app import App, FileBody, Headers, Request, Response, split_target
from evloop.http.target import decode_path, target_parts
from evloop.logline import format_access_log


def req(method="GET", target="/", headers=(), body=b"", **kw):
    return Request(method=method, target=target, headers=list(headers), body=body, **kw)


# ------------------------------------------------------------------- Headers


def test_headers_case_insensitive_multi_and_order():
    raw = [("Host", "a"), ("X-Foo", "1"), ("x-foo", "2"), ("Accept", "*/*")]
    h = Headers(raw)
    assert h.get("host") == "a"
    assert h.get("X-FOO") == "1"
    assert h.get_all("x-Foo") == ["1", "2"]
    assert h.get_all("missing") == []
    assert h.get("missing") is None
    assert h.get("missing", "d") == "d"
    assert "HOST" in h and "nope" not in h and 3 not in h
    assert list(h) == raw
    assert h.items() == raw
    assert h.raw is raw  # kept as given: raw names, order
    assert len(h) == 4
    assert h["accept"] == "*/*"
    with pytest.raises(KeyError):
        h["nope"]


def test_headers_get_all_returns_a_copy():
    h = Headers([("A", "1")])
    h.get_all("a").append("x")
    assert h.get_all("a") == ["1"]


# ------------------------------------------------------------------- Request


@pytest.mark.parametrize(
    "target, raw_path, path, qs",
    [
        ("/", "/", "/", ""),
        ("/a%20b/c?x=1&y=", "/a%20b/c", "/a b/c", "x=1&y="),
        ("/caf%C3%A9", "/caf%C3%A9", "/café", ""),
        ("/a%2Fb", "/a%2Fb", "/a/b", ""),
        ("/%25", "/%25", "/%", ""),
        ("/q?", "/q", "/q", ""),
        ("http://example.com/p%21?a=b", "/p%21", "/p!", "a=b"),
        ("http://example.com", "/", "/", ""),
        ("*", "*", "*", ""),
        ("example.com:443", "example.com:443", "example.com:443", ""),
    ],
)
def test_request_target_decoding(target, raw_path, path, qs):
    r = req(target=target)
    assert r.target == target
    assert r.raw_path == raw_path
    assert r.path == path
    assert r.query_string == qs


def test_split_target():
    assert split_target("/a?b?c") == ("/a", "b?c")


TARGETS = ["/", "/a/b", "/a?b=1", "/a?", "/a%20b", "/a%2Fb?x=%20", "/%FF%C3", "*", "http://h/a?b", "http://h",
           "h:80", "/a#f", "//x"]


@pytest.mark.parametrize("target", TARGETS)
def test_target_parts_are_the_split_and_the_decoded_path(target):
    """target_parts (its shortcut for plain paths included) against the plain steps."""
    raw_path, query_string = split_target(target)
    assert target_parts(target) == (raw_path, decode_path(raw_path), query_string)


@pytest.mark.parametrize("target", TARGETS)
def test_request_given_parts_equals_request_computing_them(target):
    """The server passes a head's target_parts; a request made without them computes the same."""
    given = Request("GET", target, "HTTP/1.1", (), b"", None, None, "http", None, None, target_parts(target))
    plain = Request("GET", target)
    fields = ("raw_path", "path", "query_string", "target")
    assert [getattr(given, f) for f in fields] == [getattr(plain, f) for f in fields]


def test_request_invalid_utf8_is_surrogate_escaped_losslessly():
    r = req(target="/%FF%C3")
    assert r.path.encode("utf-8", "surrogateescape") == b"/\xff\xc3"


def test_request_query_multi_valued_and_blank():
    r = req(target="/s?a=1&a=2&b=&c&d=x%20y+z")
    assert r.query == {"a": ["1", "2"], "b": [""], "c": [""], "d": ["x y z"]}
    assert req(target="/s").query == {}


def test_request_fields_and_defaults():
    r = req(
        "POST", "/x", [("Content-Type", "text/plain")], b"hi",
        client=("10.0.0.1", 5000), server=("127.0.0.1", 8080), reactor="R", version="HTTP/1.0",
    )
    assert (r.method, r.version, r.body, r.client, r.server, r.reactor, r.scheme) == (
        "POST", "HTTP/1.0", b"hi", ("10.0.0.1", 5000), ("127.0.0.1", 8080), "R", "http"
    )
    assert r.headers.get("content-type") == "text/plain"
    assert r.path_params == {}
    assert not hasattr(r, "__dict__")  # __slots__


def test_request_accepts_headers_object():
    h = Headers([("A", "1")])
    assert list(req(headers=()).headers.raw) == []
    assert Request(method="GET", target="/", headers=h).headers is h


def test_respond_calls_responder_once():
    sent = []
    r = req(responder=sent.append)
    assert not r.responded
    resp = Response(200, body=b"x")
    r.respond(resp)
    assert sent == [resp] and r.responded
    with pytest.raises(RuntimeError, match="twice"):
        r.respond(Response())
    assert sent == [resp]


def test_respond_without_responder_or_with_wrong_type():
    with pytest.raises(RuntimeError):
        req().respond(Response())
    with pytest.raises(TypeError):
        req(responder=lambda r: None).respond(b"not a response")


# ------------------------------------------------------------------ Response


def test_response_bytes_body():
    r = Response(201, [("X-A", "1")], b"abc")
    assert (r.status, r.headers, r.body, r.content_length) == (201, [("X-A", "1")], b"abc", 3)


def test_response_defaults():
    r = Response()
    assert (r.status, r.headers, r.body, r.content_length) == (200, [], b"", 0)


def test_response_str_body_is_utf8_text():
    r = Response(body="héllo")
    assert r.body == "héllo".encode()
    assert r.content_length == 6
    assert ("Content-Type", "text/plain; charset=utf-8") in r.headers


def test_response_str_body_keeps_given_content_type():
    r = Response(body="<p>", content_type="text/html; charset=utf-8")
    assert [v for n, v in r.headers if n == "Content-Type"] == ["text/html; charset=utf-8"]
    r = Response(headers=[("content-type", "text/csv")], body="a,b")
    assert [v for n, v in r.headers if n.lower() == "content-type"] == ["text/csv"]


def test_response_bytearray_and_memoryview():
    assert Response(body=bytearray(b"ab")).body == b"ab"
    assert Response(body=memoryview(b"abc")).body == b"abc"


def test_response_content_type_twice_is_error():
    with pytest.raises(ValueError):
        Response(headers=[("Content-Type", "a/b")], content_type="c/d")


def test_response_dict_headers():
    r = Response(headers={"X-A": "1"}, body=b"")
    assert r.headers == [("X-A", "1")]


def test_response_iterable_streams_with_declared_length():
    chunks = [b"ab", b"cd"]
    r = Response(200, [("Content-Length", "4")], iter(chunks))
    assert r.content_length == 4
    assert all(n.lower() != "content-length" for n, _ in r.headers)
    assert b"".join(r.body) == b"abcd"
    r = Response(200, None, (c for c in chunks))
    assert r.content_length is None


def test_response_content_length_must_match_bytes():
    assert Response(headers=[("Content-Length", "3")], body=b"abc").headers == []
    with pytest.raises(ValueError):
        Response(headers=[("Content-Length", "4")], body=b"abc")
    with pytest.raises(ValueError):
        Response(headers=[("Content-Length", "-1")], body=iter([]))
    with pytest.raises(ValueError):
        Response(headers=[("Content-Length", "1"), ("Content-Length", "2")], body=iter([]))


@pytest.mark.parametrize(
    "name, value",
    [("X-A", "a\r\nSet-Cookie: x"), ("X-A", "a\nb"), ("X-A", "a\0"), ("X A", "1"), ("X:A", "1"), ("", "1")],
)
def test_response_rejects_header_injection(name, value):
    with pytest.raises(ValueError):
        Response(headers=[(name, value)])


@pytest.mark.parametrize("status", [99, 600, 999, 1000, "200", 200.0])
def test_response_rejects_bad_status(status):
    with pytest.raises(ValueError):
        Response(status)


def test_response_rejects_unknown_body_type():
    with pytest.raises(TypeError):
        Response(body=123)


def test_response_json_and_text():
    r = Response.json({"a": [1, "é"]}, status=201)
    assert r.status == 201 and r.body == '{"a":[1,"é"]}'.encode()
    assert ("Content-Type", "application/json") in r.headers
    r = Response.text("hi", 404, [("X", "1")])
    assert r.body == b"hi" and r.status == 404
    assert r.headers == [("X", "1"), ("Content-Type", "text/plain; charset=utf-8")]


def test_response_close_calls_generator_close():
    state = []

    def gen():
        try:
            yield b"a"
            yield b"b"
        finally:
            state.append("closed")

    r = Response(body=gen())
    assert next(iter(r.body)) == b"a"
    r.close()
    assert state == ["closed"]
    Response(body=b"x").close()  # no-op


def test_file_body(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"0123456789")
    f = open(p, "rb")
    fb = FileBody(f, 3)
    assert (fb.offset, fb.count) == (3, 7)
    r = Response(body=fb)
    assert r.content_length == 7
    r.close()
    assert f.closed
    f = open(p, "rb")
    seen = []
    fb = FileBody(f, 2, 4, on_close=lambda: seen.append(1))
    assert fb.count == 4
    fb.close()
    assert f.closed and seen == [1]
    fb.close()  # idempotent
    assert seen == [1]
    with open(p, "rb") as f, pytest.raises(ValueError):
        FileBody(f, -1)


# -------------------------------------------------------------------- router


def make_app():
    app = App()
    calls = []

    @app.route("/")
    def index(request):
        calls.append(("index",))
        return Response(body=b"home")

    @app.route("/items/{id}", methods=["GET", "POST"])
    def item(request, id):
        calls.append(("item", request.method, id))
        return Response(body=id.encode())

    @app.route("/items/special")
    def special(request):
        return Response(body=b"special")

    @app.route("/files/{rest:path}")
    def files(request, rest):
        return Response(body=rest.encode())

    @app.route("/u/{a}/x/{b}", methods=["PUT"])
    def two(request, a, b):
        return Response(body=f"{a}|{b}".encode())

    @app.route("/later")
    def later(request):
        return None

    return app, calls


def call(app, method, target, **kw):
    return app(req(method, target, **kw))


def test_router_exact_and_params():
    app, calls = make_app()
    assert call(app, "GET", "/").body == b"home"
    assert call(app, "GET", "/items/42").body == b"42"
    assert call(app, "POST", "/items/42?x=1").body == b"42"
    assert calls[-1] == ("item", "POST", "42")
    assert call(app, "GET", "/items/special").body == b"special"
    assert call(app, "PUT", "/u/1/x/2").body == b"1|2"


def test_router_param_is_decoded_and_path_params_set():
    app, _ = make_app()
    r = req("GET", "/items/a%20b")
    assert app(r).body == b"a b"
    assert r.path_params == {"id": "a b"}


def test_router_segment_param_does_not_cross_slashes():
    app, _ = make_app()
    assert call(app, "GET", "/items/a/b").status == 404
    assert call(app, "GET", "/items/").status == 404
    assert call(app, "GET", "/items/a%2Fb").status == 404  # decoded before routing


def test_router_path_param_takes_the_rest():
    app, _ = make_app()
    assert call(app, "GET", "/files/a/b/c.txt").body == b"a/b/c.txt"
    assert call(app, "GET", "/files/").body == b""
    assert call(app, "GET", "/files").status == 404


def test_router_404():
    app, _ = make_app()
    r = call(app, "GET", "/nope")
    assert r.status == 404 and r.body == b"Not Found\n"


def test_router_405_with_allow():
    app, _ = make_app()
    r = call(app, "DELETE", "/items/1")
    assert r.status == 405
    assert dict(r.headers)["Allow"] == "GET, HEAD, POST, OPTIONS"
    r = call(app, "POST", "/")
    assert r.status == 405 and dict(r.headers)["Allow"] == "GET, HEAD, OPTIONS"


def test_router_405_merges_methods_of_all_matching_routes():
    app, _ = make_app()
    # /items/special matches the literal (GET) and the pattern (GET, POST).
    assert call(app, "POST", "/items/special").body == b"special"  # via the pattern: id="special"
    r = call(app, "DELETE", "/items/special")
    assert dict(r.headers)["Allow"] == "GET, HEAD, OPTIONS, POST"


def test_router_head_goes_to_get_handler():
    app, calls = make_app()
    assert call(app, "HEAD", "/items/7").body == b"7"
    assert calls[-1] == ("item", "HEAD", "7")
    assert call(app, "HEAD", "/u/1/x/2").status == 405  # PUT only


def test_router_explicit_head_handler_wins():
    app = App()
    app.add_route("/h", lambda r: Response(body=b"get"), ["GET"])
    app.add_route("/h", lambda r: Response(body=b"head"), ["HEAD"])
    assert call(app, "HEAD", "/h").body == b"head"
    assert dict(call(app, "PUT", "/h").headers)["Allow"] == "GET, HEAD, OPTIONS"


def test_router_options():
    app, _ = make_app()
    r = call(app, "OPTIONS", "/items/1")
    assert r.status == 204 and dict(r.headers)["Allow"] == "GET, HEAD, POST, OPTIONS"
    assert call(app, "OPTIONS", "/nope").status == 404


def test_router_deferred_handler_returns_none():
    app, _ = make_app()
    assert call(app, "GET", "/later") is None


def test_router_methods_case_and_duplicates():
    app = App()
    app.add_route("/x", lambda r: Response(), ["get"])
    assert call(app, "GET", "/x").status == 200
    with pytest.raises(ValueError):
        app.add_route("/x", lambda r: Response(), ["GET"])
    with pytest.raises(TypeError):
        app.add_route("/y", lambda r: Response(), "GET")


@pytest.mark.parametrize("pattern", ["nope", "/a/{b", "/a/{b:int}", "/{a}/{a}", "/a/b}"])
def test_router_bad_patterns(pattern):
    with pytest.raises(ValueError):
        App().add_route(pattern, lambda r: Response())


def test_router_literal_text_is_escaped():
    app = App()
    app.add_route("/a.b/{x}", lambda r, x: Response(body=x.encode()))
    assert call(app, "GET", "/a.b/1").status == 200
    assert call(app, "GET", "/aXb/1").status == 404


def test_would_accept():
    app, _ = make_app()
    assert app.would_accept("POST", "/items/1?x=y")
    assert app.would_accept("HEAD", "/")
    assert app.would_accept("OPTIONS", "/items/1")
    assert app.would_accept("GET", "/items/a%20b")
    assert not app.would_accept("POST", "/")
    assert not app.would_accept("POST", "/nope")
    assert not app.would_accept("OPTIONS", "/nope")


def test_route_decorator_returns_handler():
    app = App()

    def h(request):
        return Response()

    assert app.route("/z")(h) is h


# ---------------------------------------------------------------- access log


def test_access_log_common_log_format():
    line = format_access_log(
        "127.0.0.1", "GET", "/a?b=1", "HTTP/1.1", 200, 13, 0.00125, "10/Oct/2000:13:55:36 +0000"
    )
    assert line == '127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a?b=1 HTTP/1.1" 200 13 0.001250'


def test_access_log_zero_size_and_no_client():
    line = format_access_log(None, "HEAD", "/", "HTTP/1.0", 304, 0, 0.5, "t")
    assert line == '- - - [t] "HEAD / HTTP/1.0" 304 - 0.500000'


def test_access_log_escapes_quotes_and_controls():
    line = format_access_log("h", "GET", '/"x\\\x1b\u00e9', "HTTP/1.1", 400, None, 0, "t")
    assert '"GET /\\x22x\\x5C\\x1B\\xE9 HTTP/1.1"' in line
    assert "\x1b" not in line


def test_access_log_escapes_the_client_field_spaces_too():
    line = format_access_log('9.9.9.9 - - [x] "GET', "GET", "/", "HTTP/1.1", 200, 1, 0, "t")
    assert line.startswith('9.9.9.9\\x20-\\x20-\\x20[x]\\x20\\x22GET - - [t] "GET / HTTP/1.1" 200 1 ')
    assert format_access_log("2001:db8::1", "GET", "/", "HTTP/1.1", 200, 1, 0, "t").startswith("2001:db8::1 - - [t]")


def test_access_log_escapes_past_latin1_as_utf8_bytes():
    line = format_access_log("h", "GET", "/\u4e2d\udcff", "HTTP/1.1", 200, 1, 0, "t")
    assert '"GET /\\xE4\\xB8\\xAD\\xED\\xB3\\xBF HTTP/1.1"' in line


def test_router_falls_through_to_later_pattern_for_method():
    app = App()
    app.add_route("/n/{k}", lambda r, k: Response(body=b"post " + k.encode()), ["POST"])
    app.add_route("/{a}/{b}", lambda r, a, b: Response(body=f"get {a} {b}".encode()), ["GET"])
    assert call(app, "GET", "/n/1").body == b"get n 1"
    assert call(app, "POST", "/n/1").body == b"post 1"
    r = call(app, "PUT", "/n/1")
    assert r.status == 405 and dict(r.headers)["Allow"] == "POST, OPTIONS, GET, HEAD"


def test_router_first_registered_pattern_wins():
    app = App()
    app.add_route("/x/{a}", lambda r, a: Response(body=b"first"))
    app.add_route("/{b}/{c}", lambda r, b, c: Response(body=b"second"))
    assert call(app, "GET", "/x/1").body == b"first"
    assert call(app, "GET", "/y/1").body == b"second"


def test_router_many_patterns_and_late_registration():
    app = App()
    for i in range(50):
        app.add_route(f"/r{i}/{{id}}/{{rest:path}}", lambda r, id, rest, i=i: Response(body=f"{i}:{id}:{rest}".encode()))
    assert call(app, "GET", "/r49/a/b/c").body == b"49:a:b/c"
    assert call(app, "GET", "/r7/x/").body == b"7:x:"
    app.add_route("/late/{z}", lambda r, z: Response(body=z.encode()))  # after the first match
    assert call(app, "GET", "/late/q").body == b"q"
    assert call(app, "GET", "/r50/a/b").status == 404


def test_router_regex_metacharacters_in_literals():
    app = App()
    app.add_route("/(?P<z>x)/{q}", lambda r, q: Response(body=q.encode()))
    assert call(app, "GET", "/(%3FP<z>x)/7").body == b"7"
    assert call(app, "GET", "/x/7").status == 404


def test_router_params_may_hold_decoded_newlines():
    app = App()
    app.add_route("/f/{name}/{rest:path}", lambda r, name, rest: Response(body=(name + "|" + rest).encode()))
    assert call(app, "GET", "/f/a%0Ab/c%0A").body == b"a\nb|c\n"


def test_content_types_taken_without_a_check_pass_the_check():
    # Response skips check_field for the content types it knows (a speed-up):
    # each must be one the check accepts, and go out as given.
    from evloop.app import _VALID_CONTENT_TYPES
    from evloop.http.fields import check_field

    for content_type in _VALID_CONTENT_TYPES:
        check_field("Content-Type", content_type)
        assert Response(200, body=b"x", content_type=content_type).headers == [("Content-Type", content_type)]
    with pytest.raises(ValueError):
        Response(200, body=b"x", content_type="text/plain\r\nX-Injected: 1")


def test_one_and_several_path_parameters_reach_the_handler():
    router = App()
    router.add_route("/one/{a}", lambda request, a: Response(200, body=a.encode()))
    router.add_route("/two/{a}/{b}", lambda request, a, b: Response(200, body=(a + b).encode()))
    assert router.resolve("GET", "/one/x")[1] == {"a": "x"}
    assert router.resolve("GET", "/two/x/y")[1] == {"a": "x", "b": "y"}
    assert router(Request("GET", "/two/x/y")).body == b"xy"
