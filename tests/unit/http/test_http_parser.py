"""Valid requests, each fed whole, one byte at a time, and with trailing bytes."""

import pytest
from _http_helpers import TRAILING, WAYS, feed_way, request, run

from evloop.http import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Limits,
    ProtocolError,
    RecvState,
    RequestHead,
    ServerConnection,
)

H = "Host: example.com"

# (id, raw request, expected head attributes, expected body, expected trailers)
VALID = [
    ("simple-get", request(f"GET / HTTP/1.1\n{H}"), {"method": "GET", "target": "/"}, b"", []),
    (
        "get-query",
        request(f"GET /a%20b/c?x=1&y=%2F HTTP/1.1\n{H}"),
        {"target": "/a%20b/c?x=1&y=%2F", "content_length": None, "chunked": False},
        b"",
        [],
    ),
    (
        "browser-raw-chars-whatwg",
        request(f"GET /p|a^t{{h}}?q=[a]`\\\"<> HTTP/1.1\n{H}"),
        {"target": "/p|a^t{h}?q=[a]`\\\"<>"},
        b"",
        [],
    ),
    (
        "headers-order-and-case-kept",
        request(f"GET / HTTP/1.1\n{H}\nX-A: 1\nx-a: 2\nACCEPT: */*"),
        {"headers": [("Host", "example.com"), ("X-A", "1"), ("x-a", "2"), ("ACCEPT", "*/*")]},
        b"",
        [],
    ),
    (
        "ows-stripped",
        request(f"GET / HTTP/1.1\n{H}\nX-A:   v  w \t\nX-B:\tx\t"),
        {"headers": [("Host", "example.com"), ("X-A", "v  w"), ("X-B", "x")]},
        b"",
        [],
    ),
    (
        "empty-value",
        request(f"GET / HTTP/1.1\n{H}\nX-Empty:\nX-Blank:   "),
        {"headers": [("Host", "example.com"), ("X-Empty", ""), ("X-Blank", "")]},
        b"",
        [],
    ),
    (
        "obs-text-value-latin1",
        request(b"GET / HTTP/1.1\nHost: h\nX-T: caf\xe9 \x80\xff"),
        {"headers": [("Host", "h"), ("X-T", "caf\xe9 \x80\xff")]},
        b"",
        [],
    ),
    (
        "tab-inside-value",
        request(f"GET / HTTP/1.1\n{H}\nX-T: a\tb"),
        {"headers": [("Host", "example.com"), ("X-T", "a\tb")]},
        b"",
        [],
    ),
    (
        "colon-in-value",
        request(f"GET / HTTP/1.1\n{H}\nX-T: a:b: c"),
        {"headers": [("Host", "example.com"), ("X-T", "a:b: c")]},
        b"",
        [],
    ),
    (
        "tchar-name",
        request(f"GET / HTTP/1.1\n{H}\n!#$%&'*+-.^_`|~09azAZ: v"),
        {"headers": [("Host", "example.com"), ("!#$%&'*+-.^_`|~09azAZ", "v")]},
        b"",
        [],
    ),
    ("extension-method", request(f"PURGE /x HTTP/1.1\n{H}"), {"method": "PURGE"}, b"", []),
    ("token-method", request(f"M-1.x_y /x HTTP/1.1\n{H}"), {"method": "M-1.x_y"}, b"", []),
    ("http10-no-host", request("GET / HTTP/1.0"), {"version": "HTTP/1.0", "host": None, "keep_alive": False}, b"", []),
    (
        "http10-keep-alive",
        request("GET / HTTP/1.0\nConnection: Keep-Alive"),
        {"keep_alive": True},
        b"",
        [],
    ),
    (
        "http10-keep-alive-close-wins",
        request("GET / HTTP/1.0\nConnection: keep-alive, close"),
        {"keep_alive": False},
        b"",
        [],
    ),
    ("http11-close", request(f"GET / HTTP/1.1\n{H}\nConnection: close"), {"keep_alive": False}, b"", []),
    (
        "http11-close-in-list",
        request(f"GET / HTTP/1.1\n{H}\nConnection: upgrade\nConnection: foo ,CLOSE"),
        {"keep_alive": False},
        b"",
        [],
    ),
    ("http11-default-persistent", request(f"GET / HTTP/1.1\n{H}"), {"keep_alive": True}, b"", []),
    (
        "rfc9110-2.5-http12-served-as-11",
        request(f"GET / HTTP/1.2\n{H}"),
        {"version": "HTTP/1.1"},
        b"",
        [],
    ),
    ("http19-served-as-11", request(f"GET / HTTP/1.9\n{H}"), {"version": "HTTP/1.1"}, b"", []),
    ("options-asterisk", request(f"OPTIONS * HTTP/1.1\n{H}"), {"target": "*"}, b"", []),
    (
        "rfc9112-3.2.2-absolute-form-host-from-target",
        request("GET http://origin.example:8080/p?q HTTP/1.1\nHost: other"),
        {"target": "http://origin.example:8080/p?q", "host": "origin.example:8080",
         "headers": (("Host", "origin.example:8080"),)},
        b"",
        [],
    ),
    (
        "rfc9112-3.2.2-absolute-form-host-added-in-http10",
        request("GET http://Origin.example/p HTTP/1.0\nX-A: 1"),
        {"host": "origin.example", "headers": (("X-A", "1"), ("Host", "Origin.example"))},
        b"",
        [],
    ),
    (
        "absolute-form-https-no-path",
        request("GET HTTPS://a.example HTTP/1.1\nHost: a.example"),
        {"host": "a.example"},
        b"",
        [],
    ),
    ("host-ipv4-port", request("GET / HTTP/1.1\nHost: 127.0.0.1:8080"), {"host": "127.0.0.1:8080"}, b"", []),
    ("host-ipv6", request("GET / HTTP/1.1\nHost: [::1]:80"), {"host": "[::1]:80"}, b"", []),
    ("rfc9110-7.2-host-empty", request("GET / HTTP/1.1\nHost:"), {"host": ""}, b"", []),
    ("host-trailing-ows", request("GET / HTTP/1.1\nHost: a.b  "), {"host": "a.b"}, b"", []),
    (
        "content-length-body",
        request(f"POST /p HTTP/1.1\n{H}\nContent-Length: 5", b"hello"),
        {"content_length": 5, "chunked": False},
        b"hello",
        [],
    ),
    (
        "content-length-zero",
        request(f"POST /p HTTP/1.1\n{H}\nContent-Length: 0"),
        {"content_length": 0},
        b"",
        [],
    ),
    (
        "content-length-leading-zeros",
        request(f"POST /p HTTP/1.1\n{H}\nContent-Length: 0005", b"hello"),
        {"content_length": 5},
        b"hello",
        [],
    ),
    (
        "rfc9110-8.6-identical-cl-list-folded",
        request(f"POST /p HTTP/1.1\n{H}\nContent-Length: 5, 5", b"hello"),
        {"content_length": 5},
        b"hello",
        [],
    ),
    (
        "rfc9110-8.6-identical-cl-lines-folded",
        request(f"POST /p HTTP/1.1\n{H}\nContent-Length: 5\ncontent-length: 5", b"hello"),
        {"content_length": 5},
        b"hello",
        [],
    ),
    (
        "chunked-simple",
        request(f"POST /c HTTP/1.1\n{H}\nTransfer-Encoding: chunked", b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        {"chunked": True, "content_length": None},
        b"hello world",
        [],
    ),
    (
        "chunked-case-and-ows",
        request(f"POST /c HTTP/1.1\n{H}\nTransfer-Encoding:   Chunked  ", b"3\r\nabc\r\n0\r\n\r\n"),
        {"chunked": True},
        b"abc",
        [],
    ),
    (
        "rfc9110-5.6.1-te-empty-list-elements",
        request(f"POST /c HTTP/1.1\n{H}\nTransfer-Encoding: , chunked,", b"3\r\nabc\r\n0\r\n\r\n"),
        {"chunked": True},
        b"abc",
        [],
    ),
    (
        "chunked-hex-sizes",
        request(f"POST /c HTTP/1.1\n{H}\nTransfer-Encoding: chunked", b"A\r\n0123456789\r\nf\r\n" + b"y" * 15 + b"\r\n000\r\n\r\n"),
        {"chunked": True},
        b"0123456789" + b"y" * 15,
        [],
    ),
    (
        "chunked-16-digit-size-leading-zeros",
        request(f"POST /c HTTP/1.1\n{H}\nTransfer-Encoding: chunked", b"0000000000000003\r\nabc\r\n0\r\n\r\n"),
        {"chunked": True},
        b"abc",
        [],
    ),
    (
        "rfc9112-7.1.1-chunk-extensions-ignored",
        request(
            f"POST /c HTTP/1.1\n{H}\nTransfer-Encoding: chunked",
            b'3;name\r\nabc\r\n2 ; a=b ;c = "q\\"s;x"\r\nde\r\n0;last\r\n\r\n',
        ),
        {"chunked": True},
        b"abcde",
        [],
    ),
    (
        "rfc9112-7.1.2-trailers",
        request(
            f"POST /c HTTP/1.1\n{H}\nTransfer-Encoding: chunked",
            b"3\r\nabc\r\n0\r\nX-Checksum: 42\r\nX-Other:  v \r\n\r\n",
        ),
        {"chunked": True},
        b"abc",
        [("X-Checksum", "42"), ("X-Other", "v")],
    ),
    (
        "chunked-zero-length-body",
        request(f"POST /c HTTP/1.1\n{H}\nTransfer-Encoding: chunked", b"0\r\n\r\n"),
        {"chunked": True},
        b"",
        [],
    ),
    (
        "rfc9112-2.2-leading-empty-lines-ignored",
        b"\r\n\r\n\n" + request(f"GET /x HTTP/1.1\n{H}"),
        {"target": "/x"},
        b"",
        [],
    ),
    (
        "rfc9112-2.2-bare-lf-head-accepted",
        f"GET /lf HTTP/1.1\n{H}\nX-A: 1\n\n".encode(),
        {"target": "/lf", "headers": [("Host", "example.com"), ("X-A", "1")]},
        b"",
        [],
    ),
    (
        "bare-lf-mixed-endings",
        f"GET /lf HTTP/1.1\r\n{H}\nX-A: 1\r\n\n".encode(),
        {"headers": [("Host", "example.com"), ("X-A", "1")]},
        b"",
        [],
    ),
    (
        "bare-lf-head-then-cl-body",
        f"POST /lf HTTP/1.1\n{H}\nContent-Length: 2\n\nok".encode(),
        {"content_length": 2},
        b"ok",
        [],
    ),
    (
        "expect-100-continue",
        request(f"POST /e HTTP/1.1\n{H}\nExpect: 100-Continue\nContent-Length: 2", b"ok"),
        {"expect_continue": True},
        b"ok",
        [],
    ),
    (
        "rfc9110-10.1.1-expect-ignored-in-http10",
        request("POST /e HTTP/1.0\nExpect: 100-continue\nContent-Length: 2", b"ok"),
        {"expect_continue": False},
        b"ok",
        [],
    ),
    (
        "get-with-body",
        request(f"GET /g HTTP/1.1\n{H}\nContent-Length: 3", b"abc"),
        {"content_length": 3},
        b"abc",
        [],
    ),
    (
        "binary-body",
        request(f"POST /b HTTP/1.1\n{H}\nContent-Length: 6", b"\x00\r\n\r\n\xff"),
        {"content_length": 6},
        b"\x00\r\n\r\n\xff",
        [],
    ),
    (
        "request-line-at-limit",
        request("GET /" + "a" * (8192 - 14) + f" HTTP/1.1\n{H}"),
        {"method": "GET"},
        b"",
        [],
    ),
    (
        "header-count-at-limit",
        request(f"GET / HTTP/1.1\n{H}\n" + "\n".join(f"X-{i}: v" for i in range(99))),
        {"method": "GET"},
        b"",
        [],
    ),
]


def check_head(head: RequestHead, expected: dict) -> None:
    assert isinstance(head.headers, tuple)  # heads are read-only (the parser may share them)
    for name, value in expected.items():
        if name == "headers":
            value = tuple(value)
        assert getattr(head, name) == value, name


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("raw,expected,body,trailers", [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_request(way, raw, expected, body, trailers):
    events, error, conn = feed_way(way, raw)
    assert error is None
    assert isinstance(events[0], RequestHead)
    check_head(events[0], expected)
    rest = events[1:]
    if body:
        assert rest[0] == Data(body)
        rest = rest[1:]
    assert rest == [EndOfMessage(trailers)]
    if way == "trailing":
        assert conn.next_event() is PAUSED
        assert conn.buffered_bytes == len(TRAILING)
    else:
        assert conn.buffered_bytes == 0


def test_request_line_exactly_at_limit_is_8192_bytes():
    line = VALID[[c[0] for c in VALID].index("request-line-at-limit")][1].split(b"\r\n")[0]
    assert len(line) == 8192


@pytest.mark.parametrize("way", WAYS)
def test_pipelined_requests_answered_in_order(way):
    raw = (
        request(f"GET /1 HTTP/1.1\n{H}")
        + request(f"POST /2 HTTP/1.1\n{H}\nContent-Length: 3", b"abc")
        + request(f"POST /3 HTTP/1.1\n{H}\nTransfer-Encoding: chunked", b"2\r\nde\r\n0\r\n\r\n")
        + request(f"GET /4 HTTP/1.1\n{H}\nConnection: close")
    )
    events, error, conn = feed_way(way, raw)
    assert error is None
    targets = [e.target for e in events if isinstance(e, RequestHead)]
    if way == "trailing":
        assert targets == ["/1"]  # not responding: the rest stays unparsed
        assert conn.buffered_bytes == len(raw) - len(request(f"GET /1 HTTP/1.1\n{H}")) + len(TRAILING)
    else:
        assert targets == ["/1", "/2", "/3", "/4"]
        assert [e.data for e in events if isinstance(e, Data)] == [b"abc", b"de"]
        assert not conn.keep_alive


def test_later_bytes_stay_unparsed_until_next_cycle():
    conn = ServerConnection()
    second = request(f"GET /b HTTP/1.1\n{H}")
    conn.receive_data(request(f"GET /a HTTP/1.1\n{H}") + second)
    assert conn.next_event().target == "/a"
    assert conn.next_event() == EndOfMessage([])
    assert conn.next_event() is PAUSED
    assert conn.next_event() is PAUSED
    assert conn.buffered_bytes == len(second)
    conn.send_response(200, [], content_length=0, date=b"d")
    assert conn.next_event() is PAUSED  # still paused until start_next_cycle
    conn.start_next_cycle()
    assert conn.next_event().target == "/b"


def test_body_delivered_incrementally():
    conn = ServerConnection()
    conn.receive_data(request(f"POST / HTTP/1.1\n{H}\nContent-Length: 10", b"abc"))
    assert isinstance(conn.next_event(), RequestHead)
    assert conn.next_event() == Data(b"abc")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"defghijXYZ")
    assert conn.next_event() == Data(b"defghij")
    assert conn.next_event() == EndOfMessage([])
    assert conn.next_event() is PAUSED
    assert conn.buffered_bytes == 3


def test_chunked_buffered_chunks_coalesce_into_one_data_event():
    conn = ServerConnection()
    conn.receive_data(
        request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding: chunked", b"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n")
    )
    conn.next_event()
    assert conn.next_event() == Data(b"abc")
    assert conn.next_event() == EndOfMessage([])


# -- EOF -------------------------------------------------------------------


def test_eof_at_idle_is_connection_closed():
    conn = ServerConnection()
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()
    assert conn.their_state is RecvState.CLOSED
    assert conn.next_event() == ConnectionClosed()


def test_eof_after_only_empty_lines_is_connection_closed():
    events, error, _ = run([b"\r\n\r\n"], eof=True)
    assert error is None and events == [ConnectionClosed()]


@pytest.mark.parametrize("partial", [b"G", b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nHost: a\r\n", b"\r"])
def test_eof_inside_head_is_400(partial):
    events, error, conn = run([partial], eof=True)
    assert events == [] and error.status == 400
    with pytest.raises(ProtocolError):
        conn.next_event()


@pytest.mark.parametrize(
    "raw",
    [
        request(f"POST / HTTP/1.1\n{H}\nContent-Length: 5", b"abc"),
        request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding: chunked", b"5\r\nab"),
        request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding: chunked", b"2\r\nab\r\n0\r\nX-T: 1\r\n"),
    ],
    ids=["content-length", "chunk-data", "trailers"],
)
def test_eof_inside_body_is_connection_closed_without_response(raw):
    events, error, conn = run([raw], eof=True)
    assert error is None
    assert isinstance(events[0], RequestHead) and events[-1] == ConnectionClosed()
    assert not conn.keep_alive


def test_eof_after_complete_request_keeps_serving_buffered_requests():
    raw = request(f"GET /1 HTTP/1.1\n{H}") + request(f"GET /2 HTTP/1.1\n{H}")
    events, error, _ = run([raw], eof=True)
    assert error is None
    assert [getattr(e, "target", None) for e in events] == ["/1", None, "/2", None, None]
    assert events[-1] == ConnectionClosed()


def test_eof_while_paused_is_reported_after_the_response():
    conn = ServerConnection()
    conn.receive_data(request(f"GET / HTTP/1.1\n{H}"))
    conn.receive_data(b"")
    conn.next_event(), conn.next_event()
    assert conn.next_event() is PAUSED
    conn.send_response(200, [], content_length=0, date=b"d")
    conn.start_next_cycle()
    assert conn.next_event() == ConnectionClosed()


# -- limits are settings ---------------------------------------------------


def test_custom_limits():
    limits = Limits(max_request_line_bytes=20, max_head_bytes=60, max_header_count=2, max_body_bytes=3)
    ok = request("GET /12345 HTTP/1.1\nHost: a\nX: 1")
    assert run([ok], limits)[1] is None
    assert run([request("GET /1234567 HTTP/1.1\nHost: a")], limits)[1].status == 414
    assert run([request("GET / HTTP/1.1\nHost: a\nX: 1\nY: 2")], limits)[1].status == 431
    assert run([request("GET / HTTP/1.1\nHost: a\nX: " + "v" * 40)], limits)[1].status == 431
    assert run([request("POST / HTTP/1.1\nHost: a\nContent-Length: 4", b"abcd")], limits)[1].status == 413
    chunked = request("POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked", b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n")
    events, error, _ = run([chunked], limits)
    assert error.status == 413


def test_head_limit_counts_the_whole_head():
    limits = Limits()
    pad = 65536 - len(request(f"GET / HTTP/1.1\n{H}\nX: "))
    exact = request(f"GET / HTTP/1.1\n{H}\nX: " + "v" * pad)
    assert len(exact) == 65536
    assert run([exact], limits)[1] is None
    over = request(f"GET / HTTP/1.1\n{H}\nX: " + "v" * (pad + 1))
    assert run([over], limits)[1].status == 431
    # Refused before the head ends: one byte past the limit is enough.
    partial = over[:65537]
    assert run([partial], limits)[1].status == 431
    assert run([partial[:-1]], limits)[1] is None


@pytest.mark.parametrize("way", ["whole", "trailing"])  # a mebibyte byte by byte is slow
def test_body_exactly_at_max_body_bytes(way):
    body = b"x" * 1048576
    events, error, _ = feed_way(way, request(f"POST /p HTTP/1.1\n{H}\nContent-Length: 1048576", body),
                                Limits(max_body_bytes=1048576))
    assert error is None and events[1:] == [Data(body), EndOfMessage([])]


def test_request_line_limit_refused_before_line_ends():
    events, error, _ = run([b"GET /" + b"a" * 9000])
    assert error.status == 414


def test_oversize_content_length_refused_before_body_arrives():
    events, error, _ = run([request(f"POST / HTTP/1.1\n{H}\nContent-Length: 1073741825")])  # 1 GiB + 1
    assert error.status == 413 and events == []


def test_protocol_error_is_sticky():
    conn = ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n")
    with pytest.raises(ProtocolError) as first:
        conn.next_event()
    with pytest.raises(ProtocolError) as again:
        conn.next_event()
    assert first.value is again.value
    assert conn.their_state is RecvState.ERROR and not conn.keep_alive
