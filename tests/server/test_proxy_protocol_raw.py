"""The PROXY protocol before HTTP: a real server and raw sockets in this process, time on a manual clock.

What the app sees (``Request.client``, ``Request.server``, WSGI's
REMOTE_ADDR), what a trusted proxy must send and an untrusted peer may not,
and how each bad header ends: closed with a logged reason and no answer.
HAProxy itself is in tests/e2e/test_haproxy_proxy_protocol.py, TLS in tests/tls/.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.live import LiveServer

from evloop import ManualClock
from evloop.app import App, Response
from evloop.net.proxy_header import PP2_SUBTYPE_SSL_VERSION, PP2_TYPE_AUTHORITY, PP2_TYPE_SSL, V2_SIGNATURE
from evloop.wsgi import WSGIApp

REQUEST = b"GET /who HTTP/1.1\r\nHost: x\r\n\r\n"
CLOSE = b"GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def v1(src: str = "198.51.100.7", dst: str = "203.0.113.1", sport: int = 4711, dport: int = 443) -> bytes:
    family = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {family} {src} {dst} {sport} {dport}\r\n".encode()


def v2(src: str = "198.51.100.7", dst: str = "203.0.113.1", sport: int = 4711, dport: int = 443, *,
       command: int = 1, tlvs: bytes = b"") -> bytes:
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    family = 0x21 if a.version == 6 else 0x11
    block = a.packed + b.packed + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(block)) + block


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def _app() -> App:
    app = App()

    @app.route("/who")
    def who(request):
        return Response.json({"client": list(request.client), "server": list(request.server),
                              "scheme": request.scheme})

    return app


class Served(LiveServer):
    """A server on port 0 with the PROXY protocol on; its reactor is pumped by the test."""

    def __init__(self, app=None, clock: ManualClock | None = None, **settings) -> None:
        super().__init__(app or _app(), clock, **{"proxy_protocol": True, **settings})
        self.pump = self.run_until

    def turn(self, passes: int = 3) -> None:
        """A few passes of the loop without waiting: what is readable now is read."""
        for _ in range(passes):
            self.reactor.run_once(0)

    def connect(self) -> socket.socket:
        """A connection, not waited for in the registry: the server hears of it only after its header."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.setblocking(False)
        return sock

    def exchange(self, sock: socket.socket, data: bytes = b"") -> bytes:
        """Send ``data`` and read until the server closes the connection (a reset counts)."""
        if data:
            sock.sendall(data)
        return self.read_until(sock, lambda received: False)

    def answer(self, sock: socket.socket, data: bytes) -> dict:
        """Send ``data`` and read one JSON response (the connection stays open)."""
        sock.sendall(data)

        def complete(received: bytes) -> bool:
            head, sep, body = received.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]) if sep else -1
            return sep != b"" and len(body) >= length

        head, _, body = self.read_until(sock, complete).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        return json.loads(body)


@pytest.fixture
def served():
    servers: list[Served] = []

    def make(app=None, clock=None, **settings) -> Served:
        servers.append(Served(app, clock, **settings))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def assert_open(sock: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        sock.recv(1)  # nothing to read, and not closed


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# ------------------------------------------------------------- trusted peers
@pytest.mark.parametrize("header, client, server", [
    (v1(), ["198.51.100.7", 4711], ["203.0.113.1", 443]),
    (v2(), ["198.51.100.7", 4711], ["203.0.113.1", 443]),
    (v1("2001:db8::7", "2001:db8::1", 65535, 8443), ["2001:db8::7", 65535], ["2001:db8::1", 8443]),
    (v2("2001:db8::7", "2001:db8::1", 65535, 8443), ["2001:db8::7", 65535], ["2001:db8::1", 8443]),
    (v2("::ffff:198.51.100.7", "::ffff:203.0.113.1", 1, 80), ["::ffff:198.51.100.7", 1], ["::ffff:203.0.113.1", 80]),
])
def test_the_header_names_the_client_for_every_request_of_the_connection(served, header, client, server):
    s = served()
    sock = s.connect()
    assert s.answer(sock, header + REQUEST) == {"client": client, "server": server, "scheme": "http"}
    assert s.answer(sock, REQUEST)["client"] == client  # keep-alive: the connection's client, every time
    sock.close()


def test_header_and_request_one_byte_at_a_time(served):
    s = served()
    sock = s.connect()
    data = v2(tlvs=tlv(0xE0, b"custom")) + REQUEST
    for i in range(len(data) - 1):
        sock.sendall(data[i : i + 1])
        s.reactor.run_once(0)
    assert s.answer(sock, data[-1:])["client"] == ["198.51.100.7", 4711]
    sock.close()


def test_any_split_of_header_and_request_gives_the_same_answer(served):
    s = served()
    data = v2("2001:db8::7", "2001:db8::1", tlvs=tlv(PP2_TYPE_AUTHORITY, b"shop.example")) + REQUEST

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.integers(1, len(data) - 1), max_size=4, unique=True))
    def check(cuts):
        sock = s.connect()
        bounds = [0, *sorted(cuts), len(data)]
        for start, end in zip(bounds[:-2], bounds[1:-1], strict=True):
            sock.sendall(data[start:end])
            s.turn(1)
        assert s.answer(sock, data[bounds[-2]:])["client"] == ["2001:db8::7", 4711]
        sock.close()

    check()


@pytest.mark.parametrize("header", [v2(command=0), b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n"])
def test_local_and_unknown_keep_the_real_addresses(served, header):
    # v2 LOCAL is what HAProxy sends with its health checks.
    s = served()
    sock = s.connect()
    assert s.answer(sock, header + REQUEST)["client"] == list(sock.getsockname())
    sock.close()


def test_tlvs_are_walked_and_unknown_ones_ignored(served):
    s = served()
    sock = s.connect()
    tlvs = tlv(PP2_TYPE_AUTHORITY, b"shop.example") + tlv(0x04, b"") + tlv(0xEE, b"x" * 300) + tlv(0xF9, b"")
    assert s.answer(sock, v2("2001:db8::7", "2001:db8::1", tlvs=tlvs) + REQUEST)["client"] == ["2001:db8::7", 4711]
    sock.close()


@pytest.mark.parametrize("client_flags, scheme", [(b"\x01", "https"), (b"\x00", "http")])
def test_the_ssl_tlv_says_whether_the_client_used_https(served, client_flags, scheme):
    # HAProxy's send-proxy-v2-ssl: the proxy terminated the client's TLS (PP2_CLIENT_SSL).
    s = served()
    sock = s.connect()
    ssl_tlv = tlv(PP2_TYPE_SSL, client_flags + b"\0\0\0\0" + tlv(PP2_SUBTYPE_SSL_VERSION, b"TLSv1.3"))
    assert s.answer(sock, v2(tlvs=ssl_tlv) + REQUEST)["scheme"] == scheme
    sock.close()


def test_a_reused_protocol_takes_the_next_headers_client_and_scheme(served):
    """A closed connection's protocol serves the next (HTTPProtocol.for_connection): nothing of the last header stays."""
    s = served()
    ssl_tlv = tlv(PP2_TYPE_SSL, b"\x01\0\0\0\0" + tlv(PP2_SUBTYPE_SSL_VERSION, b"TLSv1.3"))
    for header, client, scheme in ((v2("198.51.100.9", tlvs=ssl_tlv), "198.51.100.9", "https"),
                                   (v1("198.51.100.10"), "198.51.100.10", "http"),
                                   (v2("2001:db8::5", "2001:db8::1", tlvs=ssl_tlv), "2001:db8::5", "https"),
                                   (v2(command=0), "127.0.0.1", "http")):  # LOCAL: the proxy's own connection
        sock = s.connect()
        answer = s.answer(sock, header + REQUEST)
        assert (answer["client"][0], answer["scheme"]) == (client, scheme)
        sock.close()
        s.pump(lambda: not s.server.connections)
    assert len(s.server.h1.idle_protocols) == 1  # kept for the next connection


def test_wsgi_remote_addr_is_the_headers_client(served):
    def wsgi(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])
        picked = {k: environ.get(k) for k in ("REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT")}
        return [json.dumps(picked).encode()]

    s = served(WSGIApp(wsgi))
    sock = s.connect()
    assert s.answer(sock, v2("2001:db8::7", "2001:db8::1", 4711, 8443) + REQUEST) == {
        "REMOTE_ADDR": "2001:db8::7", "REMOTE_PORT": "4711", "SERVER_NAME": "2001:db8::1", "SERVER_PORT": "8443"}
    sock.close()


@pytest.mark.parametrize("allow, xff, client", [
    # The header's client is the peer the proxy headers' walk starts from: not trusted, so its
    # X-Forwarded-For (which it wrote itself, through an L4 proxy) is not believed.
    ("127.0.0.1", "192.0.2.66", "198.51.100.7"),
    # A trusted client (an HTTP proxy behind the L4 one) vouches for the hop before it.
    ("127.0.0.1,198.51.100.0/24", "192.0.2.66", "192.0.2.66"),
])
def test_proxy_headers_start_from_the_headers_client(served, allow, xff, client):
    s = served(proxy_headers=True, forwarded_allow_ips=allow)
    sock = s.connect()
    request = REQUEST.replace(b"\r\n\r\n", f"\r\nX-Forwarded-For: {xff}\r\n\r\n".encode())
    assert s.answer(sock, v1() + request)["client"][0] == client
    sock.close()


@pytest.mark.parametrize("allow, client", [("unix:", ["198.51.100.7", 4711]), ("127.0.0.1", None)])
def test_on_a_unix_socket_unix_trusts_the_peers(served, tmp_path, allow, client):
    # HAProxy on the same host, "server app unix@/run/evloop.sock send-proxy-v2".
    path = str(tmp_path / "evloop.sock")
    s = served(uds=path, forwarded_allow_ips=allow)
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(path)
    sock.setblocking(False)
    if client is None:  # an untrusted Unix peer is served as it is (its address is the empty path)
        assert s.answer(sock, REQUEST)["client"] == list("")
        sock.close()
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(path)
        sock.setblocking(False)
        assert s.exchange(sock, v2() + CLOSE) == b""
    else:
        assert s.answer(sock, v2() + REQUEST)["client"] == client
    sock.close()


# --------------------------------------------------- bad, missing, truncated
@pytest.mark.parametrize("data, reason", [
    (CLOSE, "bad header \\(not a PROXY protocol header"),
    (b"PROXY TCP4 198.51.100.7 203.0.113.1 4711 0443\r\n" + CLOSE, "not a port"),
    (b"PROXY TCP4 198.51.100.7 203.0.113.1 4711 443\n" + CLOSE, "bare CR or LF"),
    (b"PROXY TCP4 2001:db8::7 203.0.113.1 4711 443\r\n" + CLOSE, "not an IPv4 address"),
    (b"PROXY UNKNOWN " + b"x" * 120 + b"\r\n", "no CRLF within 107 bytes"),
    (V2_SIGNATURE + b"\x22\x11\x00\x0c" + b"\x01" * 12 + CLOSE, "version 2: unknown command"),
    (V2_SIGNATURE + b"\x21\x11\xff\xff", "65551-byte header"),
    (v2(tlvs=b"\xe0\x00\x09short") + CLOSE, "runs 4 bytes past"),
    (v1()[:20], "the connection ended 20 bytes into the header"),
])
def test_a_bad_or_missing_header_closes_without_an_answer(served, caplog, data, reason):
    s = served()
    fds = _open_fds()
    sock = s.connect()
    with caplog.at_level(logging.INFO, logger="evloop"):
        sock.sendall(data)
        if data == v1()[:20]:
            sock.shutdown(socket.SHUT_WR)
        assert s.exchange(sock) == b""  # not even a 400: the peer is not speaking HTTP yet
    sock.close()
    s.pump(lambda: _open_fds() <= fds)
    assert not s.server.connections  # the HTTP side never heard of it
    messages = [r.getMessage() for r in caplog.records if r.name == "evloop"]
    assert any(re.search(reason, m) and m.startswith("PROXY protocol: peer 127.0.0.1:") for m in messages), messages


def test_a_slow_header_is_bounded_by_the_header_timeout(served, caplog):
    clock = ManualClock()
    s = served(clock=clock, header_timeout_s=600.0)
    sock = s.connect()
    sock.sendall(v1()[:10])
    s.turn()
    clock.advance(599.0)
    s.turn()
    assert_open(sock)  # at 599 s
    with caplog.at_level(logging.WARNING, logger="evloop"):
        clock.advance(1.5)
        assert s.exchange(sock) == b""
    assert any("no complete header within 600 s (10 bytes came)" in r.getMessage() for r in caplog.records)
    sock.close()


@pytest.mark.parametrize("step_s, served_in_time", [(0.1, True), (0.3, False)])
def test_the_header_deadline_counts_from_the_accept_not_from_the_last_byte(served, step_s, served_in_time):
    clock = ManualClock()
    s = served(clock=clock, header_timeout_s=10.0)
    sock = s.connect()
    header = v1()  # 47 bytes: a trickle of 4.7 s in all, or 14.1 s
    try:
        for i in range(len(header)):
            sock.sendall(header[i : i + 1])
            s.reactor.run_once(0)
            clock.advance(step_s)
    except (ConnectionResetError, BrokenPipeError):
        assert not served_in_time  # closed at 10 s, about 33 bytes in
    s.reactor.run_once(0)
    if served_in_time:
        assert s.answer(sock, REQUEST)["client"] == ["198.51.100.7", 4711]
    else:
        assert s.exchange(sock) == b""
    sock.close()


def test_a_peer_that_connects_and_leaves_is_not_a_warning(served, caplog):
    s = served()
    with caplog.at_level(logging.DEBUG, logger="evloop"):
        sock = s.connect()
        sock.shutdown(socket.SHUT_WR)
        assert s.exchange(sock) == b""
    sock.close()
    levels = {r.levelno for r in caplog.records if "PROXY" in r.getMessage()}
    assert levels == {logging.DEBUG}


# ------------------------------------------------------------ untrusted peers
def test_an_untrusted_peer_is_served_as_it_is(served):
    s = served(forwarded_allow_ips="10.0.0.0/8")
    sock = s.connect()
    assert s.answer(sock, REQUEST)["client"] == list(sock.getsockname())
    sock.close()
    sock = s.connect()  # the first bytes are decided on as they come: "\r\n" may be an empty line before HTTP
    sock.sendall(b"\r\n")
    s.turn()
    assert s.answer(sock, REQUEST)["client"] == list(sock.getsockname())
    sock.close()


def test_an_untrusted_peers_first_bytes_reach_http_even_when_it_half_closes_at_once(served):
    # "PRO" is too short to tell from a PROXY signature; the EOF that follows must not lose it:
    # the HTTP protocol gets both, and answers the truncated head with a 400.
    s = served(forwarded_allow_ips="10.0.0.0/8")
    sock = s.connect()
    sock.sendall(b"PRO")
    sock.shutdown(socket.SHUT_WR)
    assert s.exchange(sock).startswith(b"HTTP/1.1 400 ")
    sock.close()


@pytest.mark.parametrize("header", [v1(), v2(), v2(command=0), b"PROXY UNKNOWN\r\n"])
def test_an_untrusted_peer_may_not_send_a_header(served, caplog, header):
    s = served(forwarded_allow_ips="10.0.0.0/8")
    fds = _open_fds()
    sock = s.connect()
    with caplog.at_level(logging.INFO, logger="evloop"):
        assert s.exchange(sock, header + CLOSE) == b""
    sock.close()
    s.pump(lambda: _open_fds() <= fds and not s.server.connections)
    assert any(re.fullmatch(r"PROXY protocol: peer 127\.0\.0\.1:\d+: sent a header, but is not a trusted proxy "
                            r"\(--forwarded-allow-ips\); connection closed", r.getMessage()) for r in caplog.records)


def test_an_untrusted_peer_keeps_the_http_deadline_from_the_accept(served):
    # Its HTTP head deadline counts from the accept, as without the PROXY
    # protocol, even while its first bytes ("PRO") could still begin a header.
    clock = ManualClock()
    s = served(clock=clock, forwarded_allow_ips="10.0.0.0/8", header_timeout_s=10.0)
    sock = s.connect()
    sock.sendall(b"PRO")
    s.turn()
    clock.advance(9.5)
    s.turn()
    assert_open(sock)
    clock.advance(1.0)
    # Closed as a connection that sent nothing (HTTP never saw the three bytes held back).
    assert s.exchange(sock) == b""
    sock.close()


def test_without_the_option_a_header_is_not_http(served):
    s = served(proxy_protocol=False)
    response = s.exchange(s.connect(), v1() + CLOSE)
    assert response.startswith(b"HTTP/1.1 400 ")
