"""Raw HTTP/1.1 over a socket, for wire-level checks against a running server."""

from __future__ import annotations

import socket

__all__ = ["exchange", "read_until_close", "split_response"]


def read_until_close(sock: socket.socket, timeout_s: float = 5.0) -> bytes:
    """Every byte the peer sends until it closes (or resets) the connection.

    Raises ``TimeoutError`` when the peer neither sends nor closes for ``timeout_s``.
    """
    sock.settimeout(timeout_s)
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def exchange(host: str, port: int, raw: bytes, timeout_s: float = 5.0) -> bytes:
    """Connect, send ``raw``, and ``read_until_close``."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(raw)
        return read_until_close(sock, timeout_s)


def split_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """``(status, headers by lowercase name, the rest)`` of the first response in ``data``."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ")[1]), headers, rest


def read_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly ``n`` bytes from ``sock``; EOFError if the peer closes first."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data
