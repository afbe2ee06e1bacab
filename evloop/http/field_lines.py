"""Field lines through a bounded cache of lines already checked: how ``parse_head`` reads a head it has not seen.

Why: a browser's heads differ on every request (the target, Referer, Cookie),
so the cache of whole heads (``HTTP1Caches.heads``) misses them, but most of
their lines do not differ: Host, Connection, User-Agent, Accept, the client
hints are the same bytes again and again.  Matching every field line with one
``findall`` (``grammar.FIELD_LINE_NO_TRAILING_OWS_RE``, the plain path) has
the regex engine test a character class on every byte: ~44,000 instructions
for the ``browser`` case's 12 lines (~600 bytes).  Whether a line is a valid
field line, and its (name, value), is a pure function of the line's text, so
the lines that passed are remembered (``HTTP1Caches.field_lines``): a line
seen before costs a hash and a dict lookup.

How: a head whose lines all end in CRLF is split on CRLF
(``split_field_lines``) and each line looked up.  A line the cache does not
hold is checked with the one-line forms of the plain path's two patterns
(``grammar.ONE_FIELD_LINE_NO_TRAILING_OWS_RE``, else ``ONE_FIELD_LINE_RE``),
so it gets the (name, value) the plain path gets.  Anything else (a bare LF
or CR, a line that is not a field line, more lines than allowed, no field
line) gives None, and the parser takes its plain path, which refuses the
head and names the error: this module never refuses a head, so what is
accepted, and what is refused with which status, stay the plain path's
(``tests/unit/http/test_http_field_lines.py`` checks one against the other).
Each entry also says whether the line is a framing field (Host, Connection,
Content-Length, Transfer-Encoding, Expect), so the parser's loop over the
fields that decide framing looks at those alone.

Measured with ``load/bench_instructions.py --manual-clock``, instructions a
request: ``browser`` 133,268 -> 121,875 (``parse_head`` alone on those heads
73,269 -> 64,085).  On a few short lines the plain path costs less (see
``MIN_SECTION_CHARS``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .grammar import ONE_FIELD_LINE_NO_TRAILING_OWS_RE, ONE_FIELD_LINE_RE

if TYPE_CHECKING:
    from .caches import HTTP1Caches
    from .parser import Limits

__all__ = ["FRAMING_FIELDS", "FRAMING_INITIALS", "MIN_SECTION_CHARS", "FieldLine", "split_field_lines"]

# Field names that decide framing, persistence and routing (lowercase).
FRAMING_FIELDS = frozenset(("host", "connection", "content-length", "transfer-encoding", "expect"))
# Their first letters: testing one before lowering a name skips most names.
FRAMING_INITIALS = "".join(sorted({c for name in FRAMING_FIELDS for c in (name[0], name[0].upper())}))

# Field sections this short are matched by the plain path (``parse_head``
# checks): on a few short lines, one of them new, the regex costs less than
# splitting and looking up (callgrind, instructions a ``parse_head``, plain ->
# cache: ``unique``'s 2 lines in 42 characters 26,449 -> 31,630; 4 lines in 80,
# one new, 33,006 -> 34,312; 6 lines in 147, one new, 42,000 -> 39,463; the
# browser's 12 lines 74,155 -> 63,982).
MIN_SECTION_CHARS = 128

# (name, value) as the plain path gives them, and whether the name is one of FRAMING_FIELDS.
FieldLine = tuple[tuple[str, str], bool]


def split_field_lines(
    text: str, start: int, caches: HTTP1Caches, limits: Limits
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]] | None:
    """The (name, value) pairs of the field lines of ``text`` (a head) from
    ``start``, and the framing fields among them, in order; None when the
    plain path must parse them (see the module's docstring).

    A line ``caches.field_lines`` does not hold is checked here, and put
    there when it is at most ``caches.max_field_line_chars`` long.
    """
    if start >= len(text) - 4 or not text.endswith("\r\n\r\n"):
        return None  # no field line, or not all lines end in CRLF
    lines = text[start:-4].split("\r\n")
    if len(lines) > limits.max_header_count:
        return None  # the plain path counts them and refuses the head
    cache = caches.field_lines
    max_line_chars = caches.max_field_line_chars
    entries = cache.entries
    get = entries.get
    headers = []
    framing = []
    for line in lines:
        entry = get(line)
        if entry is None:
            cache.misses += 1
            m = ONE_FIELD_LINE_NO_TRAILING_OWS_RE.fullmatch(line) or ONE_FIELD_LINE_RE.fullmatch(line)
            if m is None:
                return None
            name, value = m.groups("")  # "": ONE_FIELD_LINE_RE's value group is optional
            entry = (name, value), name[0] in FRAMING_INITIALS and name.lower() in FRAMING_FIELDS
            if len(line) <= max_line_chars:
                if len(entries) < cache.max_entries:
                    entries[line] = entry  # put's common case, without the call
                else:
                    cache.put(line, entry)
        field, framed = entry
        headers.append(field)
        if framed:
            framing.append(field)
    return headers, framing
