"""WebSocket frame pieces (RFC 6455 section 5): opcodes, masking, headers, close payloads.

Reading frames is the connection's job (``connection.WebSocketConnection``
parses headers inline, the hot path); this module holds what both directions
share: the unmasking function, the frame encoder and the close-frame rules.
"""

from __future__ import annotations

import struct

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "CloseCode",
    "close_payload",
    "encode_frame",
    "is_valid_received_code",
    "mask_payload",
    "pack_head_16",
    "parse_close_payload",
]

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

FIN = 0x80
RSV1 = 0x40
MASK_BIT = 0x80
MAX_CONTROL_PAYLOAD = 125  # RFC 6455 5.5


class CloseCode:
    """Close status codes (RFC 6455 7.4.1 and the IANA registry) this package sends or names."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # never on the wire: a Close frame without a code
    ABNORMAL = 1006  # never on the wire: the TCP connection ended without a Close
    INVALID_DATA = 1007  # e.g. a text message that is not UTF-8
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011


# Codes a peer may put on the wire (RFC 6455 7.4.1-7.4.2): 1000-1003 and
# 1007-1014 are defined (1012-1014 by the IANA registry); 3000-4999 belong
# to libraries and applications.  1004 is reserved, 1005, 1006 and 1015 must
# never be sent, 1016-2999 are for future RFCs, and anything else is invalid.
_DEFINED_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def is_valid_received_code(code: int) -> bool:
    """Whether ``code`` may appear in a Close frame on the wire (either direction)."""
    return code in _DEFINED_CODES or 3000 <= code <= 4999


def parse_close_payload(payload: bytes) -> tuple[int, str] | str:
    """The ``(code, reason)`` of a received Close frame, or the reason it is invalid.

    An empty payload is ``(1005, "")`` (RFC 6455 7.1.5).  Invalid: one byte
    (no room for a code), a code that may not be sent, a reason that is not
    UTF-8 (the caller closes with 1002 for the first two, 1007 for the last;
    see ``connection``).
    """
    if not payload:
        return CloseCode.NO_STATUS, ""
    if len(payload) == 1:
        return "a close payload of one byte"
    code = (payload[0] << 8) | payload[1]
    if not is_valid_received_code(code):
        return f"close code {code} may not be sent"
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        return "utf-8"
    return code, reason


def close_payload(code: int | None, reason: str = "") -> bytes:
    """The payload of a Close frame we send.

    ``code`` None sends an empty payload (the peer sees 1005) and then
    ``reason`` must be empty.  Raises ``ValueError`` for a code that may not
    be sent or a reason over 123 bytes of UTF-8 (a control frame carries at
    most 125 bytes, RFC 6455 5.5).
    """
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return b""
    if not is_valid_received_code(code):
        raise ValueError(f"close code {code} may not be sent (RFC 6455 7.4)")
    encoded = reason.encode("utf-8")
    if len(encoded) > MAX_CONTROL_PAYLOAD - 2:
        raise ValueError("a close reason is at most 123 bytes of UTF-8")
    return code.to_bytes(2, "big") + encoded


# Unmasking (RFC 6455 5.3): every byte of a client's payload XORed with the
# frame's 4-byte key, in turn.  It touches every received byte, so it is the
# hot loop of a pure-Python server.  Measured with load/bench_ws_mask.py
# (load/BENCHMARKS.md, "WebSocket unmasking"), microseconds for 16 B / 4 KiB /
# 1 MiB: a generator over the bytes 1.17 / 157 / -; XOR of two big ints
# (int.from_bytes / to_bytes, websockets' pure-Python fallback) 0.42 / 8.2 /
# 3,540; four bytes.translate tables on the strided slices of one bytearray,
# in place, 0.67 / 5.2 / 1,520 (2.3x the ints from 4 KiB up).  The ints win
# below about 320 bytes (256 B: 1.03 against 1.13 us; 384 B: 1.41 against
# 1.33), so small payloads take the ints and larger ones the tables: one
# function, two branches, both tested against a plain byte-by-byte XOR
# (tests/ws/test_ws_connection.py).
_XOR_TABLES = tuple(bytes(b ^ k for b in range(256)) for k in range(256))
SMALL_PAYLOAD = 320
# The whole-frame branch of ``connection.WebSocketConnection.next_event``
# reads a small payload and the key before it as one int x (key, then payload,
# big-endian): with K the key repeated over all n + 4 bytes, x ^ K is the
# unmasked payload (the key's own 4 bytes cancel), and K is the key (x's top
# 4 bytes) times a spread of ones, shifted right to n + 4 bytes.  One slice
# and one from_bytes instead of three slices, a repeat and two from_bytes:
# ~1,300 instructions fewer for 16 B (callgrind).  ``SPREADS[n]``: that
# spread and shift for an n-byte payload, for n below SMALL_PAYLOAD (~36 KB).
_ONES = [int.from_bytes(b"\0\0\0\1" * words) for words in range(SMALL_PAYLOAD // 4 + 2)]
SPREADS = tuple((_ONES[(n + 3) // 4 + 1], 8 * (4 * ((n + 3) // 4) - n)) for n in range(SMALL_PAYLOAD))
# ``int.from_bytes`` looked up once: each ``int.from_bytes`` makes a bound
# method object first, ~500 instructions of a 16 B message's ~1,000 (callgrind).
from_bytes = int.from_bytes


def mask_payload(mask: bytes | bytearray, data: bytes | bytearray | memoryview) -> bytes | bytearray:
    """``data`` XORed with the 4-byte ``mask`` repeated (masking and unmasking are the same).

    The mask starts at ``data[0]``; for a piece that starts at offset ``k``
    of a payload, pass the mask rotated by ``k % 4``.  Returns new bytes (a
    bytearray for large payloads); ``data`` is not modified.
    """
    n = len(data)
    if n < SMALL_PAYLOAD:
        # The key repeated past n and cut (one repeat and one slice), byte
        # order big by default: ~590 instructions a call fewer than
        # ``mask * (n >> 2) + mask[: n & 3]`` with "big" spelt out (callgrind, 16 B).
        return (from_bytes(data) ^ from_bytes((mask * ((n >> 2) + 1))[:n])).to_bytes(n)
    out = bytearray(data)
    tables = _XOR_TABLES
    out[0::4] = out[0::4].translate(tables[mask[0]])
    out[1::4] = out[1::4].translate(tables[mask[1]])
    out[2::4] = out[2::4].translate(tables[mask[2]])
    out[3::4] = out[3::4].translate(tables[mask[3]])
    return out


_PACK_8 = struct.Struct("!BB").pack  # ~500 instructions a frame fewer than bytes((b0, b1)) (callgrind)
# The head of a server's whole uncompressed text message under 126 bytes, by length, made once: an index
# where _PACK_8 costs ~560 instructions (callgrind); ``WebSocketConnection.send_text`` takes it.
TEXT_HEADS = tuple(bytes((FIN | OP_TEXT, n)) for n in range(126))
_PACK_16 = struct.Struct("!BBH").pack
# ``(first_byte, 126, n) -> bytes``: a frame head with a 16-bit length (126 to 65,535 bytes): a server's whole
# text message of that size takes it in ``WebSocketConnection.send_text`` without encode_frame's call.
pack_head_16 = _PACK_16
_PACK_64 = struct.Struct("!BBQ").pack


def encode_frame(first_byte: int, payload: bytes | bytearray, mask: bytes | None = None) -> bytes:
    """One frame: ``first_byte`` (FIN, RSV and opcode bits) then ``payload``.

    With ``mask`` (4 bytes, clients only), the mask bit and key are set and
    the payload is masked.  The length uses the fewest bytes (RFC 6455 5.2).
    """
    n = len(payload)
    if mask is None:
        if n < 126:  # a server's small frame, the usual one: ~400 instructions fewer first (callgrind)
            return _PACK_8(first_byte, n) + payload
        if n < 65536:  # and a server's 16-bit length (a 4 KiB message) before the general steps
            return _PACK_16(first_byte, 126, n) + payload
        mask_bit = 0
    else:
        mask_bit = MASK_BIT
    if n < 126:
        head = _PACK_8(first_byte, mask_bit | n)
    elif n < 65536:
        head = _PACK_16(first_byte, mask_bit | 126, n)
    else:
        head = _PACK_64(first_byte, mask_bit | 127, n)
    if mask is None:
        return head + payload
    return head + mask + mask_payload(mask, payload)
