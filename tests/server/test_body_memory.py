"""Issue 15, item 6: a request body that arrives in small reads costs memory in proportion to its size.

Real sockets and the real server in this process: the client sends one byte, the
reactor takes one pass, so the server reads the body one byte per ``recv`` (the
case that cost ~52 bytes of memory per body byte when every read was kept as its
own ``bytes`` object).
"""

from __future__ import annotations

import socket
import tracemalloc

from evloop.app import App, Response
from evloop.reactor import Reactor
from evloop.server import Server, ServerConfig

BODY_BYTES = 30_000


def test_a_body_read_one_byte_at_a_time_is_held_in_about_its_own_size():
    app = App()
    app.add_route("/sink", lambda request: Response(body=b"%d" % len(request.body)), methods=["POST"])
    reactor = Reactor()
    server = Server(app, reactor, ServerConfig(port=0, access_log=False))
    try:
        port = server.start()[0].addresses[0][1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.sendall(b"POST /sink HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % BODY_BYTES)
            for _ in range(20):
                reactor.run_once(0)  # accept, read the head
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for _ in range(BODY_BYTES - 1):
                    client.send(b"x")  # loopback: in the server's receive queue when send returns
                    reactor.run_once(0)
                held = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            assert held < 3 * BODY_BYTES, f"{held} bytes held for a {BODY_BYTES}-byte body"
            client.send(b"x")
            reply = b""
            while not reply.endswith(b"%d" % BODY_BYTES):
                reactor.run_once(0.1)
                try:
                    client.setblocking(False)
                    reply += client.recv(65536)
                except BlockingIOError:
                    pass
            assert reply.startswith(b"HTTP/1.1 200 ")
    finally:
        server.close()
        reactor.close()
