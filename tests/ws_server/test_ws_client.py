"""``connect_websocket`` against a real ``Server`` on the same reactor: real sockets, the same handler API both sides."""

from __future__ import annotations

import pytest
from support.live import LiveServer

from evloop.app import App
from evloop.websocket import WebSocketHandler, broadcast
from evloop.websocket_client import connect_websocket
from evloop.ws import HandshakeError


class Client(WebSocketHandler):
    def __init__(self) -> None:
        super().__init__()
        self.received: list[str | bytes] = []
        self.pongs: list[bytes] = []
        self.ended: tuple[int, str] | None = None

    def message_received(self, message):
        self.received.append(message)

    def pong_received(self, payload):
        self.pongs.append(payload)

    def closed(self, code, reason):
        self.ended = (code, reason)


room: set[WebSocketHandler] = set()


def make_app() -> App:
    app = App()

    @app.websocket("/echo")
    class Echo(WebSocketHandler):
        subprotocols = ("v2", "v1")

        def opened(self):
            self.send_text(f"subprotocol {self.subprotocol}")

        def message_received(self, message):
            if message == "close please":
                self.close(4001, "as asked")
            else:
                self.send(message)

    @app.websocket("/room/{name}")
    class Room(WebSocketHandler):
        def opened(self):
            room.add(self)
            self.send_text(f"joined {self.request.path_params['name']}")

        def message_received(self, message):
            broadcast(room, message)

        def closed(self, code, reason):
            room.discard(self)

    return app


@pytest.fixture
def live():
    server = LiveServer(make_app())
    yield server
    server.close()


def open_client(live, path="/echo", **kwargs) -> Client:
    client = Client()
    future = connect_websocket(live.reactor, f"ws://127.0.0.1:{live.port}{path}", client, **kwargs)
    assert live.reactor.run_until_complete(future, timeout_s=5) is client
    return client


def test_echo_both_ways_with_the_subprotocol_negotiated(live):
    client = open_client(live, subprotocols=["v1", "v2"])
    assert client.subprotocol == "v2"  # the server's preference among those offered
    client.send_text("hello")
    client.send_bytes(b"\x00\x01")
    client.ping(b"p")
    live.run_until(lambda: len(client.received) == 3 and client.pongs)
    assert client.received == ["subprotocol v2", "hello", b"\x00\x01"] and client.pongs == [b"p"]


def test_a_close_from_the_server_reaches_the_client_with_its_code(live):
    client = open_client(live)
    client.send_text("close please")
    live.run_until(lambda: client.ended is not None)
    assert client.ended == (4001, "as asked") and client.close_code == 4001
    live.run_until(lambda: not live.server.connections)


def test_a_close_from_the_client_ends_both_sides(live):
    client = open_client(live)
    client.close(1000, "done")
    live.run_until(lambda: client.ended is not None and not live.server.connections)
    assert client.ended == (1000, "")  # the code of the peer's answering Close (it echoes the code only)


def test_broadcast_reaches_every_member_of_the_room(live):
    clients = [open_client(live, "/room/lobby") for _ in range(3)]
    live.run_until(lambda: all(c.received == ["joined lobby"] for c in clients))
    clients[1].send_text("hi all")
    live.run_until(lambda: all(len(c.received) == 2 for c in clients))
    assert {c.received[1] for c in clients} == {"hi all"}


def test_a_refused_handshake_fails_the_future(live):
    with pytest.raises(HandshakeError, match="status 404"):
        open_client(live, "/nowhere")


def test_a_refused_connection_fails_the_future(live):
    port = live.port
    live.server.close()
    live.reactor.run_once(0)
    with pytest.raises(OSError):
        live.reactor.run_until_complete(connect_websocket(live.reactor, f"ws://127.0.0.1:{port}/", Client()),
                                        timeout_s=5)


def test_urls_it_cannot_serve():
    with pytest.raises(ValueError, match="ws://"):
        connect_websocket(None, "http://example.com/", Client())  # type: ignore[arg-type]
