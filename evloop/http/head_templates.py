"""Heads with holes: the parses of heads that differ only in their target, Referer and Cookie.

Why: a browser's heads differ on every request, so the cache of whole heads
(``HTTP1Caches.heads``) never holds them, but they differ in three places
only: the request-target, the Referer and the Cookie.  The method, the
version, the other fields, and all they say about framing, persistence and
the host, repeat from request to request.  Parsing it all again cost ~64,000
instructions a browser head (``parse_head``, most of it the 12 field lines).

How: ``cut`` takes those three out of the head's text: the key is the text
without the target and without the values of the first ``Referer`` and
``Cookie`` lines (spelled as browsers send them over HTTP/1.1: ``"\\r\\nReferer: "``,
``"\\r\\nCookie: "``).  ``HTTP1Caches.head_templates`` maps a key to the parse
of an earlier head with that key (a ``HeadTemplate``); ``fill`` makes the
request's head from that parse with this request's target and values, each
checked first with the plain path's pattern: the target with
``grammar.ORIGIN_FORM_PARTS_RE`` (``grammar.ORIGIN_FORM_RE``, the part of
``grammar.REQUEST_LINE_FAST_RE`` that matches it, split at its "?"), a value
stripped of the whitespace around it (as the plain path strips it) and made
of ``grammar.FIELD_VALUE_RE``'s characters.  Whatever does not pass (a target
of another form, a value with a control character, an overlong request
line) gives None, and the head is parsed by ``parse_head``, which refuses
what it must: this module never refuses a head.  Each connection's
``HeadReader`` keeps the template of its last head (``last_template``) and
tries it first: ``fill`` cuts the holes where ``cut`` would and joins them
with the key's pieces, without cutting the key out or hashing it.

Why a hit gives what ``parse_head`` gives: the key keeps every character of
the head but those taken out, and what is taken out holds no line end (a
value ends at its line's first CRLF, and the target's pattern has none), so
two heads with one key have the same lines, in the same places, with the
same bytes outside the holes.  A template is made only from a head whose
lines all end in CRLF, whose request line took the fast pattern, and whose
parse has those values, unchanged, at those places (``template_for``).

Measured with ``load/bench_instructions.py --manual-clock browser``: 115,962 ->
90,833 instructions a request with the dictionary of keys alone; the
connection's last template tried first, compared in place: 95,369 -> 79,295
(``fill``: then ~26,500 a browser head against ~41,000 to cut, hash and fill;
since its one join and comparison: ~23,200, browser 72,833 -> 69,715; a target
without "%" checked by a translate, not a match: ~21,500, browser 65,031 -> 62,907;
the fields every head of a template shares set from one tuple, ``HeadTemplate.same``, and
the template tried before the check for empty lines: ~21,150, browser 62,821 -> 62,412; no place
found checked on its own, only the join and the holes' characters, the pieces' lengths read from one
tuple, the fields filled into the template's scratch list, the holes encoded as UTF-8: ~17,900,
browser 59,485 -> 56,323 with the demo's bound ``Response.from_bytes``).
A head whose field section is at most ``field_lines.MIN_SECTION_CHARS`` long
is not cut: parsing it costs less
(``unique``, 2 short fields: 61,764 before, 62,065 with the length test).

A key is admitted on its second sighting (``HTTP1Caches.heads_seen``), as
whole heads are, so a stream of heads that share nothing costs a lookup and
an insert each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .events import RequestHead
from .field_lines import MIN_SECTION_CHARS
from .grammar import FIELD_VALUE_BYTES, ORIGIN_FORM_PARTS_RE, TARGET_BYTES
from .target import decode_path

if TYPE_CHECKING:
    from .caches import HTTP1Caches
    from .parser import Limits

__all__ = ["HeadTemplate", "cut", "fill", "lookup", "template_for"]

_VERSION_CHARS = len(" HTTP/1.1")  # the end of a request line the fast pattern takes
_NEW_HEAD = RequestHead.__new__

# The key: the head's text in four pieces, around the target and the two values.  A hole that is
# not there is an empty piece where it would be: a piece around a hole that is there is never empty.
Key = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class HeadTemplate:
    """The parse of a head, its key, and what ``fill`` needs to make the heads of that key."""

    limits: Limits  # the limits it was checked against
    head: RequestHead
    key: Key
    same: tuple[Any, ...]  # the head's fields that every head of the template shares, in fill's order
    # What fill reads first, unpacked at once: the key's pieces, where the target starts, the lengths of
    # the pieces before the Referer and the Cookie value, where the last piece starts (counted from the
    # text's end), and the last place the request line's LF may be at (the request line limit).
    shape: tuple[str, str, str, str, int, int, int, int, int]
    # The head's fields, whose Referer and Cookie pairs (at these places, -1 for none) each fill replaces
    # before it copies them into the new head's tuple: fill's own scratch list, never handed out (fill
    # runs to its end without a call out, so one list serves every connection); it keeps the last values
    # filled, as ``head`` keeps the first head's.
    fields: list[tuple[str, str]] = field(compare=False)
    referer_place: int
    cookie_place: int


def cut(text: str, rl_end: int) -> tuple[Key, str, str | None, str | None] | None:
    """``text`` (a head whose request line ends at ``rl_end``) as (key, target, Referer, Cookie).

    The holes are the first Referer line and the first Cookie line after it
    (browsers send them in that order; a Cookie line before the Referer
    stays in the key).  None when the request line cannot be the fast
    pattern's (no space in it, or too short).
    """
    sp = text.find(" ", 0, rl_end)
    version_at = rl_end - _VERSION_CHARS
    if sp < 0 or version_at <= sp:
        return None
    # Each hole: the start and end of its value, or an empty piece where it would be.  Written out twice,
    # not a function called twice: the calls cost 1,900 instructions a browser head (measured).
    referer_at = text.find("\r\nReferer: ", rl_end)
    if referer_at < 0:
        referer = None
        referer_at = referer_end = version_at
    else:
        referer_at += 11
        referer_end = text.find("\r\n", referer_at)  # a head ends with CRLF CRLF: always found
        referer = text[referer_at:referer_end]
    cookie_at = text.find("\r\nCookie: ", referer_end)
    if cookie_at < 0:
        cookie = None
        cookie_at = cookie_end = referer_end
    else:
        cookie_at += 10
        cookie_end = text.find("\r\n", cookie_at)
        cookie = text[cookie_at:cookie_end]
    key = (text[: sp + 1], text[version_at:referer_at], text[referer_end:cookie_at], text[cookie_end:])
    return key, text[sp + 1 : version_at], referer, cookie


def fill(template: HeadTemplate, text: str) -> RequestHead | None:
    """The head of ``text`` (latin-1 text) made from ``template``, or None if ``text`` is not of its shape or a
    hole must be parsed.

    The holes are cut where ``cut`` would find them (the target ends at the request line's " HTTP/1.1",
    the Referer value at its line's end, the Cookie value where the last piece starts), and the text is
    the key with those holes in it when joining them gives the text again: one join and one comparison.
    That and the holes' characters are all there is to check: a text that is the key's pieces with
    holes holding no CR or LF between them is cut by ``cut`` into that key and those holes (a piece of
    a key holds each place ``cut`` looks for only at its end, and a hole ends at the CRLF that starts
    the piece after it), however the holes were found, so no place found is checked on its own.
    The target is checked and split by one translate and one partition (or, with a "%", one match),
    both values by one translate, and the head is made without its ``__post_init__`` (which would split
    the target again, ~2,500 instructions); every field is set (test_http_head_templates.py compares
    them all).  Callgrind: ~17,900 instructions a browser head (see the module docstring).
    """
    p0, p1, p2, p3, target_at, referer_skip, cookie_skip, tail_at, line_end_max = template.shape
    line_end = text.find("\n")
    if line_end > line_end_max:
        return None
    version_at = line_end - 10  # " HTTP/1.1\r": the first non-empty piece after the target starts with it
    target = text[target_at:version_at]
    if p1:  # the Referer hole: its value ends at its line's end
        referer_at = version_at + referer_skip
        referer_end = text.find("\r\n", referer_at)
        referer = text[referer_at:referer_end]
    else:
        referer_end = version_at
        referer = ""
    # The last piece ends the text, so the Cookie value ends where it starts (~2,000 instructions less than
    # a search for its line end).
    cookie = text[referer_end + cookie_skip : tail_at] if p2 else ""
    if "".join((p0, target, p1, referer, p2, cookie, p3)) != text:
        return None
    # The target, checked and split at its first "?" as ORIGIN_FORM_PARTS_RE splits it.  One with no "%"
    # (most) by one translate and one partition: ~2,000 instructions less than the match (callgrind;
    # load/bench_instructions.py --manual-clock browser 65,031 -> 62,907).
    if "%" in target:
        target_match = ORIGIN_FORM_PARTS_RE.fullmatch(target)
        if target_match is None:
            return None
        raw_path, query = target_match.groups()
        path = decode_path(raw_path) if "%" in raw_path else raw_path
    else:
        raw = target.encode()  # UTF-8: see the values below
        if text[target_at] != "/" or raw.translate(TARGET_BYTES) != raw:
            return None
        raw_path, _, query = target.partition("?")
        path = raw_path
    # Both values' characters at once: one translate for the two (~2,000 instructions less than one each).
    # Encoded as UTF-8, not latin-1 (no codec name to look up): the text is latin-1, and a character
    # past ASCII is two bytes past ASCII in UTF-8 and one in latin-1, so both tables pass the same texts.
    values = (referer + cookie).encode()
    if values.translate(FIELD_VALUE_BYTES) != values:
        return None
    fields = template.fields  # the template's scratch list (see HeadTemplate): no copy to make and free
    if p1:
        fields[template.referer_place] = ("Referer", referer.strip(" \t"))
    if p2:
        fields[template.cookie_place] = ("Cookie", cookie.strip(" \t"))
    headers = tuple(fields)
    new = _NEW_HEAD(RequestHead)
    (new.method, new.version, new.keep_alive, new.content_length, new.chunked, new.expect_continue, new.host,
     new.http10, new.is_head) = template.same
    new.target = target
    new.headers = headers
    new.target_parts = (raw_path, path, query)
    return new


def template_for(text: str, head: RequestHead, limits: Limits) -> HeadTemplate | None:
    """A template of ``head``, parsed from ``text``, if its hits would give what parsing gives (see the module)."""
    line_end = text.find("\n")
    rl_end = line_end - 1 if text[line_end - 1] == "\r" else line_end
    parts = cut(text, rl_end)
    if parts is None or text.count("\n") != text.count("\r\n"):
        return None
    key, target, referer, cookie = parts
    if head.target != target or head.method != key[0][:-1]:
        return None  # not the fast pattern's request line (an absolute-form target, a CONNECT)
    referer_place = _place(text, rl_end, len(key[0]) + len(target) + len(key[1]), "Referer", referer, head)
    cookie_place = _place(text, rl_end, len(text) - len(key[3]) - len(cookie or ""), "Cookie", cookie, head)
    if referer_place is None or cookie_place is None:
        return None
    same = (head.method, head.version, head.keep_alive, head.content_length, head.chunked, head.expect_continue,
            head.host, head.http10, head.is_head)
    p0, p1, p2, p3 = key
    shape = (p0, p1, p2, p3, len(p0), len(p1), len(p2), -len(p3), limits.max_request_line_bytes + 1)
    template = HeadTemplate(limits, head, key, same, shape, list(head.headers), referer_place, cookie_place)
    return template if fill(template, text) == head else None


def _place(text: str, rl_end: int, at: int, name: str, value: str | None, head: RequestHead) -> int | None:
    """The index in ``head.headers`` of the field whose value starts at ``at`` in ``text``: -1 for no
    value, None if that field is not (name, value) there."""
    if value is None:
        return -1
    place = text.count("\r\n", rl_end, at) - 1  # the line ends before it, the request line's first
    return place if place < len(head.headers) and head.headers[place] == (name, value) else None


def lookup(text: str, limits: Limits, caches: HTTP1Caches) -> tuple[HeadTemplate | None, Key | None]:
    """The template of ``text``'s key: (template, None) when the caches hold one under these limits; else
    (None, the key to admit after parsing, or None: a head whose field section is short enough to parse
    faster than it is cut)."""
    line_end = text.find("\n")
    if len(text) - line_end <= MIN_SECTION_CHARS:
        return None, None
    rl_end = line_end - 1 if text[line_end - 1] == "\r" else line_end
    parts = cut(text, rl_end)
    if parts is None:
        return None, None
    key = parts[0]
    templates = caches.head_templates
    template = templates.entries.get(key)
    if template is not None and template.limits is limits:
        return template, None
    templates.misses += 1
    return None, key
