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
"""

from __future__ import annotations

import re

from .grammar import TCHAR, VCHAR

__all__ = ["check_field", "field_error", "is_valid_name", "is_valid_value"]

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
