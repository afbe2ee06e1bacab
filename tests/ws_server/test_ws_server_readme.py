"""The README's WebSocket examples run: the server's block on a LiveServer, the client's against evloop-demo."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from support.demo import DemoServer
from support.live import LiveServer

from evloop.websocket import WebSocketHandler
from evloop.websocket_client import connect_websocket

README = Path(__file__).resolve().parents[2] / "README.md"


def blocks() -> list[str]:
    section = README.read_text(encoding="utf-8").split("## WebSockets\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


class Client(WebSocketHandler):
    def __init__(self):
        super().__init__()
        self.received = []

    def message_received(self, message):
        self.received.append(message)


def test_the_server_example_echoes_and_broadcasts():
    code = blocks()[0].replace('serve(app, "127.0.0.1", 8080)', "")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    live = LiveServer(namespace["app"])
    try:
        clients = []
        for path in ("/ws/echo", "/ws/room/a", "/ws/room/a"):
            client = Client()
            future = connect_websocket(live.reactor, f"ws://127.0.0.1:{live.port}{path}", client,
                                       subprotocols=["chat.v1"])
            live.reactor.run_until_complete(future, timeout_s=5)
            clients.append(client)
        echo, first, second = clients
        assert first.subprotocol == "chat.v1" and echo.subprotocol is None
        echo.send_bytes(b"\x00")
        first.send_text("to the room")
        live.run_until(lambda: echo.received == [b"\x00"] and first.received == second.received == ["to the room"])
    finally:
        live.close()


def test_the_client_example_talks_to_the_demo(tmp_path):
    demo = DemoServer(["--no-access-log"], tmp_path / "demo.log")
    try:
        code = blocks()[1].replace("ws://127.0.0.1:8080/", f"ws://127.0.0.1:{demo.port}/")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "hello\n"
    finally:
        demo.stop()
