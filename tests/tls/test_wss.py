"""WebSocket over TLS (``wss://``): evloop-demo's ``/ws/echo`` with a certificate, reached by evloop's own
client (``connect_websocket``) and by the ``websockets`` library's client, both verifying the test CA."""

from __future__ import annotations

import pytest

from evloop.reactor import Reactor
from evloop.websocket import WebSocketHandler
from evloop.websocket_client import connect_websocket

websockets_sync = pytest.importorskip("websockets.sync.client")


class Collector(WebSocketHandler):
    def __init__(self, reactor: Reactor | None = None, expected: int = 0) -> None:
        super().__init__()
        self.received: list[str | bytes] = []
        self.expected = expected
        self.all_received = reactor.create_future() if reactor is not None else None

    def message_received(self, message):
        self.received.append(message)
        if len(self.received) == self.expected and self.all_received is not None:
            self.all_received.set_result(self.received)


@pytest.fixture
def wss_demo(start_demo, certs):
    return start_demo("--certfile", str(certs.cert_file), "--keyfile", str(certs.key_file), "--no-access-log")


def test_evloops_client_echoes_over_wss(wss_demo, certs):
    with Reactor() as reactor:
        client = Collector(reactor, expected=2)
        future = connect_websocket(reactor, f"wss://localhost:{wss_demo.port}/ws/echo", client,
                                   ssl=certs.client_context())
        assert reactor.run_until_complete(future, timeout_s=10) is client
        client.send_text("over TLS")
        client.send_bytes(b"\x00\xff")
        assert reactor.run_until_complete(client.all_received, timeout_s=10) == ["over TLS", b"\x00\xff"]
        client.close()


def test_the_websockets_client_echoes_over_wss(wss_demo, certs):
    with websockets_sync.connect(f"wss://localhost:{wss_demo.port}/ws/echo", ssl=certs.client_context(),
                                 open_timeout=10) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        ws.send(b"x" * 100_000)
        assert ws.recv(timeout=10) == b"x" * 100_000


def test_an_untrusted_certificate_fails_evloops_client(wss_demo):
    import ssl

    with Reactor() as reactor:
        future = connect_websocket(reactor, f"wss://localhost:{wss_demo.port}/ws/echo", Collector(),
                                   ssl=ssl.create_default_context())  # the system's CAs: not the test CA
        with pytest.raises(ssl.SSLCertVerificationError):
            reactor.run_until_complete(future, timeout_s=10)



def test_a_timed_out_wss_handshake_closes_its_connection():
    """A server that accepts but never answers the ClientHello: the timeout fails the future and the
    half-made TLS connection is closed then, not at the 60 s handshake deadline."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as silent, Reactor() as reactor:
        port = silent.getsockname()[1]
        future = connect_websocket(reactor, f"wss://127.0.0.1:{port}/", Collector(), timeout_s=0.2)
        with pytest.raises(TimeoutError):
            reactor.run_until_complete(future, timeout_s=5)
        accepted, _ = silent.accept()
        with accepted:
            accepted.setblocking(False)
            received, closed = b"", False
            for _ in range(200):  # the abort runs from the loop: drive it while looking (bounded: ~2 s)
                reactor.run_once(0.01)
                try:
                    chunk = accepted.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    closed = True
                    break
                if not chunk:
                    closed = True
                    break
                received += chunk
            assert received[:1] == b"\x16" and closed  # the ClientHello, then the close
