"""``--access-log-format``: gunicorn's atoms compiled once into a line function (evloop.logline)."""

from __future__ import annotations

import json
import re

import pytest

from evloop.app import Request
from evloop.logline import JSONAccessLine, compile_access_format, duration_text

_ARGS = ("203.0.113.9", "GET /p?q=1 HTTP/1.1", "GET", "/p?q=1", "HTTP/1.1", 200, 0, 0.0123456, "06/Dec/2026:09:00:00 +0000")


def _request(*headers: tuple[str, str]) -> Request:
    return Request("GET", "/p?q=1", "HTTP/1.1", list(headers))


def test_literal_text_is_data_never_code():
    # Quotes, braces, backslashes and what would be code in the format's literal text: printed as written.
    fmt = """'"); import os; os._exit(1) #{h}\\n\"\"\"%(s)s"""
    line = compile_access_format(fmt)(*_ARGS, None)
    assert line == """'"); import os; os._exit(1) #{h}\\n\"\"\"200"""


def test_every_atom_and_a_missing_request():
    line = compile_access_format("%(h)s %(l)s %(u)s %(t)s %(m)s %(U)s %(q)s %(H)s %(b)s %(B)s %(f)s %(a)s "
                                 "%(T)s %(M)s %(D)s %(L)s %({x-request-id}i)s")(*_ARGS, None)
    assert line == ("203.0.113.9 - - [06/Dec/2026:09:00:00 +0000] GET /p q=1 HTTP/1.1 - 0 - - 0 12 12345 0.012345 -")


def test_request_fields_are_escaped_and_the_id_is_the_requests():
    request = _request(("User-Agent", 'a "b"\x1b[31m'), ("X-Request-ID", "from-client"))
    line = compile_access_format('"%(a)s" %({x-request-id}i)s %({X-Request-ID}i)s')(*_ARGS, request)
    agent, made, again = line.rsplit(" ", 2)
    assert agent == '"a \\x22b\\x22\\x1B[31m"'
    # Not trusted (the server did not call trust_request_id): the client's id is replaced, once.
    assert made == again == request.request_id and made != "from-client" and len(made) == 32


def test_a_trusted_request_id_is_taken_when_it_looks_like_one():
    trusted = _request(("X-Request-ID", "abc-123"))
    trusted.trust_request_id()
    assert trusted.request_id == "abc-123"
    forged = _request(("X-Request-ID", 'bad id"'))
    forged.trust_request_id()
    assert forged.request_id != 'bad id"' and len(forged.request_id) == 32


def test_a_made_request_id_is_32_hex_digits_and_each_request_gets_its_own():
    ids = [_request().request_id for _ in range(100)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", made) for made in ids)
    assert len(set(ids)) == 100


@pytest.mark.parametrize("fmt, problem", [
    ("%(z)s", "%(z)s is not an atom"),
    ("%(h)d", "'%(h)d' is not an atom such as %(h)s"),
    ("100%", "'%' is not an atom"),
    ("%({bad name}i)s", "is not an atom"),
])
def test_what_is_not_an_atom_is_refused_by_name(fmt, problem):
    with pytest.raises(ValueError, match="--access-log-format: .*" + problem.replace("(", r"\(").replace(")", r"\)")
                       .replace("{", r"\{").replace("}", r"\}")):
        compile_access_format(fmt)


def test_json_line_is_ascii_json_whatever_the_request_holds():
    request = _request(("Referer", "https://r/\u00e9\ud800"), ("User-Agent", "x\ny"))
    line = JSONAccessLine()(*_ARGS, request)
    assert line.isascii() and "\n" not in line
    record = json.loads(line)
    assert record["referer"] == "https://r/\u00e9\ud800" and record["user_agent"] == "x\ny"
    assert (record["status"], record["bytes"], record["path"], record["query"]) == (200, 0, "/p", "q=1")


@pytest.mark.parametrize("duration_s", [0.0, 1e-6, 0.000999, 0.001, 0.125, 0.25, 0.999999, 1.0, 1.5, 12.000999,
                                        3600.5, 86400.000001, 1e6 + 0.5])
def test_duration_text_is_whole_microseconds_truncated(duration_s):
    """duration_text joins remembered three-digit texts: the same text as formatting the microseconds."""
    us = int(duration_s * 1_000_000)
    assert duration_text(duration_s) == f"{us // 1_000_000}.{us % 1_000_000:06d}"


def test_duration_text_for_every_millisecond_and_microsecond_digit():
    for us in list(range(0, 2_000_000, 997)) + list(range(999_000, 1_001_000)):
        duration_s = us / 1_000_000
        whole = int(duration_s * 1_000_000)
        assert duration_text(duration_s) == f"{whole // 1_000_000}.{whole % 1_000_000:06d}"
