"""Hand-built TLS records for tests that must not depend on what the local client library still offers.

OpenSSL 3 clients refuse to even send a TLS 1.1 hello at the default
security level, so a test that asks one to "connect with TLS 1.1" can pass
without the server having refused anything.  ``tls11_client_hello()`` is
that hello as bytes, sent over a plain socket; ``read_alert`` reads what the
server answered.
"""

from __future__ import annotations

import os
import socket
import struct

from .raw_http import read_exact

HANDSHAKE, ALERT = 0x16, 0x15
PROTOCOL_VERSION_ALERT = 70  # RFC 5246 7.2.2 / RFC 8446 6.2: "protocol_version"


def tls11_client_hello(server_name: str = "localhost") -> bytes:
    """A ClientHello offering TLS 1.1 at most (no supported_versions extension), with SNI."""
    name = server_name.encode()
    sni = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    groups = struct.pack("!HHHH", 0x000A, 4, 2, 0x0017)        # supported_groups: secp256r1
    point_formats = struct.pack("!HHBB", 0x000B, 2, 1, 0)       # ec_point_formats: uncompressed
    extensions = sni + groups + point_formats
    # ECDHE with ECDSA or RSA certificates, then plain RSA: what a TLS 1.1 server could pick.
    suites = bytes.fromhex("c009 c00a c013 c014 002f 0035".replace(" ", ""))
    body = (
        b"\x03\x02" + os.urandom(32)                      # client_version TLS 1.1, random
        + b"\x00"                                          # no session id
        + struct.pack("!H", len(suites)) + suites
        + b"\x01\x00"                                      # compression: null only
        + struct.pack("!H", len(extensions)) + extensions
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", HANDSHAKE, 0x0301, len(handshake)) + handshake


def read_record(sock: socket.socket) -> tuple[int, bytes]:
    """One TLS record's content type and payload (EOFError if the peer closed first)."""
    head = read_exact(sock, 5)
    content_type, _version, length = struct.unpack("!BHH", head)
    return content_type, read_exact(sock, length)

