"""A message framed once for many connections (``WebSocketConnection.send_prepared``, broadcast)."""

from __future__ import annotations

from .deflate import Deflater
from .frames import FIN, OP_BINARY, OP_TEXT, RSV1, encode_frame

__all__ = ["PreparedMessage"]


class PreparedMessage:
    """A message framed once, to be sent on many server connections (broadcast).

    ``WebSocketConnection.send_prepared`` returns ``frame`` (an uncompressed
    frame) for most connections: RFC 7692 lets a message go uncompressed even
    where permessage-deflate was negotiated, and an uncompressed message
    leaves both sides' LZ77 windows alone, so the same bytes suit every
    server connection.  A connection whose own messages are compressed
    without context takeover gets a compressed frame instead, made once per
    distinct (window bits, level, memLevel) and kept here.  Compressed
    frames with context takeover depend on everything the connection sent
    before, so a broadcast cannot share them; it goes uncompressed there.
    """

    __slots__ = ("_compressed", "frame", "opcode", "payload")

    def __init__(self, data: str | bytes) -> None:
        if isinstance(data, str):
            self.opcode = OP_TEXT
            self.payload = data.encode("utf-8")
        else:
            self.opcode = OP_BINARY
            self.payload = bytes(data)
        self.frame = encode_frame(FIN | self.opcode, self.payload)
        self._compressed: dict[tuple[int, int, int], bytes] = {}

    def compressed_frame(self, window_bits: int, level: int, mem_level: int) -> bytes:
        """The message as one compressed frame, as a fresh compressor makes it."""
        key = (window_bits, level, mem_level)
        frame = self._compressed.get(key)
        if frame is None:
            payload = Deflater(window_bits, True, level, mem_level).deflate(self.payload, True)
            frame = self._compressed[key] = encode_frame(FIN | RSV1 | self.opcode, payload)
        return frame
