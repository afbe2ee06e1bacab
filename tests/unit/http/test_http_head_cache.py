"""The bounded cache of parsed heads must never change what a head parses to."""

import pytest

from evloop.http import Limits, ProtocolError
from evloop.http.parser import parse_head

HEAD = "GET /a HTTP/1.1\r\nHost: example.com\r\nX-One: 1\r\nX-Two: 2\r\n\r\n"


def test_repeated_head_gives_equal_read_only_results():
    limits = Limits()
    results = [parse_head(HEAD, limits) for _ in range(4)]  # seen, cached, hits
    first = results[0]
    for other in results[1:]:
        assert (other.method, other.target, other.version, other.headers, other.host) == (
            first.method, first.target, first.version, first.headers, first.host)
    # Hits may share one object, so its header list cannot be changed in place.
    assert isinstance(first.headers, tuple)
    with pytest.raises(AttributeError):
        results[-1].headers.append(("X-Mutated", "yes"))  # type: ignore[attr-defined]


def test_cached_head_is_checked_again_under_stricter_limits():
    for _ in range(3):
        parse_head(HEAD, Limits())
    with pytest.raises(ProtocolError) as err:
        parse_head(HEAD, Limits(max_header_count=2))
    assert err.value.status == 431
    with pytest.raises(ProtocolError) as err:
        parse_head(HEAD, Limits(max_request_line_bytes=5))
    assert err.value.status == 414


def test_errors_are_never_cached():
    bad = "GET /a HTTP/1.1\r\nHost: example.com\r\nBad Name: x\r\n\r\n"
    for _ in range(3):
        with pytest.raises(ProtocolError) as err:
            parse_head(bad, Limits())
        assert err.value.status == 400


# --- repeated heads taken by comparison (read_head's last_head) -------------

from _http_helpers import bytewise, merge_data, run  # noqa: E402

from evloop.http import Data, EndOfMessage, RequestHead, parser  # noqa: E402  (the module)

GET = b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n"
# Streams where a naive split on CRLF CRLF would cut in the wrong place: bodies
# holding CRLF CRLF or a copy of a head, bare-LF heads, empty lines between
# requests, a head that differs by one byte, a bad head after good ones.
LOOKAHEAD_STREAMS = {
    "repeats": GET * 40,
    "body-holds-a-head": GET * 3 + b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(GET) + GET + GET * 3,
    "body-holds-crlfcrlf": GET * 3
    + b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n\r\n\r\nab\r\n\r\n"
    + GET * 3,
    "chunked-body-with-head": GET * 3
    + b"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(GET)
    + GET
    + b"\r\n0\r\n\r\n"
    + GET * 3,
    "bare-lf-head-among-repeats": GET * 3 + b"GET /q HTTP/1.1\nHost: h\n\n" + GET * 3,
    "bare-lf-then-crlf-end": GET * 3 + b"GET /q HTTP/1.1\r\nHost: h\n\r\n" + GET * 3,
    "empty-lines-between": GET * 3 + b"\r\n\r\n" + GET + b"\r\n" + GET * 3,
    "one-byte-different": GET * 3 + GET.replace(b"/p", b"/x") + GET * 3,
    "bad-head-after-repeats": GET * 5 + b"GET /p HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n" + GET,
    "bare-cr-after-repeats": GET * 5 + b"GET /p HTTP/1.1\r\nHost: h\rX: y\r\n\r\n" + GET,
}


def summary(events):
    out = []
    for event in merge_data(events):
        if isinstance(event, RequestHead):
            out.append(("head", event.method, event.target, event.headers, event.content_length, event.chunked))
        elif isinstance(event, Data):
            out.append(("data", event.data))
        elif isinstance(event, EndOfMessage):
            out.append(("end", tuple(event.trailers)))
        else:
            out.append((type(event).__name__,))
    return out


@pytest.mark.parametrize("name", sorted(LOOKAHEAD_STREAMS))
def test_pipelined_bursts_parse_as_one_request_at_a_time(name, monkeypatch):
    stream = LOOKAHEAD_STREAMS[name]
    limits = Limits()
    for _ in range(2):
        run([GET, GET], limits)  # make GET a validated, cached head
    whole = run([stream], limits)
    assert name.startswith("bad") or name.startswith("bare-cr") or whole[1] is None, whole[1]
    twice = run([stream[: len(stream) // 2], stream[len(stream) // 2 :]], limits)
    one_by_one = run(bytewise(stream), limits)
    monkeypatch.setattr(parser, "_HEAD_CACHE_MAX_CHARS", 0)  # nothing cached: every head parsed in full
    reference = run([stream], Limits())
    expected = (summary(reference[0]), reference[1] and reference[1].status)
    assert (summary(one_by_one[0]), one_by_one[1] and one_by_one[1].status) == expected
    assert (summary(whole[0]), whole[1] and whole[1].status) == expected
    assert (summary(twice[0]), twice[1] and twice[1].status) == expected


def test_repeat_respects_a_smaller_head_limit():
    big = b"GET /p HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"
    generous = Limits()
    for _ in range(3):
        run([big], generous)
    events, error, _ = run([big * 4], Limits(max_head_bytes=100))
    assert error is not None and error.status == 431 and not events
