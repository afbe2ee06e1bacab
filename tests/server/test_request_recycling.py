"""Request recycling (``HTTPProtocol._process``): a Request nobody kept is reused for the
connection's next request.  Checked against the plain path: the same requests give the same
answers whether the handler keeps its requests (no recycling possible) or not."""

from __future__ import annotations

import json

import pytest
from support.live import LiveServer

from evloop.app import App, Response

REQUESTS = (
    b"GET /show?a=1 HTTP/1.1\r\nHost: x\r\nX-One: 1\r\n\r\n"
    b"POST /show/7 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    b"GET /show HTTP/1.0\r\nHost: y\r\nConnection: keep-alive\r\n\r\n"
    b"PUT /show/8?b=2&b=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    b"GET /show HTTP/1.1\r\nHost: x\r\n\r\n"
)


def _fields(request) -> bytes:
    return json.dumps({
        "method": request.method, "target": request.target, "path": request.path, "raw_path": request.raw_path,
        "query_string": request.query_string, "query": request.query, "version": request.version,
        "headers": sorted(request.headers.items()), "body": request.body.decode(), "scheme": request.scheme,
        "path_params": dict(request.path_params), "responded": request.responded,
        "abandoned": request.abandoned,
    }, sort_keys=True).encode()


def _app(kept: list | None, seen_ids: list) -> App:
    app = App()

    def show(request, **params):
        seen_ids.append(id(request))
        if kept is not None:
            kept.append(request)
        return Response(body=_fields(request))

    app.add_route("/show", show, methods=["GET", "POST"])
    app.add_route("/show/{n}", show, methods=["POST", "PUT"])
    return app


def _answers(kept: list | None) -> tuple[bytes, list]:
    seen_ids: list = []
    server = LiveServer(_app(kept, seen_ids))
    try:
        sock = server.connect()
        for piece in (REQUESTS, REQUESTS):  # twice: in one burst, then again on the same connection
            sock.send(piece)
        data = server.read_until(sock, lambda data: data.count(b"HTTP/1.1 200") == 10)
        sock.close()
        return data, seen_ids
    finally:
        server.close()


def test_recycled_requests_answer_exactly_as_fresh_ones():
    kept: list = []
    plain, plain_ids = _answers(kept)            # every request kept: nothing can be recycled
    recycled, recycled_ids = _answers(None)     # nothing kept: recycled
    strip = [line for line in plain.split(b"\r\n") if not line.startswith(b"Date:")]
    assert strip == [line for line in recycled.split(b"\r\n") if not line.startswith(b"Date:")]
    assert len(set(plain_ids)) == 10          # ten distinct objects while the handler keeps them
    assert len(set(recycled_ids)) < 10        # the same object again once nobody keeps it
    # The kept requests were never touched by the later ones.
    assert [r.target for r in kept] == ["/show?a=1", "/show/7", "/show", "/show/8?b=2&b=3", "/show"] * 2


def test_a_spare_request_holds_no_body():
    seen_ids: list = []
    server = LiveServer(_app(None, seen_ids))
    try:
        sock = server.connect()
        sock.send(b"POST /show/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100_000)
        server.read_until(sock, lambda data: data.count(b"HTTP/1.1 200") == 1, timeout_s=10)
        spare = server.server.h1.spare_request
        assert spare is not None and spare.body == b""
        sock.close()
    finally:
        server.close()


@pytest.mark.parametrize("path", ["/later"])
def test_a_deferred_request_is_never_recycled(path):
    pending = []
    app = App()
    app.add_route("/later", lambda request: pending.append(request))
    app.add_route("/", lambda request: Response(body=b"now"))
    server = LiveServer(app)
    try:
        sock = server.connect()
        sock.send(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        server.run_until(lambda: pending)
        request = pending[0]
        request.respond(Response(body=b"later"))
        data = server.read_until(sock, lambda data: data.endswith(b"now"))
        assert data.index(b"later") < data.index(b"now")
        assert request.target == "/later" and request.responded  # untouched by the request after it
        sock.close()
    finally:
        server.close()


def _slots(request) -> dict:
    from evloop.app import Request

    return {name: getattr(request, name) for name in Request.__slots__ if hasattr(request, name)}


def test_renew_leaves_exactly_what_a_fresh_request_has():
    """``Request._renew`` after any earlier request equals the constructor with the same arguments:
    a field the constructor sets per request but ``_renew`` forgot would survive from the earlier one."""
    from evloop.app import Request
    from evloop.http.target import target_parts

    connection = dict(server=("127.0.0.1", 80), reactor=object(), responder=print, tls=None)
    earlier = Request("POST", "/a/b?x=1", "HTTP/1.0", [("X-A", "1")], b"body", ("10.0.0.1", 5), **connection,
                      scheme="https")
    earlier.path_params = {"id": "7"}
    earlier.query  # noqa: B018 (caches the parsed query)
    earlier.headers  # noqa: B018 (wraps the pairs)
    earlier._responded = True
    args = ("GET", "/c?y=2", "HTTP/1.1", [("X-B", "2")], b"", ("10.0.0.2", 6), "http")
    earlier._renew(*args, target_parts("/c?y=2"))
    fresh = Request(*args[:6], **connection, scheme=args[6])
    assert _slots(earlier) == _slots(fresh)


def _close_answers(kept: list | None) -> tuple[list[dict], list, list[int]]:
    """Three connections, one Connection: close request each: the fields each handler saw, the request ids,
    and each client's own port."""
    seen_ids: list = []
    app = App()

    def show(request):
        seen_ids.append(id(request))
        if kept is not None:
            kept.append(request)
        return Response(body=json.dumps({"fields": json.loads(_fields(request)), "client": list(request.client),
                                         "server": list(request.server)}).encode())

    app.add_route("/show", show, methods=["GET"])
    server = LiveServer(app)
    answers, ports = [], []
    try:
        for i in range(3):
            sock = server.connect()
            ports.append(sock.getsockname()[1])
            sock.send(b"GET /show?n=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % i)
            data = server.read_until(sock, lambda data: False)  # until the server closes
            sock.close()
            assert b"\r\nConnection: close\r\n" in data
            answer = json.loads(data.partition(b"\r\n\r\n")[2])
            assert answer.pop("server") == ["127.0.0.1", server.port]
            answers.append(answer)
        return answers, seen_ids, ports
    finally:
        server.close()


def test_a_connections_last_request_is_recycled_for_the_next_connection():
    """A Connection: close request nobody kept serves the next connection's first request, which sees its own
    client, server and fields, as a fresh request does."""
    plain, plain_ids, plain_ports = _close_answers([])
    recycled, recycled_ids, recycled_ports = _close_answers(None)
    assert len(set(plain_ids)) == 3 and len(set(recycled_ids)) == 1
    for answers, ports in ((plain, plain_ports), (recycled, recycled_ports)):
        assert [answer["client"] for answer in answers] == [["127.0.0.1", port] for port in ports]
    for answer in plain + recycled:
        answer.pop("client")
    assert plain == recycled
