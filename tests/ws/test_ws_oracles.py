"""Real implementations as oracles: websockets' and wsproto's sans-I/O protocol objects.

Each test does the whole opening handshake in memory (their client against
our ``accept_handshake``, our ``ClientHandshake`` against their server), so
permessage-deflate is negotiated by both sides, then exchanges messages
(whole, fragmented, compressible and not), pings and the closing handshake.
"""

import os

import pytest
import wsproto
import wsproto.events as wpe
from _ws_helpers import parse_request, parse_response, response_bytes
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Opcode
from websockets.server import ServerProtocol
from websockets.uri import parse_uri
from wsproto.extensions import PerMessageDeflate

from evloop.ws import (
    Accept,
    BinaryMessage,
    ClientHandshake,
    CloseReceived,
    ConnectionState,
    DeflateConfig,
    Ping,
    Pong,
    Role,
    TextMessage,
    WebSocketConnection,
    accept_handshake,
)

# (name, websockets/wsproto keyword arguments, our DeflateConfig): each RFC 7692 parameter.
DEFLATE_CASES = [
    ("defaults", {}, DeflateConfig()),
    ("server_no_context_takeover", {"server_no_context_takeover": True}, DeflateConfig(server_no_context_takeover=True)),
    ("client_no_context_takeover", {"client_no_context_takeover": True}, DeflateConfig(client_no_context_takeover=True)),
    ("server_max_window_bits", {"server_max_window_bits": 10}, DeflateConfig(server_max_window_bits=10)),
    ("client_max_window_bits", {"client_max_window_bits": 9}, DeflateConfig(client_max_window_bits=9)),
    ("server_max_window_bits_15", {"server_max_window_bits": 15}, DeflateConfig(server_max_window_bits=15)),
    ("all", {"server_no_context_takeover": True, "client_no_context_takeover": True,
             "server_max_window_bits": 11, "client_max_window_bits": 12},
     DeflateConfig(server_no_context_takeover=True, client_no_context_takeover=True,
                   server_max_window_bits=11, client_max_window_bits=12)),
]
CASE_IDS = [case[0] for case in DEFLATE_CASES] + ["uncompressed"]
CASES = [(kw, cfg) for _, kw, cfg in DEFLATE_CASES] + [(None, None)]

TEXTS = ["hello", "héllo wörld ✓ " * 500, "", "x" * 70000]
BLOBS = [b"\x00\x01\x02", os.urandom(70000), b"", b"ab" * 40000]


def reassemble(frames):
    """websockets' frames -> [(opcode, bytes)] of whole messages and control frames."""
    out, parts, op = [], [], None
    for f in frames:
        if f.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            if f.opcode != Opcode.CONT:
                op = f.opcode
            parts.append(f.data)
            if f.fin:
                out.append((op, b"".join(parts)))
                parts = []
        else:
            out.append((f.opcode, f.data))
    return out


def ours_server_theirs_client_websockets(kw, cfg):
    factories = [] if kw is None else [ClientPerMessageDeflateFactory(**kw)]
    client = ClientProtocol(parse_uri("ws://example.com/chat"), extensions=factories, max_size=None,
                            subprotocols=["chat.v2", "chat.v1"])
    client.send_request(client.connect())
    head = parse_request(b"".join(client.data_to_send()))
    decision = accept_handshake(head.method, head.version, head.headers, subprotocols=["chat.v1"],
                                deflate=cfg or None)
    assert isinstance(decision, Accept)
    client.receive_data(response_bytes(101, decision.headers))
    assert client.handshake_exc is None, client.handshake_exc
    assert client.subprotocol == "chat.v1"
    assert (decision.deflate is not None) == (kw is not None)
    server = WebSocketConnection(Role.SERVER, deflate=decision.deflate, subprotocol=decision.subprotocol)
    client.events_received()  # the Response
    return server, client


def ours_client_theirs_server_websockets(kw, cfg):
    factories = [] if kw is None else [ServerPerMessageDeflateFactory(**kw)]
    srv = ServerProtocol(extensions=factories, max_size=None, subprotocols=["chat.v1"])
    hs = ClientHandshake("example.com", "/chat", subprotocols=["chat.v2", "chat.v1"], deflate=cfg or None)
    srv.receive_data(hs.request())
    request = srv.events_received()[0]
    srv.send_response(srv.accept(request))
    status, headers, rest = parse_response(b"".join(srv.data_to_send()))
    negotiated = hs.check_response(status, headers)
    assert negotiated.subprotocol == "chat.v1"
    assert (negotiated.deflate is not None) == (kw is not None)
    client = WebSocketConnection(Role.CLIENT, deflate=negotiated.deflate, subprotocol=negotiated.subprotocol)
    return client, srv


@pytest.mark.parametrize(("kw", "cfg"), CASES, ids=CASE_IDS)
def test_websockets_client_to_our_server(kw, cfg):
    server, client = ours_server_theirs_client_websockets(kw, cfg)
    for text in TEXTS:
        client.send_text(text.encode())
    for blob in BLOBS:
        client.send_binary(blob)
    # Fragmented, with a ping between the fragments.
    client.send_text(b"frag", fin=False)
    client.send_ping(b"are you there")
    client.send_continuation("ment ✓".encode(), fin=False)
    client.send_continuation(b"", fin=True)
    server.receive_data(b"".join(client.data_to_send()))
    events = list(server.events())
    expected = [TextMessage(t) for t in TEXTS] + [BinaryMessage(b) for b in BLOBS]
    expected += [Ping(b"are you there"), TextMessage("fragment ✓")]
    assert events == expected
    # Our answers, and the pong, back to them.
    out = server.data_to_send()
    for text in TEXTS:
        out += server.send_text(text)
    for blob in BLOBS:
        out += server.send_bytes(blob)
    out += server.send_bytes(b"part one, ", final=False) + server.send_bytes(b"part two", final=True)
    client.receive_data(out)
    got = reassemble(client.events_received())
    assert got == ([(Opcode.PONG, b"are you there")] + [(Opcode.TEXT, t.encode()) for t in TEXTS]
                   + [(Opcode.BINARY, b) for b in BLOBS] + [(Opcode.BINARY, b"part one, part two")])
    # They close; we answer; the server then closes TCP.
    client.send_close(1000, "done")
    server.receive_data(b"".join(client.data_to_send()))
    assert list(server.events()) == [CloseReceived(1000, "done")]
    assert server.state is ConnectionState.CLOSED
    client.receive_data(server.data_to_send())
    client.receive_eof()
    assert client.close_code == 1000


@pytest.mark.parametrize(("kw", "cfg"), CASES, ids=CASE_IDS)
def test_our_client_to_websockets_server(kw, cfg):
    client, srv = ours_client_theirs_server_websockets(kw, cfg)
    out = b""
    for text in TEXTS:
        out += client.send_text(text)
    for blob in BLOBS:
        out += client.send_bytes(blob)
    out += client.send_text("frag", final=False) + client.ping(b"p") + client.send_text("ment", final=True)
    srv.receive_data(out)
    got = reassemble(srv.events_received())
    assert got == ([(Opcode.TEXT, t.encode()) for t in TEXTS] + [(Opcode.BINARY, b) for b in BLOBS]
                   + [(Opcode.PING, b"p"), (Opcode.TEXT, b"fragment")])
    for text in TEXTS:
        srv.send_text(text.encode())
    for blob in BLOBS:
        srv.send_binary(blob)
    srv.send_ping(b"hb")
    client.receive_data(b"".join(srv.data_to_send()))
    events = list(client.events())
    assert events == [Pong(b"p")] + [TextMessage(t) for t in TEXTS] + [BinaryMessage(b) for b in BLOBS] + [Ping(b"hb")]
    srv.receive_data(client.data_to_send())
    assert reassemble(srv.events_received()) == [(Opcode.PONG, b"hb")]
    # We close; they answer and close TCP.
    srv.receive_data(client.close(1001, "going"))
    assert client.state is ConnectionState.CLOSE_SENT
    client.receive_data(b"".join(srv.data_to_send()))
    assert list(client.events()) == [CloseReceived(1001, "going")]
    assert client.state is ConnectionState.CLOSED


def wsproto_pmd(kw):
    # wsproto spells the window sizes the same way; its flags likewise.
    return PerMessageDeflate(**kw)


@pytest.mark.parametrize(("kw", "cfg"), CASES, ids=CASE_IDS)
def test_wsproto_client_to_our_server(kw, cfg):
    client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    extensions = [] if kw is None else [wsproto_pmd(kw)]
    request = client.send(wpe.Request(host="example.com", target="/chat", extensions=extensions))
    head = parse_request(request)
    decision = accept_handshake(head.method, head.version, head.headers, deflate=cfg or None)
    assert isinstance(decision, Accept)
    client.receive_data(response_bytes(101, decision.headers))
    accepted = list(client.events())
    assert isinstance(accepted[0], wpe.AcceptConnection), accepted
    assert bool(accepted[0].extensions) == (kw is not None)
    server = WebSocketConnection(Role.SERVER, deflate=decision.deflate)
    out = b""
    for text in TEXTS:
        out += client.send(wpe.Message(data=text))
    for blob in BLOBS:
        out += client.send(wpe.Message(data=blob))
    out += client.send(wpe.Message(data="a", message_finished=False))
    out += client.send(wpe.Ping(b"x"))
    out += client.send(wpe.Message(data="b", message_finished=True))
    server.receive_data(out)
    assert list(server.events()) == ([TextMessage(t) for t in TEXTS] + [BinaryMessage(b) for b in BLOBS]
                                     + [Ping(b"x"), TextMessage("ab")])
    back = server.data_to_send()
    for text in TEXTS:
        back += server.send_text(text)
    for blob in BLOBS:
        back += server.send_bytes(blob)
    client.receive_data(back)
    got, text_parts, byte_parts = [], [], []
    for event in client.events():
        if isinstance(event, wpe.TextMessage):
            text_parts.append(event.data)
            if event.message_finished:
                got.append("".join(text_parts))
                text_parts = []
        elif isinstance(event, wpe.BytesMessage):
            byte_parts.append(event.data)
            if event.message_finished:
                got.append(b"".join(byte_parts))
                byte_parts = []
        else:
            got.append(event)
    assert got == [wpe.Pong(b"x")] + TEXTS + BLOBS
    server.receive_data(client.send(wpe.CloseConnection(code=1000, reason="bye")))
    assert list(server.events()) == [CloseReceived(1000, "bye")]
    client.receive_data(server.data_to_send())
    assert [type(e) for e in client.events()] == [wpe.CloseConnection]


@pytest.mark.parametrize(("kw", "cfg"), CASES, ids=CASE_IDS)
def test_our_client_to_wsproto_server(kw, cfg):
    srv = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    hs = ClientHandshake("example.com", "/", deflate=cfg or None)
    srv.receive_data(hs.request())
    request = next(srv.events())
    assert isinstance(request, wpe.Request)
    extensions = [] if kw is None else [wsproto_pmd(kw)]
    status, headers, _ = parse_response(srv.send(wpe.AcceptConnection(extensions=extensions)))
    negotiated = hs.check_response(status, headers)
    assert (negotiated.deflate is not None) == (kw is not None)
    client = WebSocketConnection(Role.CLIENT, deflate=negotiated.deflate)
    out = b"".join(client.send_text(t) for t in TEXTS) + b"".join(client.send_bytes(b) for b in BLOBS)
    srv.receive_data(out)
    got, parts = [], []
    for event in srv.events():
        parts.append(event.data)
        if event.message_finished:
            got.append(parts[0][:0].join(parts))
            parts = []
    assert got == TEXTS + BLOBS
    back = b"".join(srv.send(wpe.Message(data=t)) for t in TEXTS)
    back += b"".join(srv.send(wpe.Message(data=b)) for b in BLOBS)
    client.receive_data(back)
    assert list(client.events()) == [TextMessage(t) for t in TEXTS] + [BinaryMessage(b) for b in BLOBS]
