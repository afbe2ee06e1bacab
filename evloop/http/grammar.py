"""Compiled patterns for the HTTP/1.1 grammar (RFC 9110, RFC 9112, RFC 3986).

Heads are matched as latin-1 ``str`` with line endings already normalised to
``\\n``; chunked framing is matched as ``bytes``.  Every pattern that sees
untrusted input uses possessive quantifiers or disjoint alternatives, so a
failing match costs time linear in its input (no catastrophic backtracking).
"""

import re

# RFC 9110 5.6.2: tchar.  Inside a character class.
TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
# RFC 9110 5.5: field-vchar = VCHAR / obs-text.
VCHAR = r"\x21-\x7e\x80-\xff"
# RFC 9110 5.6.4: qdtext and quoted-pair.
QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*+"'

TOKEN_RE = re.compile(f"[{TCHAR}]++")

# Request-target characters.  RFC 3986 forbids some visible characters
# (`"<>\^{|}`) that browsers send raw in paths and queries (WHATWG URL), so
# any VCHAR is accepted except "#" (a fragment is never part of a
# request-target, RFC 9112 3.2) and "%" not followed by two hex digits.
_TARGET_CHAR = r"\x21\x22\x24\x26-\x7e"
_TARGET_REST = rf"(?:[{_TARGET_CHAR}]++|%[0-9A-Fa-f]{{2}})*+"

# RFC 3986 3.2.2 host (IP-literal without zone ids / IPvFuture, IPv4 and
# reg-name both covered by the reg-name alternative) and port.  No userinfo:
# RFC 9110 4.2.4 says to treat "@" in an http authority as an error.
_REG_NAME = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})"
_HOST = rf"(?:\[[0-9A-Fa-f:.]++\]|{_REG_NAME}*+)"
_HOST_NONEMPTY = rf"(?:\[[0-9A-Fa-f:.]++\]|{_REG_NAME}++)"

# RFC 9110 7.2: Host = uri-host [ ":" port ]; an empty value is allowed.
HOST_RE = re.compile(rf"{_HOST}(?::[0-9]*+)?")

# The hot path: token SP origin-form SP HTTP/1.x.  Anything else goes to the
# slow path, which recognises the other forms and names the error.
REQUEST_LINE_FAST_RE = re.compile(rf"([{TCHAR}]++) (/{_TARGET_REST}) HTTP/1\.([0-9])")
VERSION_RE = re.compile(r"HTTP/([0-9])\.([0-9])")
ORIGIN_FORM_RE = re.compile(f"/{_TARGET_REST}")
# The same language, split as ``target.target_parts`` splits it: (path, query) at the first "?" ("" when none).
# ``head_templates`` checks and splits a target with one match (~1,300 instructions less than a check and
# ``target_parts``, callgrind); tests/unit/http/test_http_head_templates.py compares the two.
_PATH_CHAR = r"\x21\x22\x24\x26-\x3e\x40-\x7e"  # _TARGET_CHAR without "?"
ORIGIN_FORM_PARTS_RE = re.compile(rf"(/(?:[{_PATH_CHAR}]++|%[0-9A-Fa-f]{{2}})*+)\??+({_TARGET_REST})")
# RFC 9112 3.2.2; RFC 9110 4.2.1: an http(s) URI with an empty host is invalid.
ABSOLUTE_FORM_RE = re.compile(rf"(?i:https?)://({_HOST_NONEMPTY}(?::[0-9]*+)?)(?:[/?]{_TARGET_REST})?")
# RFC 9112 3.2.3: authority-form = uri-host ":" port.
AUTHORITY_FORM_RE = re.compile(rf"{_HOST_NONEMPTY}:[0-9]++")

# RFC 9112 5: field-line = field-name ":" OWS field-value OWS, one per line,
# ending in CRLF or (RFC 9112 2.2) a bare LF.  Anchored at line starts; the
# value group excludes surrounding OWS.  CR is only accepted right before LF,
# so a bare CR fails the match.  The value's inner star backtracks only over
# trailing whitespace, so matching stays linear.
_FIELD_LINE = rf"([{TCHAR}]++):[ \t]*+([{VCHAR}](?:[\t {VCHAR}]*[{VCHAR}])?)?[ \t]*"
FIELD_LINE_RE = re.compile(rf"^{_FIELD_LINE}\r?\n", re.MULTILINE)
# The fast path for the same lines (``parser.parse_head`` tries it first): a
# value that neither starts nor ends with whitespace, as clients send it.  The
# value is one possessive scan and the lookbehind refuses trailing OWS, so a
# line this matches gives the same (name, value) as FIELD_LINE_RE; a line it
# refuses (trailing OWS, or a bad line) sends the head to FIELD_LINE_RE.
# Measured with callgrind on the ``browser`` case's 12 field lines: ~56,000 ->
# ~44,000 instructions (FIELD_LINE_RE's backtracking value group costs a
# quarter more per character than one scan).
_FIELD_LINE_NO_TRAILING_OWS = rf"([{TCHAR}]++):[ \t]*+([\t {VCHAR}]*+)(?<![ \t])"
FIELD_LINE_NO_TRAILING_OWS_RE = re.compile(rf"^{_FIELD_LINE_NO_TRAILING_OWS}\r?\n", re.MULTILINE)
# The same two patterns for one line without its line end (``fullmatch``):
# ``field_lines`` checks the lines its cache does not hold with them.
ONE_FIELD_LINE_RE = re.compile(_FIELD_LINE)
ONE_FIELD_LINE_NO_TRAILING_OWS_RE = re.compile(_FIELD_LINE_NO_TRAILING_OWS)
FIELD_VALUE_RE = re.compile(rf"[\t {VCHAR}]*+")
# The same characters as a table for ``bytes.translate``: it keeps them and changes every other byte, so
# a value (encoded as latin-1) is made of them when translating leaves it equal.  The check runs in C,
# ~5 instructions a character against the pattern's ~25 (``head_templates``; tested against the pattern).
FIELD_VALUE_BYTES = bytes(c if c == 9 or 32 <= c != 127 else c + 1 for c in range(256))
# The same for a request-target's characters but "%" (_TARGET_CHAR): a target without "%" that starts with "/"
# and that translating leaves equal is ORIGIN_FORM_RE's (``head_templates``; tested against the pattern).
TARGET_BYTES = bytes(c if c in b'!"$' or 0x26 <= c <= 0x7E else c ^ 1 for c in range(256))

# RFC 9112 6.1 / RFC 9110 10.1.4: transfer-coding = token *( OWS ";" OWS
# transfer-parameter ).
TRANSFER_CODING_RE = re.compile(
    rf"([{TCHAR}]++)((?:[ \t]*+;[ \t]*+[{TCHAR}]++=(?:[{TCHAR}]++|{QUOTED}))*+)"
)

# RFC 9112 7.1.1: chunk-size [ chunk-ext ], the line without its CRLF.
# chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
CHUNK_LINE_RE = re.compile(
    (
        rf"([0-9A-Fa-f]++)((?:[ \t]*+;[ \t]*+[{TCHAR}]++"
        rf"(?:[ \t]*+=[ \t]*+(?:[{TCHAR}]++|{QUOTED}))?+)*+)"
    ).encode("latin-1")
)

# Response fields given by an application, joined as "name: value\r\n" lines:
# names must be tokens, values may not hold CR, LF or other controls (HTAB
# excepted) -- this is what stops response splitting.
RESPONSE_FIELDS_RE = re.compile(rf"(?:[{TCHAR}]++: [\t {VCHAR}]*+\r\n)*+")
RESPONSE_FIELDS_BYTES_RE = re.compile(RESPONSE_FIELDS_RE.pattern.encode("latin-1"))
# Response fields evloop owns or must look at.
RESPONSE_SPECIAL_BYTES_RE = re.compile(
    rb"(?:^|\n)(?:connection|content-length|transfer-encoding|date|server):", re.IGNORECASE
)


def field_value_problem(value: str) -> str | None:
    """What stops ``value`` going out as an HTTP field's value (RFC 9110 5.5): Latin-1, no CR, LF or other control.

    None when it can; else the reason, for an error message (configured
    values such as the Server field's are checked with it once, at start-up).
    """
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return f"must be Latin-1 text, got {value!r}"
    if not FIELD_VALUE_RE.fullmatch(value):
        return f"must not contain CR, LF or other control characters, got {value!r}"
    return None
