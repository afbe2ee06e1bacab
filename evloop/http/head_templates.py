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
of an earlier head with that key (a ``HeadTemplate``); the request's head is
that parse with this request's target and values, each checked first with the
plain path's pattern: the target with ``grammar.ORIGIN_FORM_RE`` (the part of
``grammar.REQUEST_LINE_FAST_RE`` that matches it), a value with
``grammar.FIELD_VALUE_RE`` and no whitespace around it (which the plain path
would strip).  Whatever does not pass (a value with whitespace around it, a
target of another form, an overlong request line) gives None, and the head is
parsed by ``parse_head``, which refuses what it must: this module never
refuses a head.

Why a hit gives what ``parse_head`` gives: the key keeps every character of
the head but those taken out, and what is taken out holds no line end (a
value ends at its line's first CRLF, and the target's pattern has none), so
two heads with one key have the same lines, in the same places, with the
same bytes outside the holes.  A template is made only from a head whose
lines all end in CRLF, whose request line took the fast pattern, and whose
parse has those values, unchanged, at those places (``template_for``).

Measured with ``load/bench_instructions.py --manual-clock browser``: 115,962 ->
90,833 instructions a request (a hit: ~17,000 to cut, ~20,000 to check the
three parts and make the head).  A head whose field section is at most
``field_lines.MIN_SECTION_CHARS`` long is not cut: parsing it costs less
(``unique``, 2 short fields: 61,764 before, 62,065 with the length test).

A key is admitted on its second sighting (``HTTP1Caches.heads_seen``), as
whole heads are, so a stream of heads that share nothing costs a lookup and
an insert each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .events import RequestHead
from .field_lines import MIN_SECTION_CHARS
from .grammar import FIELD_VALUE_BYTES, ORIGIN_FORM_RE

if TYPE_CHECKING:
    from .caches import HTTP1Caches
    from .parser import Limits

__all__ = ["HeadTemplate", "cut", "from_template", "template_for"]

_VERSION_CHARS = len(" HTTP/1.1")  # the end of a request line the fast pattern takes

# The key: the head's text in four pieces, around the target and the two values.  A hole that is
# not there is an empty piece where it would be: a piece around a hole that is there is never empty.
Key = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class HeadTemplate:
    """The parse of a head, and where its Referer and Cookie fields are in its ``headers`` (-1: none)."""

    limits: Limits  # the limits it was checked against
    head: RequestHead
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


def from_template(
    template: HeadTemplate, target: str, referer: str | None, cookie: str | None, rl_end: int
) -> RequestHead | None:
    """The head of the request ``template`` and these parts make, or None if a part must be parsed."""
    if rl_end > template.limits.max_request_line_bytes or ORIGIN_FORM_RE.fullmatch(target) is None:
        return None
    head = template.head
    headers = list(head.headers)
    if referer is not None:
        if not _plain_value(referer):
            return None
        headers[template.referer_place] = ("Referer", referer)
    if cookie is not None:
        if not _plain_value(cookie):
            return None
        headers[template.cookie_place] = ("Cookie", cookie)
    return RequestHead(head.method, target, head.version, tuple(headers), head.keep_alive, head.content_length,
                       head.chunked, head.expect_continue, head.host)


def _plain_value(value: str) -> bool:
    """Whether ``value`` is a field value as the plain path gives it: valid, no whitespace around it.

    ``grammar.FIELD_VALUE_BYTES`` checks the characters: ~4,000 instructions for a browser's
    240-character Cookie against ~6,600 for ``FIELD_VALUE_RE``, which tests a class on each.
    """
    if not value or value[0] in " \t" or value[-1] in " \t":
        return False
    raw = value.encode("latin-1")
    return raw.translate(FIELD_VALUE_BYTES) == raw


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
    template = HeadTemplate(limits, head, referer_place, cookie_place)
    return template if from_template(template, target, referer, cookie, rl_end) == head else None


def _place(text: str, rl_end: int, at: int, name: str, value: str | None, head: RequestHead) -> int | None:
    """The index in ``head.headers`` of the field whose value starts at ``at`` in ``text``: -1 for no
    value, None if that field is not (name, value) there."""
    if value is None:
        return -1
    place = text.count("\r\n", rl_end, at) - 1  # the line ends before it, the request line's first
    return place if place < len(head.headers) and head.headers[place] == (name, value) else None


def lookup(text: str, limits: Limits, caches: HTTP1Caches) -> tuple[RequestHead | None, Key | None]:
    """The head of ``text`` from a template: (head, None) on a hit; else (None, the key to admit after
    parsing, or None: a head whose field section is short enough to parse faster than it is cut)."""
    line_end = text.find("\n")
    if len(text) - line_end <= MIN_SECTION_CHARS:
        return None, None
    rl_end = line_end - 1 if text[line_end - 1] == "\r" else line_end
    parts = cut(text, rl_end)
    if parts is None:
        return None, None
    key, target, referer, cookie = parts
    templates = caches.head_templates
    template = templates.entries.get(key)
    if template is not None and template.limits is limits:
        head = from_template(template, target, referer, cookie, rl_end)
        if head is not None:
            return head, None
    templates.misses += 1
    return None, key
