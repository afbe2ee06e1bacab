"""The caches of parsed heads and valid hosts, and a connection's last-head
memo, must never change what a stream parses to: each is checked against the
plain path (``HTTP1Caches.disabled()``, which holds nothing)."""

import pytest
from _http_helpers import bytewise, drain, merge_data, run

from evloop.buffers import ReceiveBuffer
from evloop.http import Data, EndOfMessage, Limits, ProtocolError, RequestHead
from evloop.http.caches import HTTP1Caches
from evloop.http.parser import HeadReader, parse_head

HEAD = b"GET /a HTTP/1.1\r\nHost: example.com\r\nX-One: 1\r\nX-Two: 2\r\n\r\n"


def read_one(reader: HeadReader, data: bytes):
    buf = ReceiveBuffer()
    buf.feed(data)
    head = reader.read(buf)
    assert len(buf) == 0
    return head


def test_cached_head_equals_a_full_parse_and_is_read_only():
    limits = Limits()
    caches = HTTP1Caches()
    plain = parse_head(HEAD.decode("latin-1"), limits, HTTP1Caches.disabled())
    # A fresh reader each time, so the head comes from the shared cache, not from a memo.
    results = [read_one(HeadReader(limits, caches), HEAD) for _ in range(4)]  # seen, admitted, hits
    assert all(result == plain for result in results)
    assert caches.heads.misses == 2 and len(caches.heads) == 1  # the last two were hits
    assert results[2] is results[3]  # hits share one object ...
    assert isinstance(results[3].headers, tuple)  # ... so its header list cannot be changed in place
    with pytest.raises(AttributeError):
        results[3].headers.append(("X-Mutated", "yes"))  # type: ignore[attr-defined]


def test_last_head_memo_equals_a_full_parse():
    limits = Limits()
    caches = HTTP1Caches()
    reader = HeadReader(limits, caches)
    buf = ReceiveBuffer()
    plain = parse_head(HEAD.decode("latin-1"), limits, HTTP1Caches.disabled())
    for _ in range(5):
        buf.feed(HEAD)
        assert reader.read(buf) == plain
    assert len(buf) == 0
    # The first two were parsed, the rest came from the cache (hits are not
    # counted); the memo of the last head is ServerConnection.next_event's.
    assert caches.heads.misses == 2
    assert reader.last is not None and reader.last.raw == HEAD


def test_cached_head_is_checked_again_under_stricter_limits():
    caches = HTTP1Caches()
    for _ in range(3):
        read_one(HeadReader(Limits(), caches), HEAD)
    with pytest.raises(ProtocolError) as err:
        read_one(HeadReader(Limits(max_header_count=2), caches), HEAD)
    assert err.value.status == 431
    with pytest.raises(ProtocolError) as err:
        read_one(HeadReader(Limits(max_request_line_bytes=5), caches), HEAD)
    assert err.value.status == 414


def test_errors_are_never_cached():
    caches = HTTP1Caches()
    bad = b"GET /a HTTP/1.1\r\nHost: example.com\r\nBad Name: x\r\n\r\n"
    for _ in range(3):
        with pytest.raises(ProtocolError) as err:
            read_one(HeadReader(Limits(), caches), bad)
        assert err.value.status == 400
    assert len(caches.heads) == 0 and len(caches.heads_seen) == 0


def test_long_heads_are_never_cached():
    caches = HTTP1Caches(max_head_chars=len(HEAD) - 1)
    for _ in range(3):
        read_one(HeadReader(Limits(), caches), HEAD)
    assert len(caches.heads) == 0 and caches.heads.misses == 3


@pytest.mark.parametrize("host", ["example.com", "127.0.0.1:8080", "[::1]:80", "", "bad host", "a/b", "x@y"])
def test_host_cache_gives_the_full_check(host):
    text = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n"
    plain_caches = HTTP1Caches.disabled()
    caches = HTTP1Caches()

    def outcome(c):
        try:
            return parse_head(text, Limits(), c)
        except ProtocolError as exc:
            return exc.status, exc.reason

    expected = outcome(plain_caches)
    assert [outcome(caches) for _ in range(3)] == [expected] * 3
    valid = isinstance(expected, RequestHead)
    assert (host.lower() in caches.hosts.entries) is valid
    assert caches.hosts.misses == (1 if valid else 3)  # a valid host is checked once


def test_caches_are_bounded():
    caches = HTTP1Caches(max_heads=4, max_heads_seen=8, max_hosts=4)
    for i in range(50):
        head = b"GET /%d HTTP/1.1\r\nHost: h%d\r\n\r\n" % (i, i)
        for _ in range(2):
            read_one(HeadReader(Limits(), caches), head)
        assert len(caches.heads) <= 4 and len(caches.heads_seen) <= 8 and len(caches.hosts) <= 4
    assert caches.heads.clears and caches.heads_seen.clears and caches.hosts.clears
    caches.clear()
    assert all(len(cache) == 0 for cache in caches.all())


# --- pipelined streams: the memo and the cache against the plain path ---------

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
def test_pipelined_bursts_parse_as_one_request_at_a_time(name):
    stream = LOOKAHEAD_STREAMS[name]
    limits = Limits()
    caches = HTTP1Caches()
    for _ in range(2):
        run([GET, GET], limits, caches=caches)  # make GET a validated, cached head
    whole = run([stream], limits, caches=caches)
    assert name.startswith("bad") or name.startswith("bare-cr") or whole[1] is None, whole[1]
    twice = run([stream[: len(stream) // 2], stream[len(stream) // 2 :]], limits, caches=caches)
    one_by_one = run(bytewise(stream), limits, caches=caches)
    assert len(caches.heads)  # heads were cached, and the runs below read them back
    reference = run([stream], Limits(), caches=HTTP1Caches.disabled())  # every head parsed in full
    expected = (summary(reference[0]), reference[1] and reference[1].status)
    assert (summary(one_by_one[0]), one_by_one[1] and one_by_one[1].status) == expected
    assert (summary(whole[0]), whole[1] and whole[1].status) == expected
    assert (summary(twice[0]), twice[1] and twice[1].status) == expected


def test_repeat_respects_a_smaller_head_limit():
    big = b"GET /p HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"
    caches = HTTP1Caches()
    for _ in range(3):
        run([big], Limits(), caches=caches)
    events, error, _ = run([big * 4], Limits(max_head_bytes=100), caches=caches)
    assert error is not None and error.status == 431 and not events


@pytest.mark.parametrize("head", [
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"HEAD /a%20b?x=1 HTTP/1.0\r\n\r\n",
    b"POST http://h/p?q HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
])
def test_head_facts_are_its_fields_computed(head):
    """RequestHead's derived facts, for every head and for the cached one shared by many requests."""
    from evloop.http.target import target_parts

    caches = HTTP1Caches()
    for _ in range(3):
        parsed = read_one(HeadReader(Limits(), caches), head)
        assert parsed.http10 is (parsed.version == "HTTP/1.0")
        assert parsed.is_head is (parsed.method == "HEAD")
        assert parsed.target_parts == target_parts(parsed.target)


def test_last_head_memo_compares_a_whole_read_and_a_prefix_alike():
    """next_event compares a read that starts the buffer with the last head by ``==`` first, then by
    ``startswith``: a read of exactly that head, that head and more, the same length with one byte changed,
    and a shorter read all parse as on a connection that never saw it."""
    changed = HEAD.replace(b"X-Two: 2", b"X-Two: 3")
    assert len(changed) == len(HEAD)
    reads = [HEAD, HEAD, HEAD + HEAD[:10], HEAD[10:], changed, HEAD, HEAD[:-2], b"\r\n", HEAD + b"X", b"Y"]
    remembering = run(reads, Limits(), caches=HTTP1Caches())
    reference = run([b"".join(reads)], Limits(), caches=HTTP1Caches.disabled())
    assert summary(remembering[0]) == summary(reference[0])
    assert remembering[1] is None and reference[1] is None
    heads = [event for event in remembering[0] if isinstance(event, RequestHead)]
    assert [head.headers[-1][1] for head in heads] == ["2", "2", "2", "2", "3", "2", "2", "2"]


RENEWED_FIRST_READS = {
    "same": HEAD,
    "same-twice": HEAD + HEAD,
    "same-and-a-part": HEAD + HEAD[:10],
    "a-prefix": HEAD[:-2],
    "one-byte-changed": HEAD.replace(b"X-Two: 2", b"X-Two: 3"),
    "longer-field": HEAD.replace(b"X-Two: 2", b"X-Two: 22"),
    "more-fields": HEAD[:-2] + b"X-Three: 3\r\n\r\n",
    "with-a-body": HEAD.replace(b"X-Two: 2", b"Content-Length: 3") + b"abc",
    "bad": b"GET / HTTP/1.1\r\nHost: example.com\r\nBad Name: x\r\n\r\n",
    "bare-lf-inside": HEAD.replace(b"X-One: 1\r\n", b"\n"),
    "empty-lines-first": b"\r\n" + HEAD,
}


@pytest.mark.parametrize("name", sorted(RENEWED_FIRST_READS))
def test_a_renewed_connection_reads_its_first_head_through_the_last_connections_memo_as_the_plain_path(name):
    """``ServerConnection.renew`` keeps the last head's memo (an entry of the server's cache of heads): a new
    connection's first reads, whole or byte by byte, parse as on a connection that never saw that head."""
    stream = RENEWED_FIRST_READS[name]
    caches = HTTP1Caches()
    limits = Limits()  # one object: a cached head is taken under the limits it passed (``is``)
    for _ in range(3):  # seen, admitted, a hit: the memo is set
        events, error, conn = run([HEAD], limits, caches=caches)
        assert error is None and len(events) == 2
    assert conn._heads.last is caches.heads.entries[HEAD.decode("latin-1")]
    reference = run([stream], Limits(), caches=HTTP1Caches.disabled())
    expected = (summary(reference[0]), reference[1] and (reference[1].status, reference[1].reason))
    for reads in ([stream], bytewise(stream)):
        conn.renew()
        assert conn._heads.last is not None and conn._heads.last.raw == HEAD
        events: list = []
        error = None
        try:
            for chunk in reads:
                conn.receive_data(chunk)
                drain(conn, events, True)
        except ProtocolError as exc:
            error = exc
        assert (summary(events), error and (error.status, error.reason)) == expected
