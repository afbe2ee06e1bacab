"""The PROXY protocol header parser (evloop.net.proxy_header): bytes in, addresses out, no sockets.

Every valid case is fed three ways: whole, growing one byte at a time (each
proper prefix must answer "not yet"), and with bytes after it that must stay
unconsumed.  Hypothesis builds headers from random addresses and TLVs and
checks the round trip, and throws arbitrary and mutated bytes at the parser:
it answers a header, "not yet" or ProxyHeaderError, and nothing else.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evloop.net.proxy_header import (
    MAX_V2_BYTES,
    PP2_SUBTYPE_SSL_CIPHER,
    PP2_SUBTYPE_SSL_CN,
    PP2_SUBTYPE_SSL_VERSION,
    PP2_TYPE_ALPN,
    PP2_TYPE_AUTHORITY,
    PP2_TYPE_CRC32C,
    PP2_TYPE_NOOP,
    PP2_TYPE_SSL,
    PP2_TYPE_UNIQUE_ID,
    V1_MAX_BYTES,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderError,
    ProxySSL,
    crc32c,
    parse_proxy_header,
    signature_version,
)

TAIL = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


# ------------------------------------------------------------------ encoders
def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def v2(command: int = 1, family: int = 0x11, block: bytes = b"", *, crc: bool = False, version: int = 2) -> bytes:
    """A version 2 header; with ``crc`` a CRC32C TLV is appended and filled in."""
    if crc:
        block += tlv(PP2_TYPE_CRC32C, b"\0\0\0\0")
    header = V2_SIGNATURE + bytes([version << 4 | command, family]) + struct.pack("!H", len(block)) + block
    if crc:
        header = header[:-4] + struct.pack("!I", crc32c(header))
    return header


def inet(src: str, dst: str, sport: int, dport: int) -> bytes:
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    return a.packed + b.packed + struct.pack("!HH", sport, dport)


def unix_paths(src: bytes, dst: bytes) -> bytes:
    return src.ljust(108, b"\0") + dst.ljust(108, b"\0")


def fed_three_ways(data: bytes) -> ProxyHeader:
    """The header in ``data``, checked whole, byte by byte, and with trailing bytes left alone."""
    header, used = parse_proxy_header(data)
    assert used == len(data)
    for n in range(len(data)):
        assert parse_proxy_header(data[:n]) is None, n
    assert parse_proxy_header(data + TAIL) == (header, len(data))
    return header


# ------------------------------------------------------------------ version 1
@pytest.mark.parametrize("line, source, destination", [
    (b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", ("192.168.0.1", 56324), ("192.168.0.11", 443)),
    (b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n", ("255.255.255.255", 65535),
     ("255.255.255.255", 65535)),
    (b"PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n", ("0.0.0.0", 0), ("10.0.0.1", 0)),
    (b"PROXY TCP6 2001:DB8::1 ::1 4711 8443\r\n", ("2001:db8::1", 4711), ("::1", 8443)),
    (b"PROXY TCP6 ::ffff:127.0.0.1 ::ffff:127.0.0.1 1 2\r\n", ("::ffff:127.0.0.1", 1), ("::ffff:127.0.0.1", 2)),
    (b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
     ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535), ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535)),
])
def test_v1_addresses(line, source, destination):
    assert fed_three_ways(line) == ProxyHeader(1, "PROXY", source, destination)


@pytest.mark.parametrize("line", [
    b"PROXY UNKNOWN\r\n",
    b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
    b"PROXY UNKNOWN whatever the sender put here\r\n",
])
def test_v1_unknown_keeps_the_real_addresses(line):
    assert len(line) <= V1_MAX_BYTES
    assert fed_three_ways(line) == ProxyHeader(1, "PROXY")


@pytest.mark.parametrize("line, reason", [
    (b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n", "bare CR or LF"),
    (b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\r\n", "bare CR or LF"),
    (b"PROXY TCP4 192.168.0.1\r 192.168.0.11 56324 443\r\n", "bare CR or LF"),
    (b"PROXY TCP4  192.168.0.1 192.168.0.11 56324 443\r\n", "expected"),
    (b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 \r\n", "expected"),
    (b"PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n", "expected"),
    (b"PROXY TCP5 192.168.0.1 192.168.0.11 56324 443\r\n", "expected"),
    (b"PROXY tcp4 192.168.0.1 192.168.0.11 56324 443\r\n", "expected"),
    (b"PROXY UDP4 192.168.0.1 192.168.0.11 56324 443\r\n", "expected"),
    (b"PROXY UNKNOWNX\r\n", "expected"),
    (b"PROXY \r\n", "expected"),
    (b"PROXY TCP4 192.168.000.1 192.168.0.11 56324 443\r\n", "not an IPv4"),
    (b"PROXY TCP4 192.168.0.256 192.168.0.11 56324 443\r\n", "not an IPv4"),
    (b"PROXY TCP4 ::1 192.168.0.11 56324 443\r\n", "not an IPv4"),
    (b"PROXY TCP6 192.168.0.1 ::1 56324 443\r\n", "not an IPv6"),
    (b"PROXY TCP6 fe80::1%eth0 ::1 56324 443\r\n", "not an IPv6"),
    (b"PROXY TCP4 host.example 192.168.0.11 56324 443\r\n", "not an IPv4"),
    (b"PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n", "not a port"),
    (b"PROXY TCP4 192.168.0.1 192.168.0.11 00 443\r\n", "not a port"),
    (b"PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n", "not a port"),
    (b"PROXY TCP4 192.168.0.1 192.168.0.11 -1 443\r\n", "not a port"),
    (b"PROXY TCP4 192.168.0.1 192.168.0.11 +1 443\r\n", "not a port"),
    (b"PROXY TCP4 192.168.0.1 192.168.0.11 \xd9\xa1 443\r\n", "not a port"),
    (b"PROXY TCP4 \xc3\xa9.0.0.1 192.168.0.11 1 443\r\n", "not an IPv4"),
    (b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n", "no CRLF within 107"),
    (b"PROXYTCP4 1.2.3.4 1.2.3.4 1 1\r\n", "not a PROXY"),
    (b"proxy TCP4 1.2.3.4 1.2.3.4 1 1\r\n", "not a PROXY"),
])
def test_v1_refused(line, reason):
    with pytest.raises(ProxyHeaderError, match=reason):
        parse_proxy_header(line + TAIL)


def test_v1_longest_line_is_107_bytes():
    longest = b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n"
    assert len(longest) == V1_MAX_BYTES
    assert parse_proxy_header(longest) == (ProxyHeader(1, "PROXY"), V1_MAX_BYTES)
    # Without its CRLF, 107 bytes are enough to refuse: the buffer never grows past that.
    with pytest.raises(ProxyHeaderError, match="no CRLF"):
        parse_proxy_header(longest[:-2] + b"yy")
    assert parse_proxy_header(longest[:-1]) is None  # a CR at the end may still be followed by its LF


# ------------------------------------------------------------------ version 2
def test_v2_tcp4_and_tcp6():
    header = fed_three_ways(v2(1, 0x11, inet("198.51.100.7", "10.0.0.1", 4711, 443)))
    assert header == ProxyHeader(2, "PROXY", ("198.51.100.7", 4711), ("10.0.0.1", 443))
    header = fed_three_ways(v2(1, 0x21, inet("2001:db8::7", "2001:db8::1", 65535, 8443)))
    assert header == ProxyHeader(2, "PROXY", ("2001:db8::7", 65535), ("2001:db8::1", 8443))


def test_v2_unix():
    header = fed_three_ways(v2(1, 0x31, unix_paths(b"/run/client.sock", b"/run/haproxy.sock")))
    assert (header.source, header.destination) == ("/run/client.sock", "/run/haproxy.sock")
    header = fed_three_ways(v2(1, 0x31, unix_paths(b"", b"\0abstract")))
    assert (header.source, header.destination) == ("", b"\0abstract")


@pytest.mark.parametrize("family, block", [
    (0x00, b""), (0x11, inet("1.2.3.4", "5.6.7.8", 1, 2)), (0x21, b"junk"), (0x00, b"ignored block"),
])
def test_v2_local_keeps_the_real_addresses_whatever_follows(family, block):
    # Section 2.2: LOCAL (a proxy's health check) skips the block, family and all,
    # and a receiver must not assume its length is zero.
    assert fed_three_ways(v2(0, family, block)) == ProxyHeader(2, "LOCAL")


@pytest.mark.parametrize("family", [0x00, 0x01, 0x02, 0x10, 0x12, 0x20, 0x22, 0x30, 0x32])
def test_v2_unspecified_or_datagram_keeps_the_real_addresses(family):
    block = {0: b"anything", 1: inet("1.2.3.4", "5.6.7.8", 1, 2), 2: inet("::1", "::2", 1, 2),
             3: unix_paths(b"/a", b"/b")}[family >> 4]
    extra = tlv(PP2_TYPE_NOOP, b"") if family >> 4 else b""
    assert fed_three_ways(v2(1, family, block + extra)) == ProxyHeader(2, "PROXY", tlvs=((4, b""),) if extra else ())


@pytest.mark.parametrize("header, reason", [
    (v2(version=1, block=inet("1.2.3.4", "5.6.7.8", 1, 2)), "version 1"),
    (v2(version=3, block=inet("1.2.3.4", "5.6.7.8", 1, 2)), "version 3"),
    (v2(command=2, block=inet("1.2.3.4", "5.6.7.8", 1, 2)), "unknown command"),
    (v2(command=0xF, block=b""), "unknown command"),
    (v2(family=0x41, block=b""), "unknown family"),
    (v2(family=0x13, block=inet("1.2.3.4", "5.6.7.8", 1, 2)), "unknown family"),
    (v2(family=0x11, block=b"\1\2\3\4\5\6\7\x08\0\1"), "needs 12"),
    (v2(family=0x21, block=inet("1.2.3.4", "5.6.7.8", 1, 2)), "needs 36"),
    (v2(family=0x31, block=b"/x".ljust(200, b"\0")), "needs 216"),
    (v2(block=inet("1.2.3.4", "5.6.7.8", 1, 2) + b"\x04\x00"), "at least 3"),
    (v2(block=inet("1.2.3.4", "5.6.7.8", 1, 2) + b"\x04\x00\x05abcd"), "runs 1 bytes past"),
    (v2(block=inet("1.2.3.4", "5.6.7.8", 1, 2) + tlv(PP2_TYPE_AUTHORITY, b"\xff\xfe")), "not UTF-8"),
    (v2(block=inet("1.2.3.4", "5.6.7.8", 1, 2) + tlv(PP2_TYPE_AUTHORITY, b"a" * 256)), "256-byte AUTHORITY"),
    (v2(block=inet("1.2.3.4", "5.6.7.8", 1, 2) + tlv(PP2_TYPE_UNIQUE_ID, b"u" * 129)), "129-byte UNIQUE_ID"),
    (v2(block=inet("1.2.3.4", "5.6.7.8", 1, 2) + tlv(PP2_TYPE_CRC32C, b"\0\0\0")), "3-byte CRC32C"),
    (v2(block=inet("1.2.3.4", "5.6.7.8", 1, 2) + tlv(PP2_TYPE_SSL, b"\1\0\0\0")), "4-byte SSL"),
    (v2(block=inet("1.2.3.4", "5.6.7.8", 1, 2) + tlv(PP2_TYPE_SSL, b"\1\0\0\0\0" + b"\x21\x00\x09TLSv1.3")),
     "runs 2 bytes past"),
    (v2(block=inet("1.2.3.4", "5.6.7.8", 1, 2) + tlv(PP2_TYPE_SSL, b"\1\0\0\0\0" + tlv(0x21, b"\xff"))),
     "not text"),
    (V2_SIGNATURE[:-1] + b"X" + b"\x21\x11\x00\x0c" + inet("1.2.3.4", "5.6.7.8", 1, 2), "not a PROXY"),
])
def test_v2_refused(header, reason):
    with pytest.raises(ProxyHeaderError, match=reason):
        parse_proxy_header(header + TAIL)


def test_v2_length_is_bounded_before_the_bytes_come():
    # The 16 fixed bytes announce the length: a header over the bound is refused
    # at once, not buffered while its bytes trickle in.
    announced = V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", MAX_V2_BYTES - 16 + 1)
    with pytest.raises(ProxyHeaderError, match=f"{MAX_V2_BYTES + 1}-byte header"):
        parse_proxy_header(announced)
    block = inet("1.2.3.4", "5.6.7.8", 1, 2)
    largest = v2(block=block + tlv(0xE0, b"p" * (MAX_V2_BYTES - 16 - len(block) - 3)))
    assert len(largest) == MAX_V2_BYTES
    assert parse_proxy_header(largest)[1] == MAX_V2_BYTES
    with pytest.raises(ProxyHeaderError, match="at most 1024"):  # the caller may lower the bound
        parse_proxy_header(largest, max_v2_bytes=1024)


def test_v2_tlvs_known_and_unknown():
    ssl_value = b"\x07\0\0\0\0" + tlv(PP2_SUBTYPE_SSL_VERSION, b"TLSv1.3") + tlv(PP2_SUBTYPE_SSL_CN, b"alice") \
        + tlv(PP2_SUBTYPE_SSL_CIPHER, b"TLS_AES_128_GCM_SHA256") + tlv(0x2F, b"unknown sub-TLV")
    tlvs = [(PP2_TYPE_ALPN, b"h2"), (PP2_TYPE_AUTHORITY, "bücher.example".encode()), (PP2_TYPE_NOOP, b""),
            (PP2_TYPE_UNIQUE_ID, b"u" * 128), (PP2_TYPE_SSL, ssl_value), (0xE5, b"custom"), (0xF8, b"future")]
    block = inet("2001:db8::7", "2001:db8::1", 1, 2) + b"".join(tlv(k, v) for k, v in tlvs)
    header = fed_three_ways(v2(1, 0x21, block))
    assert header.tlvs == tuple(tlvs)
    assert header.alpn == b"h2"
    assert header.authority == "bücher.example"
    assert header.unique_id == b"u" * 128
    assert header.ssl == ProxySSL(tls=True, client_cert=True, verified=True, version="TLSv1.3",
                                  cipher="TLS_AES_128_GCM_SHA256", cn="alice")
    assert header.tlv(0xE5) == b"custom" and header.tlv(0x99) is None
    unverified = v2(block=inet("1.2.3.4", "5.6.7.8", 1, 2) + tlv(PP2_TYPE_SSL, b"\x03\0\0\0\x01"))
    assert parse_proxy_header(unverified)[0].ssl == ProxySSL(tls=True, client_cert=True, verified=False)
    plain = fed_three_ways(v2(block=inet("1.2.3.4", "5.6.7.8", 1, 2)))
    assert (plain.ssl, plain.authority, plain.unique_id, plain.alpn) == (None, None, None, None)


def test_v2_crc32c_checked():
    assert crc32c(b"123456789") == 0xE3069283  # RFC 4960's check value
    block = inet("1.2.3.4", "5.6.7.8", 1, 2) + tlv(PP2_TYPE_AUTHORITY, b"example.com")
    good = v2(block=block, crc=True)
    assert fed_three_ways(good).authority == "example.com"
    for index in (13, 20, len(good) - 6, len(good) - 1):  # a byte of the address, a TLV, the checksum itself
        bad = bytearray(good)
        bad[index] ^= 0x01
        with pytest.raises(ProxyHeaderError):
            parse_proxy_header(bytes(bad))


def test_v2_more_than_one_crc32c_tlv_is_refused():
    # Each CRC32C TLV costs a checksum of the whole header; the specification defines one.
    block = inet("1.2.3.4", "5.6.7.8", 1, 2) + tlv(PP2_TYPE_CRC32C, b"\0\0\0\0")
    with pytest.raises(ProxyHeaderError, match="more than one CRC32C"):
        parse_proxy_header(v2(block=block, crc=True))


def test_signature_version():
    assert signature_version(b"") is None
    assert signature_version(b"PROX") is None
    assert signature_version(b"PROXY") is None
    assert signature_version(b"PROXY ") == 1
    assert signature_version(b"\r\n\r\n") is None
    assert signature_version(b"\r\n") is None  # an HTTP client's leading empty line: not decided yet
    assert signature_version(V2_SIGNATURE) == 2
    assert signature_version(b"GET / HTTP/1.1\r\n") == 0
    assert signature_version(b"POST") == 0
    assert signature_version(b"PRI * HTTP/2.0") == 0
    assert signature_version(b"\x16\x03\x01") == 0  # a TLS ClientHello
    assert signature_version(b"\r\nGET") == 0


# ---------------------------------------------------------------- hypothesis
ipv4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
ipv6 = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
ports = st.integers(0, 65535)
tlv_lists = st.lists(st.tuples(st.sampled_from([PP2_TYPE_NOOP, PP2_TYPE_ALPN, 0x30, 0xE0, 0xEF, 0xF0, 0xFF]),
                               st.binary(max_size=40)), max_size=6)


@st.composite
def valid_headers(draw) -> tuple[bytes, ProxyHeader]:
    kind = draw(st.sampled_from(["v1-4", "v1-6", "v1-unknown", "v2-4", "v2-6", "v2-local"]))
    if kind == "v1-unknown":
        return b"PROXY UNKNOWN\r\n", ProxyHeader(1, "PROXY")
    six = kind.endswith("6")
    src, dst = draw(ipv6 if six else ipv4), draw(ipv6 if six else ipv4)
    sport, dport = draw(ports), draw(ports)
    if kind.startswith("v1"):
        line = f"PROXY TCP{6 if six else 4} {src} {dst} {sport} {dport}\r\n".encode()
        return line, ProxyHeader(1, "PROXY", (src, sport), (dst, dport))
    if kind == "v2-local":
        return v2(0, 0x00, draw(st.binary(max_size=64))), ProxyHeader(2, "LOCAL")
    tlvs = draw(tlv_lists)
    block = inet(src, dst, sport, dport) + b"".join(tlv(k, v) for k, v in tlvs)
    crc = draw(st.booleans())
    header = v2(1, 0x21 if six else 0x11, block, crc=crc)
    if crc:
        tlvs = [*tlvs, (PP2_TYPE_CRC32C, header[-4:])]
    return header, ProxyHeader(2, "PROXY", (src, sport), (dst, dport), tuple(tlvs))


@settings(max_examples=300, deadline=None)
@given(valid_headers(), st.binary(max_size=64), st.data())
def test_any_valid_header_round_trips_however_it_is_split(case, tail, data):
    raw, expected = case
    assert parse_proxy_header(raw + tail) == (expected, len(raw))
    cut = data.draw(st.integers(0, len(raw) - 1))
    assert parse_proxy_header(raw[:cut]) is None  # a proper prefix is never taken for a header


def _answers(data: bytes) -> None:
    try:
        result = parse_proxy_header(data)
    except ProxyHeaderError:
        return
    if result is not None:
        header, used = result
        assert 0 < used <= len(data) and used <= MAX_V2_BYTES
        assert header.version in (1, 2) and header.command in ("PROXY", "LOCAL")
    else:
        assert len(data) < MAX_V2_BYTES  # "not yet" only while short of the bound


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.binary(max_size=200).map(lambda b: V2_SIGNATURE + b),
                 st.binary(max_size=120).map(lambda b: b"PROXY " + b),
                 st.text(alphabet="PROXYTCP46UNKW0123456789abcdef.: \r\n", max_size=120).map(lambda t: t.encode())))
def test_arbitrary_bytes_answer_a_header_not_yet_or_an_error(data):
    _answers(data)


@settings(max_examples=300, deadline=None)
@given(valid_headers(), st.data())
def test_mutated_headers_answer_a_header_not_yet_or_an_error(case, data):
    raw = bytearray(case[0])
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] = data.draw(st.integers(0, 255))
    _answers(bytes(raw) + TAIL)
