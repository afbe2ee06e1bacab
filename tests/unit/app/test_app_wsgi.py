"""evloop.wsgi: environ, start_response, write(), close(), file_wrapper, Flask."""

import io
import logging
import sys
import warnings
from wsgiref.validate import validator

import pytest

from evloop.app import FileBody, Request, Response
from evloop.wsgi import FileWrapper, WSGIApp, build_environ


def req(method="GET", target="/", headers=(), body=b"", **kw):
    kw.setdefault("client", ("10.1.2.3", 40000))
    kw.setdefault("server", ("127.0.0.1", 8080))
    return Request(method=method, target=target, headers=list(headers), body=body, **kw)


def consume(response: Response) -> bytes:
    """Read a body the way a server would, and close it."""
    body = response.body
    try:
        if isinstance(body, bytes):
            return body
        if isinstance(body, FileBody):
            body.file.seek(body.offset)
            return body.file.read(body.count)
        out = []
        for chunk in body:
            assert isinstance(chunk, bytes)
            out.append(chunk)
        return b"".join(out)
    finally:
        response.close()


def run(app, request=None, *, validate=True, **kw):
    wrapped = WSGIApp(validator(app) if validate else app, **kw)
    response = wrapped(request or req())
    return response, consume(response)


def hdr(response, name):
    for n, v in response.headers:
        if n.lower() == name.lower():
            return v
    return None


# ------------------------------------------------------------------- environ


def capture_environ(request, **kw):
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        seen["body"] = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    response, body = run(app, request, **kw)
    assert body == b"ok"
    return seen


def test_environ_basics():
    env = capture_environ(
        req(
            "POST", "/a%20b/c%2Fd?x=1&y=%20", version="HTTP/1.1",
            headers=[("Host", "example.com:8080"), ("Content-Type", "application/x-www-form-urlencoded"),
                     ("Content-Length", "3"), ("X-Multi", "a"), ("x-multi", "b"), ("Accept", "*/*")],
            body=b"a=1",
        )
    )
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/a b/c/d"
    assert env["QUERY_STRING"] == "x=1&y=%20"
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert env["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["SERVER_NAME"] == "127.0.0.1" and env["SERVER_PORT"] == "8080"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "10.1.2.3" and env["REMOTE_PORT"] == "40000"
    assert env["HTTP_HOST"] == "example.com:8080"
    assert env["HTTP_X_MULTI"] == "a, b"
    assert env["HTTP_ACCEPT"] == "*/*"
    assert env["wsgi.version"] == (1, 0)
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is False
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    assert env["wsgi.file_wrapper"] is FileWrapper
    assert env["body"] == b"a=1"


def test_environ_path_info_is_latin1_bytes_as_str():
    env = capture_environ(req(target="/caf%C3%A9"))
    assert env["PATH_INFO"] == "/caf\u00c3\u00a9"
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café"
    env = capture_environ(req(target="/%FF"))
    assert env["PATH_INFO"] == "/\u00ff"


def test_environ_skips_underscore_headers():
    env = capture_environ(req(headers=[("X-Forwarded-For", "1.1.1.1"), ("X_Forwarded_For", "6.6.6.6")]))
    assert env["HTTP_X_FORWARDED_FOR"] == "1.1.1.1"


def test_environ_cookies_joined_with_semicolon():
    env = capture_environ(req(headers=[("Cookie", "a=1"), ("Cookie", "b=2")]))
    assert env["HTTP_COOKIE"] == "a=1; b=2"


def test_environ_no_content_length_for_bodyless_get():
    env = capture_environ(req())
    assert "CONTENT_LENGTH" not in env


def test_environ_chunked_body_gets_content_length():
    env = capture_environ(req("POST", "/", headers=[("Transfer-Encoding", "chunked")], body=b"hello"))
    assert env["CONTENT_LENGTH"] == "5" and env["body"] == b"hello"


def test_environ_server_from_host_when_no_sockname():
    env = capture_environ(req(server=None, client=None, headers=[("Host", "h.example:81")]))
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("h.example", "81")
    assert env["REMOTE_ADDR"] == "" and "REMOTE_PORT" not in env
    env = capture_environ(req(server=None, headers=[("Host", "[::1]")]))
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("[::1]", "80")
    env = capture_environ(req(server=None, scheme="https"))
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("localhost", "443")


def test_environ_script_name_and_options():
    env = capture_environ(req(target="/mount/x/y"), script_name="/mount/", multiprocess=True)
    assert env["SCRIPT_NAME"] == "/mount" and env["PATH_INFO"] == "/x/y"
    assert env["wsgi.multiprocess"] is True
    env = capture_environ(req(target="/mountain"), script_name="/mount")
    assert env["PATH_INFO"] == "/mountain"


def test_environ_exposes_request_and_reactor():
    r = req(reactor="R")
    env = build_environ(r)
    assert env["evloop.request"] is r and env["evloop.reactor"] == "R"


def test_wsgi_errors_go_to_logger(caplog):
    def app(environ, start_response):
        environ["wsgi.errors"].write("something bad\npartial")
        environ["wsgi.errors"].writelines([" line\n"])
        environ["wsgi.errors"].flush()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    with caplog.at_level(logging.ERROR, logger="evloop.wsgi"):
        run(app)
    assert [r.getMessage() for r in caplog.records if r.name == "evloop.wsgi"] == [
        "wsgi.errors: something bad",
        "wsgi.errors: partial line",
    ]


def test_wsgi_errors_custom_stream():
    stream = io.StringIO()

    def app(environ, start_response):
        environ["wsgi.errors"].write("to stream")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return []

    run(app, errors=stream)
    assert stream.getvalue() == "to stream"


# ------------------------------------------------------------------ responses


def test_simple_list_response_is_bytes():
    def app(environ, start_response):
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-A", "1")])
        return [b"hello"]

    response, body = run(app, validate=False)  # the validator would hide the list
    assert response.status == 201 and body == b"hello"
    assert isinstance(response.body, bytes) and response.content_length == 5
    assert hdr(response, "X-A") == "1"


def test_app_content_length_kept():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
        return iter([b"abc", b"def"])

    response, body = run(app)
    assert response.content_length == 6 and body == b"abcdef"


def test_streamed_iterable_is_lazy_and_has_no_length():
    produced = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            for i in range(3):
                produced.append(i)
                yield b"chunk %d\n" % i

        return gen()

    wrapped = WSGIApp(validator(app))
    response = wrapped(req())
    assert response.content_length is None
    assert produced == [0]  # only the first chunk was pulled to find the head
    it = iter(response.body)
    assert next(it) == b"chunk 0\n"
    assert produced == [0]
    assert next(it) == b"chunk 1\n"
    assert produced == [0, 1]
    assert consume(response) == b"chunk 2\n"


def test_start_response_inside_generator_and_empty_chunks_skipped():
    def app(environ, start_response):
        yield b""
        start_response("202 Accepted", [("Content-Type", "text/plain")])
        yield b""
        yield b"late"
        yield b""
        yield b"r"

    # PEP 3333 allows start_response as late as the first non-empty chunk;
    # wsgiref.validate is stricter, so this app runs without it.
    response, body = run(app, validate=False)
    assert response.status == 202 and body == b"later"


def test_empty_body_iterable():
    def app(environ, start_response):
        start_response("204 No Content", [])
        return iter([])

    response, body = run(app)
    assert response.status == 204 and body == b""


def test_head_with_declared_length_and_empty_body():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100")])
        return []

    response, body = run(app, req("HEAD"))
    assert response.content_length == 100 and body == b""


def test_hop_by_hop_headers_dropped():
    def app(environ, start_response):
        start_response("200 OK", [("Connection", "upgrade"), ("Transfer-Encoding", "chunked"), ("Keep-Alive", "x"),
                                  ("X-Ok", "1")])
        return [b"x"]

    response, _ = run(app, validate=False)
    assert response.headers == [("X-Ok", "1")]


@pytest.mark.parametrize("values", [["close"], ["Keep-Alive, CLOSE"], ["upgrade", "close", "close"]])
def test_connection_close_is_kept_once(values):
    def app(environ, start_response):
        start_response("200 OK", [("Connection", value) for value in values] + [("X-Ok", "1")])
        return [b"x"]

    response, _ = run(app, validate=False)
    assert response.headers == [("Connection", "close"), ("X-Ok", "1")]


def test_legacy_write_data_comes_first():
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"one ")
        write(b"two ")
        return [b"three"]

    response, body = run(app)
    assert body == b"one two three"


def test_write_from_inside_generator_keeps_order():
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"a")
        yield b"b"
        write(b"c")
        yield b"d"
        write(b"e")

    response, body = run(app, validate=False)  # validator would hide the generator's writes order
    assert body == b"abcde"


def test_missing_start_response_is_error():
    closed = []

    class Body:
        def __iter__(self):
            yield b"data"

        def close(self):
            closed.append(True)

    with pytest.raises(RuntimeError, match="start_response"):
        WSGIApp(lambda e, s: Body())(req())
    assert closed == [True]
    with pytest.raises(RuntimeError):
        WSGIApp(lambda e, s: [])(req())


def test_start_response_twice_without_exc_info_is_error():
    def app(environ, start_response):
        start_response("200 OK", [])
        start_response("500 Oops", [])
        return []

    with pytest.raises(RuntimeError, match="twice"):
        WSGIApp(app)(req())


@pytest.mark.parametrize("status", ["OK", "20 OK", "2000 OK", b"200 OK"])
def test_bad_status_is_error(status):
    def app(environ, start_response):
        start_response(status, [])
        return []

    with pytest.raises((ValueError, TypeError)):
        WSGIApp(app)(req())


def test_non_bytes_chunk_is_error():
    def app(environ, start_response):
        start_response("200 OK", [])
        return ["text"]

    with pytest.raises(TypeError):
        WSGIApp(app)(req())


def test_header_injection_rejected():
    def app(environ, start_response):
        start_response("200 OK", [("X-A", "a\r\nSet-Cookie: evil=1")])
        return [b""]

    with pytest.raises(ValueError):
        WSGIApp(app)(req())


# ------------------------------------------------------------------- exc_info


def test_exc_info_replaces_headers_before_anything_sent():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Old", "1")])
        try:
            raise ValueError("boom")
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"error page"]

    response, body = run(app)
    assert response.status == 500 and body == b"error page"
    assert hdr(response, "X-Old") is None


def test_exc_info_in_generator_before_first_chunk_replaces_headers():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise KeyError("k")
        except KeyError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        yield b"unavailable"

    response, body = run(app)
    assert response.status == 503 and body == b"unavailable"


def test_exc_info_after_headers_sent_reraises_during_iteration():
    closed = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            yield b"first"
            try:
                raise ValueError("late")
            except ValueError:
                start_response("500 Internal Server Error", [], sys.exc_info())
            yield b"never"
        finally:
            closed.append(True)

    response = WSGIApp(app)(req())
    assert response.status == 200
    it = iter(response.body)
    assert next(it) == b"first"
    with pytest.raises(ValueError, match="late"):
        next(it)
    assert closed == [True]
    response.close()  # harmless after the fact


def test_exc_info_after_write_reraises():
    def app(environ, start_response):
        write = start_response("200 OK", [])
        write(b"sent")
        try:
            raise ValueError("after write")
        except ValueError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"x"]

    with pytest.raises(ValueError, match="after write"):
        WSGIApp(app)(req())


def test_exception_before_first_chunk_propagates_and_closes():
    closed = []

    class Body:
        def __iter__(self):
            raise RuntimeError("broken")

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [])
        return Body()

    with pytest.raises(RuntimeError, match="broken"):
        WSGIApp(app)(req())
    assert closed == [True]


def test_exception_from_app_call_propagates():
    def app(environ, start_response):
        raise LookupError("no")

    with pytest.raises(LookupError):
        WSGIApp(app)(req())


# ---------------------------------------------------------------------- close


class Tracked:
    """An app iterable that records close() calls."""

    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.closed = 0

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        self.closed += 1


def tracked_app(chunks):
    body = Tracked(chunks)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    return app, body


def test_close_called_once_after_full_consumption():
    app, body = tracked_app([b"a", b"b"])
    response = WSGIApp(app)(req())
    assert b"".join(response.body) == b"ab"
    assert body.closed == 1
    response.close()
    assert body.closed == 1


def test_close_that_raises_after_the_last_chunk_is_logged(caplog):
    class Failing(Tracked):
        def close(self):
            super().close()
            raise RuntimeError("close failed")

    body = Failing([b"a", b"b"])

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    response = WSGIApp(app)(req())
    with caplog.at_level(logging.ERROR, logger="evloop.wsgi"):
        assert b"".join(response.body) == b"ab"  # ends as StopIteration, not as the close()'s error
    assert body.closed == 1
    assert "close failed" in caplog.text


def test_close_called_when_consumer_stops_early():
    app, body = tracked_app([b"a", b"b", b"c"])
    response = WSGIApp(validator(app))(req())
    it = iter(response.body)
    assert next(it) == b"a"
    assert body.closed == 0
    response.close()  # the server gave up (client gone, HEAD, timeout)
    assert body.closed == 1
    with pytest.raises(StopIteration):
        next(it)


def test_close_called_when_never_iterated():
    app, body = tracked_app([b"a", b"b"])
    response = WSGIApp(app)(req("HEAD"))
    response.close()
    assert body.closed == 1


def test_generator_finally_runs_on_early_close():
    state = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            for _ in range(1000):
                yield b"x"
        finally:
            state.append("finally")

    response = WSGIApp(validator(app))(req())
    next(iter(response.body))
    response.close()
    assert state == ["finally"]


def test_close_called_when_iteration_raises():
    closed = []

    class Body:
        def __iter__(self):
            yield b"ok"
            raise OSError("disk")

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [])
        return Body()

    response = WSGIApp(app)(req())
    it = iter(response.body)
    assert next(it) == b"ok"
    with pytest.raises(OSError):
        next(it)
    assert closed == [True]


# --------------------------------------------------------------- file_wrapper


def test_file_wrapper_becomes_filebody(tmp_path):
    p = tmp_path / "big.bin"
    p.write_bytes(b"0123456789" * 100)
    opened = []

    def app(environ, start_response):
        f = open(p, "rb")
        opened.append(f)
        f.seek(10)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f, 4096)

    response, body = run(app)  # through the validator: iterated, same bytes
    assert body == (b"0123456789" * 100)[10:]
    assert opened[0].closed
    opened.clear()

    response = WSGIApp(app)(req())  # the validator would hide the FileWrapper
    assert isinstance(response.body, FileBody)
    assert (response.body.offset, response.body.count, response.content_length) == (10, 990, 990)
    assert consume(response) == (b"0123456789" * 100)[10:]
    assert opened[0].closed


def test_file_wrapper_respects_app_content_length(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"x" * 100)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "30")])
        return environ["wsgi.file_wrapper"](open(p, "rb"))

    response = WSGIApp(app)(req())
    assert isinstance(response.body, FileBody) and response.content_length == 30
    assert all(n.lower() != "content-length" for n, _ in response.headers)
    assert consume(response) == b"x" * 30


def test_file_wrapper_over_non_file_is_iterated():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"in memory" * 3), 4)

    response, body = run(app)
    assert not isinstance(response.body, FileBody)
    assert body == b"in memory" * 3


def test_file_wrapper_after_write_is_iterated(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"file")

    def app(environ, start_response):
        write = start_response("200 OK", [])
        write(b"head-")
        return environ["wsgi.file_wrapper"](open(p, "rb"))

    response, body = run(app, validate=False)
    assert body == b"head-file"


# -------------------------------------------------------------------- Flask


@pytest.fixture
def flask_wsgi(tmp_path):
    flask = pytest.importorskip("flask")
    app = flask.Flask(__name__)
    (tmp_path / "doc.txt").write_bytes(b"document body\n" * 100)

    @app.route("/")
    def index():
        return "Hello from Flask"

    @app.route("/items/<int:item_id>")
    def item(item_id):
        return flask.jsonify(id=item_id, q=flask.request.args.getlist("q"))

    @app.route("/form", methods=["POST"])
    def form():
        return flask.jsonify(name=flask.request.form["name"], tags=flask.request.form.getlist("tag"))

    @app.route("/json", methods=["POST"])
    def echo_json():
        data = flask.request.get_json()
        return flask.jsonify(got=data), 201

    @app.route("/stream")
    def stream():
        def gen():
            for i in range(3):
                yield f"chunk {i}\n"

        return flask.Response(flask.stream_with_context(gen()), mimetype="text/plain")

    @app.route("/missing")
    def missing():
        flask.abort(404)

    @app.route("/teapot")
    def teapot():
        flask.abort(418, description="short and stout")

    @app.route("/crash")
    def crash():
        raise RuntimeError("handler bug")

    @app.route("/file")
    def file():
        return flask.send_file(tmp_path / "doc.txt", mimetype="text/plain")

    @app.route("/cookie")
    def cookie():
        resp = flask.make_response("set")
        resp.set_cookie("k", "v")
        return resp

    @app.route("/redirect")
    def redirect():
        return flask.redirect("/")

    return app


@pytest.fixture
def flask_app(flask_wsgi):
    # wsgiref.validate insists on wsgi.input.read(size), but werkzeug reads
    # to EOF when wsgi.input_terminated is set; it also hides FileWrapper.
    # So the validator wraps Flask only where neither matters.
    return WSGIApp(flask_wsgi)


@pytest.fixture
def flask_validated(flask_wsgi):
    return WSGIApp(validator(flask_wsgi))


def test_flask_routing_and_text(flask_validated):
    response = flask_validated(req(target="/", headers=[("Host", "localhost")]))
    assert response.status == 200
    assert consume(response) == b"Hello from Flask"
    assert hdr(response, "Content-Type") == "text/html; charset=utf-8"


def test_flask_json_and_query(flask_validated):
    import json

    response = flask_validated(req(target="/items/42?q=a&q=b", headers=[("Host", "localhost")]))
    assert response.status == 200
    assert json.loads(consume(response)) == {"id": 42, "q": ["a", "b"]}
    assert hdr(response, "Content-Type") == "application/json"


def test_flask_form_post(flask_app):
    import json

    body = b"name=Ada+Lovelace&tag=x&tag=y"
    response = flask_app(req(
        "POST", "/form", body=body,
        headers=[("Host", "localhost"), ("Content-Type", "application/x-www-form-urlencoded"),
                 ("Content-Length", str(len(body)))],
    ))
    assert response.status == 200
    assert json.loads(consume(response)) == {"name": "Ada Lovelace", "tags": ["x", "y"]}


def test_flask_json_post_chunked(flask_app):
    import json

    response = flask_app(req(
        "POST", "/json", body=b'{"a": [1, 2]}',
        headers=[("Host", "localhost"), ("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
    ))
    assert response.status == 201
    assert json.loads(consume(response)) == {"got": {"a": [1, 2]}}


def test_flask_streaming(flask_validated):
    response = flask_validated(req(target="/stream", headers=[("Host", "localhost")]))
    assert response.status == 200 and response.content_length is None
    chunks = list(response.body)
    response.close()
    assert chunks == [b"chunk 0\n", b"chunk 1\n", b"chunk 2\n"]


def test_flask_abort_and_unknown_route(flask_validated):
    for target, status in (("/missing", 404), ("/nope", 404), ("/teapot", 418)):
        response = flask_validated(req(target=target, headers=[("Host", "localhost")]))
        body = consume(response)
        assert response.status == status, target
    assert b"short and stout" in body


def test_flask_wrong_method_405(flask_validated):
    response = flask_validated(req("DELETE", "/form", headers=[("Host", "localhost")]))
    consume(response)
    assert response.status == 405
    assert "POST" in hdr(response, "Allow")


def test_flask_handler_exception_is_500(flask_validated):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        response = flask_validated(req(target="/crash", headers=[("Host", "localhost")]))
    consume(response)
    assert response.status == 500


def test_flask_send_file_uses_filebody(flask_app):
    response = flask_app(req(target="/file", headers=[("Host", "localhost")]))
    assert response.status == 200
    assert isinstance(response.body, FileBody)
    f = response.body.file
    assert consume(response) == b"document body\n" * 100
    assert f.closed


def test_flask_head_keeps_length_and_drops_body(flask_app):
    response = flask_app(req("HEAD", "/file", headers=[("Host", "localhost")]))
    assert response.status == 200 and response.content_length == 1400
    assert consume(response) == b""


def test_flask_conditional_and_cookie_and_redirect(flask_app):
    response = flask_app(req(target="/cookie", headers=[("Host", "localhost")]))
    consume(response)
    assert hdr(response, "Set-Cookie").startswith("k=v")
    response = flask_app(req(target="/redirect", headers=[("Host", "localhost")]))
    consume(response)
    assert response.status == 302 and hdr(response, "Location") == "/"
    response = flask_app(req(target="/file", headers=[("Host", "localhost")]))
    etag = hdr(response, "ETag")
    consume(response)
    response = flask_app(req(target="/file", headers=[("Host", "localhost"), ("If-None-Match", etag)]))
    consume(response)
    assert response.status == 304


def test_wsgiapp_would_accept():
    assert WSGIApp(lambda e, s: []).would_accept("DELETE", "/anything")


def test_wsgiapp_as_routed_handler():
    from evloop.app import App

    def wsgi(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["SCRIPT_NAME"].encode() + b"|" + environ["PATH_INFO"].encode()]

    app = App()
    app.add_route("/legacy/{rest:path}", WSGIApp(validator(wsgi), script_name="/legacy"), ["GET", "POST"])
    response = app(req(target="/legacy/a/b"))
    assert consume(response) == b"/legacy|/a/b"
