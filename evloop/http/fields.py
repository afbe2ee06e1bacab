"""The one check of response header fields that applications give.

``Response``, WSGI's ``start_response`` and the writer all apply these rules,
so a field that could not go on the wire is refused where the application
builds its response (the handler raises, the client gets a 500 and the log the
reason) instead of when the head is written (too late for a 500).

RFC 9110 section 5.1: a field name is a token.  Section 5.5: a field value is
visible characters, SP, HTAB and obs-text (0x80-0xFF); CR, LF, NUL and every
other control are refused, which is what stops response splitting.  A ``str``
value must encode as latin-1, the wire's encoding.  The writer checks the
joined head with the same character classes (``grammar.RESPONSE_FIELDS_RE``);
this module names the field that failed and why.

It also holds the one parser of Content-Length values, for requests (the
parser) and for responses (``Response``, WSGI, the writer).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .grammar import TCHAR, VCHAR

__all__ = [
    "MAX_CONTENT_LENGTH_VALUES",
    "ContentLengthTooLarge",
    "check_field",
    "field_error",
    "is_valid_name",
    "is_valid_value",
    "parse_content_length",
]

is_valid_name = re.compile(f"[{TCHAR}]+").fullmatch
is_valid_value = re.compile(f"[\t {VCHAR}]*").fullmatch


def field_error(name: str, value: str) -> str | None:
    """Why ``name: value`` cannot be a response field, or None when it can."""
    if not isinstance(name, str) or is_valid_name(name) is None:
        return f"invalid header name {name!r} (RFC 9110 5.1: a token)"
    if not isinstance(value, str) or is_valid_value(value) is None:
        return (f"invalid header value for {name}: {value!r} "
                "(RFC 9110 5.5: visible characters, space, tab and latin-1 only; no CR, LF or other controls)")
    return None


def check_field(name: str, value: str) -> None:
    """Raise ``ValueError`` with the reason when ``name: value`` cannot be a response field."""
    # The two matches alone on the way through (a Response with a content
    # type runs this once); the reason is worked out only on failure.
    if is_valid_name(name) is None or is_valid_value(value) is None:
        raise ValueError(field_error(name, value))


class ContentLengthTooLarge(ValueError):
    """A Content-Length of more digits than any real length has (a request gets a 413)."""


_DIGITS = re.compile(r"[0-9]++")
# More digits than this cannot be a sane length; refuse before int().
_MAX_LENGTH_DIGITS = 19
# RFC 9110 8.6 lets a recipient take "5, 5" (a proxy that joined two
# identical lines) as 5.  llhttp and nginx refuse any repetition, h11 and
# hyper any number of identical values; a few covers the proxies, and the
# count is checked before anything is split, so a head of 20,000 "0,"
# costs one count, not 20,000 elements.
MAX_CONTENT_LENGTH_VALUES = 8


def parse_content_length(values: Iterable[str]) -> int:
    """The length stated by Content-Length field values (RFC 9110 8.6, RFC 9112 6.3).

    ``values``: the value of each Content-Length field line, in any number.
    Each is a decimal length, or a comma list of identical ones ("5, 5"),
    with optional whitespace around elements; every line must state the same
    length.  Leading zeros are ignored.

    Raises ``ValueError`` naming the problem: no values, more than
    ``MAX_CONTENT_LENGTH_VALUES`` elements in all, an element that is not
    ASCII digits, lengths that disagree, or (``ContentLengthTooLarge``) more
    than 19 significant digits.
    """
    length = None
    count = 0
    for value in values:
        count += value.count(",") + 1
        if count > MAX_CONTENT_LENGTH_VALUES:
            raise ValueError(f"more than {MAX_CONTENT_LENGTH_VALUES} Content-Length values (RFC 9110 8.6)")
        for element in value.split(","):
            element = element.strip(" \t")
            if _DIGITS.fullmatch(element) is None:
                raise ValueError(f"invalid Content-Length {value[:40]!r} (RFC 9110 8.6)")
            element = element.lstrip("0") or "0"
            if length is None:
                length = element
            elif element != length:
                raise ValueError("conflicting Content-Length values (RFC 9112 6.3)")
    if length is None:
        raise ValueError("no Content-Length value")
    if len(length) > _MAX_LENGTH_DIGITS:
        raise ContentLengthTooLarge("Content-Length too large")
    return int(length)
