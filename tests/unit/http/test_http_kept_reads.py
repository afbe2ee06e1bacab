"""A read kept as it came (``ServerConnection.receive_data`` with ``bytes`` and nothing buffered: parsed where it
is, see ``evloop.buffers.ReceiveBuffer``) against the plain path: the same reads given as bytearrays, which are
always copied into the buffer's own bytearray.

Any split of a stream of requests, with and without ``implicit_end``, the
whole body taken at once or read by ``next_event``, must give the same
events, the same errors and the same bytes left over both ways.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_http_properties import split_stream

from evloop.http import NEED_DATA, PAUSED, Data, ProtocolError, RecvState, RequestHead, ServerConnection
from evloop.http.parser import Limits

POST = b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n"


def _serve(chunks: list[bytes], kind: type, implicit: bool, whole_body: bool) -> list[object]:
    """Every event (and the bodies taken whole) of ``chunks`` given as ``kind``, answering each request."""
    conn = ServerConnection(Limits(), implicit, implicit)
    seen: list[object] = []
    try:
        for chunk in [*chunks, b""]:
            conn.receive_data(kind(chunk) if chunk else b"")
            while True:
                event = conn.next_event()
                if event is NEED_DATA:
                    break
                if event is PAUSED or (implicit and conn.their_state is RecvState.DONE):
                    conn.send_response(200, [], content_length=0, date=b"d")
                    if not implicit:
                        conn.start_next_cycle()
                    seen.append(("next", conn.their_state, conn.buffered_bytes))
                    continue
                if isinstance(event, RequestHead):
                    seen.append((event.method, event.target, event.headers))
                    body = conn.take_whole_body(1 << 20) if whole_body else None
                    if body is not None:
                        assert type(body) is bytes
                        seen.append(("whole body", body))
                    continue
                if isinstance(event, Data):
                    assert type(event.data) is bytes
                seen.append(event)
                if conn.their_state is RecvState.CLOSED:
                    return seen
    except ProtocolError as exc:
        seen.append(("error", exc.status, exc.reason))
    return seen


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(split_stream(), st.booleans(), st.booleans())
def test_kept_reads_give_what_copied_reads_give(case, implicit, whole_body):
    _, chunks, _ = case
    assert _serve(chunks, bytes, implicit, whole_body) == _serve(chunks, bytearray, implicit, whole_body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=8), st.booleans())
def test_kept_reads_of_any_bytes_give_what_copied_reads_give(chunks, implicit):
    assert _serve(chunks, bytes, implicit, True) == _serve(chunks, bytearray, implicit, True)


def test_a_body_that_ends_its_read_is_taken_without_the_buffer_and_a_body_read_whole_is_the_read():
    conn = ServerConnection(Limits(), True, True)
    conn.receive_data(POST % 5 + b"hello")
    conn.next_event()
    assert conn.take_whole_body(100) == b"hello" and conn.buffered_bytes == 0
    conn.send_response(200, [], content_length=0, date=b"d")
    conn.receive_data(POST % 8)
    conn.next_event()
    body = b"whole!!!"
    conn.receive_data(body)  # the body in a read of its own: given as it came, no copy
    event = conn.next_event()
    assert type(event) is Data and event.data is body and conn.their_state is RecvState.DONE


def test_a_mutable_read_is_copied_so_its_owner_may_reuse_it():
    conn = ServerConnection(Limits(), True, True)
    read = bytearray(POST % 5 + b"hello")
    conn.receive_data(read)  # type: ignore[arg-type]
    read[:] = b"X" * len(read)
    head = conn.next_event()
    assert isinstance(head, RequestHead) and head.target == "/b" and conn.take_whole_body(100) == b"hello"


def test_more_bytes_after_a_kept_read_are_added_to_a_copy_of_its_rest():
    conn = ServerConnection(Limits(), True, True)
    first = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HT"
    conn.receive_data(first)
    assert conn.next_event().target == "/a"  # type: ignore[union-attr]
    conn.send_response(200, [], content_length=0, date=b"d")
    conn.receive_data(b"TP/1.1\r\nHost: h\r\n\r\n")
    assert conn.next_event().target == "/b"  # type: ignore[union-attr]
    assert first == b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HT"  # the kept read was never changed
    assert conn.buffered_bytes == 0
