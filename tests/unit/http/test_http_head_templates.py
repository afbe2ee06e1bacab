"""Heads with holes (``head_templates``) against the plain path.

A head read through a template (an earlier head with the same text but for
its target, Referer and Cookie values) must give what the plain path gives
(``HTTP1Caches.disabled()``): the same ``RequestHead``, or the same refusal
with the same status and reason.  Templates are admitted on the second
sighting of their key, so each check reads two heads of one shape with
plain values first.
"""

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evloop.buffers import ReceiveBuffer
from evloop.http import NEED_DATA, Limits, ProtocolError, RequestHead, ServerConnection, head_templates
from evloop.http.caches import HTTP1Caches
from evloop.http.grammar import FIELD_VALUE_BYTES, FIELD_VALUE_RE, ORIGIN_FORM_PARTS_RE, ORIGIN_FORM_RE, TARGET_BYTES
from evloop.http.parser import HeadReader
from evloop.http.target import target_parts

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "load" / "bench"))
from browser import head as browser_head  # noqa: E402  (the browser-unique scenario's heads)

LIMITS = Limits()  # one object, as a server shares it: a template holds the limits it was checked against
PAD = "X-Pad: " + "p" * 130  # past MIN_SECTION_CHARS: short heads are parsed, not cut


def outcome(reader: HeadReader | ServerConnection, data: bytes) -> RequestHead | tuple[int, str] | None:
    """What ``reader`` (a head reader, or a connection as the server makes one) makes of ``data``, in one read."""
    if isinstance(reader, ServerConnection):
        reader.receive_data(data)
        try:
            event = reader.next_event()
        except ProtocolError as exc:
            return exc.status, exc.reason
        if event is NEED_DATA:
            return None
        assert isinstance(event, RequestHead)
        if not (event.content_length or event.chunked):
            reader.send_complete_response(200, [], b"", None)  # the next cycle starts
        return event
    buf = ReceiveBuffer()
    buf.feed(data)
    try:
        return reader.read(buf)
    except ProtocolError as exc:
        return exc.status, exc.reason


def connection_on(caches: HTTP1Caches, limits: Limits = LIMITS) -> ServerConnection:
    """A connection as the server makes one: its last template's heads are filled by ``next_event``, unsearched."""
    return ServerConnection(limits, True, True, caches)


def connection_reads(conn: ServerConnection, data: bytes, split: int | None) -> list[tuple[object, int]]:
    """What ``conn`` makes of ``data`` received in two parts (at ``split``; None: whole): each head (answered,
    so the next cycle starts) with the bytes left unparsed after it, until it asks for more or refuses."""
    results: list[tuple[object, int]] = []
    for part in [data] if split is None else [data[:split], data[split:]]:
        if not part:
            continue  # b"" would say the peer closed
        conn.receive_data(part)
        while True:
            try:
                event = conn.next_event()
            except ProtocolError as exc:
                return [*results, ((exc.status, exc.reason), conn.buffered_bytes)]
            if event is NEED_DATA:
                results.append((None, conn.buffered_bytes))
                break
            assert isinstance(event, RequestHead)
            results.append((full(event), conn.buffered_bytes))
            if event.content_length or event.chunked:  # a body follows: not read here
                return results
            conn.send_complete_response(200, [], b"", None)
    return results


def plain(data: bytes, limits: Limits | None = None) -> RequestHead | tuple[int, str] | None:
    return outcome(HeadReader(limits or Limits(), HTTP1Caches.disabled()), data)


def head(target: str, referer: str | None, cookie: str | None, cookie_first: bool = False, pad: str = PAD) -> bytes:
    lines = ["Host: example.com", "User-Agent: test/1.0", pad]
    holes = [] if referer is None else [f"Referer: {referer}"]
    if cookie is not None:
        holes.insert(0 if cookie_first else len(holes), f"Cookie: {cookie}")
    lines[2:2] = holes
    return (f"GET {target} HTTP/1.1\r\n" + "".join(line + "\r\n" for line in lines) + "\r\n").encode("latin-1")


def test_browser_heads_after_the_second_come_from_one_template_and_equal_a_full_parse():
    caches = HTTP1Caches()
    for i in range(1, 12):
        data = browser_head(i, "127.0.0.1:8080")
        assert outcome(HeadReader(LIMITS, caches), data) == plain(data)
    assert len(caches.head_templates) == 1
    assert caches.head_templates.misses == 2  # seen, then admitted; the other nine were hits
    assert len(caches.heads) == 0  # no head repeated whole


VALUE = st.text(alphabet="aZ;= \t\x80\xe9\xff:", max_size=12) | st.text(alphabet="aZ \t\x00\x01\x7f\r\n", max_size=6)
TARGET = st.text(alphabet="/a%1F?=", max_size=8).map("/".__add__) | st.text(alphabet="/a%1F?#= \x00\xe9", max_size=8)


@settings(max_examples=400, deadline=None)
@given(TARGET, st.none() | VALUE, st.none() | VALUE, st.booleans())
def test_any_target_and_values_read_through_a_template_as_the_plain_path_reads_them(target, referer, cookie, first):
    caches = HTTP1Caches()
    shape = head("/", None if referer is None else "r", None if cookie is None else "c", first)
    for _ in range(2):
        outcome(HeadReader(LIMITS, caches), shape)  # admits the template
    assert len(caches.head_templates) == 1
    data = head(target, referer, cookie, first)
    assert outcome(HeadReader(LIMITS, caches), data) == plain(data), data


@pytest.mark.parametrize("referer, cookie", [(" r", "c"), ("r ", "c"), ("r", "\tc"), ("r", ""), ("", "c")])
def test_values_with_whitespace_around_them_lose_it_through_a_template_as_parsed(referer, cookie):
    caches = HTTP1Caches()
    for _ in range(2):
        outcome(HeadReader(LIMITS, caches), head("/", "r", "c"))
    misses = caches.head_templates.misses
    data = head("/x", referer, cookie)
    result = outcome(HeadReader(LIMITS, caches), data)
    assert result == plain(data) and isinstance(result, RequestHead)
    assert caches.head_templates.misses == misses  # from the template: the value stripped as the plain path strips


def test_a_template_is_checked_again_under_other_limits():
    caches = HTTP1Caches()
    for _ in range(3):
        outcome(HeadReader(LIMITS, caches), head("/a", "r", "c"))
    long_target = head("/" + "a" * 60, "r", "c")
    strict = Limits(max_request_line_bytes=40)
    assert outcome(HeadReader(strict, caches), long_target) == plain(long_target, strict) == (414, "request line too long")
    assert outcome(HeadReader(LIMITS, caches), long_target) == plain(long_target)  # same limits: a hit


def test_a_cookie_before_the_referer_stays_in_the_key():
    caches = HTTP1Caches()
    for cookie in ["a", "b", "c"]:
        data = head("/", "r", cookie, cookie_first=True)
        assert outcome(HeadReader(LIMITS, caches), data) == plain(data)
    assert len(caches.head_templates) == 0  # three keys, each seen once


def test_templates_are_bounded_and_off_when_disabled():
    caches = HTTP1Caches(max_head_templates=2)
    for i in range(10):
        for _ in range(2):
            outcome(HeadReader(LIMITS, caches), head("/", "r", "c", pad=PAD + str(i)))
        assert len(caches.head_templates) <= 2
    assert caches.head_templates.clears
    off = HTTP1Caches(max_head_templates=0)
    for _ in range(3):
        outcome(HeadReader(LIMITS, off), head("/", "r", "c"))
    assert len(off.head_templates) == 0


def test_the_value_table_keeps_exactly_the_characters_of_the_value_pattern():
    for c in range(256):
        raw = bytes([c])
        assert (raw.translate(FIELD_VALUE_BYTES) == raw) is (FIELD_VALUE_RE.fullmatch(chr(c)) is not None), c


def test_the_target_table_keeps_exactly_the_characters_of_the_target_pattern_but_the_percent_sign():
    for c in range(256):
        raw = bytes([c])
        assert (raw.translate(TARGET_BYTES) == raw) is (c != 0x25 and ORIGIN_FORM_RE.fullmatch("/" + chr(c)) is not None), c


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="/a?=%1Fg#\x00 \xe9\"", max_size=10))
def test_a_target_filled_with_or_without_a_percent_sign_is_the_plain_paths(target):
    """Both of ``fill``'s ways with a target (a translate and a partition, or with a "%" the pattern)
    refuse what ORIGIN_FORM_RE refuses and split the rest as ``target_parts`` does."""
    shape = browser_head(5, "127.0.0.1:8080").decode("latin-1")
    template = head_templates.template_for(shape, plain(shape.encode("latin-1")), LIMITS)
    assert template is not None
    text = shape.replace("/items/5?after=4", target, 1)
    filled = head_templates.fill(template, text)
    if ORIGIN_FORM_RE.fullmatch(target) is None:
        assert filled is None
    else:
        assert filled is not None and filled.target == target and filled.target_parts == target_parts(target)


def full(result: RequestHead | tuple[int, str] | None) -> object:
    """A result with the head's derived fields too (``RequestHead`` equality leaves them out)."""
    if isinstance(result, RequestHead):
        return result, result.http10, result.is_head, result.target_parts
    return result


def reader_on(referer: bool, cookie: bool, first: bool) -> ServerConnection:
    """A connection whose last head came from the template of these heads' shape."""
    caches = HTTP1Caches()
    shapes = [head(f"/{i}", "r" if referer else None, "c" if cookie else None, first) for i in range(3)]
    for shape in shapes[:2]:
        outcome(HeadReader(LIMITS, caches), shape)  # admits the template
    conn = connection_on(caches)
    assert isinstance(outcome(conn, shapes[2]), RequestHead)
    return conn


@settings(max_examples=400, deadline=None)
@given(TARGET, st.none() | VALUE, st.none() | VALUE, st.booleans(), st.booleans(), st.booleans())
def test_the_connections_last_template_reads_any_head_as_the_plain_path(target, referer, cookie, first, r, c):
    reader = reader_on(r, c, first)
    data = head(target, referer, cookie, first)
    assert full(outcome(reader, data)) == full(plain(data)), data


EDITS = st.sampled_from(["\r", "\n", "\r\n", " ", "\t", ":", "\r\nReferer: x", "\r\nCookie: y", "HTTP/1.0", "?", "%2",
                         "a", "\x00", "\xe9", "Referer: ", "Cookie: ", "\r\n\r\n", "Host: b\r\n", "/"])


@settings(max_examples=600, deadline=None)
@given(st.sampled_from([(True, True, False), (True, False, False), (False, True, False), (False, False, False),
                        (True, True, True)]),
       st.lists(st.tuples(st.integers(0, 400), st.integers(0, 3), EDITS), max_size=3))
def test_heads_edited_anywhere_read_through_the_last_template_as_the_plain_path(holes, edits):
    """Any head near a template's shape (bytes inserted or taken out anywhere, line ends and the
    holes' names among them) reads as the plain path reads it, from the template or not."""
    referer, cookie, first = holes
    shape = head("/a?b", "r" if referer else None, "c" if cookie else None, first)
    reader = reader_on(referer, cookie, first)
    text = shape.decode("latin-1")
    for at, removed, inserted in edits:
        at = min(at, len(text) - 4)  # the head keeps its end
        text = text[:at] + inserted + text[at + removed :]
    data = text.encode("latin-1")
    assert full(outcome(reader, data)) == full(plain(data)), data


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 3), EDITS), max_size=3))
def test_a_head_filled_from_a_template_has_that_templates_key(edits):
    shape = browser_head(5, "127.0.0.1:8080").decode("latin-1")
    template = head_templates.template_for(shape, plain(shape.encode("latin-1")), LIMITS)
    assert template is not None
    text = browser_head(6, "127.0.0.1:8080").decode("latin-1")
    for at, removed, inserted in edits:
        at = min(at, len(text) - 4)
        text = text[:at] + inserted + text[at + removed :]
    if head_templates.fill(template, text) is not None:
        line_end = text.find("\n")
        parts = head_templates.cut(text, line_end - 1)
        assert parts is not None and parts[0] == template.key


def test_a_browsers_heads_on_one_connection_come_from_its_last_template():
    caches = HTTP1Caches()
    reader = connection_on(caches)
    for i in range(1, 12):
        data = browser_head(i, "127.0.0.1:8080")
        assert full(outcome(reader, data)) == full(plain(data))
    assert caches.head_templates.misses == 2 and len(caches.heads) == 0
    assert caches.heads.misses == 3  # the heads after the third never looked for whole


def test_the_target_split_by_the_templates_pattern_is_target_parts():
    for target in ["/", "/a", "/a?", "/a?b?c", "/a%2Fb?x=%41", "/%e9?q", "/?", "/a/b/c?d=e&f=g"]:
        match = ORIGIN_FORM_PARTS_RE.fullmatch(target)
        assert match is not None and (match[1], match[2]) == (target_parts(target)[0], target_parts(target)[2])
    for target in ["/a%2", "/a#b", "/a b", "a", "/%zz?x", "/a?%"]:
        assert ORIGIN_FORM_PARTS_RE.fullmatch(target) is None and ORIGIN_FORM_RE.fullmatch(target) is None


def reads(reader: HeadReader, data: bytes, split: int | None) -> list[object]:
    """What ``reader`` makes of ``data`` fed in two parts (at ``split``; None: whole): each read's result and
    how far it consumed, until it asks for more or refuses."""
    buf = ReceiveBuffer()
    results: list[object] = []
    for part in [data] if split is None else [data[:split], data[split:]]:
        buf.feed(part)
        while True:
            try:
                result = reader.read(buf)
            except ProtocolError as exc:
                return [*results, (exc.status, exc.reason, buf.pos)]
            results.append((full(result), buf.pos))
            if result is None or result.content_length:  # a body follows: not read here
                break
    return results


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 800), st.integers(0, 3), EDITS), max_size=3),
       st.sampled_from([b"", b"GET / HTTP/1.1\r\n", b"\r\n", b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n"]),
       st.none() | st.integers(0, 800))
def test_a_buffer_read_whole_through_the_last_template_ends_where_the_plain_path_ends_it(edits, trailing, split):
    """The template fills a buffer that is one head without searching for its end (``HeadReader.read``):
    heads near a browser's, alone, with the start of another behind them or in two parts, are taken
    through the connection's last template as the plain path takes them, and end at the same byte."""
    text = browser_head(7, "127.0.0.1:8080").decode("latin-1")
    for at, removed, inserted in edits:
        at = min(at, len(text) - 4)
        text = text[:at] + inserted + text[at + removed :]
    data = text.encode("latin-1") + trailing
    plain_reads = reads(HeadReader(Limits(), HTTP1Caches.disabled()), data, split)
    caches = HTTP1Caches()
    reader = HeadReader(LIMITS, caches)
    conn = connection_on(caches)
    for i in range(1, 4):
        assert isinstance(outcome(reader, browser_head(i, "127.0.0.1:8080")), RequestHead)
        assert isinstance(outcome(conn, browser_head(i + 3, "127.0.0.1:8080")), RequestHead)
    assert reader.last_template is not None
    assert reads(reader, data, split) == plain_reads, data  # the template tried once the head's end is found
    # next_event's: the template tried first, no end searched for; the same heads, and the same bytes left
    plain_conn = connection_reads(connection_on(HTTP1Caches.disabled()), data, split)
    assert connection_reads(conn, data, split) == plain_conn, data


def _browser_text(i: int) -> str:
    return browser_head(i, "127.0.0.1:8080").decode("latin-1")


@pytest.mark.parametrize("edit", [
    lambda t: t[: t.index("Referer: ")] + t[t.index("Referer: ") :].replace("\r\n", "\n"),  # no CRLF after the Referer
    lambda t: t.replace("\r\nCookie: ", "\r\nCookie:"),  # the Cookie hole's piece not there
    lambda t: t.replace("\r\nCookie: ", "\r\nX: "),  # no Cookie line: its hole would start past the last piece
    lambda t: t.replace("\r\nReferer: ", "\r\nReferer:\r\n X: "),  # a line end where the Referer value starts
    lambda t: t.replace("\r\nAccept-Encoding", "\r\nReferer: x\r\nAccept-Encoding"),  # a second Referer
    lambda t: t.replace(" HTTP/1.1\r\n", "HTTP/1.1\r\n", 1),  # the target runs into the version
    lambda t: t.replace("GET /items/", "GET  /items/", 1),  # an empty target
    lambda t: t.replace("GET /items/", "GET items/", 1),  # a target without its "/"
    lambda t: t.replace("\r\n\r\n", "\r\n"),  # no end
])
def test_a_head_whose_holes_are_found_in_the_wrong_places_reads_as_the_plain_path(edit):
    """``fill`` checks no place it found on its own, only the join of the pieces and the holes'
    characters: heads whose holes it would cut in the wrong places read as the plain path reads them."""
    reader = connection_on(HTTP1Caches())
    for i in range(1, 4):
        assert isinstance(outcome(reader, browser_head(i, "127.0.0.1:8080")), RequestHead)
    data = edit(_browser_text(4)).encode("latin-1")
    assert full(outcome(reader, data)) == full(plain(data)), data
