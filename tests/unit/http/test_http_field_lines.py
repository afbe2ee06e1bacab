"""The cache of checked field lines (``field_lines.split_field_lines``) against the plain path.

Whatever the lines, a head parsed through the cache gives what the plain
path (``grammar.FIELD_LINE_NO_TRAILING_OWS_RE`` / ``FIELD_LINE_RE`` over the
whole section, then ``field_error``) gives: the same (name, value) pairs, or
the same refusal with the same status and reason.  Heads are padded past
``MIN_SECTION_CHARS`` so ``parse_head`` takes the cache path.
"""

from hypothesis import given, settings
from hypothesis import strategies as st
from test_http_field_fast_path import plain, same  # the plain path, and errors compared by status and reason

from evloop.http import ProtocolError
from evloop.http.caches import HTTP1Caches
from evloop.http.field_lines import MIN_SECTION_CHARS, split_field_lines
from evloop.http.parser import Limits, parse_head

ALPHABET = "aZ-:; \t\r\n\x00\x01\x7f\x80\xe9\xff\"(,"
LINE = st.text(alphabet=ALPHABET, max_size=16)
PAD = "X-Pad: " + "p" * MIN_SECTION_CHARS  # a long valid line: the cache path


def parsed(text: str, caches: HTTP1Caches) -> tuple[tuple[str, str], ...] | ProtocolError:
    try:
        return parse_head(text, Limits(), caches).headers
    except ProtocolError as exc:
        return exc


CACHES = [HTTP1Caches(), HTTP1Caches(max_field_lines=3, max_field_line_chars=8), HTTP1Caches.disabled()]


@settings(max_examples=400, deadline=None)
@given(st.lists(LINE, max_size=6), st.sampled_from(["\r\n", "\n"]), st.sampled_from(range(len(CACHES))))
def test_any_lines_parse_through_the_cache_as_the_plain_path_parses_them(lines, eol, which):
    caches = CACHES[which]
    text = "GET / HTTP/1.1\r\nHost: a\r\n" + PAD + "\r\n" + "".join(line + eol for line in lines) + "\r\n"
    for _ in range(2):  # the second time from the cache
        assert same(parsed(text, caches), plain(text)), text


def test_browser_lines_repeat_from_the_cache_and_keep_their_framing_fields():
    caches = HTTP1Caches()
    for n in range(3):
        text = (f"GET /items/{n} HTTP/1.1\r\nHost: Example.COM\r\nConnection: keep-alive\r\n{PAD}\r\n"
                f"Cookie: id={n}\r\nContent-Length: 3\r\n\r\n")
        head = parse_head(text, Limits(), caches)
        assert head.headers == plain(text)
        assert (head.host, head.keep_alive, head.content_length) == ("example.com", True, 3)
    assert caches.field_lines.misses == 5 + 2  # the first head's five lines, then each new Cookie


def test_unusual_sections_go_to_the_plain_path():
    caches = HTTP1Caches()
    for text in ["GET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\nHost: a\n\n", f"GET / HTTP/1.1\r\nHost: a\r\n{PAD}\n\r\n",
                 f"GET / HTTP/1.1\r\nHost: a\r\n{PAD}\r\nX: a\rb\r\n\r\n"]:
        assert split_field_lines(text, text.find("\n") + 1, caches, Limits()) is None
    many = "GET / HTTP/1.1\r\n" + "X: y\r\n" * 101 + "\r\n"
    assert split_field_lines(many, 16, caches, Limits()) is None
    assert same(parsed(many, caches), ProtocolError(431, "too many header fields"))
