"""The README's WebSocket example runs: a client's frames in, the echo out."""

import re
from pathlib import Path

from _ws_helpers import parse_request

from evloop.ws import ClientHandshake, Role, TextMessage, WebSocketConnection

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_example_echoes():
    section = README.read_text(encoding="utf-8").split("## WebSocket protocol (sans-I/O)", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    hs = ClientHandshake("example.com", "/ws", subprotocols=["chat"])
    conn = namespace["upgrade"](parse_request(hs.request()))
    assert isinstance(conn, WebSocketConnection) and conn.subprotocol == "chat"
    client = WebSocketConnection(Role.CLIENT, deflate=conn.deflate)
    written = []
    namespace["data_received"](conn, client.send_text("hi") + client.ping(b"p"), written.append)
    client.receive_data(b"".join(written))
    assert [e for e in client.events() if isinstance(e, TextMessage)] == [TextMessage("hi")]
