"""The bounded cache of parsed heads must never change what a head parses to."""

from evloop.http import Limits, ProtocolError
from evloop.http.parser import parse_head

import pytest

HEAD = "GET /a HTTP/1.1\r\nHost: example.com\r\nX-One: 1\r\nX-Two: 2\r\n\r\n"


def test_repeated_head_gives_equal_read_only_results():
    limits = Limits()
    results = [parse_head(HEAD, limits) for _ in range(4)]  # seen, cached, hits
    first = results[0]
    for other in results[1:]:
        assert (other.method, other.target, other.version, other.headers, other.host) == (
            first.method, first.target, first.version, first.headers, first.host)
    # Hits may share one object, so its header list cannot be changed in place.
    assert isinstance(first.headers, tuple)
    with pytest.raises(AttributeError):
        results[-1].headers.append(("X-Mutated", "yes"))  # type: ignore[attr-defined]


def test_cached_head_is_checked_again_under_stricter_limits():
    for _ in range(3):
        parse_head(HEAD, Limits())
    with pytest.raises(ProtocolError) as err:
        parse_head(HEAD, Limits(max_header_count=2))
    assert err.value.status == 431
    with pytest.raises(ProtocolError) as err:
        parse_head(HEAD, Limits(max_request_line_bytes=5))
    assert err.value.status == 414


def test_errors_are_never_cached():
    bad = "GET /a HTTP/1.1\r\nHost: example.com\r\nBad Name: x\r\n\r\n"
    for _ in range(3):
        with pytest.raises(ProtocolError) as err:
            parse_head(bad, Limits())
        assert err.value.status == 400
