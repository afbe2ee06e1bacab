"""Issue 15, item 7: proxy headers name a client only with what RFC 7239 section 6 allows.

A trusted peer (the demo trusts 127.0.0.1 with ``--proxy-headers``) forwards
whatever its client wrote; the access log must never take that text as the
client address.
"""

from __future__ import annotations

from support.raw_http import exchange, split_response

FORGED = '9.9.9.9 - - [01/Jan/2000:00:00:00 +0000] "GET /admin HTTP/1.1" 200 1'


def get_with(server, header: str) -> int:
    raw = f"GET /healthz HTTP/1.1\r\nHost: x\r\n{header}\r\nConnection: close\r\n\r\n".encode("latin-1")
    status, _, _ = split_response(exchange(server.host, server.port, raw))
    return status


def access_lines(server) -> list[str]:
    return [line for line in server.log().splitlines() if '"GET /healthz HTTP/1.1"' in line]


def test_forged_client_addresses_never_reach_the_access_log(start_demo):
    server = start_demo("--proxy-headers")
    assert get_with(server, f"X-Forwarded-For: {FORGED}") == 200
    assert get_with(server, 'Forwarded: for="9.9.9.9 - - [01/Jan/2000"') == 200  # a quoted string, but no node
    assert get_with(server, 'Forwarded: for="198.51.100.1, for=203.0.113.5') == 200  # unbalanced quote
    assert get_with(server, "X-Forwarded-For: evil.example") == 200  # a name, not an address
    assert get_with(server, 'Forwarded: for="[2001:db8::1]:4711"') == 200  # a valid node is still taken
    server.stop()
    lines = access_lines(server)
    assert len(lines) == 5, server.log()
    for line in lines[:4]:
        assert line.startswith("127.0.0.1 - - ["), line  # the peer: nothing the headers said
    assert lines[4].startswith("2001:db8::1 - - ["), lines[4]
    assert not any(line.startswith("9.9.9.9") for line in server.log().splitlines())
