"""Protocol reuse (``HTTPProtocol.for_connection``): a closed connection's protocol serves the next connection.

Over real sockets: whatever the last connection did (reset mid-head, left
half a body, pipelined more than it read, sent garbage, upgraded to
WebSocket, spooled a body, left a request in the app), the next connection
on a reused protocol gets exactly the answers a new server gives, and a
request the app kept from an old connection can never answer on a new one.
"""

from __future__ import annotations

import json
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.live import LiveServer

from evloop.app import App, Response
from evloop.server import HTTPProtocol
from evloop.websocket import WebSocketHandler

PROBE = (b"GET /show?n=1 HTTP/1.1\r\nHost: probe\r\nX-Probe: yes\r\n\r\n"
         b"POST /show HTTP/1.1\r\nHost: probe\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
WS_UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


class Echo(WebSocketHandler):
    pass


def _app(kept: list) -> App:
    app = App()

    @app.route("/show", methods=["GET", "POST"])
    def show(request):
        return Response.json({
            "method": request.method, "target": request.target, "headers": sorted(request.headers.items()),
            "body": request.body.decode(), "scheme": request.scheme, "client": request.client[0],
            "server": list(request.server), "version": request.version, "tls": request.tls is not None,
        })

    @app.route("/defer")
    def defer(request):
        kept.append(request)  # answered later, if ever
        return None

    @app.route("/upload", methods=["POST"])
    def upload(request):
        return Response(body=b"%d" % len(request.body))

    app.websocket("/ws")(Echo)
    return app


def _reset(sock: socket.socket) -> None:
    """Close with an RST: SO_LINGER with a zero timeout."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# What a connection may do before it goes: bytes sent, then a close ("fin") or a reset ("rst"),
# waiting first for this many bytes of answer (0: none).
EPISODES = {
    "half-head": (b"GET /show HTTP/1.1\r\nHost: x\r\nX-Half: ", 0, "rst"),
    "half-body": (b"POST /show HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789", 0, "fin"),
    "pipelined-unread": (b"GET /show HTTP/1.1\r\nHost: x\r\n\r\n" * 3 + b"GET /show HTTP/1.1\r\nHo", 1, "rst"),
    "garbage": (b"\x00\x01 NOT HTTP\r\n\r\n", 1, "fin"),
    "oversize-field": (b"GET /show HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n", 1, "rst"),
    "spooled-body": (b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 9000\r\n\r\n" + b"s" * 6000, 0, "rst"),
    "deferred-left": (b"GET /defer HTTP/1.1\r\nHost: x\r\n\r\n", 0, "fin"),
    "websocket": (WS_UPGRADE, 1, "rst"),
    "expect-continue": (b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
                        1, "fin"),
    "keepalive-fin": (b"GET /show HTTP/1.1\r\nHost: x\r\nX-Old: 1\r\n\r\n", 1, "fin"),
    "http10": (b"GET /show HTTP/1.0\r\nX-Old: 1\r\n\r\n", 1, "fin"),
}


def _episode(server: LiveServer, name: str) -> None:
    data, wait_for, ending = EPISODES[name]
    sock = server.connect()
    sock.setblocking(True)
    try:
        sock.sendall(data)
    except OSError:
        pass  # refused mid-send (the oversize head): the connection ends all the same
    sock.setblocking(False)
    if wait_for:
        server.read_until(sock, lambda got: len(got) >= wait_for)
    else:
        for _ in range(5):  # what was sent is read and handled (no answer to wait for)
            server.reactor.run_once(0.01)
    if ending == "rst":
        _reset(sock)
    else:
        sock.close()
    server.run_until(lambda: not server.server.connections)


def _probe(server: LiveServer) -> bytes:
    sock = server.connect()
    sock.sendall(PROBE)
    answer = server.read_until(sock, lambda got: got.count(b"HTTP/1.1 200") == 2 and got.endswith(b"}"))
    sock.close()
    server.run_until(lambda: not server.server.connections)
    answer = answer.replace(b",%d]" % server.port, b",\"PORT\"]")  # the listener's port, in Request.server
    return b"\r\n".join(line for line in answer.split(b"\r\n") if not line.startswith(b"Date:"))


def _fresh_answer() -> bytes:
    server = LiveServer(_app([]), body_spool_bytes=4096)
    try:
        return _probe(server)
    finally:
        server.close()


FRESH = None


def _expected() -> bytes:
    global FRESH
    if FRESH is None:
        FRESH = _fresh_answer()
    return FRESH


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(sorted(EPISODES)), min_size=1, max_size=5))
def test_after_any_ending_the_next_connection_is_served_as_by_a_new_server(episodes):
    kept: list = []
    server = LiveServer(_app(kept), body_spool_bytes=4096)
    try:
        for name in episodes:
            _episode(server, name)
            assert _probe(server) == _expected(), name
        for request in kept:  # the deferred requests' answers now go nowhere
            request.respond(Response(body=b"LATE"))
        assert _probe(server) == _expected()
    finally:
        server.close()


# Set by HTTPProtocol.__init__ alone, not renewed for each connection (_renew): what connection_lost leaves
# as a new protocol has it (and the server's own setting, _timed).
KEPT_AS_NEW = ("transport", "body", "_sink", "_memory_room", "request", "_deadlines", "_response", "_stream", "_timed")


@pytest.mark.parametrize("name", sorted(EPISODES))
def test_a_closed_connection_leaves_what_renewal_skips_as_a_new_protocol_has_it(name):
    kept: list = []
    server = LiveServer(_app(kept), body_spool_bytes=4096)
    try:
        _episode(server, name)
        idle = server.server.h1.idle_protocols
        assert len(idle) == (0 if name == "websocket" else 1)  # an upgraded connection's protocol let go of it
        fresh = HTTPProtocol(server.server)
        for protocol in idle:
            assert {field: getattr(protocol, field) for field in KEPT_AS_NEW} == {
                field: getattr(fresh, field) for field in KEPT_AS_NEW}
        assert _probe(server) == _expected()
    finally:
        server.close()


def test_closed_protocols_are_reused_and_bounded(monkeypatch):
    made = []
    init = HTTPProtocol.__init__
    monkeypatch.setattr(HTTPProtocol, "__init__", lambda self, ctx: made.append(1) or init(self, ctx))
    server = LiveServer(_app([]))
    try:
        idle = server.server.h1.idle_protocols
        _probe(server)
        assert len(made) == 1 and len(idle) == 1
        held = idle[0]  # something still holds it: never handed to another connection
        _probe(server)
        assert len(made) == 2 and held.transport is None
        del held
        _probe(server)
        _probe(server)
        assert len(made) == 2  # the closed connections' protocols, renewed
        socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(80)]
        server.run_until(lambda: len(server.server.connections) == 80)
        for sock in socks:
            sock.close()
        server.run_until(lambda: not server.server.connections)
        assert len(idle) == 64  # the rest were freed
        assert all(p.transport is None and not p.conn.buffered_bytes for p in idle)
    finally:
        server.close()


def test_a_kept_request_never_answers_on_a_later_connection():
    kept: list = []
    server = LiveServer(_app(kept))
    try:
        sock = server.connect()
        sock.sendall(b"GET /defer HTTP/1.1\r\nHost: x\r\n\r\n")
        server.run_until(lambda: len(kept) == 1)
        sock.close()
        server.run_until(lambda: not server.server.connections)
        old = server.server.h1.idle_protocols[-1]
        sock = server.connect()
        assert list(server.server.connections) != [old]  # held by the kept request: not reused
        kept[0].respond(Response(body=b"LATE"))
        sock.sendall(b"GET /show HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = server.read_until(sock, lambda got: got.endswith(b"}"))
        assert b"LATE" not in answer and answer.count(b"HTTP/1.1 200") == 1
        sock.close()
    finally:
        server.close()


def test_a_spare_request_of_a_reused_protocol_takes_the_new_connections_fields():
    """The spare request last answered this protocol's connection: the next one's fields are its own."""
    server = LiveServer(_app([]))
    try:
        first = json.loads(_probe(server).rsplit(b"\r\n\r\n", 1)[1])
        sock = socket.create_connection(("127.0.0.1", server.port), source_address=("127.0.0.2", 0))
        sock.setblocking(False)
        sock.sendall(b"GET /show HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        second = json.loads(server.read_until(sock, lambda got: got.endswith(b"}")).split(b"\r\n\r\n", 1)[1])
        sock.close()
        assert first["client"] == "127.0.0.1" and second["client"] == "127.0.0.2"
    finally:
        server.close()


def _browser_head(n: int) -> bytes:
    return (b"GET /show?page=%d HTTP/1.1\r\nHost: probe\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101\r\n"
            b"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\n"
            b"Referer: http://probe/show?page=%d\r\nCookie: session=%032d\r\n\r\n" % (n, n - 1, n))


def test_a_renewed_protocol_holds_no_template_and_as_its_last_head_only_the_servers_cached_one():
    server = LiveServer(_app([]))
    try:
        sock = server.connect()
        for n in range(1, 4):  # a head template is admitted on its second sighting, used from the third
            sock.sendall(_browser_head(n))
            server.read_until(sock, lambda got: got.endswith(b"}"))
        (protocol,) = server.server.connections
        assert protocol.conn._heads.last_template is not None  # the connection's heads came from a template
        sock.close()
        server.run_until(lambda: not server.server.connections)
        assert server.server.h1.idle_protocols == [protocol]
        assert protocol.conn._heads.last is None and protocol.conn._heads.last_template is None
        # A head the server's cache holds (admitted on its second sighting, a hit from the third) stays the memo
        # of the protocol that read it last: the cache's own entry, compared with the next connection's head.
        head = b"GET /show?n=7 HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"
        answers = []
        for _ in range(4):
            sock = server.connect()
            sock.sendall(head)
            answers.append(server.read_until(sock, lambda got: got.endswith(b"}")).split(b"\r\n\r\n", 1)[1])
            sock.close()
            server.run_until(lambda: not server.server.connections)
        assert len(set(answers)) == 1 and json.loads(answers[0])["target"] == "/show?n=7"
        (protocol,) = server.server.h1.idle_protocols
        cached = server.server.http1_caches.heads.entries[head.decode("latin-1")]
        assert protocol.conn._heads.last is cached and protocol.conn._heads.last_template is None
    finally:
        server.close()
