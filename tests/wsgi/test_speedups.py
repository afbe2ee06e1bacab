"""Issue 18, item 6: each speed-up of the WSGI path gives what its plain path gives.

- The environ ``WSGIApp`` builds (a copy of its template, header names
  through its cache of environ keys) equals the one ``build_environ`` builds
  plainly for the same request, over TCP, TLS and a Unix socket, for HTTP/1.0
  and 1.1, query strings, encoded paths, bodies, repeated and underscored
  fields and proxy headers; each request is sent twice, so the second meets
  the filled caches.
- What ``start_response`` makes of a head remembered from an earlier call
  equals what ``check_head`` makes of it anew, errors included.
- A list of several bytes is sent with a Content-Length (in one piece when short).
"""

from __future__ import annotations

import io
import json
import socket
import ssl
import sys

import pytest
from support.raw_http import exchange, read_until_close, split_response

from evloop.app import Request, Response
from evloop.wsgi import WSGIApp, WSGICaches, build_environ, check_head, header_fields
from evloop.wsgi_environ import _fill_environ

APP = '''
import json

from evloop.wsgi import build_environ


def app(environ, start_response):
    # The plain path, for the same request: everything built anew, no cache.
    plain = build_environ(environ["evloop.request"], multiprocess=environ["wsgi.multiprocess"],
                          errors=environ["wsgi.errors"])
    bodies = environ["wsgi.input"].read(), plain["wsgi.input"].read()
    fast = {k: v for k, v in environ.items() if k != "wsgi.input"}
    plain = {k: v for k, v in plain.items() if k != "wsgi.input"}
    differences = {k: [repr(fast.get(k)), repr(plain.get(k))] for k in fast.keys() | plain.keys()
                   if fast.get(k) != plain.get(k)}
    if bodies[0] != bodies[1]:
        differences["wsgi.input"] = [repr(b) for b in bodies]
    shown = {k: v for k, v in fast.items() if isinstance(v, str)}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"differences": differences, "environ": shown}).encode()]


def parts(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["PATH_INFO"] == "/long":
        return [b"x" * 40000, b"y" * 40000]
    return [b"Hello, ", b"", b"World!"]
'''

REQUESTS = [
    b"GET /a/b?x=1&y=%20z HTTP/1.1\r\nHost: example.test:8443\r\nCookie: a=1\r\nCookie: b=2\r\n"
    b"X-Multi: one\r\nX-Multi: two\r\nX_Sneaky: no\r\nAccept: */*\r\nConnection: close\r\n\r\n",
    b"GET /caf%C3%A9/%E9t%2Fe? HTTP/1.0\r\nUser-Agent: old\r\n\r\n",
    b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 7\r\nConnection: close\r\n\r\na=1&b=2",
    b"POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    b"PUT /empty HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: [::1]:80\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"
    b"Connection: close\r\n\r\n",
]


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "speedups.py").write_text(APP)
    return tmp_path


def compare(send) -> list[dict[str, str]]:
    """Each request twice through ``send``; no difference either time; the environs seen."""
    seen = []
    for raw in REQUESTS:
        for _ in range(2):
            status, _, body = split_response(send(raw))
            assert status == 200, body
            report = json.loads(body)
            assert report["differences"] == {}, (raw, report["differences"])
            seen.append(report["environ"])
    return seen


def test_environ_over_tcp_with_proxy_headers(serve_wsgi, folder):
    server = serve_wsgi(folder, "--wsgi", "speedups:app", "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1")
    seen = compare(lambda raw: exchange(server.host, server.port, raw))
    first, old, form, chunked, empty, proxied = seen[::2]
    assert (first["PATH_INFO"], first["QUERY_STRING"], first["HTTP_COOKIE"], first["HTTP_X_MULTI"]) == (
        "/a/b", "x=1&y=%20z", "a=1; b=2", "one, two")
    assert "HTTP_X_SNEAKY" not in first and first["SERVER_NAME"] == "127.0.0.1"
    # PEP 3333: the decoded bytes, each as one latin-1 character.
    assert (old["SERVER_PROTOCOL"], old["PATH_INFO"], old["QUERY_STRING"]) == ("HTTP/1.0", "/caf\xc3\xa9/\xe9t/e", "")
    assert (form["CONTENT_LENGTH"], form["CONTENT_TYPE"]) == ("7", "application/x-www-form-urlencoded")
    assert chunked["CONTENT_LENGTH"] == "5" and empty["CONTENT_LENGTH"] == "0"
    assert (proxied["REMOTE_ADDR"], proxied["wsgi.url_scheme"]) == ("203.0.113.9", "https")


def test_environ_over_tls(serve_wsgi, folder, tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    server = serve_wsgi(folder, "--wsgi", "speedups:app", "--certfile", str(tmp_path / "server.pem"))

    def send(raw: bytes) -> bytes:
        with socket.create_connection((server.host, server.port), timeout=5) as plain:
            with client_context.wrap_socket(plain, server_hostname="127.0.0.1") as sock:
                sock.sendall(raw)
                return read_until_close(sock)

    seen = compare(send)
    assert all(environ["wsgi.url_scheme"] == "https" and environ["HTTPS"] == "on" for environ in seen)


def test_environ_over_a_unix_socket(serve_wsgi, folder, tmp_path):
    path = str(tmp_path / "s.sock")
    serve_wsgi(folder, "--wsgi", "speedups:app", "--bind", f"unix:{path}")

    def send(raw: bytes) -> bytes:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(path)
            sock.sendall(raw)
            return read_until_close(sock)

    seen = compare(send)
    # No addresses: the server's name and port come from Host.
    assert (seen[0]["SERVER_NAME"], seen[0]["SERVER_PORT"], seen[0]["REMOTE_ADDR"]) == ("example.test", "8443", "")
    assert (seen[2]["SERVER_NAME"], seen[2]["SERVER_PORT"]) == ("localhost", "80")  # HTTP/1.0 without Host


def test_a_list_of_bytes_goes_out_with_its_length(serve_wsgi, folder):
    server = serve_wsgi(folder, "--wsgi", "speedups:parts")
    status, headers, body = split_response(exchange(server.host, server.port,
                                                    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"))
    assert (status, body, headers["content-length"]) == (200, b"Hello, World!", "13")
    # Past 64 KiB the list is not copied into one: it is streamed as it is, with its length.
    status, headers, body = split_response(exchange(server.host, server.port,
                                                    b"GET /long HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"))
    assert (status, body, headers["content-length"]) == (200, b"x" * 40000 + b"y" * 40000, "80000")
    assert "transfer-encoding" not in headers


def test_a_bodiless_requests_input_reads_as_an_empty_bytesio_and_nothing_it_is_asked_changes_it():
    # One shared stream for every request without a body, instead of a BytesIO each.
    app = WSGIApp(lambda environ, start_response: [])
    shared = build_environ(Request("GET", "/"), template=app._template)["wsgi.input"]
    assert build_environ(Request("POST", "/", body=b""))["wsgi.input"] is shared
    assert build_environ(Request("POST", "/", body=b"x"))["wsgi.input"].read() == b"x"
    # An app before this one moved it and closed it: the next still finds it open, at its start.
    shared.seek(0, io.SEEK_END)
    shared.close()
    assert isinstance(shared, io.BufferedIOBase)
    plain = io.BytesIO(b"")
    asks = [lambda s: s.read(), lambda s: s.read(10), lambda s: s.read(None), lambda s: s.readline(),
            lambda s: s.readline(5), lambda s: s.readlines(), lambda s: list(s), lambda s: s.tell(),
            lambda s: s.seek(0), lambda s: s.seek(0, io.SEEK_END), lambda s: s.readable(),
            lambda s: s.seekable(), lambda s: s.readinto(bytearray(4)), lambda s: s.read1(3),
            lambda s: s.getvalue(), lambda s: s.closed]
    assert [ask(shared) for ask in asks] == [ask(plain) for ask in asks]
    with pytest.raises(ValueError):
        shared.seek(-1)


HEADS = [
    ("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")]),
    ("299 Very Custom", [("Content-Type", "text/plain")]),
    ("200 OK", [("Connection", "keep-alive, close"), ("X-A", "1"), ("Keep-Alive", "timeout=5")]),
    ("404 Not Found", [("Content-Length", "5, 5"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]),
    ("204 No Content", []),
]
BAD_HEADS = [
    ("200 OK", [("Content-Type", "text/plain\r\nX-Injected: 1")]),
    ("200 OK", [("Content-Length", "five")]),
    ("2000 OK", []),
    ("600 Beyond", []),
    ("200 OK\r\nX: 1", []),
    (b"200 OK", []),
    ("200 OK", (("Content-Type", "text/plain"),)),  # a tuple, not a list
    ("200 OK", [["Content-Type", "text/plain"]]),  # a list, not a tuple
    ("200 OK", [("Content-Type", 5)]),
]


def answer(heads):
    """A WSGI app answering request ``/N`` with ``heads[N]`` and a 5-byte body."""
    def app(environ, start_response):
        status, headers = heads[int(environ["PATH_INFO"][1:])]
        start_response(status, headers)
        return [b"12345"]
    return app


def outcome(app, index):
    request = Request("GET", f"/{index}", client=("10.0.0.1", 1), server=("127.0.0.1", 80))
    try:
        response = app(request)
    except Exception as exc:  # noqa: BLE001 (the error itself is compared)
        return type(exc), str(exc)
    assert isinstance(response, Response)
    return response.status, response.reason, response.headers, response.content_length, response.body


def test_a_remembered_head_gives_what_checking_it_anew_gives():
    plain = WSGIApp(answer(HEADS), caches=WSGICaches.disabled())
    cached = WSGIApp(answer(HEADS))
    for index in range(len(HEADS)):
        expected = outcome(plain, index)
        for _ in range(3):  # the first call fills the cache, the others hit it
            assert outcome(cached, index) == expected
    assert len(cached.caches.heads) == len(HEADS) and cached.caches.heads.misses == len(HEADS)
    assert outcome(cached, 2)[2] == [("Connection", "close"), ("X-A", "1")]


def test_a_bad_head_is_refused_each_time_even_after_a_good_one_like_it():
    heads = [("200 OK", [("Content-Type", "text/plain")]), *BAD_HEADS]
    plain = WSGIApp(answer(heads), caches=WSGICaches.disabled())
    cached = WSGIApp(answer(heads))
    assert outcome(cached, 0)[0] == 200  # the good list is remembered first
    for index in range(1, len(heads)):
        expected = outcome(plain, index)
        assert isinstance(expected[0], type) and issubclass(expected[0], Exception), expected
        for _ in range(2):
            assert outcome(cached, index) == expected


def test_the_caches_stay_within_their_bounds():
    caches = WSGICaches(max_heads=2, max_keys=3)
    heads = [(f"{200 + i} X", [("X-N", str(i))]) for i in range(6)]
    app = WSGIApp(answer(heads), caches=caches)
    for index in range(len(heads)):
        headers = [(f"X-Field-{index}", "v"), ("Accept", "*/*")]
        request = Request("GET", f"/{index}", headers=headers, server=("127.0.0.1", 80))
        assert app(request).status == 200 + index
        assert len(caches.heads) <= 2 and len(caches.keys) <= 3
    assert check_head(*heads[5], set())[0] == 205


def one_item(scenario, container):
    """A WSGI app acting out ``scenario`` and returning its body in ``container`` (list or tuple)."""
    def app(environ, start_response):
        body = b"12345"
        if scenario != "no start_response":
            length = "9" if scenario == "wrong length" else "5"
            fields = [("Content-Type", "text/plain"), ("Content-Length", length)]
            write = start_response("200 OK", fields[:1] if scenario == "no length" else fields)
            if scenario == "write() first":
                write(b"ab")
            if scenario == "replaced by exc_info":  # before any body: the head may still change
                try:
                    raise KeyError("failed")
                except KeyError:
                    start_response("500 Internal Server Error", [("Content-Length", "5")], sys.exc_info())
        if scenario == "not bytes":
            body = "12345"
        if scenario == "empty":
            body = b""
        return container([body])
    return app


def sent(app, path="/"):
    """What the Response says and what its body gives when pulled; or the error."""
    try:
        response = app(Request("GET", path, client=("10.0.0.1", 1), server=("127.0.0.1", 80)))
    except Exception as exc:  # noqa: BLE001 (the error itself is compared)
        return type(exc), str(exc)
    body = response.body
    try:
        data = body if isinstance(body, bytes) else b"".join(body)
    except Exception as exc:  # noqa: BLE001
        data = (type(exc), str(exc))
    return response.status, response.reason, response.headers, response.content_length, data


@pytest.mark.parametrize("scenario", ["plain", "no length", "wrong length", "write() first", "no start_response",
                                      "not bytes", "empty"])
def test_a_one_item_list_gives_what_a_one_item_tuple_gives(scenario):
    # [b"body"] is framed in WSGIApp.__call__; a tuple, and a list the
    # shortcut does not take, go the general way (_response).
    expected = sent(WSGIApp(one_item(scenario, tuple)))
    assert sent(WSGIApp(one_item(scenario, list))) == expected
    if scenario in ("plain", "no length"):
        assert expected == (200, None, [("Content-Type", "text/plain")], 5, b"12345")


@pytest.mark.parametrize("container", [list, tuple])
def test_after_a_one_item_body_the_head_counts_as_sent(container):
    # The shortcut for [b"body"] marks the head sent as _response does for a tuple: a later
    # start_response with exc_info re-raises the app's error, and a later write() changes nothing sent.
    kept = []

    def app(environ, start_response):
        kept.append(start_response)
        kept.append(start_response("200 OK", [("Content-Type", "text/plain")]))
        return container([b"12345"])

    response = WSGIApp(app)(Request("GET", "/", client=("10.0.0.1", 1), server=("127.0.0.1", 80)))
    assert (response.status, response.body, response.content_length) == (200, b"12345", 5)
    try:
        raise KeyError("late")
    except KeyError:
        with pytest.raises(KeyError, match="late"):
            kept[0]("500 Internal Server Error", [], sys.exc_info())
    kept[1](b"more")  # write()
    assert (response.status, response.body, response.content_length) == (200, b"12345", 5)


FIELD_SETS = [
    (("Host", "h"), ("Cookie", "a=1"), ("Cookie", "b=2"), ("X-Multi", "1"), ("X-Multi", "2"), ("X_Sneaky", "no")),
    (("Host", "h"), ("Content-Length", "0"), ("Content-Type", "text/plain"), ("Content-Type", "text/html")),
    (("Host", "h"), ("Transfer-Encoding", "chunked"), ("X-Request-ID", "client's own")),
    (),
]


def test_environs_made_from_remembered_fields_are_the_plain_ones_and_their_own():
    app = WSGIApp(lambda environ, start_response: [])
    for pairs in FIELD_SETS:
        # Made, remembered, and equal pairs in a tuple of their own (``tuple(pairs)`` would be ``pairs``
        # itself, found by identity again; the empty tuple has no copy).
        for copy in (pairs, pairs, tuple(list(pairs))):
            request = Request("POST", "/", headers=copy, body=b"", server=("127.0.0.1", 80))
            fast = _fill_environ(request, app._template, app.caches.keys, app.caches.fields, app.caches.environ)
            plain = build_environ(request, template=app._template)
            assert {k: v for k, v in fast.items() if k != "wsgi.input"} == \
                   {k: v for k, v in plain.items() if k != "wsgi.input"}
            fast["HTTP_HOST"] = "changed by the app"  # an app's change stays in its own environ
    # A list of pairs (a Request made by hand) is never remembered: a list can change.
    headers = [("Host", "h")]
    request = Request("GET", "/", headers=headers, server=("127.0.0.1", 80))
    assert _fill_environ(request, app._template, app.caches.keys, app.caches.fields, app.caches.environ)["HTTP_HOST"] == "h"
    headers[0] = ("Host", "other")
    assert _fill_environ(request, app._template, app.caches.keys, app.caches.fields, app.caches.environ)["HTTP_HOST"] == "other"
    assert header_fields((("Content-Length", "5"), ("Accept", "*/*"))) == ({"HTTP_ACCEPT": "*/*"}, True)


def plain_items(environ):
    return {k: v for k, v in environ.items() if k != "wsgi.input"}


def test_a_remembered_environ_is_the_plain_one_and_each_request_gets_its_own():
    # A keep-alive connection repeating one head: the same objects each time, as the server hands them.
    app = WSGIApp(lambda environ, start_response: [])
    caches = app.caches
    pairs = (("Host", "h:8080"), ("Content-Length", "4"), ("X-Multi", "1"), ("X-Multi", "2"))
    client, server = ("10.0.0.1", 4321), ("127.0.0.1", 8080)
    request = Request("POST", "/a%20b?x=1", headers=pairs, body=b"abcd", client=client, server=server)
    environs = []
    for _ in range(4):  # the first is not remembered, the second is, the others are copies of it
        request._request_id = None  # a new id, as each request of the connection gets
        fast = _fill_environ(request, app._template, caches.keys, caches.fields, caches.environ)
        plain = build_environ(request, template=app._template)
        assert plain_items(fast) == plain_items(plain)
        assert fast["wsgi.input"].read() == b"abcd" and fast["CONTENT_LENGTH"] == "4"
        fast["PATH_INFO"] = "/changed by the app"  # an app's change stays in its own environ
        environs.append(fast)
    assert caches.environ.key is not None  # the memo was taken: the later environs came from it
    assert len({id(environ) for environ in environs}) == 4
    assert len({environ["HTTP_X_REQUEST_ID"] for environ in environs}) == 4
    # Another connection (a new client), another head, a body of another length: each its own environ.
    for change in ({"client": ("10.0.0.2", 1)}, {"target": "/other"}, {"body": b"abcdefgh"},
                   {"headers": (("Host", "h:8080"),)}):
        args = {"method": "POST", "target": "/a%20b?x=1", "headers": pairs, "body": b"abcd", "client": client,
                "server": server, **change}
        other = Request(**args)
        for _ in range(2):
            fast = _fill_environ(other, app._template, caches.keys, caches.fields, caches.environ)
            assert plain_items(fast) == plain_items(build_environ(other, template=app._template)), change


def test_an_app_changing_its_one_header_list_gets_each_new_head_checked():
    # The last head is remembered by a copy of the list: an app that keeps one list and changes it
    # between calls gets what the plain path gives, a bad field refused, each time.
    shared = [("Content-Type", "text/plain")]
    changes = [None, ("X-A", "1"), None, ("X-B", "bad\r\nX-Injected: 1"), None]

    def run(caches):
        shared[:] = [("Content-Type", "text/plain")]
        app = WSGIApp(answer([("200 OK", shared)]), caches=caches)
        seen = []
        for change in changes:
            if change is not None:
                shared.append(change)
            seen.append(outcome(app, 0))
            if change is not None and "bad" in change[1]:
                shared.pop()
        return seen

    expected = run(WSGICaches.disabled())
    assert run(WSGICaches()) == expected
    assert expected[1][2] == [("Content-Type", "text/plain"), ("X-A", "1")] and expected[3][0] is ValueError


def test_a_remembered_environ_serves_other_connections_with_their_own_address():
    # One head from connections taking turns (wrk's many connections, or a new connection a request): the memo
    # is taken on the second request and serves the others with their own REMOTE_ADDR and REMOTE_PORT, also
    # for a client that is no (host, port) pair (a Unix socket's), and back.
    app = WSGIApp(lambda environ, start_response: [])
    caches = app.caches
    pairs = (("Host", "h:8080"), ("Accept", "*/*"))
    server = ("127.0.0.1", 8080)
    clients = [("10.0.0.1", 1), ("10.0.0.2", 2), "", ("10.0.0.3", 3), None, ("10.0.0.1", 1), ("10.0.0.4", 4)]
    for client in clients * 2:
        request = Request("GET", "/x?y=1", headers=pairs, client=client, server=server)
        fast = _fill_environ(request, app._template, caches.keys, caches.fields, caches.environ)
        plain = build_environ(request, template=app._template)
        assert plain_items(fast) == plain_items(plain), client
        fast["REMOTE_ADDR"] = "changed by the app"  # an app's change stays in its own environ
    assert caches.environ.key is not None  # the memo served them


def test_the_environs_request_id_is_the_one_request_id_gives():
    # _fill_environ makes a new request's id itself, without Request.request_id's call: the id it puts in
    # the environ must be the one the property gives afterwards, and a trusted proxy's id or an id already
    # asked for must go through the property as before.
    app = WSGIApp(lambda environ, start_response: [])
    caches = app.caches
    pairs = (("Host", "h"), ("X-Request-ID", "proxy-id-1"))
    ids = []
    for trusted, asked_first in ((False, False), (False, False), (False, True), (True, False), (True, True)):
        request = Request("GET", "/", headers=pairs, server=("127.0.0.1", 80), client=("10.0.0.1", 1))
        if trusted:
            request.trust_request_id()
        before = request.request_id if asked_first else None
        environ = _fill_environ(request, app._template, caches.keys, caches.fields, caches.environ)
        assert environ["HTTP_X_REQUEST_ID"] == request.request_id
        if before is not None:
            assert environ["HTTP_X_REQUEST_ID"] == before
        if trusted:
            assert request.request_id == "proxy-id-1"
        else:
            made = request.request_id
            assert len(made) == 32 and int(made, 16) >= 0 and made != "proxy-id-1"
            ids.append(made)
    assert len(set(ids)) == len(ids)  # each request its own


def test_a_remembered_environ_never_carries_another_requests_input():
    """A bodiless request takes the template's shared empty wsgi.input: an environ remembered after a request
    with a body (the same chunked head, whose bodies differ) must not hand that body's stream on."""
    app = WSGIApp(lambda environ, start_response: [])
    caches = app.caches
    pairs = (("Host", "h"), ("Transfer-Encoding", "chunked"))
    bodies = (b"abcd", b"efgh", b"", b"ijkl", b"")  # remembered from the second on
    environs = []
    for body in bodies:
        request = Request("POST", "/", headers=pairs, body=body, client=("10.0.0.1", 1), server=("127.0.0.1", 80))
        environs.append(_fill_environ(request, app._template, caches.keys, caches.fields, caches.environ))
    assert caches.environ.key is not None  # the memo was taken
    # Read only now, the last first: a stream handed on would still hold its body unread.
    assert [environ["wsgi.input"].read() for environ in reversed(environs)] == list(reversed(bodies))


SCENARIOS = ["plain", "no length", "wrong length", "write() first", "no start_response", "not bytes", "empty",
             "replaced by exc_info"]


def test_a_reused_call_gives_what_a_new_call_gives():
    # A call nothing holds any more is the next request's (WSGIApp._spare_call): responses taken one at a time
    # and let go reuse it; responses all held make a new call each.  Both give the same, scenario after scenario.
    def mixed(environ, start_response):
        scenario, container = environ["PATH_INFO"][1:].split(":")
        return one_item(scenario, {"list": list, "tuple": tuple}[container])(environ, start_response)

    paths = [f"/{s}:{c}" for s in SCENARIOS for c in ("list", "tuple")] * 2
    held, released = WSGIApp(mixed), WSGIApp(mixed)
    kept = []
    reused = 0
    for path in paths:
        expected = sent(lambda request: kept.append(held(request)) or kept[-1], path)
        spare = id(released._spare_call)
        assert sent(released, path) == expected, path
        if path.startswith("/replaced"):  # the new head, not the error: nothing was sent yet
            assert expected[:2] == (500, None), expected
        reused += id(released._spare_call) == spare
    assert len({id(response) for response in kept}) == len(kept) > len(paths) // 2  # held: each its own
    assert reused >= len(paths) // 2  # the [b"body"] answers reused one call


def test_a_call_still_held_by_the_app_is_not_reused():
    # An app that keeps start_response and write() of a request: calling them after the next request
    # changes nothing of the next one's response, and start_response(exc_info) still re-raises.
    kept = []

    def app(environ, start_response):
        kept.append((start_response, start_response("200 OK", [("Content-Type", "text/plain")])))
        return [environ["PATH_INFO"].encode()]

    wsgi = WSGIApp(app)
    first = id(wsgi(Request("GET", "/one", client=("10.0.0.1", 1), server=("127.0.0.1", 80))))
    second = wsgi(Request("GET", "/two", client=("10.0.0.1", 1), server=("127.0.0.1", 80)))
    assert id(second) != first
    stale_start, stale_write = kept[0]
    stale_write(b"late")
    try:
        raise KeyError("late")
    except KeyError:
        with pytest.raises(KeyError, match="late"):
            stale_start("500 Internal Server Error", [], sys.exc_info())
    assert (second.status, second.headers, second.body, second.content_length) == \
           (200, [("Content-Type", "text/plain")], b"/two", 4)
    assert second.pending == ()  # the stale write() went to the first request's call


def test_a_remembered_content_length_text_is_the_plain_one():
    # The last CONTENT_LENGTH text is given again for the same length: any other length, or a framed empty body,
    # gets its own, whatever head and connection it comes with.
    app = WSGIApp(lambda environ, start_response: [])
    caches = app.caches
    chunked = (("Host", "h"), ("Transfer-Encoding", "chunked"))
    for body, pairs in [(b"abcd", chunked), (b"efgh", chunked), (b"ijkl", (("Host", "h"), ("Content-Length", "4"))),
                        (b"", chunked), (b"x" * 10, chunked), (b"", (("Host", "h"),)), (b"y" * 10, chunked),
                        (b"", chunked)]:
        request = Request("POST", "/", headers=pairs, body=body, client=("10.0.0.1", 1), server=("127.0.0.1", 80))
        fast = _fill_environ(request, app._template, caches.keys, caches.fields, caches.environ)
        assert fast.get("CONTENT_LENGTH") == build_environ(request, template=app._template).get("CONTENT_LENGTH")
        assert fast.get("CONTENT_LENGTH") == (str(len(body)) if body or pairs is chunked else None)
    assert caches.environ.length == 0


def test_the_server_calls_serve_request_which_answers_as_a_routed_call_does():
    # The server calls WSGIApp.serve_request (no **path_params dict a request); a router calls __call__ with the
    # path parameters, which are ignored: both give the same response, and other apps are called as before.
    from evloop.app import App
    from evloop.server.context import app_caller

    wsgi = WSGIApp(one_item("plain", list))
    caller = app_caller(wsgi)
    assert caller.__func__ is WSGIApp.serve_request and caller.__self__ is wsgi
    request = Request("GET", "/x/1", client=("10.0.0.1", 1), server=("127.0.0.1", 80))
    direct = caller(request)
    direct = (direct.status, direct.headers, direct.body, direct.content_length)
    routed = wsgi(request, item="1")
    assert (routed.status, routed.headers, routed.body, routed.content_length) == direct
    router = App()
    router.route("/x/{item}")(wsgi)
    via_router = router(request)
    assert (via_router.status, via_router.headers, via_router.body, via_router.content_length) == direct
    assert app_caller(router).__func__ is App.__call__

    def plain(request):
        return None

    assert app_caller(plain) is plain
