"""evloop.proxy: trusted peers, header parsing and the right-most untrusted hop."""

from __future__ import annotations

import pytest

from evloop.proxy import TrustedProxies, parse_forwarded, resolve_client

PEER = ("127.0.0.1", 50000)
LOCAL = TrustedProxies("127.0.0.1")


def resolve(headers, trusted=LOCAL, peer=PEER):
    return resolve_client(peer, "http", headers, trusted)


def test_trust_list_addresses_ranges_star_unix():
    t = TrustedProxies("127.0.0.1, 10.0.0.0/8,2001:db8::/32")
    assert t.is_trusted("127.0.0.1") and t.is_trusted("10.1.2.3") and t.is_trusted("2001:db8::5")
    assert not t.is_trusted("127.0.0.2") and not t.is_trusted("11.0.0.1") and not t.is_trusted("unknown")
    assert t.is_trusted("::ffff:10.0.0.1")  # IPv4-mapped from a dual-stack socket
    assert not t.is_trusted_peer("/run/evloop.sock")
    assert TrustedProxies("unix:").is_trusted_peer("")
    star = TrustedProxies("*")
    assert star.is_trusted("203.0.113.9") and star.is_trusted_peer(None)
    with pytest.raises(ValueError, match="not-an-ip"):
        TrustedProxies("127.0.0.1,not-an-ip")


def test_untrusted_peer_changes_nothing():
    headers = [("X-Forwarded-For", "198.51.100.7"), ("X-Forwarded-Proto", "https")]
    assert resolve(headers, peer=("192.0.2.1", 1)) == (("192.0.2.1", 1), "http")
    assert resolve(headers, trusted=TrustedProxies("10.0.0.0/8")) == (PEER, "http")


def test_no_proxy_headers():
    assert resolve([("Host", "x")]) == (PEER, "http")


def test_x_forwarded_for_single_hop():
    assert resolve([("X-Forwarded-For", "198.51.100.7"), ("X-Forwarded-Proto", "https")]) == \
        (("198.51.100.7", 0), "https")


def test_right_most_untrusted_hop_wins_over_spoofed_left_entries():
    # The client sent "X-Forwarded-For: 1.2.3.4" itself; our proxy appended its real address.
    headers = [("X-Forwarded-For", "1.2.3.4, 198.51.100.7")]
    assert resolve(headers)[0] == ("198.51.100.7", 0)
    # Two trusted proxies in a row are skipped.
    two = TrustedProxies("127.0.0.1,10.0.0.0/8")
    assert resolve([("X-Forwarded-For", "1.2.3.4, 198.51.100.7, 10.0.0.2")], trusted=two)[0] == ("198.51.100.7", 0)


def test_every_hop_trusted_gives_the_left_most():
    assert resolve([("X-Forwarded-For", "10.0.0.1, 10.0.0.2")], trusted=TrustedProxies("*"))[0] == ("10.0.0.1", 0)


def test_repeated_header_fields_are_one_list():
    headers = [("X-Forwarded-For", "1.2.3.4"), ("x-forwarded-for", "198.51.100.7")]
    assert resolve(headers)[0] == ("198.51.100.7", 0)


def test_proto_follows_the_chosen_hop_when_counts_match():
    headers = [("X-Forwarded-For", "198.51.100.7, 10.0.0.2"), ("X-Forwarded-Proto", "https, http")]
    two = TrustedProxies("127.0.0.1,10.0.0.0/8")
    assert resolve(headers, trusted=two) == (("198.51.100.7", 0), "https")


def test_proto_alone_and_bad_proto():
    assert resolve([("X-Forwarded-Proto", "https")]) == (PEER, "https")
    assert resolve([("X-Forwarded-Proto", "gopher")]) == (PEER, "http")
    assert resolve([("X-Forwarded-Proto", "HTTPS")]) == (PEER, "https")


def test_forwarded_header():
    headers = [("Forwarded", 'for=192.0.2.60;proto=https;by=203.0.113.43')]
    assert resolve(headers) == (("192.0.2.60", 0), "https")
    headers = [("Forwarded", 'for="[2001:db8:cafe::17]:4711";proto=http')]
    assert resolve(headers) == (("2001:db8:cafe::17", 4711), "http")
    headers = [("Forwarded", 'For="192.0.2.43:47011"')]
    assert resolve(headers) == (("192.0.2.43", 47011), "http")


def test_forwarded_wins_over_x_forwarded():
    headers = [("X-Forwarded-For", "1.1.1.1"), ("Forwarded", "for=192.0.2.60")]
    assert resolve(headers)[0] == ("192.0.2.60", 0)


def test_forwarded_chain_and_quoted_commas():
    headers = [("Forwarded", 'for=1.2.3.4;x="a,b", for=198.51.100.7;proto=https')]
    assert parse_forwarded([headers[0][1]]) == [{"for": "1.2.3.4", "x": "a,b"}, {"for": "198.51.100.7", "proto": "https"}]
    assert resolve(headers) == (("198.51.100.7", 0), "https")


def test_unknown_and_obfuscated_nodes_keep_the_peer():
    assert resolve([("Forwarded", "for=unknown;proto=https")]) == (PEER, "https")
    assert resolve([("Forwarded", "for=_hidden")]) == (PEER, "http")


def test_garbage_does_not_raise():
    for value in ["", ",,,", ";;", "for", "for=", '"', 'for="[::1', "for=[::1]:99999999", "\x00"]:
        client, scheme = resolve([("Forwarded", value), ("X-Forwarded-For", value)])
        assert scheme == "http"


def test_unix_socket_peer():
    headers = [("X-Forwarded-For", "198.51.100.7")]
    assert resolve(headers, trusted=TrustedProxies("unix:"), peer="") == (("198.51.100.7", 0), "http")
    assert resolve(headers, trusted=LOCAL, peer="") == ("", "http")


@pytest.mark.parametrize("value", [
    '9.9.9.9 - - [01/Jan/2000:00:00:00 +0000] "GET /admin HTTP/1.1" 200 1',  # a forged log line
    "evil.example", "1.2.3.4 5.6.7.8", "1.2.3.4:99999", "1.2.3.4:x", "01.2.3.4", "[1.2.3.4]", "[::1", "[::1]x",
    "fe80::1%eth0", "_", "unknown:", "\x1b[31m",
])
def test_a_node_outside_rfc7239_section6_names_no_client(value):
    assert resolve([("X-Forwarded-For", value), ("X-Forwarded-Proto", "https")]) == (PEER, "http")
    quoted = value.replace("\\", "\\\\").replace('"', '\\"')
    assert resolve([("Forwarded", f'for="{quoted}";proto=https')]) == (PEER, "http")


@pytest.mark.parametrize("node, client", [
    ("192.0.2.1", ("192.0.2.1", 0)), ("192.0.2.1:8080", ("192.0.2.1", 8080)), ("192.0.2.1:_p1", ("192.0.2.1", 0)),
    ("[2001:db8::1]", ("2001:db8::1", 0)), ("[2001:db8::1]:443", ("2001:db8::1", 443)),
    ("unknown", PEER), ("UNKNOWN:80", PEER), ("_hidden.proxy-1", PEER),
])
def test_rfc7239_section6_nodes(node, client):
    assert resolve([("Forwarded", f'for="{node}"')])[0] == client


def test_bare_ipv6_only_in_x_forwarded_for():
    assert resolve([("X-Forwarded-For", "2001:db8::1")])[0] == ("2001:db8::1", 0)
    assert resolve([("Forwarded", 'for="2001:db8::1"')])[0] == PEER


def test_a_malformed_forwarded_element_is_untrusted():
    # An unbalanced quote swallows the rest of the field: one malformed element,
    # the right-most, so the walk stops at once and the peer is kept.
    assert resolve([("Forwarded", 'for="198.51.100.1, for=203.0.113.5;proto=https')]) == (PEER, "http")
    # A pair without "=", a value that is no token, a repeated parameter: nothing in the element is believed.
    for element in ["for=203.0.113.5;secure", "for=203.0.113.5;x=a b", "for=203.0.113.5;for=198.51.100.1",
                    "for = 203.0.113.5"]:
        assert resolve([("Forwarded", element + ";proto=https")]) == (PEER, "http"), element
    assert parse_forwarded(['for=1.2.3.4;x, for=5.6.7.8']) == [{}, {"for": "5.6.7.8"}]
    # Empty pairs and elements are allowed (RFC 7239 section 4, RFC 9110 5.6.1).
    assert parse_forwarded([';for=1.2.3.4;;proto=http;, ,']) == [{"for": "1.2.3.4", "proto": "http"}]


def test_a_malformed_hop_stops_the_walk_even_when_trusting_all():
    star = TrustedProxies("*")
    assert resolve([("X-Forwarded-For", "203.0.113.5, not-an-ip, 10.0.0.1")], trusted=star)[0] == PEER
    assert resolve([("X-Forwarded-For", "203.0.113.5, 10.0.0.1")], trusted=star)[0] == ("203.0.113.5", 0)
