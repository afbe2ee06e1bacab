"""Server deadlines read the reactor's clock: minutes-long timeouts tested in microseconds.

A real server and real sockets in this process; only time is manual
(``evloop.ManualClock``), so each deadline is crossed by ``advance`` and
checked on both sides of it.
"""

from __future__ import annotations

import socket
import time

from evloop import ManualClock
from evloop.app import App, Response
from evloop.reactor import Reactor
from evloop.server import Server, ServerConfig


def _app() -> App:
    app = App()

    @app.route("/")
    def index(request):
        return Response(body=b"hi")

    return app


def _serve(clock: ManualClock, **settings):
    reactor = Reactor(clock=clock)
    server = Server(_app(), reactor, ServerConfig(port=0, access_log=False, **settings))
    server.start()
    return reactor, server, server.listeners[0].port


def _pump(reactor: Reactor, condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s  # a real bound on the test, not on the server
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        reactor.run_once(0.01)


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_ten_minute_keepalive_timeout_without_waiting():
    clock = ManualClock()
    reactor, server, port = _serve(clock, keepalive_timeout_s=600.0)
    try:
        started = time.monotonic()
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        got = bytearray()
        sock.setblocking(False)

        def answered() -> bool:
            try:
                got.extend(sock.recv(65536))
            except BlockingIOError:
                pass
            return got.endswith(b"hi")

        _pump(reactor, answered)
        clock.advance(599.0)
        for _ in range(3):
            reactor.run_once(0)
        assert not _closed_by_server(sock)  # 599 s idle: still open
        clock.advance(1.5)
        _pump(reactor, lambda: _closed_by_server(sock))  # past 600 s: closed
        assert len(server.connections) == 0 or all(c.transport is None for c in server.connections)
        assert time.monotonic() - started < 5
        sock.close()
    finally:
        server.close()
        reactor.run_once(0)
        reactor.close()


def test_header_timeout_on_the_manual_clock():
    clock = ManualClock()
    reactor, server, port = _serve(clock, header_timeout_s=120.0)
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\nHo")  # a head that never ends
        sock.setblocking(False)
        _pump(reactor, lambda: len(server.connections) == 1)
        for _ in range(3):
            reactor.run_once(0)
        clock.advance(119.0)
        reactor.run_once(0)
        assert not _closed_by_server(sock)
        clock.advance(2.0)
        got = bytearray()

        def closed() -> bool:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return False
            except ConnectionResetError:
                return True
            got.extend(data)
            return not data

        _pump(reactor, closed)
        assert not got or got.startswith(b"HTTP/1.1 408")
        sock.close()
    finally:
        server.close()
        reactor.run_once(0)
        reactor.close()
