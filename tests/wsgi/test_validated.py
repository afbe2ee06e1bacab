"""The WSGI per-request path under ``wsgiref.validate``'s validator, over real keep-alive connections.

The speed-ups of ``evloop.wsgi`` (an environ copied from the last request's,
the last head remembered, the call object as the response) serve the second
and later requests of a keep-alive connection: these tests send each request
several times on one connection with ``http.client``, through PEP 3333's
reference checker, and through apps that change what they were given.
"""

from __future__ import annotations

import http.client

APP = '''
import sys
from wsgiref.validate import validator


def plain(environ, start_response):
    path = environ["PATH_INFO"]
    stream = environ["wsgi.input"]
    if path == "/read":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = stream.read(length)
    elif path == "/readline":
        body = stream.readline() + stream.readline(3) + stream.read(100)
    elif path == "/readlines":
        body = b"".join(stream.readlines())
    elif path == "/iterate":
        body = b"".join(stream)
    else:
        body = b"hello " + environ["REQUEST_METHOD"].encode() + b" " + environ["REMOTE_PORT"].encode()
    write = start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    if path == "/write":
        write(body)
        return []
    return [body]


app = validator(plain)


def hostile(environ, start_response):
    """Validated, then the environ and start_response abused once the response is made."""
    result = app(environ, start_response)
    environ.clear()  # the next request's environ must be whole again
    environ["PATH_INFO"] = "/elsewhere"
    try:
        start_response("500 Oops", [("Content-Type", "text/plain")])  # too late: refused
    except RuntimeError:
        pass
    else:
        sys.exit("a second start_response() was accepted")
    return result
'''

REQUESTS = [
    ("GET", "/", None, None),
    ("POST", "/read", b"line one\nline two\n" * 200, None),
    ("POST", "/readline", b"first\nsecond\nrest", None),
    ("PUT", "/readlines", b"a\nb\nc", None),
    ("POST", "/iterate", b"x\n" * 3000, None),
    ("GET", "/write", None, None),
    ("POST", "/read", b"chunked body", {"Transfer-Encoding": "chunked"}),
]


def run(server) -> None:
    """Each request four times in a row on one keep-alive connection; every answer what the app means."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        for method, path, body, headers in REQUESTS:
            for _ in range(4):
                if headers is not None:  # a chunked body: http.client frames an iterable so
                    conn.request(method, path, body=iter([body]), headers=headers, encode_chunked=True)
                else:
                    conn.request(method, path, body=body)
                port = str(conn.sock.getsockname()[1]).encode()
                response = conn.getresponse()
                data = response.read()
                assert response.status == 200, (path, data)
                assert data == (body if body is not None else b"hello GET " + port), (path, data[:100])
                assert not response.will_close
    finally:
        conn.close()


def assert_clean_log(server) -> None:
    log = server.log_path.read_text(errors="replace")
    for sign in ("AssertionError", "Traceback", "WSGIWarning", "without being closed"):
        assert sign not in log, log[-3000:]


def test_a_validated_app_on_keepalive_connections(serve_wsgi, tmp_path):
    (tmp_path / "validated.py").write_text(APP)
    server = serve_wsgi(tmp_path, "--wsgi", "validated:app")
    for _ in range(2):  # a second connection: its own REMOTE_PORT, not the first one's
        run(server)
    assert_clean_log(server)


def test_an_app_that_abuses_its_environ_and_start_response_leaves_the_next_request_whole(serve_wsgi, tmp_path):
    (tmp_path / "validated.py").write_text(APP)
    server = serve_wsgi(tmp_path, "--wsgi", "validated:hostile")
    run(server)
    assert_clean_log(server)
