"""The parser's fast field-line pattern against the plain one (``grammar.FIELD_LINE_RE``).

``parse_head`` matches field lines with ``FIELD_LINE_NO_TRAILING_OWS_RE``
first and falls back to ``FIELD_LINE_RE`` (then ``field_error``) when a line
does not match it: whatever the lines, the result must be the plain path's.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evloop.http import ProtocolError
from evloop.http.caches import HTTP1Caches
from evloop.http.grammar import FIELD_LINE_NO_TRAILING_OWS_RE, FIELD_LINE_RE
from evloop.http.parser import Limits, field_error, parse_head

# Letters, the separators and whitespace of a field line, and what must be refused
# (no LF: the head ends at its first empty line before parse_head sees it).
ALPHABET = "aZ-:; \t\r\x00\x01\x7f\x80\xe9\xff\"(,"
LINE = st.text(alphabet=ALPHABET, max_size=16)


def plain(text: str) -> tuple[tuple[str, str], ...] | ProtocolError:
    """The field lines of ``text`` (a head) as the plain path gives them, or its error."""
    start = text.find("\n") + 1
    headers = FIELD_LINE_RE.findall(text, start)
    if len(headers) != text.count("\n") - 2:
        return field_error(text[start:])
    return tuple(headers)


def parsed(text: str) -> tuple[tuple[str, str], ...] | ProtocolError:
    try:
        return parse_head(text, Limits(), HTTP1Caches()).headers[1:]
    except ProtocolError as exc:
        return exc


def same(a: object, b: object) -> bool:
    if isinstance(a, ProtocolError) and isinstance(b, ProtocolError):
        return (a.status, str(a)) == (b.status, str(b))
    return a == b


@settings(max_examples=500, deadline=None)
@given(st.lists(LINE, max_size=4), st.sampled_from(["\r\n", "\n"]))
def test_any_field_lines_parse_as_the_plain_path_parses_them(lines, eol):
    text = "GET / HTTP/1.1" + eol + "Host: a" + eol + "".join(line + eol for line in lines) + eol
    expected = plain(text)
    got = parsed(text)
    if isinstance(expected, tuple):
        expected = expected[1:]  # without Host
    assert same(got, expected), (text, got, expected)


@settings(max_examples=500, deadline=None)
@given(LINE)
def test_a_line_the_fast_pattern_takes_is_the_plain_patterns_line(line):
    text = line + "\n"
    fast = FIELD_LINE_NO_TRAILING_OWS_RE.fullmatch(text)
    if fast is not None:
        slow = FIELD_LINE_RE.fullmatch(text)
        assert slow is not None
        assert (fast[1], fast[2]) == (slow[1], slow[2] or "")


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("X: v", "v"),
        ("X:v", "v"),
        ("X:", ""),
        ("X:  \t", ""),  # only OWS: the plain path
        ("X: v \t", "v"),  # trailing OWS: the plain path strips it
        ("X:\tv\tw", "v\tw"),
        ("X: caf\xe9", "caf\xe9"),
    ],
)
def test_field_values_lose_their_ows_on_either_path(line, value):
    for eol in ("\r\n", "\n"):
        head = parse_head(f"GET / HTTP/1.1{eol}Host: a{eol}{line}{eol}{eol}", Limits(), HTTP1Caches())
        assert head.headers[1] == ("X", value)


@pytest.mark.parametrize(
    "line",
    [" X: v", "X : v", "X\t: v", ": v", "X", "X: a\x00b", "X: a\x7f", "X(: v", "X: v\rw"],
)
def test_bad_field_lines_are_refused_as_the_plain_path_refuses_them(line):
    text = f"GET / HTTP/1.1\r\nHost: a\r\n{line}\r\n\r\n"
    with pytest.raises(ProtocolError) as info:
        parse_head(text, Limits(), HTTP1Caches())
    expected = field_error(text[text.find("\n") + 1 :])
    assert (info.value.status, str(info.value)) == (expected.status, str(expected))


def _heads(stream: bytes, step: int) -> list[object]:
    """What HeadReader takes from ``stream`` fed ``step`` bytes at a time: targets, or the error's status."""
    from evloop.buffers import ReceiveBuffer
    from evloop.http.parser import HeadReader

    buf = ReceiveBuffer()
    reader = HeadReader(Limits(), HTTP1Caches())
    out: list[object] = []
    for k in range(0, len(stream), step):
        buf.feed(stream[k : k + step])
        while True:
            try:
                head = reader.read(buf)
            except ProtocolError as exc:
                return [*out, exc.status]
            if head is None:
                break
            out.append(head.target)
    return out


@pytest.mark.parametrize("step", [1, 7, 1000])
@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        # A bare-LF empty line ends the head before a later CRLF one (the
        # reader looks for it only when the longer head is refused).
        (b"GET /a HTTP/1.1\r\nHost: a\r\n\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n", ["/a", "/b"]),
        (b"GET /a HTTP/1.1\r\nHost: a\n\nX\r\n\r\n", ["/a", 400]),
        (b"GET /a HTTP/1.1\n\nHost: a\r\n\r\n", [400]),  # no Host in the first head
        (b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\nHost: a\n\n", ["/a", "/b"]),
    ],
)
def test_a_head_ends_at_its_first_empty_line_either_way(stream, expected, step):
    assert _heads(stream, step) == expected
