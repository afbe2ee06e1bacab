"""``ServerConnection.take_whole_body`` (the server's short path for a small body in its head's read) against
the plain path: ``next_event`` until the request is complete.

Each stream is fed in every split and taken both ways; the body, the
receiving side's state, and every event after it (the next pipelined
request, a partial head, a protocol error) must be the same.
"""

from __future__ import annotations

import pytest

from evloop.http import NEED_DATA, PAUSED, Data, ProtocolError, RecvState, RequestHead, ServerConnection
from evloop.http.parser import Limits

POST = b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n"
STREAMS = [
    POST % 5 + b"hello",
    POST % 5 + b"hello" + b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n",  # a pipelined request after the body
    POST % 5 + b"helloGET /partial HTTP/1.1\r\nHo",
    POST % 3 + b"abcGARBAGE\r\n\r\n",  # an invalid head after the body: the same error both ways
    POST % 1 + b"\r",  # a body byte that looks like framing
    POST % 0,  # no body at all: complete with its head
    b"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
]


def _events_after(conn: ServerConnection) -> list[object]:
    """The events until the connection waits: the rest of the stream as the plain path sees it."""
    events: list[object] = []
    while True:
        try:
            event = conn.next_event()
        except ProtocolError as exc:
            return [*events, ("error", exc.status, exc.reason)]
        if event is PAUSED:
            conn.send_response(200, [], content_length=0, date=b"d")
            conn.start_next_cycle()
            events.append("next cycle")
            continue
        if event is NEED_DATA:
            return events
        events.append((event.method, event.target, event.headers) if isinstance(event, RequestHead) else event)


def _plain(stream: bytes, split: int, max_bytes: int) -> tuple[bytes | None, tuple[RecvState, int], list[object]]:
    """The body by next_event when the whole of it is in the first read and fits, else None, as the short path."""
    conn = ServerConnection(Limits(), True)
    conn.receive_data(stream[:split])
    assert isinstance(conn.next_event(), RequestHead)
    body = None
    if conn.their_state is RecvState.BODY:
        event = conn.next_event()
        if type(event) is Data and conn.their_state is RecvState.DONE and len(event.data) <= max_bytes:
            body = event.data
        else:
            conn = ServerConnection(Limits(), True)  # start over: the short path leaves such a body unread
            conn.receive_data(stream[:split])
            conn.next_event()
    state = conn.their_state, conn.buffered_bytes
    if split < len(stream):
        conn.receive_data(stream[split:])  # (b"" would be the peer's EOF)
    return body, state, _events_after(conn)


def _short(stream: bytes, split: int, max_bytes: int) -> tuple[bytes | None, tuple[RecvState, int], list[object]]:
    conn = ServerConnection(Limits(), True)
    conn.receive_data(stream[:split])
    assert isinstance(conn.next_event(), RequestHead)
    body = conn.take_whole_body(max_bytes)
    state = conn.their_state, conn.buffered_bytes
    if split < len(stream):
        conn.receive_data(stream[split:])  # (b"" would be the peer's EOF)
    return body, state, _events_after(conn)


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("max_bytes", [0, 4, 5, 1 << 20])
def test_the_whole_body_taken_at_once_is_what_next_event_gives(stream, max_bytes):
    head_end = stream.index(b"\r\n\r\n") + 4
    taken = 0
    for split in range(head_end, len(stream) + 1):
        short = _short(stream, split, max_bytes)
        assert short == _plain(stream, split, max_bytes), split
        taken += short[0] is not None
    if b"Content-Length: 5" in stream and max_bytes >= 5:
        assert taken  # the short path was taken where it could be


def test_nothing_is_taken_without_implicit_end_or_outside_a_body():
    conn = ServerConnection()  # without implicit_end an EndOfMessage follows the body: next_event's to give
    conn.receive_data(POST % 2 + b"hi")
    conn.next_event()
    assert conn.take_whole_body(100) is None and conn.next_event() == Data(b"hi")
    conn = ServerConnection(Limits(), True)
    assert conn.take_whole_body(100) is None  # no request yet
    conn.receive_data(POST % 2 + b"hi")
    assert conn.take_whole_body(100) is None and isinstance(conn.next_event(), RequestHead)
    assert conn.take_whole_body(100) == b"hi" and conn.take_whole_body(100) is None  # taken once
    assert conn.their_state is RecvState.DONE and conn.next_event() is PAUSED


def test_a_body_next_event_has_begun_is_left_to_next_event():
    conn = ServerConnection(Limits(), True)
    conn.receive_data(POST % 4 + b"ab")
    conn.next_event()
    assert conn.next_event() == Data(b"ab")  # its reader is made, two bytes read
    conn.receive_data(b"cd")
    assert conn.take_whole_body(100) is None and conn.next_event() == Data(b"cd")
    assert conn.their_state is RecvState.DONE


@pytest.mark.parametrize("parsed", [0, 1, 70])
@pytest.mark.parametrize("size", [1, 2, 4096])
def test_a_length_body_part_that_ends_the_buffer_is_what_the_view_copies(parsed, size):
    """``ContentLengthReader``: a part that is all that is buffered (copied out after the parsed bytes are dropped)
    against one followed by more bytes (copied through a view): the same part, the same bytes left unparsed."""
    from evloop.buffers import ReceiveBuffer
    from evloop.http.body_readers import ContentLengthReader

    part = bytes(range(256)) * (size // 256) + b"p" * (size % 256)
    for remaining in (size, size + 5):  # the part completes the body, or more is to come
        ends = ReceiveBuffer()
        ends.data += b"h" * parsed + part
        ends.pos = parsed
        followed = ReceiveBuffer()
        followed.data += b"h" * parsed + part + b"NEXT"
        followed.pos = parsed
        reader = ContentLengthReader(remaining)
        assert reader(ends) == Data(part) and reader.remaining == remaining - size
        assert bytes(ends.data[ends.pos:]) == b""
        if remaining == size:  # the view's path: a part cut short by the body's end
            reader = ContentLengthReader(remaining)
            assert reader(followed) == Data(part) and reader.remaining == 0
            assert bytes(followed.data[followed.pos:]) == b"NEXT"


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 70000])
def test_a_part_taken_by_slice_or_by_view_is_the_same_bytes(size):
    from evloop.http.body_readers import _take

    data = bytearray(b"h" * 3 + bytes(range(256)) * (size // 256 + 1) + b"t")
    assert _take(data, 3, size) == bytes(data)[3 : 3 + size] and type(_take(data, 3, size)) is bytes
