"""The two state machines, keep-alive, and response framing."""

import itertools

import pytest
from _http_helpers import DATE, request

from evloop.http import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    EndOfMessage,
    ProtocolError,
    RecvState,
    RequestHead,
    SendState,
    ServerConnection,
    StateError,
)
from evloop.http.states import RECV_EVENTS, SEND_EVENTS, recv_transition, send_transition

R, S = RecvState, SendState

# Written out independently of the implementation's table.
EXPECTED_RECV = {
    (R.IDLE, "head"): R.BODY,
    (R.IDLE, "complete_head"): R.DONE,
    (R.IDLE, "eof"): R.CLOSED,
    (R.IDLE, "error"): R.ERROR,
    (R.BODY, "data"): R.BODY,
    (R.BODY, "end"): R.DONE,
    (R.BODY, "eof"): R.CLOSED,
    (R.BODY, "error"): R.ERROR,
    (R.DONE, "next_cycle"): R.IDLE,
}
EXPECTED_SEND = {
    (S.IDLE, "request"): S.SEND_RESPONSE,
    (S.IDLE, "error_response"): S.MUST_CLOSE,
    (S.SEND_RESPONSE, "informational"): S.SEND_RESPONSE,
    (S.SEND_RESPONSE, "response"): S.SEND_BODY,
    (S.SEND_RESPONSE, "complete_response"): S.DONE,
    (S.SEND_RESPONSE, "error_response"): S.MUST_CLOSE,
    (S.SEND_BODY, "data"): S.SEND_BODY,
    (S.SEND_BODY, "end"): S.DONE,
    (S.SEND_BODY, "error_response"): S.MUST_CLOSE,
    (S.DONE, "next_cycle"): S.IDLE,
    (S.DONE, "error_response"): S.MUST_CLOSE,
    (S.MUST_CLOSE, "error_response"): S.MUST_CLOSE,
    (S.SEND_RESPONSE, "switch_protocols"): S.SWITCHED,
}


@pytest.mark.parametrize("state,event", list(itertools.product(RecvState, RECV_EVENTS)))
def test_receiving_side_transition_or_error(state, event):
    expected = EXPECTED_RECV.get((state, event))
    if expected is None:
        with pytest.raises(StateError, match=f"{state.name}.*{event}"):
            recv_transition(state, event)
    else:
        assert recv_transition(state, event) is expected


@pytest.mark.parametrize("keep_alive", [True, False])
@pytest.mark.parametrize("state,event", list(itertools.product(SendState, SEND_EVENTS)))
def test_sending_side_transition_or_error(state, event, keep_alive):
    expected = EXPECTED_SEND.get((state, event))
    if expected is None:
        with pytest.raises(StateError, match=f"{state.name}.*{event}"):
            send_transition(state, event, keep_alive)
        return
    if expected is S.DONE and not keep_alive:
        expected = S.MUST_CLOSE
    assert send_transition(state, event, keep_alive) is expected


# -- the same, through the public API -----------------------------------------

GET = request("GET / HTTP/1.1\nHost: h")


def conn_in(state: SendState) -> ServerConnection:
    conn = ServerConnection()
    if state is S.IDLE:
        return conn
    conn.receive_data(GET)
    conn.next_event(), conn.next_event()
    if state is S.SEND_RESPONSE:
        return conn
    if state is S.SEND_BODY:
        conn.send_response(200, [], content_length=None, date=DATE)
    elif state is S.DONE:
        conn.send_response(200, [], content_length=0, date=DATE)
    elif state is S.MUST_CLOSE:
        conn.send_error_response(400, "bad", DATE)
    elif state is S.SWITCHED:
        conn.send_switching_protocols([("Upgrade", "websocket")], DATE)
    assert conn.our_state is state
    return conn


OPS = {
    "informational": lambda c: c.send_informational(100),
    "complete_response": lambda c: c.send_response(200, [], content_length=2, date=DATE, body=b"ok"),
    "response": lambda c: c.send_response(200, [], content_length=None, date=DATE),
    "data": lambda c: c.send_data(b"x"),
    "end": lambda c: c.send_end(),
    "error_response": lambda c: c.send_error_response(500, "oops", DATE),
    "next_cycle": lambda c: c.start_next_cycle(),
    "switch_protocols": lambda c: c.send_switching_protocols([], DATE),
}
API_EXPECTED = {
    (S.SEND_RESPONSE, "informational"): S.SEND_RESPONSE,
    (S.SEND_RESPONSE, "complete_response"): S.DONE,
    (S.SEND_RESPONSE, "response"): S.SEND_BODY,
    (S.SEND_BODY, "data"): S.SEND_BODY,
    (S.SEND_BODY, "end"): S.DONE,
    (S.DONE, "next_cycle"): S.IDLE,
    (S.SEND_RESPONSE, "switch_protocols"): S.SWITCHED,
    # After a 101 nothing is HTTP any more, not even an error response.
    **{(state, "error_response"): S.MUST_CLOSE for state in SendState if state is not S.SWITCHED},
}


@pytest.mark.parametrize("state,op", list(itertools.product(SendState, OPS)))
def test_api_call_in_each_sending_state(state, op):
    conn = conn_in(state)
    expected = API_EXPECTED.get((state, op))
    if expected is None:
        with pytest.raises(StateError, match=state.name):
            OPS[op](conn)
        assert conn.our_state is state
    else:
        OPS[op](conn)
        assert conn.our_state is expected


def test_switching_protocols_frames_a_101_and_leaves_the_bytes_after_the_request():
    conn = ServerConnection()
    conn.receive_data(request("GET /ws HTTP/1.1\nHost: h\nUpgrade: websocket") + b"\x81\x80frame")
    conn.next_event(), conn.next_event()
    head = conn.send_switching_protocols([("Upgrade", "websocket"), ("Connection", "Upgrade")], DATE, b"s")
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\nServer: s\r\nDate: ")
    assert head.endswith(b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    assert conn.trailing_data() == b"\x81\x80frame"
    assert conn.our_state is S.SWITCHED and not conn.keep_alive


def test_switching_protocols_needs_a_complete_http11_request():
    conn = ServerConnection()
    conn.receive_data(request("GET / HTTP/1.0"))
    conn.next_event(), conn.next_event()
    with pytest.raises(StateError, match="HTTP/1.1"):
        conn.send_switching_protocols([], DATE)


def test_start_next_cycle_needs_request_complete():
    conn = ServerConnection()
    conn.receive_data(request("POST / HTTP/1.1\nHost: h\nContent-Length: 3", b"a"))
    conn.next_event(), conn.next_event()
    conn.send_response(200, [], content_length=0, date=DATE)
    with pytest.raises(StateError, match="receiving side BODY"):
        conn.start_next_cycle()


def test_head_after_error_response_is_a_state_error():
    conn = ServerConnection()
    conn.send_error_response(408, "timeout", DATE)
    conn.receive_data(GET)
    with pytest.raises(StateError, match="MUST_CLOSE"):
        conn.next_event()


def test_data_after_eof_is_a_state_error():
    conn = ServerConnection()
    conn.receive_data(b"")
    with pytest.raises(StateError):
        conn.receive_data(b"x")


# -- keep-alive ----------------------------------------------------------------

KEEP_ALIVE_MATRIX = [
    # version, Connection field, request keep_alive, response Connection line
    ("HTTP/1.1", None, True, None),
    ("HTTP/1.1", "keep-alive", True, None),
    ("HTTP/1.1", "close", False, b"Connection: close"),
    ("HTTP/1.1", "Upgrade, CLOSE", False, b"Connection: close"),
    ("HTTP/1.0", None, False, b"Connection: close"),
    ("HTTP/1.0", "keep-alive", True, b"Connection: keep-alive"),
    ("HTTP/1.0", "Keep-Alive, foo", True, b"Connection: keep-alive"),
    ("HTTP/1.0", "close", False, b"Connection: close"),
]


@pytest.mark.parametrize("version,field,keep_alive,line", KEEP_ALIVE_MATRIX)
def test_keep_alive_decision(version, field, keep_alive, line):
    conn = ServerConnection()
    head = f"GET / {version}\nHost: h" + (f"\nConnection: {field}" if field else "")
    conn.receive_data(request(head))
    event = conn.next_event()
    assert event.keep_alive is keep_alive
    conn.next_event()
    out = conn.send_response(200, [], content_length=2, date=DATE, body=b"ok")
    lines = out.split(b"\r\n")
    assert [x for x in lines if x.lower().startswith(b"connection:")] == ([line] if line else [])
    assert conn.keep_alive is keep_alive
    assert conn.our_state is (S.DONE if keep_alive else S.MUST_CLOSE)


def received(head: str, body: bytes = b"") -> ServerConnection:
    conn = ServerConnection()
    conn.receive_data(request(head, body))
    while conn.next_event() is not PAUSED:
        pass
    return conn


def parse_response(out: bytes):
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = [tuple(x.split(b": ", 1)) for x in lines[1:]]
    return lines[0], fields, body


def names(fields):
    return [n.lower() for n, _ in fields]


def test_response_with_known_length_and_body_in_one_piece():
    conn = received("GET / HTTP/1.1\nHost: h")
    out = conn.send_response(200, [("Content-Type", "text/plain")], content_length=5, date=DATE, body=b"hello")
    status, fields, body = parse_response(out)
    assert status == b"HTTP/1.1 200 OK"
    assert (b"Content-Length", b"5") in fields and (b"Date", DATE) in fields
    assert (b"Server", b"evloop") in fields and (b"Content-Type", b"text/plain") in fields
    assert body == b"hello"
    assert conn.our_state is S.DONE and conn.keep_alive
    conn.start_next_cycle()
    assert conn.their_state is R.IDLE and conn.our_state is S.IDLE
    assert conn.next_event() is NEED_DATA


def test_streamed_response_is_chunked_on_http11():
    conn = received("GET / HTTP/1.1\nHost: h")
    out = conn.send_response(200, [], content_length=None, date=DATE, body=b"first")
    _, fields, body = parse_response(out)
    assert (b"Transfer-Encoding", b"chunked") in fields and b"content-length" not in names(fields)
    assert body == b"5\r\nfirst\r\n"
    assert conn.send_data(b"hello world") == b"b\r\nhello world\r\n"
    assert conn.send_data(b"") == b""  # an empty chunk would end the body
    assert conn.send_end() == b"0\r\n\r\n"
    assert conn.our_state is S.DONE and conn.keep_alive


def test_streamed_response_is_close_delimited_on_http10():
    conn = received("GET / HTTP/1.0\nConnection: keep-alive")
    out = conn.send_response(200, [], content_length=None, date=DATE)
    _, fields, _ = parse_response(out)
    assert (b"Connection", b"close") in fields
    assert b"transfer-encoding" not in names(fields) and b"content-length" not in names(fields)
    assert not conn.keep_alive
    assert conn.send_data(b"raw") == b"raw"
    assert conn.send_end() == b""
    assert conn.our_state is S.MUST_CLOSE


def test_content_length_response_streamed_in_pieces():
    conn = received("GET / HTTP/1.1\nHost: h")
    conn.send_response(200, [], content_length=6, date=DATE, body=b"ab")
    assert conn.our_state is S.SEND_BODY
    assert conn.send_data(b"cd") == b"cd"
    with pytest.raises(ValueError):
        conn.send_data(b"efg")
    assert conn.send_data(b"ef") == b"ef"
    assert conn.send_end() == b""
    assert conn.our_state is S.DONE and conn.keep_alive


def test_short_content_length_body_forces_close():
    conn = received("GET / HTTP/1.1\nHost: h")
    conn.send_response(200, [], content_length=6, date=DATE)
    conn.send_data(b"abc")
    conn.send_end()
    assert conn.our_state is S.MUST_CLOSE and not conn.keep_alive


def test_body_longer_than_content_length_is_refused():
    conn = received("GET / HTTP/1.1\nHost: h")
    with pytest.raises(ValueError):
        conn.send_response(200, [], content_length=1, date=DATE, body=b"ab")
    assert conn.our_state is S.SEND_RESPONSE


def test_head_response_keeps_headers_and_drops_body():
    conn = received("HEAD / HTTP/1.1\nHost: h")
    out = conn.send_response(200, [], content_length=5, date=DATE, body=b"hello")
    _, fields, body = parse_response(out)
    assert (b"Content-Length", b"5") in fields and body == b""
    assert conn.our_state is S.DONE


def test_head_response_of_unknown_length():
    conn = received("HEAD / HTTP/1.1\nHost: h")
    out = conn.send_response(200, [], content_length=None, date=DATE)
    _, fields, body = parse_response(out)
    assert (b"Transfer-Encoding", b"chunked") in fields and body == b""
    assert conn.send_data(b"ignored") == b""
    assert conn.send_end() == b""
    assert conn.our_state is S.DONE and conn.keep_alive


def test_head_response_http10_unknown_length_keeps_alive():
    conn = received("HEAD / HTTP/1.0\nConnection: keep-alive")
    out = conn.send_response(200, [], content_length=None, date=DATE)
    assert b"Connection: keep-alive" in out and conn.keep_alive


@pytest.mark.parametrize("status", [204, 304])
@pytest.mark.parametrize("content_length", [None, 0, 5])
def test_no_content_statuses_never_carry_a_body(status, content_length):
    conn = received("GET / HTTP/1.1\nHost: h")
    body = b"hello" if content_length == 5 else b""
    out = conn.send_response(status, [], content_length=content_length, date=DATE, body=body)
    _, fields, rest = parse_response(out)
    assert b"content-length" not in names(fields) and b"transfer-encoding" not in names(fields)
    assert rest == b""
    if content_length is None:
        assert conn.send_data(b"x") == b"" and conn.send_end() == b""
    assert conn.our_state is S.DONE and conn.keep_alive


def test_app_connection_close_is_honoured_once():
    conn = received("GET / HTTP/1.1\nHost: h")
    out = conn.send_response(200, [("Connection", "close")], content_length=0, date=DATE)
    _, fields, _ = parse_response(out)
    assert names(fields).count(b"connection") == 1
    assert not conn.keep_alive and conn.our_state is S.MUST_CLOSE


def test_app_date_server_and_framing_fields_are_not_duplicated():
    conn = received("GET / HTTP/1.1\nHost: h")
    out = conn.send_response(
        200,
        [("Date", "custom"), ("Server", "mine"), ("Content-Length", "3"), ("Transfer-Encoding", "gzip")],
        content_length=None,
        date=DATE,
        body=b"abc",
    )
    _, fields, body = parse_response(out)
    assert sorted(names(fields)) == [b"content-length", b"date", b"server"]
    assert (b"Date", b"custom") in fields and (b"Server", b"mine") in fields
    assert (b"Content-Length", b"3") in fields and body == b"abc"
    assert conn.our_state is S.DONE


def test_bytes_headers():
    conn = received("GET / HTTP/1.1\nHost: h")
    out = conn.send_response(200, [(b"X-A", b"1"), (b"X-B", b"\xff")], content_length=0, date=DATE, server=b"s")
    _, fields, _ = parse_response(out)
    assert (b"X-A", b"1") in fields and (b"X-B", b"\xff") in fields and (b"Server", b"s") in fields


@pytest.mark.parametrize(
    "headers",
    [
        [("X-A", "a\r\nSet-Cookie: evil=1")],
        [("X-A", "a\nb")],
        [("X-A", "a\rb")],
        [("X-A", "a\x00b")],
        [("X-A\r\nEvil", "1")],
        [("X A", "1")],
        [("", "1")],
        [("X:A", "1")],
        [("X-A", "\u20ac")],
        [(b"X-A", b"a\r\nb")],
        [(b"X-A\n", b"1")],
        [("Ok", "1"), ("X-A", "\r\n")],
    ],
)
def test_response_splitting_is_refused(headers):
    conn = received("GET / HTTP/1.1\nHost: h")
    with pytest.raises(ValueError):
        conn.send_response(200, headers, content_length=0, date=DATE)
    assert conn.our_state is S.SEND_RESPONSE
    conn.send_response(500, [], content_length=0, date=DATE)


def test_response_before_request_body_is_read_closes():
    conn = ServerConnection()
    conn.receive_data(request("POST / HTTP/1.1\nHost: h\nExpect: 100-continue\nContent-Length: 100"))
    head = conn.next_event()
    assert head.expect_continue
    out = conn.send_response(413, [], content_length=0, date=DATE)
    assert b"Connection: close" in out and not conn.keep_alive
    assert conn.our_state is S.MUST_CLOSE


def test_100_continue_then_body():
    conn = ServerConnection()
    conn.receive_data(request("POST / HTTP/1.1\nHost: h\nExpect: 100-continue\nContent-Length: 2"))
    assert conn.next_event().expect_continue
    assert conn.next_event() is NEED_DATA
    assert conn.send_informational() == b"HTTP/1.1 100 Continue\r\n\r\n"
    conn.receive_data(b"ok")
    assert conn.next_event().data == b"ok"
    assert conn.next_event() == EndOfMessage([])
    conn.send_response(200, [], content_length=0, date=DATE)
    assert conn.keep_alive


def test_informational_rules():
    conn = received("GET / HTTP/1.1\nHost: h")
    assert conn.send_informational(103, [("Link", "</a>; rel=preload")]) == (
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
    )
    for bad in (101, 99, 200):
        with pytest.raises(ValueError):
            conn.send_informational(bad)
    assert received("GET / HTTP/1.0").send_informational() == b""


def test_error_response():
    conn = ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\nX : y\r\n\r\n")
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    err = info.value
    out = conn.send_error_response(err.status, err.reason, DATE)
    status, fields, body = parse_response(out)
    assert status == b"HTTP/1.1 400 Bad Request"
    assert (b"Connection", b"close") in fields
    assert (b"Content-Type", b"text/plain; charset=utf-8") in fields
    assert (b"Content-Length", str(len(body)).encode()) in fields
    assert body.startswith(b"400 Bad Request: whitespace before colon")
    assert conn.our_state is S.MUST_CLOSE and not conn.keep_alive


def test_error_response_for_head_request_has_no_body():
    conn = ServerConnection()
    conn.receive_data(request("HEAD / HTTP/1.1\nHost: h\nContent-Length: 5", b"ab"))
    conn.next_event(), conn.next_event()
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()
    out = conn.send_error_response(408, "timeout", DATE)
    _, fields, body = parse_response(out)
    assert body == b"" and int(dict(fields)[b"Content-Length"]) > 0


def test_error_response_after_response_started_is_empty():
    conn = received("GET / HTTP/1.1\nHost: h")
    conn.send_response(200, [], content_length=None, date=DATE)
    assert conn.send_error_response(500, "late", DATE) == b""
    assert conn.our_state is S.MUST_CLOSE and not conn.keep_alive


def test_unknown_and_invalid_status():
    conn = received("GET / HTTP/1.1\nHost: h")
    with pytest.raises(ValueError):
        conn.send_response(100, [], content_length=0, date=DATE)
    with pytest.raises(ValueError):
        conn.send_response(1000, [], content_length=0, date=DATE)
    assert conn.send_response(299, [], content_length=0, date=DATE).startswith(b"HTTP/1.1 299 \r\n")


def test_should_pause_reading():
    conn = ServerConnection()
    conn.receive_data(GET)
    assert not conn.should_pause_reading
    conn.next_event(), conn.next_event()
    assert not conn.should_pause_reading
    conn.receive_data(b"x" * (256 * 1024 + 1))
    assert conn.should_pause_reading
    closing = received("GET / HTTP/1.1\nHost: h\nConnection: close")
    assert closing.should_pause_reading


def test_many_cycles_keep_buffer_small():
    conn = ServerConnection()
    for _ in range(1000):
        conn.receive_data(GET[:10])
        conn.receive_data(GET[10:] + GET[:5])
        assert isinstance(conn.next_event(), RequestHead)
        assert conn.next_event() == EndOfMessage([])
        conn.send_response(200, [], content_length=0, date=DATE)
        conn.start_next_cycle()
        conn.receive_data(GET[5:])
        assert isinstance(conn.next_event(), RequestHead)
        conn.next_event()
        conn.send_response(200, [], content_length=0, date=DATE)
        conn.start_next_cycle()
    assert conn.buffered_bytes == 0


def test_file_data_sent_accounts_for_bytes_sent_outside_send_data():
    conn = received("GET / HTTP/1.1\nHost: h")
    conn.send_response(200, [], content_length=10, date=DATE)
    conn.file_data_sent(4)
    with pytest.raises(ValueError):
        conn.file_data_sent(7)
    conn.file_data_sent(6)
    assert conn.send_end() == b""
    assert conn.our_state is S.DONE and conn.keep_alive


def test_file_data_sent_refuses_chunked_and_needs_a_body_in_progress():
    conn = received("GET / HTTP/1.1\nHost: h")
    with pytest.raises(StateError):
        conn.file_data_sent(1)
    conn.send_response(200, [], content_length=None, date=DATE)
    with pytest.raises(ValueError):
        conn.file_data_sent(1)


def test_implicit_end_completes_a_bodiless_request_with_its_head():
    conn = ServerConnection(implicit_end=True)
    conn.receive_data(
        b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
        b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
        b"GET /c HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
    )
    head = conn.next_event()
    assert isinstance(head, RequestHead) and head.target == "/a"
    assert conn.their_state is RecvState.DONE and conn.next_event() is PAUSED
    conn.send_response(200, [], content_length=0, date=DATE)
    assert conn.start_next_cycle() > 0  # the next requests are already buffered
    head = conn.next_event()
    assert head.target == "/b" and conn.their_state is RecvState.BODY
    assert conn.next_event().data == b"hi"
    # The Data holding a Content-Length body's last byte completes the request: no EndOfMessage.
    assert conn.their_state is RecvState.DONE and conn.next_event() is PAUSED
    conn.send_response(200, [], content_length=0, date=DATE)
    conn.start_next_cycle()
    assert conn.next_event().target == "/c" and conn.their_state is RecvState.DONE  # Content-Length: 0
    conn.send_response(200, [], content_length=0, date=DATE)
    assert conn.start_next_cycle() == 0
    assert conn.next_event() is NEED_DATA


def test_implicit_end_completes_a_length_body_with_its_last_data_whatever_the_split():
    request = b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    for split in range(len(request) - 5, len(request)):
        conn = ServerConnection(implicit_end=True)
        conn.receive_data(request[:split])
        events = []
        while (event := conn.next_event()) is not NEED_DATA:
            events.append(event)
        assert conn.their_state is RecvState.BODY  # bytes of the body are missing
        conn.receive_data(request[split:])
        while (event := conn.next_event()) is not PAUSED:
            events.append(event)
        assert isinstance(events[0], RequestHead) and not any(isinstance(e, EndOfMessage) for e in events)
        assert b"".join(e.data for e in events[1:]) == b"hello" and conn.their_state is RecvState.DONE


def test_implicit_end_still_ends_a_chunked_body_with_end_of_message():
    conn = ServerConnection(implicit_end=True)
    conn.receive_data(b"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
    assert isinstance(conn.next_event(), RequestHead)
    assert conn.next_event().data == b"hi" and conn.their_state is RecvState.BODY
    assert isinstance(conn.next_event(), EndOfMessage) and conn.their_state is RecvState.DONE


def test_without_implicit_end_a_bodiless_request_still_ends_with_end_of_message():
    conn = ServerConnection()
    conn.receive_data(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
    assert isinstance(conn.next_event(), RequestHead)
    assert isinstance(conn.next_event(), EndOfMessage)


def test_implicit_end_takes_a_pipelined_request_complete_with_its_head():
    conn = ServerConnection(implicit_end=True)
    conn.receive_data(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHo")
    assert conn.next_event().target == "/a"
    conn.send_response(200, [], content_length=0, date=DATE)
    assert conn.start_next_cycle()
    head = conn.next_event()  # IDLE --complete_head--> DONE
    assert head.target == "/b" and conn.their_state is RecvState.DONE and conn.our_state is SendState.SEND_RESPONSE
    conn.send_response(200, [], content_length=0, date=DATE)
    assert conn.start_next_cycle()
    assert conn.next_event() is NEED_DATA  # a partial head is buffered
    conn.receive_data(b"st: h\r\n\r\n")
    assert conn.next_event().target == "/c"
    conn.send_response(200, [], content_length=0, date=DATE)
    assert conn.start_next_cycle() == 0  # nothing buffered
    assert conn.their_state is RecvState.IDLE and conn.our_state is SendState.IDLE
    conn.receive_data(b"GET /d HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n")
    with pytest.raises(ProtocolError):
        conn.next_event()


@pytest.mark.parametrize("stage", ["response not sent", "body not read", "must close"])
def test_start_next_cycle_refuses_and_changes_nothing(stage):
    conn = ServerConnection()
    if stage == "body not read":
        conn.receive_data(request("POST / HTTP/1.1\nHost: h\nContent-Length: 3", b"a"))
        conn.next_event(), conn.next_event()
        conn.send_response(200, [], content_length=0, date=DATE)
    else:
        conn.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n" + (b"Connection: close\r\n" if stage == "must close" else b"") + b"\r\n")
        conn.next_event(), conn.next_event()
        if stage == "must close":
            conn.send_response(200, [], content_length=0, date=DATE)
    states = (conn.their_state, conn.our_state)
    with pytest.raises(StateError, match="cannot start next cycle"):
        conn.start_next_cycle()
    assert (conn.their_state, conn.our_state) == states


def test_next_cycle_reports_the_close_of_a_peer_that_sent_eof_meanwhile():
    conn = ServerConnection(implicit_end=True)
    conn.receive_data(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
    conn.next_event()
    conn.receive_data(b"")  # the peer half-closes while its request is answered
    conn.send_response(200, [], content_length=0, date=DATE)
    assert conn.start_next_cycle() == 0
    assert isinstance(conn.next_event(), ConnectionClosed)
