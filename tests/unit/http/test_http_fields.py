"""One check of response header fields (evloop.http.fields), the same where a
response is built (Response, WSGI start_response) and where it is written."""

from __future__ import annotations

import pytest

from evloop.app import Response
from evloop.http.fields import field_error
from evloop.http.writer import encode_fields

GOOD = [("X-A", "plain"), ("X-Tab", "a\tb"), ("X-Latin", "caf\xe9"), ("X-Empty", ""), ("x~!#$%&'*+-.^_`|", "v")]
BAD = [
    ("X-A", "a\x01b"),       # a control character
    ("X-A", "a\x7fb"),       # DEL
    ("X-A", "a\r\nX-B: c"),  # response splitting
    ("X-A", "a\nb"),
    ("X-A", "a\0b"),
    ("X-A", "\u4e2d"),       # not latin-1: cannot go on the wire
    ("X A", "v"),            # a name that is not a token
    ("", "v"),
    ("X:A", "v"),
]


@pytest.mark.parametrize("name, value", GOOD)
def test_valid_fields_pass_everywhere(name, value):
    assert field_error(name, value) is None
    Response(200, [(name, value)], b"")
    assert encode_fields([(name, value)]) == f"{name}: {value}\r\n".encode("latin-1")


@pytest.mark.parametrize("name, value", BAD)
def test_invalid_fields_fail_everywhere_with_the_same_reason(name, value):
    reason = field_error(name, value)
    assert reason is not None
    with pytest.raises(ValueError) as built:
        Response(200, [(name, value)], b"")
    with pytest.raises(ValueError) as written:
        encode_fields([("X-Fine", "ok"), (name, value)])
    assert str(built.value) == str(written.value) == reason


# --- the one Content-Length parser (requests, Response, WSGI, the writer) ----

import pytest  # noqa: E402

from evloop.http.fields import ContentLengthTooLarge, parse_content_length  # noqa: E402


@pytest.mark.parametrize("values,expected", [
    (["0"], 0), (["42"], 42), ([" 42\t"], 42), (["007"], 7), (["5, 5"], 5), (["5", "05"], 5),
    (["9" * 19], int("9" * 19)), (["0" * 40 + "1"], 1), (["5"] * 8, 5), (["5, 5, 5, 5", "5,5,5,5"], 5),
])
def test_content_length_accepted(values, expected):
    assert parse_content_length(values) == expected


@pytest.mark.parametrize("values", [[], [""], ["-1"], ["+1"], ["1_000"], ["0x10"], ["1 2"], ["5, 6"], ["5", "6"],
                                    ["\u0661"], ["1,"], ["5"] * 9, [",".join(["5"] * 9)], ["5, 5", "5,5,5,5,5,5,5"],
                                    [",".join(["0"] * 20_000)]])
def test_content_length_refused(values):
    with pytest.raises(ValueError) as err:
        parse_content_length(values)
    assert not isinstance(err.value, ContentLengthTooLarge)


def test_content_length_too_large_is_its_own_error():
    with pytest.raises(ContentLengthTooLarge):
        parse_content_length(["1" + "0" * 19])
