"""The connection's rules, frame by frame, with raw frames (RFC 6455 sections 5-7)."""

import itertools
import tracemalloc

import pytest
from _ws_helpers import MASK, collect, frame, plain_xor, server

from evloop.ws import (
    BinaryMessage,
    CloseReceived,
    ConnectionClosed,
    ConnectionFailed,
    ConnectionState,
    DeflateParams,
    Ping,
    Pong,
    PreparedMessage,
    Role,
    StateError,
    TextMessage,
    WebSocketConnection,
)
from evloop.ws.connection import EVENTS, transition
from evloop.ws.deflate import Deflater
from evloop.ws.frames import encode_frame, mask_payload

S = ConnectionState
TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA

# Written out independently of the implementation's table.
EXPECTED = {
    (S.OPEN, "send_close"): S.CLOSE_SENT,
    (S.OPEN, "close_received"): S.CLOSED,
    (S.OPEN, "fail"): S.CLOSED,
    (S.OPEN, "eof"): S.CLOSED,
    (S.CLOSE_SENT, "close_received"): S.CLOSED,
    (S.CLOSE_SENT, "fail"): S.CLOSED,
    (S.CLOSE_SENT, "eof"): S.CLOSED,
    (S.CLOSED, "eof"): S.CLOSED,
}


@pytest.mark.parametrize(("state", "event"), list(itertools.product(S, EVENTS)))
def test_every_state_event_pair(state, event):
    if (state, event) in EXPECTED:
        assert transition(state, event) is EXPECTED[state, event]
    else:
        with pytest.raises(StateError, match=f"{state.name}.*{event}"):
            transition(state, event)


def client() -> WebSocketConnection:
    return WebSocketConnection(Role.CLIENT, mask_source=lambda n: MASK)


def close_code_sent(conn: WebSocketConnection) -> int:
    """The code of the Close frame the connection queued (a server's frames are unmasked)."""
    out = conn.data_to_send()
    assert out[0] == 0x88, out
    return int.from_bytes(out[2:4], "big")


def fails(data: bytes, code: int, conn: WebSocketConnection | None = None, chunk: int | None = None) -> ConnectionFailed:
    conn = conn or server()
    events = collect(conn, data, chunk)
    assert isinstance(events[-1], ConnectionFailed), events
    assert events[-1].code == code
    assert conn.state is S.CLOSED
    assert close_code_sent(conn) == code
    # Nothing after a failure is read.
    conn.receive_data(frame(TEXT, b"more"))
    assert conn.next_event() is None
    return events[-1]


# -- the three ways: whole, one byte at a time, with trailing bytes ---------

GOOD_STREAMS = [
    (frame(TEXT, b"hello"), [TextMessage("hello")]),
    (frame(BINARY, b"\x00\xff" * 100), [BinaryMessage(b"\x00\xff" * 100)]),
    (frame(TEXT, "é✓".encode() * 1000), [TextMessage("é✓" * 1000)]),
    (frame(BINARY, bytes(70000)), [BinaryMessage(bytes(70000))]),
    (frame(TEXT, b""), [TextMessage("")]),
    (frame(TEXT, b"ab", fin=False) + frame(PING, b"x") + frame(CONT, b"c", fin=False) + frame(CONT, b"d"),
     [Ping(b"x"), TextMessage("abcd")]),
    (frame(BINARY, b"", fin=False) + frame(CONT, b"") + frame(PONG, b"y"), [BinaryMessage(b""), Pong(b"y")]),
    # A multi-byte character split between frames.
    (frame(TEXT, "✓".encode()[:1], fin=False) + frame(CONT, "✓".encode()[1:]), [TextMessage("✓")]),
]


@pytest.mark.parametrize(("data", "expected"), GOOD_STREAMS)
def test_whole_bytewise_and_trailing(data, expected):
    assert collect(server(), data) == expected
    assert collect(server(), data, chunk=1) == expected
    trailing = frame(TEXT, b"next message")[:5]
    conn = server()
    assert collect(conn, data + trailing) == expected
    assert conn.buffered_bytes == 5
    conn.receive_data(frame(TEXT, b"next message")[5:])
    assert list(conn.events()) == [TextMessage("next message")]


# -- frame rules -------------------------------------------------------------

def test_client_frames_must_be_masked():
    fails(frame(TEXT, b"hi", mask=None), 1002)


def test_server_frames_must_not_be_masked():
    conn = client()
    events = collect(conn, frame(TEXT, b"hi"))
    assert events == [ConnectionFailed(1002, "masked frame from a server")]
    # A client's Close is masked.
    out = conn.data_to_send()
    assert out[0] == 0x88 and out[1] & 0x80
    assert plain_xor(out[2:6], out[6:]) == b"\x03\xea" + b"masked frame from a server"


def test_client_reads_unmasked_frames():
    assert collect(client(), frame(TEXT, b"hi", mask=None)) == [TextMessage("hi")]


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x60, 0x70])
def test_reserved_bits_without_extension(rsv):
    fails(frame(TEXT, b"x", rsv=rsv), 1002)


def deflating_server(**params) -> WebSocketConnection:
    return WebSocketConnection(Role.SERVER, deflate=DeflateParams(**params))


@pytest.mark.parametrize("data", [
    frame(PING, b"", rsv=0x40),  # RSV1 on a control frame
    frame(TEXT, b"", fin=False) + frame(CONT, b"", rsv=0x40),  # RSV1 on a continuation frame
    frame(TEXT, b"", rsv=0x20),  # RSV2 is nobody's
])
def test_reserved_bits_with_deflate(data):
    fails(data, 1002, deflating_server())


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcodes(opcode):
    fails(frame(opcode, b""), 1002)


def test_control_frame_limits():
    fails(frame(PING, b"x" * 126, length_bytes=2), 1002)
    fails(frame(PING, b"x", fin=False), 1002)
    fails(frame(CLOSE, b"\x03\xe8" + b"x" * 124, length_bytes=2), 1002)
    assert collect(server(), frame(PING, b"x" * 125)) == [Ping(b"x" * 125)]


def test_continuation_rules():
    fails(frame(CONT, b"x"), 1002)
    fails(frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"), 1002)
    fails(frame(BINARY, b"a", fin=False) + frame(BINARY, b"b"), 1002)
    # A finished message does not leave the continuation state behind.
    fails(frame(TEXT, b"a", fin=False) + frame(CONT, b"b") + frame(CONT, b"c"), 1002)


def test_lengths():
    # 64-bit length with the top bit set: refused from the header alone.
    fails(b"\x82\xff" + (1 << 63).to_bytes(8, "big") + MASK, 1002)
    # Not in the fewest bytes (RFC 6455 5.2).
    fails(frame(BINARY, b"x" * 100, length_bytes=2), 1002)
    fails(frame(BINARY, b"x" * 1000, length_bytes=8), 1002)
    assert collect(server(), frame(BINARY, b"x" * 126)) == [BinaryMessage(b"x" * 126)]
    assert collect(server(), frame(BINARY, b"x" * 65536)) == [BinaryMessage(b"x" * 65536)]


# -- UTF-8 -------------------------------------------------------------------

@pytest.mark.parametrize("bad", [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"a\x80", b"\xce"])
def test_text_not_utf8(bad):
    fails(frame(TEXT, bad), 1007)
    fails(frame(TEXT, bad, fin=False) + frame(CONT, b""), 1007)


@pytest.mark.parametrize("prefix", [b"\xed\xa0", b"\xf4\x90", b"\xe0\x80", b"\xc2A", b"ok\xf5"])
def test_utf8_fails_fast_across_frames_and_reads(prefix):
    # Across frames: the first frame cannot become valid, whatever follows.
    fails(frame(TEXT, prefix, fin=False), 1007)
    # Across reads: the start of a long frame's payload is enough.
    data = frame(TEXT, prefix + b"a" * 1000)
    fails(data[: 8 + len(prefix)], 1007)


def test_utf8_valid_prefix_waits():
    conn = server()
    assert collect(conn, frame(TEXT, b"\xf0\x9f", fin=False)) == []
    assert conn.state is S.OPEN
    assert collect(conn, frame(CONT, b"\x98\x80")) == [TextMessage("😀")]


# -- close frames ------------------------------------------------------------

@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999])
def test_valid_close_codes(code):
    conn = server()
    assert collect(conn, frame(CLOSE, code.to_bytes(2, "big") + "✓".encode())) == [CloseReceived(code, "✓")]
    assert conn.data_to_send() == b"\x88\x02" + code.to_bytes(2, "big")  # the code echoed


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_invalid_close_codes(code):
    fails(frame(CLOSE, code.to_bytes(2, "big")), 1002)


def test_close_payload_rules():
    fails(frame(CLOSE, b"\x03"), 1002)
    fails(frame(CLOSE, b"\x03\xe8\xff"), 1007)
    conn = server()
    assert collect(conn, frame(CLOSE, b"")) == [CloseReceived(1005, "")]
    assert conn.data_to_send() == b"\x88\x00"


# -- the closing handshake ---------------------------------------------------

def test_peer_initiates_close():
    conn = server()
    assert collect(conn, frame(CLOSE, b"\x03\xe9bye") + frame(TEXT, b"ignored")) == [CloseReceived(1001, "bye")]
    assert conn.state is S.CLOSED
    assert conn.data_to_send() == b"\x88\x02\x03\xe9"
    with pytest.raises(StateError):
        conn.send_text("late")
    with pytest.raises(StateError):
        conn.close()
    conn.receive_data(b"")
    assert list(conn.events()) == [ConnectionClosed(1001, "bye")]
    assert conn.next_event() is None


def test_we_initiate_close():
    conn = server()
    assert conn.close(1000, "done") == b"\x88\x06\x03\xe8done"
    assert conn.state is S.CLOSE_SENT
    with pytest.raises(StateError, match="CLOSE_SENT"):
        conn.send_bytes(b"x")
    with pytest.raises(StateError):
        conn.ping()
    # Data may still arrive before the peer's Close; pings are not answered.
    events = collect(conn, frame(TEXT, b"in flight") + frame(PING, b"p") + frame(CLOSE, b"\x03\xe8"))
    assert events == [TextMessage("in flight"), Ping(b"p"), CloseReceived(1000, "")]
    assert conn.state is S.CLOSED
    assert conn.data_to_send() == b""
    conn.receive_data(b"")
    assert list(conn.events()) == [ConnectionClosed(1000, "")]


def test_eof_without_close_is_abnormal():
    conn = server()
    conn.receive_data(frame(TEXT, b"last") + frame(TEXT, b"cut")[:4])
    conn.receive_data(b"")
    assert list(conn.events()) == [TextMessage("last"), ConnectionClosed(1006, "")]
    assert conn.state is S.CLOSED


def test_close_arguments():
    with pytest.raises(ValueError):
        server().close(1005)
    with pytest.raises(ValueError):
        server().close(1000, "x" * 124)
    with pytest.raises(ValueError):
        server().close(None, "reason without code")
    assert server().close(None) == b"\x88\x00"
    assert server().close(4000, "x" * 123)[:4] == b"\x88\x7d\x0f\xa0"
    with pytest.raises(ValueError):
        server().ping(b"x" * 126)


# -- ping and pong -----------------------------------------------------------

def test_auto_pong():
    conn = server()
    assert collect(conn, frame(PING, b"abc")) == [Ping(b"abc")]
    assert conn.data_to_send() == b"\x8a\x03abc"
    assert conn.data_to_send() == b""
    quiet = WebSocketConnection(Role.SERVER, auto_pong=False)
    assert collect(quiet, frame(PING, b"abc")) == [Ping(b"abc")]
    assert quiet.data_to_send() == b""
    assert quiet.pong(b"abc") == b"\x8a\x03abc"


# -- size limits -------------------------------------------------------------

def test_max_message_bytes():
    limited = lambda: WebSocketConnection(Role.SERVER, max_message_bytes=100)  # noqa: E731
    assert collect(limited(), frame(BINARY, b"x" * 100)) == [BinaryMessage(b"x" * 100)]
    # Refused from the header, before the payload arrives.
    fails(frame(BINARY, b"x" * 101)[:8], 1009, limited())
    fails(frame(TEXT, b"x" * 60, fin=False) + frame(CONT, b"x" * 41)[:8], 1009, limited())


# -- fragments delivered as they come ----------------------------------------

def test_deliver_fragments():
    conn = WebSocketConnection(Role.SERVER, deliver_fragments=True)
    check = "✓".encode()
    data = frame(TEXT, b"ab" + check[:1], fin=False) + frame(CONT, check[1:] + b"c") + frame(BINARY, b"x" * 300)
    assert collect(conn, data) == [TextMessage("ab", False), TextMessage("✓c", True), BinaryMessage(b"x" * 300)]
    # Partial frames are delivered as they arrive.
    conn = WebSocketConnection(Role.SERVER, deliver_fragments=True)
    big = frame(BINARY, bytes(range(256)) * 40)
    events = collect(conn, big, chunk=4000)
    assert b"".join(e.data for e in events) == bytes(range(256)) * 40
    assert [e.final for e in events] == [False] * (len(events) - 1) + [True]


# -- sending -----------------------------------------------------------------

def test_server_frames():
    conn = server()
    assert conn.send_text("hi") == b"\x81\x02hi"
    assert conn.send_bytes(b"\x00" * 126)[:4] == b"\x82\x7e\x00\x7e"
    assert conn.send_bytes(b"\x00" * 65536)[:10] == b"\x82\x7f" + (65536).to_bytes(8, "big")
    assert conn.send_text("a", final=False) + conn.send_text("b") == b"\x01\x01a\x80\x01b"
    conn.send_bytes(b"a", final=False)
    with pytest.raises(StateError, match="fragmented"):
        conn.send_text("mixed")
    with pytest.raises(StateError, match="fragmented"):
        conn.send_prepared(PreparedMessage("x"))
    assert conn.ping(b"p") == b"\x89\x01p"  # control frames may interleave


def test_client_frames_are_masked():
    conn = client()
    out = conn.send_text("hello")
    assert out[:2] == b"\x81\x85" and out[2:6] == MASK and plain_xor(MASK, out[6:]) == b"hello"
    assert collect(server(), out) == [TextMessage("hello")]


def test_prepared_message():
    message = PreparedMessage("broadcast ✓" * 20)
    plain = server()
    assert plain.send_prepared(message) == plain.send_text("broadcast ✓" * 20)
    # With context takeover the frame goes uncompressed; the peer reads it either way.
    takeover = deflating_server()
    assert takeover.send_prepared(message) is message.frame
    reader = WebSocketConnection(Role.CLIENT, deflate=DeflateParams())
    assert collect(reader, takeover.send_text("first") + takeover.send_prepared(message) + takeover.send_text("next")) \
        == [TextMessage("first"), TextMessage("broadcast ✓" * 20), TextMessage("next")]
    # Without it, one compressed frame serves every such connection.
    fresh = [deflating_server(server_no_context_takeover=True) for _ in range(3)]
    frames = [c.send_prepared(message) for c in fresh]
    assert frames[0] is frames[1] is frames[2] and frames[0][0] == 0xC1 and len(frames[0]) < len(message.frame)
    reader = WebSocketConnection(Role.CLIENT, deflate=DeflateParams(server_no_context_takeover=True))
    assert collect(reader, frames[0] + frames[0]) == [TextMessage("broadcast ✓" * 20)] * 2
    # A client masks it with its own key.
    assert collect(server(), client().send_prepared(PreparedMessage(b"\x01"))) == [BinaryMessage(b"\x01")]


# -- permessage-deflate ------------------------------------------------------

def test_compressed_fragments_and_context_takeover():
    deflater = Deflater(15, False)
    conn = deflating_server()
    data = b""
    for _ in range(3):
        pieces = [deflater.deflate(b"abc" * 100, False), deflater.deflate(b"def", True)]
        data += frame(TEXT, pieces[0], fin=False, rsv=0x40) + frame(PING, b"") + frame(CONT, pieces[1])
    events = collect(conn, data, chunk=7)
    assert events == [Ping(b""), TextMessage("abc" * 100 + "def")] * 3


def test_uncompressed_message_on_deflate_connection():
    assert collect(deflating_server(), frame(BINARY, b"raw")) == [BinaryMessage(b"raw")]


def test_corrupt_compressed_data():
    fails(frame(BINARY, b"\xff\xff\xff\xff", rsv=0x40), 1007, deflating_server())


def test_decompression_bomb():
    # 64 MiB of zeros deflate to about 64 KiB; the limit stops the inflating.
    deflater = Deflater(15, False)
    payload = deflater.deflate(bytes(64 << 20), True)
    assert len(payload) < 100_000
    conn = WebSocketConnection(Role.SERVER, deflate=DeflateParams(), max_message_bytes=1 << 20)
    data = frame(BINARY, payload, rsv=0x40)
    tracemalloc.start()
    try:
        fails(data, 1009, conn, chunk=16384)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak  # the limit and change, never the 64 MiB


# -- unmasking ---------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 15, 16, 17, 255, 319, 320, 321, 4096, 4099, 100_001])
def test_mask_payload_against_plain_xor(size):
    data = bytes((i * 7 + 3) & 0xFF for i in range(size))
    for mask in (MASK, b"\x00\x00\x00\x00", b"\xff\x01\x80\x7f"):
        assert bytes(mask_payload(mask, data)) == plain_xor(mask, data)
        assert bytes(mask_payload(mask, memoryview(data))) == plain_xor(mask, data)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536])
def test_encode_frame_against_the_rfc_layout(size):
    """``encode_frame`` (its small unmasked branch first) against RFC 6455 5.2's layout spelt out."""
    payload = (bytes(range(256)) * (size // 256 + 1))[:size]
    if size < 126:
        length = bytes((size,))
    elif size < 65536:
        length = bytes((126,)) + size.to_bytes(2, "big")
    else:
        length = bytes((127,)) + size.to_bytes(8, "big")
    for first in (0x81, 0x82, 0x01, 0x88):
        assert encode_frame(first, payload) == bytes((first,)) + length + payload
        masked = bytes((first, length[0] | 0x80)) + length[1:] + MASK + plain_xor(MASK, payload)
        assert encode_frame(first, payload, MASK) == masked


def test_partial_frames_rotate_the_mask():
    payload = bytes(range(256)) * 20
    data = frame(BINARY, payload)
    for chunk in (1, 3, 5, 4097):
        assert collect(server(), data, chunk) == [BinaryMessage(payload)]


def test_inflater_stops_at_the_limit():
    from evloop.ws.deflate import Inflater, MessageTooBig

    bomb = Deflater(15, False).deflate(bytes(256 << 20), True)  # 256 MiB of zeros in about 256 KiB
    inflater = Inflater(15, False)
    with pytest.raises(MessageTooBig):
        inflater.inflate(bomb, True, 1 << 20)
    # Exactly at the limit is fine.
    exact = Deflater(15, True).deflate(bytes(1 << 20), True)
    assert len(Inflater(15, True).inflate(exact, True, 1 << 20)) == 1 << 20


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
@pytest.mark.parametrize("text", ["", "x", "hello, world", "é" * 70, "y" * 125, "z" * 126, "w" * 70_000])
def test_send_text_fast_path_frames_as_the_general_path(role, text):
    """``send_text``'s whole-message shortcut gives the bytes ``_send_data`` gives (the plain path)."""
    from evloop.ws.frames import OP_TEXT

    keys = iter([b"\x01\x02\x03\x04", b"\x01\x02\x03\x04"])
    fast = WebSocketConnection(role, mask_source=lambda n: next(keys))
    plain = WebSocketConnection(role, mask_source=lambda n: b"\x01\x02\x03\x04")
    assert fast.send_text(text) == plain._send_data(OP_TEXT, text.encode("utf-8"), True, "send_text")


def test_send_text_small_heads_as_encode_frame():
    """A server's small text frame (its head from ``frames.TEXT_HEADS``) against ``encode_frame``, every size
    the table covers and the first past it, ASCII and two-byte UTF-8."""
    from evloop.ws.frames import OP_TEXT

    conn = server()
    for size in range(130):
        for text in ("a" * size, "é" * (size // 2)):
            assert conn.send_text(text) == encode_frame(0x80 | OP_TEXT, text.encode()), (size, text)


def test_send_text_16_bit_heads_as_encode_frame():
    """A server's text frame of 126 bytes to 64 KiB (its head packed in ``send_text``) against ``encode_frame``,
    at the edges of the 16-bit length and past it, ASCII and two-byte UTF-8."""
    from evloop.ws.frames import OP_TEXT

    conn = server()
    for size in (126, 127, 4096, 65534, 65535, 65536, 65537):
        for text in ("a" * size, "é" * (size // 2), "é" * (size // 2) + "a"):
            assert conn.send_text(text) == encode_frame(0x80 | OP_TEXT, text.encode()), (size, len(text))


def test_needs_data_only_when_the_next_call_would_say_none():
    """``needs_data`` (the server glue's shortcut) against the plain ``next_event`` to None."""
    conn = server()
    assert not conn.needs_data
    conn.receive_data(frame(TEXT, b"a") + frame(BINARY, b"b") + b"\x81")  # one byte of a third header
    assert conn.next_event() == TextMessage("a") and not conn.needs_data  # a whole frame is still buffered
    assert conn.next_event() == BinaryMessage(b"b") and conn.needs_data
    assert conn.next_event() is None
    conn.receive_data(b"\x01")  # a whole header now (of an unmasked frame): not sure any more
    assert not conn.needs_data
    assert conn.next_event().code == 1002
    conn = server()
    conn.receive_data(frame(TEXT, b"x"))
    conn.receive_data(b"")  # EOF: ConnectionClosed follows, so the shortcut stays off
    assert conn.next_event() == TextMessage("x") and not conn.needs_data
    assert type(conn.next_event()).__name__ == "ConnectionClosed"


def test_whole_frame_fast_path_unmasks_every_small_size_as_plain_xor():
    """The whole-frame branch's key-and-payload-as-one-int unmasking (frames.SPREADS), every size it takes."""
    from evloop.ws.frames import SMALL_PAYLOAD

    for size in range(SMALL_PAYLOAD + 2):
        payload = (bytes(range(255, -1, -1)) * 2)[:size]
        for mask in (MASK, b"\xff\x00\xa5\x5a"):
            conn = server()
            conn.receive_data(frame(BINARY, payload, mask=mask))  # masked byte by byte
            event = conn.next_event()
            assert event == BinaryMessage(payload) and type(event.data) is bytes, (size, mask)


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 16, 125, 126, 318, 319, 320, 321, 4096, 65535])
def test_whole_frame_fast_path_unmasks_as_the_general_path(size):
    """``next_event``'s whole-frame branch (its unmasking inline below SMALL_PAYLOAD) against the general
    path (the frame in pieces of 3 bytes: _start_frame, _read_payload); ``frame`` masks byte by byte."""
    payload = (bytes(range(256)) * (size // 256 + 1))[:size]
    text = bytes(b & 0x7F for b in payload)  # ASCII: valid UTF-8
    for data, expected in ((frame(BINARY, payload), BinaryMessage(payload)),
                           (frame(TEXT, text), TextMessage(text.decode()))):
        assert collect(server(), data) == [expected]
        assert collect(server(), data, 3) == [expected]


def _events_through_next_event(conn: WebSocketConnection, pieces: list[bytes]) -> list:
    """Every event, each read's bytes handed to the first ``next_event(received)`` (the server glue's way)."""
    events: list = []
    for piece in pieces:
        event = conn.next_event(piece)
        while event is not None:
            events.append(event)
            event = conn.next_event()
    return events


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 5000, None])
@pytest.mark.parametrize("ending", ["close", "unmasked", "eof"])
def test_next_event_with_received_bytes_as_receive_data(chunk, ending):
    """``next_event(received)`` against the plain ``receive_data`` + ``next_event``: the same events and the
    same frames to send, whatever the reads' sizes, through a fragmented message, a Ping, a 4 KiB text, a
    failure, a Close, bytes after it and EOF."""
    from evloop.ws.frames import OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_TEXT

    stream = (frame(OP_TEXT, b"hello") + frame(OP_BINARY, bytes(range(200)))
              + frame(OP_TEXT, b"frag", fin=False) + frame(OP_PING, b"p") + frame(OP_CONTINUATION, b"ment")
              + frame(OP_TEXT, "é".encode() * 2048) + frame(OP_TEXT, b""))
    if ending == "close":
        stream += frame(OP_CLOSE, b"\x03\xe8bye") + frame(OP_TEXT, b"after the close")
    elif ending == "unmasked":
        stream += frame(OP_TEXT, b"no mask", mask=None)
    size = chunk or len(stream)
    pieces = [stream[i:i + size] for i in range(0, len(stream), size)] + [b""]  # b"": EOF
    plain, fast = server(), server()
    expected = []
    for piece in pieces:
        plain.receive_data(piece)
        expected.extend(plain.events())
    assert _events_through_next_event(fast, pieces) == expected
    assert fast.data_to_send() == plain.data_to_send()
    assert fast.state is plain.state
    assert len(expected) >= 6
