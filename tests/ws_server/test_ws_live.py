"""WebSocket against the real ``evloop-demo`` in a subprocess: the ``websockets`` client as the oracle, raw frames for the rest."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import struct
import urllib.error
import urllib.request

import pytest
from _ws_raw import close_code, masked, open_raw, read_frame
from support.demo import DemoServer, DemoStarter
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    server = DemoServer(["--no-access-log"], tmp_path_factory.mktemp("ws-demo") / "demo.log")
    yield server
    server.stop()


@pytest.fixture
def start_demo(tmp_path):
    starter = DemoStarter(tmp_path)
    yield starter
    starter.stop_all()


def url(server, path: str = "/ws/echo") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


# ------------------------------------------------------------ the demo contract


def test_echo_gives_back_text_as_text_and_binary_as_bytes(demo):
    with connect(url(demo), open_timeout=5, close_timeout=5) as ws:
        assert [type(ext).__name__ for ext in ws.protocol.extensions] == ["PerMessageDeflate"]
        for message in ["hello", "", "żółw 🐢", b"\x00\xff" * 10, b""]:
            ws.send(message)
            echoed = ws.recv(timeout=5)
            assert echoed == message and type(echoed) is type(message)


@pytest.mark.parametrize("window_bits", [15, 12, 9])
def test_websockets_offering_a_server_window_gets_compression(demo, window_bits):
    # websockets takes an answer without the server_max_window_bits it offered as a refusal
    # (RFC 7692 7.1.2.1) and fails the handshake; 15, the default, included.
    factory = ClientPerMessageDeflateFactory(server_max_window_bits=window_bits)
    with connect(url(demo), extensions=[factory], compression=None, open_timeout=5, close_timeout=5) as ws:
        assert [type(ext).__name__ for ext in ws.protocol.extensions] == ["PerMessageDeflate"]
        message = "evloop " * 10_000
        ws.send(message)
        assert ws.recv(timeout=5) == message


@pytest.mark.parametrize("compression", ["deflate", None])
def test_16_mib_messages_in_fragments_come_back_intact(demo, compression):
    # Half random (incompressible), half repetitive: both of deflate's cases.
    pieces = [os.urandom(2 * MIB), b"evloop " * (2 * MIB // 7), os.urandom(2 * MIB), bytes(2 * MIB)] * 2
    message = b"".join(pieces)[: 16 * MIB]
    with connect(url(demo), max_size=None, compression=compression, open_timeout=5, close_timeout=5) as ws:
        ws.send([message[i:i + MIB] for i in range(0, len(message), MIB)])  # 16 fragments
        echoed = ws.recv(timeout=30)
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(message).digest()
        text = "é" * (8 * MIB - 1)  # 16 MiB - 2 of UTF-8, two bytes a character, split across fragments
        ws.send([text[i:i + 999_999] for i in range(0, len(text), 999_999)])
        assert ws.recv(timeout=30) == text


def test_a_message_over_the_limit_closes_with_1009_from_its_header(demo):
    with open_raw(demo.port) as sock:
        sock.sendall(struct.pack("!BBQ", 0x82, 0x80 | 127, 16 * MIB + 1) + b"mask")  # no payload needed
        opcode, payload = read_frame(sock)
        assert opcode == 0x8 and close_code(payload) == 1009


def test_a_plain_get_gets_an_ordinary_http_answer(demo):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{demo.port}/ws/echo", timeout=5)
    assert refused.value.code == 426 and refused.value.headers["Upgrade"] == "websocket"
    with urllib.request.urlopen(f"http://127.0.0.1:{demo.port}/ws/chat", timeout=5) as page:
        assert page.status == 200 and b"new WebSocket(" in page.read()


def test_a_foreign_origin_is_refused_with_403(demo):
    with pytest.raises(InvalidStatus) as refused:
        connect(url(demo), origin="http://evil.example", open_timeout=5)
    assert refused.value.response.status_code == 403
    with connect(url(demo), origin=f"http://127.0.0.1:{demo.port}", open_timeout=5) as ws:
        ws.send("same origin")
        assert ws.recv(timeout=5) == "same origin"


def test_the_chat_sends_each_message_to_every_member(demo):
    with contextlib.ExitStack() as stack:
        members = [stack.enter_context(connect(url(demo, "/ws/chat"), open_timeout=5)) for _ in range(3)]
        members[0].send("a: hello")
        assert [member.recv(timeout=5) for member in members] == ["a: hello"] * 3


# ------------------------------------------------------------ raw frames


@pytest.mark.parametrize(
    "frame, code",
    [
        (masked(0x1, b"hi", mask=False), 1002),  # clients must mask
        (masked(0x1, b"\xff\xfe"), 1007),  # not UTF-8
        (masked(0x3, b""), 1002),  # a reserved opcode
        (masked(0x1, b"x", rsv=0x40), 1002),  # RSV1 without an extension
        (masked(0x9, b"p" * 126), 1002),  # a control frame over 125 bytes
        (masked(0x9, b"", fin=False), 1002),  # a fragmented control frame
        (masked(0x0, b"x"), 1002),  # a continuation with nothing to continue
    ],
    ids=["unmasked", "utf8", "opcode", "rsv1", "long-ping", "fragmented-ping", "lone-continuation"],
)
def test_a_broken_frame_closes_with_the_right_code_then_the_server_closes(demo, frame, code):
    with open_raw(demo.port) as sock:
        sock.sendall(frame)
        opcode, payload = read_frame(sock)
        assert opcode == 0x8 and close_code(payload) == code
        assert sock.recv(1) == b""  # the server closes the TCP connection


def test_ping_is_answered_and_close_is_echoed(demo):
    with open_raw(demo.port) as sock:
        sock.sendall(masked(0x9, b"are you there"))
        assert read_frame(sock) == (0xA, b"are you there")
        sock.sendall(masked(0x8, b"\x0f\xa0bye"))  # 4000 "bye"
        opcode, payload = read_frame(sock)
        assert opcode == 0x8 and close_code(payload) == 4000
        assert sock.recv(1) == b""


# ------------------------------------------------------------ liveness and shutdown


def test_a_peer_that_never_answers_pings_is_closed_after_the_ping_timeout(start_demo):
    server = start_demo("--no-access-log", "--ws-ping-interval", "0.2", "--ws-ping-timeout", "0.3")
    with open_raw(server.port) as sock:  # reads, but never answers
        assert read_frame(sock)[0] == 0x9
        opcode, payload = read_frame(sock)
        assert opcode == 0x8 and close_code(payload) == 1011
        assert sock.recv(1) == b""


def test_graceful_shutdown_sends_1001_and_exits_once_the_close_is_answered(start_demo):
    server = start_demo("--no-access-log", "--graceful-timeout", "10")
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(url(server), open_timeout=5)) for _ in range(3)]
        server.signal(signal.SIGTERM)
        for ws in clients:
            with pytest.raises(ConnectionClosedOK):
                ws.recv(timeout=5)
            assert ws.protocol.close_rcvd.code == 1001
        assert server.wait(10) == 0


def test_a_new_connection_is_refused_while_shutting_down(start_demo):
    server = start_demo("--no-access-log", "--graceful-timeout", "10")
    with open_raw(server.port) as held:  # keeps the server draining: it never answers the Close
        server.signal(signal.SIGTERM)
        assert read_frame(held)[0] == 0x8
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).recv(1)
