"""A WebSocket client on a plain blocking socket: the handshake, masked frames, and the server's frames read back.

For what a well-behaved client library will not do: frames that break the
protocol, a peer that never answers a Ping, thousands of idle connections.
"""

from __future__ import annotations

import base64
import os
import socket
import struct

from support.raw_http import read_exact

KEY = base64.b64encode(b"0123456789abcdef").decode()


def handshake_request(path: str = "/ws/echo", extra: str = "") -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode()


def open_raw(port: int, path: str = "/ws/echo", timeout_s: float = 10.0) -> socket.socket:
    """A connected socket past the 101 (no extension offered), blocking with ``timeout_s``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    sock.sendall(handshake_request(path))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: nothing after the head may be consumed here
        assert chunk, f"closed during the handshake: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def masked(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, mask: bool = True) -> bytes:
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head = bytes((first, bit | n))
    elif n < 65536:
        head = struct.pack("!BBH", first, bit | 126, n)
    else:
        head = struct.pack("!BBQ", first, bit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    as_int = int.from_bytes(payload, "big")
    key_int = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return head + key + (as_int ^ key_int).to_bytes(n, "big")


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """``(opcode, payload)`` of the next (unmasked) frame from the server; ``EOFError`` at the end."""
    b0, b1 = read_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", read_exact(sock, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(sock, 8))[0]
    return b0 & 0x0F, read_exact(sock, n)


def close_code(payload: bytes) -> int:
    return struct.unpack("!H", payload[:2])[0]
