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
from evloop.http import Limits, ProtocolError, RequestHead
from evloop.http.caches import HTTP1Caches
from evloop.http.grammar import FIELD_VALUE_BYTES, FIELD_VALUE_RE
from evloop.http.parser import HeadReader

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "load" / "bench"))
from browser import head as browser_head  # noqa: E402  (the browser-unique scenario's heads)

LIMITS = Limits()  # one object, as a server shares it: a template holds the limits it was checked against
PAD = "X-Pad: " + "p" * 130  # past MIN_SECTION_CHARS: short heads are parsed, not cut


def outcome(reader: HeadReader, data: bytes) -> RequestHead | tuple[int, str] | None:
    buf = ReceiveBuffer()
    buf.feed(data)
    try:
        return reader.read(buf)
    except ProtocolError as exc:
        return exc.status, exc.reason


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
def test_values_with_whitespace_around_them_are_parsed_and_lose_it(referer, cookie):
    caches = HTTP1Caches()
    for _ in range(2):
        outcome(HeadReader(LIMITS, caches), head("/", "r", "c"))
    misses = caches.head_templates.misses
    data = head("/x", referer, cookie)
    result = outcome(HeadReader(LIMITS, caches), data)
    assert result == plain(data) and isinstance(result, RequestHead)
    assert caches.head_templates.misses == misses + 1  # not from the template


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
