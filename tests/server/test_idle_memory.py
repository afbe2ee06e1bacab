"""Issue 20's memory target, in small: an idle keep-alive connection costs the server under 2 KiB.

Real sockets and the real server in this process: each client sends one
browser-sized request and keeps its connection open; tracemalloc counts what
the server's code allocated meanwhile and still holds (``load/server_memory.py
idle`` measures the same on 10,000 connections as the process's RSS).
"""

from __future__ import annotations

import gc
import socket
import tracemalloc

from evloop.app import App, Response
from evloop.reactor import Reactor
from evloop.server import Server, ServerConfig

CONNECTIONS = 300
# About 700 bytes, as a browser's: an idle connection must not keep its last head.
HEAD = (
    b"GET /page?session=0123456789abcdef HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n"
    b"Accept-Language: en-GB,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\n"
    b"Referer: http://127.0.0.1/index.html\r\nCookie: " + b"c=" + b"x" * 250 + b"\r\n\r\n"
)


def _serve_one_request_each(reactor: Reactor, port: int, count: int) -> list[socket.socket]:
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.sendall(HEAD)
        client.setblocking(False)
        clients.append(client)
    waiting = set(clients)
    for _ in range(100_000):
        if not waiting:
            return clients
        reactor.run_once(0.01)
        for client in list(waiting):
            try:
                if client.recv(65536).endswith(b"hello"):
                    waiting.discard(client)
            except BlockingIOError:
                pass
    raise AssertionError(f"{len(waiting)} of {count} requests not answered")


def test_an_idle_keepalive_connection_costs_the_server_under_2_kib():
    app = App()
    app.add_route("/page", lambda request: Response(body=b"hello"))
    reactor = Reactor()
    server = Server(app, reactor, ServerConfig(port=0, access_log=False))
    clients: list[socket.socket] = []
    try:
        port = server.start()[0].addresses[0][1]
        for client in _serve_one_request_each(reactor, port, 20):  # warm: caches, the spare request
            client.close()
        for _ in range(10):
            reactor.run_once(0)
        gc.collect()
        tracemalloc.start(30)
        try:
            before = tracemalloc.take_snapshot()
            clients = _serve_one_request_each(reactor, port, CONNECTIONS)
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        assert len(server.connections) == CONNECTIONS
        # Only what was allocated with a frame of evloop (or the selectors it registers with) on the
        # stack: the test's own client sockets do not count.
        server_side = [tracemalloc.Filter(True, "*/evloop/*", all_frames=True)]
        held = sum(stat.size_diff for stat in after.filter_traces(server_side).compare_to(
            before.filter_traces(server_side), "filename"))
        assert held / CONNECTIONS < 2048, f"{held / CONNECTIONS:.0f} bytes per idle connection"
    finally:
        for client in clients:
            client.close()
        server.close()
        for _ in range(5):
            reactor.run_once(0)
        reactor.close()
