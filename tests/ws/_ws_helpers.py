"""Raw frames, event collection, and handshakes with the oracle libraries, all in memory."""

import itertools
import struct

from evloop.http import RequestHead, ServerConnection
from evloop.ws import Role, WebSocketConnection

MASK = b"\x37\xfa\x21\x3d"


def plain_xor(mask: bytes, data: bytes) -> bytes:
    """The obvious unmasking, byte by byte: the reference for the fast one."""
    return bytes(b ^ m for b, m in zip(data, itertools.cycle(mask)))


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, mask: bytes | None = MASK,
          length_bytes: int | None = None) -> bytes:
    """A frame as a peer would write it, with the choices a broken peer could make.

    ``rsv``: the RSV bits (0x40, 0x20, 0x10).  ``mask`` None: unmasked.
    ``length_bytes``: force 0, 2 or 8 extended length bytes (non-minimal).
    """
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    mask_bit = 0x80 if mask is not None else 0
    if length_bytes is None:
        length_bytes = 0 if n < 126 else 2 if n < 65536 else 8
    if length_bytes == 0:
        head = bytes((first, mask_bit | n))
    elif length_bytes == 2:
        head = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, n)
    if mask is None:
        return head + payload
    return head + mask + plain_xor(mask, payload)


def collect(conn: WebSocketConnection, data: bytes, chunk: int | None = None) -> list:
    """Feed ``data`` (whole, or in pieces of ``chunk`` bytes) and return every event."""
    events: list = []
    if chunk is None:
        if data:  # b"" would mean EOF
            conn.receive_data(data)
        events.extend(conn.events())
    else:
        for i in range(0, len(data), chunk):
            conn.receive_data(data[i:i + chunk])
            events.extend(conn.events())
    return events


def server() -> WebSocketConnection:
    return WebSocketConnection(Role.SERVER)


def parse_request(data: bytes) -> RequestHead:
    """An HTTP/1.1 request head parsed by evloop's own parser."""
    conn = ServerConnection()
    conn.receive_data(data)
    head = conn.next_event()
    assert isinstance(head, RequestHead), head
    return head


def parse_response(data: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, header pairs and whatever followed the head."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name, value.strip()))
    return status, headers, rest


def response_bytes(status: int, headers: list[tuple[str, str]], reason: str = "Switching Protocols") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{n}: {v}" for n, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
