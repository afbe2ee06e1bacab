"""``LiveServer``: a real ``Server`` on real sockets in the test's own process, driven pass by pass."""

from __future__ import annotations

import socket
import time

from evloop.reactor import Reactor
from evloop.server import Server, ServerConfig

__all__ = ["LiveServer"]


class LiveServer:
    def __init__(self, app, clock=None, **settings):
        self.reactor = Reactor(clock=clock)
        # Accepts not deferred (the server's default): connect() waits for the accept before anything is sent,
        # which Linux would hold for a second (TCP_DEFER_ACCEPT; tests/reactor/test_deferred_accept.py).
        self.server = Server(app, self.reactor, ServerConfig(**{"port": 0, "access_log": False,
                                                                "deferred_accept": False, **settings}))
        self.server.start()
        self.port = self.server.listeners[0].port

    def run_until(self, condition, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            self.reactor.run_once(0.01)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.setblocking(False)
        self.run_until(lambda: len(self.server.connections) >= 1)
        return sock

    def read_until(self, sock: socket.socket, predicate, timeout_s: float = 5.0) -> bytes:
        received = bytearray()
        closed = []

        def done() -> bool:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return predicate(bytes(received))
            except ConnectionResetError:
                closed.append(True)
                return True
            if not data:
                closed.append(True)
                return True
            received.extend(data)
            return predicate(bytes(received))

        self.run_until(done, timeout_s)
        return bytes(received)

    def close(self) -> None:
        self.server.close()
        self.reactor.run_once(0)
        self.reactor.close()
