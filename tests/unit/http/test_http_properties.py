"""Hypothesis properties of the receiving side."""

from _http_helpers import merge_data, run, summary
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evloop.http import ConnectionClosed, Data, EndOfMessage, ProtocolError, RequestHead

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'", min_size=1, max_size=12)
VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=30)
PATH = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/-._~!$&'()*+,;=:@?", max_size=30)


@st.composite
def requests(draw):
    """(raw bytes, expected summary) for one valid request."""
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "X-CUSTOM"]))
    target = "/" + draw(PATH)
    names = draw(st.lists(TOKEN.filter(lambda n: n.lower() not in _SPECIAL), max_size=6))
    fields = [(n, draw(VALUE).strip(" \t")) for n in names]
    framing = draw(st.sampled_from(["none", "length", "chunked"]))
    body = draw(st.binary(max_size=200)) if framing != "none" else b""
    lines = [f"{method} {target} HTTP/1.1", "Host: example.com"] + [f"{n}: {v}" for n, v in fields]
    eol = draw(st.sampled_from(["\r\n", "\n"]))  # bare LF is accepted in the head
    trailers = []
    payload = b""
    if framing == "length":
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        sizes = draw(st.lists(st.integers(1, 50), max_size=8))
        payload, rest = b"", body
        for size in sizes:
            piece, rest = rest[:size], rest[size:]
            if not piece:
                break
            ext = draw(st.sampled_from(["", ";a", ';a="b;c"', " ; x=y"]))
            payload += b"%x%s\r\n%s\r\n" % (len(piece), ext.encode(), piece)
        if rest:
            payload += b"%X\r\n%s\r\n" % (len(rest), rest)
        trailers = draw(st.lists(st.tuples(TOKEN.filter(lambda n: n.lower() not in _SPECIAL), st.just("t")), max_size=2))
        payload += b"0\r\n" + b"".join(f"{n}: {v}\r\n".encode() for n, v in trailers) + b"\r\n"
    raw = (eol.join(lines) + eol + eol).encode("latin-1") + payload
    expected = [("head", method, target, "HTTP/1.1")]
    if body:
        expected.append(("data", body))
    expected.append(("end", tuple(trailers)))
    return raw, expected


_SPECIAL = {"host", "content-length", "transfer-encoding", "connection", "expect"}


@st.composite
def split_stream(draw):
    reqs = draw(st.lists(requests(), min_size=1, max_size=4))
    stream = b"".join(r for r, _ in reqs)
    expected = [e for _, exp in reqs for e in exp]
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True) if a != b]
    return stream, chunks, expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(split_stream())
def test_any_split_of_pipelined_requests_gives_the_same_events(case):
    stream, chunks, expected = case
    whole, error, _ = run([stream], eof=True)
    assert error is None
    assert summary(merge_data(whole)) == expected + [("closed",)]
    split, error, conn = run(chunks, eof=True)
    assert error is None
    assert merge_data(split) == merge_data(whole)
    assert conn.buffered_bytes == 0


def _check_events(events):
    for event in events:
        assert isinstance(event, (RequestHead, Data, EndOfMessage, ConnectionClosed))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 50))
def test_arbitrary_bytes_give_events_or_a_clean_protocol_error(data, step):
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    events, error, _ = run(chunks, eof=True)
    _check_events(events)
    assert error is None or (isinstance(error, ProtocolError) and 400 <= error.status <= 505)


@st.composite
def mutated(draw):
    raw, _ = draw(requests())
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        byte = draw(st.sampled_from([0, 9, 10, 13, 32, 34, 44, 58, 59, 127, 255, *range(48, 58)]))
        if op == "replace" and data:
            data[i] = byte
        elif op == "insert":
            data.insert(i, byte)
        elif data:
            del data[i]
    return bytes(data)


@settings(max_examples=400, deadline=None)
@given(mutated(), st.integers(1, 64))
def test_mutated_requests_give_events_or_a_clean_protocol_error(data, step):
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    events, error, _ = run(chunks, eof=True)
    _check_events(events)
    whole_events, whole_error, _ = run([data], eof=True)
    # Same outcome whatever the split (body bytes delivered before an error
    # may differ: buffered chunks are coalesced).
    assert (error is None) == (whole_error is None)
    if error is None:
        assert merge_data(events) == merge_data(whole_events)
    else:
        assert error.status == whole_error.status
        def skeleton(evs):
            return [e for e in evs if not isinstance(e, Data)]
        assert skeleton(events) == skeleton(whole_events)
